# The nested cases, run in L1 by tests/nested/l1-init (busybox sh). Each
# case_NAME returns 0 on success and says why on failure; what it prints
# goes to the TAP output as comments. case_limit gives its time bound.
#
# L2 is Debian's own kernel with tests/nested/l2-init, under colo-vmm on
# L1's /dev/kvm. Its command line carries no workaround: console and the
# test's mode only.

L2_APPEND="console=ttyS0"

case_limit() {
    case "$1" in
    int_*) echo 900 ;;
    linux_colo) echo 900 ;;
    linux_2cpu) echo 200 ;;
    linux_2cpu_reset) echo 300 ;;
    linux_2cpu_resets | linux_bare_resets | qemu_2cpu_resets*) echo 1200 ;;
    linux_migrate) echo 400 ;;
    *) echo 200 ;;
    esac
}

fail() {
    echo "FAIL: $*"
    return 1
}

# vm_start NAME ARGS...: colo-vmm in the background, serial console to
# /tmp/NAME.console, log to /tmp/NAME.log, QMP at /tmp/NAME.qmp.
vm_start() {
    name=$1
    shift
    rm -f "/tmp/$name.qmp"
    colo-vmm -name "$name" -qmp "unix:/tmp/$name.qmp,server=on,wait=off" -serial stdio \
        "$@" > "/tmp/$name.console" 2> "/tmp/$name.log" < /dev/null &
    echo $! > "/tmp/$name.pid"
    echo $! >> /tmp/vms.pids
}

# cleanup_vms: no colo-vmm outlives its case.
cleanup_vms() {
    [ -f /tmp/vms.pids ] || return 0
    for pid in $(cat /tmp/vms.pids); do
        kill -9 "$pid" 2>/dev/null
    done
    rm -f /tmp/vms.pids
    ip link del tap0 2>/dev/null
    ip link del tap1 2>/dev/null
    ip link del tap2 2>/dev/null
    killall httpd 2>/dev/null
    return 0
}

# console NAME: the guest's "L2: " lines.
l2_value() {
    grep "^L2: $2 " "/tmp/$1.console" | tail -1 | tr -d '\r' | cut -d' ' -f3-
}

# dump NAME: the end of a guest's console and of colo-vmm's log.
dump() {
    echo "-- $1 console (last 25 lines):"
    tail -25 "/tmp/$1.console" | tr -d '\r'
    echo "-- $1 log:"
    tail -10 "/tmp/$1.log"
    # Where colo-vmm's threads are (a vCPU in KVM_RUN, or blocked), for a
    # guest that stopped making progress; and what L1's KVM said.
    pid=$(cat "/tmp/$1.pid" 2>/dev/null)
    for task in /proc/$pid/task/*; do
        [ -r "$task/stat" ] || continue
        echo "-- thread $(cat "$task/comm"): state $(cut -d' ' -f3 "$task/stat")," \
            "cpu $(cut -d' ' -f14,15 "$task/stat") ticks, in $(cat "$task/wchan" 2>/dev/null)"
    done
    dmesg | grep -i -e kvm -e svm | tail -5
    kvm_trace
}

# kvm_trace: one second of L1's KVM trace events, summed up, for a guest
# that stopped making progress: which exits, at which guest RIPs, and what
# was injected. (A guest RIP in L1's module area, 0xffffffffc0...: compare
# it with where L1's init said its kvm_amd is.)
kvm_trace() {
    t=/sys/kernel/tracing
    [ -d $t/events ] || mount -t tracefs tracefs $t 2>/dev/null || return 0
    [ -d $t/events/kvm ] || return 0
    echo > $t/trace
    echo 1 > $t/events/kvm/enable
    sleep 1
    echo 0 > $t/events/kvm/enable
    echo "-- L1's KVM trace, 1 s: events"
    grep -v '^#' $t/trace | grep -o ' kvm_[a-z_0-9]*:' | sort | uniq -c | sort -rn | head -12
    echo "-- exits by vCPU, reason and guest RIP"
    grep -o 'kvm_exit: vcpu [0-9]* reason [A-Za-z_0-9]* rip 0x[0-9a-f]*' $t/trace |
        cut -d' ' -f2- | sort | uniq -c | sort -rn | head -12
    echo "-- the trace's last 16 lines"
    grep -v '^#' $t/trace | tail -16 | cut -c1-200
}

# wait_for NAME PATTERN SECONDS [COUNT]: until the console has COUNT lines
# matching PATTERN.
wait_for() {
    want=${4:-1}
    t=0
    while [ $t -lt $(($3 * 2)) ]; do
        [ "$(grep -c "$2" "/tmp/$1.console")" -ge "$want" ] && return 0
        kill -0 "$(cat "/tmp/$1.pid")" 2>/dev/null || break
        sleep 0.5
        t=$((t + 1))
    done
    dump "$1"
    fail "$1: no '$2' (x$want) within $3 s"
}

# qmp NAME COMMAND [ARGUMENTS-JSON]: prints the replies.
qmp() {
    args=${3:+,\"arguments\":$3}
    printf '{"execute":"qmp_capabilities"}\n{"execute":"%s"%s}\n' "$2" "$args" |
        socat -t 3 - "UNIX-CONNECT:/tmp/$1.qmp"
}

# wait_exit NAME SECONDS: sets RC to colo-vmm's exit status (124 if it
# runs on). Not in $(...): only this shell, the parent, can reap it.
wait_exit() {
    pid=$(cat "/tmp/$1.pid")
    t=0
    RC=124
    while [ $t -lt $(($2 * 2)) ]; do
        # A zombie still answers kill -0: ask /proc for its state.
        state=$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)
        [ -z "$state" ] || [ "$state" = Z ] && break
        sleep 0.5
        t=$((t + 1))
    done
    [ -z "$state" ] || [ "$state" = Z ] || return 0
    wait "$pid"
    RC=$?
}

# boot_time NAME START: waits for L2's userspace and says how long it took.
boot_time() {
    wait_for "$1" '^L2: userspace' 180 || return 1
    echo "$1: L2 userspace $(($(date +%s) - $2)) s after colo-vmm started" \
        "($(l2_value "$1" userspace) s of guest uptime)"
}

# The disk (L1 wrote a mark at 0, L2 writes its own at 512), the tap with
# L1 at 10.0.2.1 and an httpd serving 4 MiB of random bytes.
setup_io() {
    dd if=/dev/zero of=/tmp/disk.img bs=1M count=16 2>/dev/null
    L1_MARK="L1-WROTE-$(cut -c1-8 /proc/sys/kernel/random/uuid)"
    printf '%s' "$L1_MARK" | dd of=/tmp/disk.img conv=notrunc 2>/dev/null
    mkdir -p /tmp/www
    dd if=/dev/urandom of=/tmp/www/blob bs=1M count=4 2>/dev/null
    BLOB_MD5=$(md5sum /tmp/www/blob | cut -d' ' -f1)
}

# Once colo-vmm created the tap: address it and serve the blob.
setup_tap() {
    for i in $(seq 40); do
        ip link show "$1" >/dev/null 2>&1 && break
        sleep 0.25
    done
    ip addr add 10.0.2.1/24 dev "$1" && ip link set "$1" up || fail "no $1"
    httpd -p 10.0.2.1:8080 -h /tmp/www
}

# What every Linux boot must show: kvm-clock, the CPUs, no ACPI errors.
check_platform() {
    cs=$(l2_value "$1" clocksource)
    echo "$1: clocksource $cs, cpus $(l2_value "$1" cpus), ACPI errors $(l2_value "$1" acpi-errors)"
    grep '^L2: dmesg' "/tmp/$1.console"
    [ "$cs" = kvm-clock ] || fail "clocksource is '$cs', not kvm-clock" || return 1
    [ "$(l2_value "$1" cpus)" = "$2" ] || fail "L2 sees $(l2_value "$1" cpus) CPUs, not $2" || return 1
    [ "$(l2_value "$1" acpi-errors)" = 0 ] || fail "ACPI errors in L2's log" || return 1
}

check_io() {
    [ "$(l2_value "$1" disk-read)" = "$L1_MARK" ] ||
        fail "L2 read '$(l2_value "$1" disk-read)' from its disk, L1 wrote '$L1_MARK'" || return 1
    wrote=$(l2_value "$1" disk-wrote)
    got=$(dd if=/tmp/disk.img bs=512 skip=1 count=1 2>/dev/null | tr -cd 'A-Za-z0-9-')
    [ -n "$wrote" ] && [ "$got" = "$wrote" ] ||
        fail "L2 wrote '$wrote', L1 reads '$got'" || return 1
    [ "$(l2_value "$1" ping)" = 3/3 ] || fail "ping L2 -> L1: $(l2_value "$1" ping)" || return 1
    [ "$(l2_value "$1" tcp-md5)" = "$BLOB_MD5" ] ||
        fail "TCP transfer: L2 got md5 $(l2_value "$1" tcp-md5), L1 sent $BLOB_MD5" || return 1
    echo "$1: disk read/write, ping 3/3, 4 MiB over TCP intact"
}

linux_io_case() {
    ncpus=$1
    ending=$2
    resets=${3:-1}
    l2mode=$ending      # reset: L2 itself runs as for the button
    [ "$ending" = reset ] && l2mode=button
    setup_io
    t0=$(date +%s)
    [ -n "$TRACE_RESETS" ] && trace_start
    vm_start l2 -m 256M -smp "$ncpus" -kernel /nested/bzImage -initrd /nested/l2.cpio \
        -append "$L2_APPEND colotest.mode=$l2mode" \
        -drive file=/tmp/disk.img,if=virtio,format=raw \
        -netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=n0
    setup_tap tap0 || return 1
    [ -n "$TRACE_RESETS" ] && { sleep 8; trace_stop "the first boot"; }
    boot_time l2 "$t0" || return 1
    if [ "$ending" = poweroff ]; then
        wait_for l2 '^L2: powering off' 120 || return 1
    else
        wait_for l2 '^L2: ready /dev/input' 180 || return 1
        # QMP system_reset reboots the guest, to userspace and its checks again.
        boots=1
        while [ "$ending" = reset ] && [ $boots -le "$resets" ]; do
            [ -n "$TRACE_RESETS" ] && trace_start
            qmp l2 system_reset > /dev/null
            boots=$((boots + 1))
            t0=$(date +%s)
            [ -n "$TRACE_RESETS" ] && { sleep 8; trace_stop "reset $((boots - 1))"; }
            wait_for l2 '^L2: userspace' 180 $boots || return 1
            echo "l2: rebooted to userspace $(($(date +%s) - t0)) s after system_reset" \
                "($((boots - 1)) of $resets)"
            wait_for l2 '^L2: ready /dev/input' 180 $boots || return 1
        done
        qmp l2 system_powerdown > /dev/null
        wait_for l2 '^L2: power button' 20 || return 1
    fi
    wait_exit l2 30
    [ "$RC" = 0 ] || { dump l2; fail "colo-vmm exit status $RC after the guest's power-off"; } ||
        return 1
    check_platform l2 "$ncpus" || return 1
    check_io l2
}

# 1 vCPU: boots, disk and network, poweroff from inside ends colo-vmm with 0.
case_linux_1cpu() {
    linux_io_case 1 poweroff
}

# 2 vCPUs: the same, and the ACPI power button (QMP system_powerdown) ends it.
case_linux_2cpu() {
    linux_io_case 2 button
}

# 2 vCPUs, then QMP system_reset reboots it (the checks run again), and the
# power button ends it. A known bug, intermittent: see KNOWN_BUGS in
# tests/nested/run.
case_linux_2cpu_reset() {
    linux_io_case 2 reset
}

# The same with ten resets in a row, and what L1's KVM did in the first
# 8 s of each boot: for the reset bug above, by hand.
case_linux_2cpu_resets() {
    TRACE_RESETS=1 linux_io_case 2 reset 10
}

# trace_start, trace_stop WHAT: L1's KVM exits and injections between the
# two, counted by vCPU thread, on L1's console.
trace_start() {
    t=/sys/kernel/tracing
    [ -d $t/events ] || mount -t tracefs tracefs $t 2>/dev/null
    echo 4096 > $t/buffer_size_kb
    echo > $t/trace
    for e in kvm_inj_virq kvm_inj_exception kvm_apic_accept_irq kvm_userspace_exit kvm_exit; do
        echo 1 > $t/events/kvm/$e/enable
    done
}

trace_stop() {
    t=/sys/kernel/tracing
    echo 0 > $t/events/kvm/enable
    # Straight to L1's console: an L1 that dies takes /tmp with it.
    {
        echo "-- $1: the first 8 s, events by vCPU thread"
        grep -v '^#' $t/trace | sed 's/^ *\(vcpu[0-9]*\)-[0-9]* .*: \(kvm_[a-z_]*\): \(.*\)$/\1 \2 \3/' |
            grep '^vcpu' | sed 's/ rip 0x[0-9a-f]*//; s/ info1 .*//; s/0x[0-9a-f]\{5,\}/X/g' |
            sort | uniq -c | sort -rn | head -30
    } | sed 's/^/NESTED: # /' > /dev/console
}

# mig_status NAME: the migration status QMP query-migrate reports.
mig_status() {
    qmp "$1" query-migrate | grep -o '"status": *"[a-z-]*"' | tail -1 | cut -d'"' -f4
}

# mig_field NAME KEY: an integer of query-migrate's answer.
mig_field() {
    qmp "$1" query-migrate | grep -o "\"$2\": *[0-9]*" | tail -1 | cut -d: -f2 | tr -d ' '
}

# echo_wait BYTES SECONDS: until L1 got BYTES echoed back.
echo_wait() {
    for i in $(seq $(($2 * 4))); do
        [ "$(wc -c < /tmp/echoed)" -ge "$1" ] && return 0
        sleep 0.25
    done
    fail "the echo connection returned $(wc -c < /tmp/echoed) of $1 bytes"
}

# l2_vm NAME TAP [ARGS...]: the migration cases' guest (256 MiB, 2 vCPUs,
# disk and NIC) on that tap.
l2_vm() {
    name=$1
    tap=$2
    shift 2
    vm_start "$name" -m 256M -smp 2 -kernel /nested/bzImage -initrd /nested/l2.cpio \
        -append "$L2_APPEND colotest.mode=migrate" -drive file=/tmp/disk.img,if=virtio,format=raw \
        -netdev tap,id=n0,ifname="$tap",script=no,downscript=no -device virtio-net-pci,netdev=n0 "$@"
}

# hop FROM TO TAP precopy|postcopy: the running guest moves from colo-vmm
# FROM to a new colo-vmm TO on TAP; FROM ends, L1's address moves to TAP.
hop() {
    from=$1 to=$2 tap=$3 how=$4
    rm -f /tmp/mig.sock
    l2_vm "$to" "$tap" -incoming unix:/tmp/mig.sock
    for i in $(seq 40); do [ -S /tmp/mig.sock ] && break; sleep 0.25; done
    if [ "$how" = postcopy ]; then
        for vm in "$from" "$to"; do
            qmp "$vm" migrate-set-capabilities \
                '{"capabilities":[{"capability":"postcopy-ram","state":true}]}' > /dev/null
        done
    fi
    t0=$(date +%s)
    qmp "$from" migrate '{"uri":"unix:/tmp/mig.sock"}' > /dev/null
    if [ "$how" = postcopy ]; then
        for i in $(seq 40); do [ "$(mig_status "$from")" = active ] && break; sleep 0.25; done
        qmp "$from" migrate-start-postcopy > /dev/null
    fi
    status=
    for i in $(seq 240); do
        status=$(mig_status "$from")
        case "$status" in completed|failed|cancelled) break ;; esac
        sleep 0.5
    done
    echo "$how $from -> $to: $status, total-time $(mig_field "$from" total-time) ms," \
        "downtime $(mig_field "$from" downtime) ms ($(($(date +%s) - t0)) s with the polling)"
    [ "$status" = completed ] || { dump "$from"; dump "$to"; fail "migration $status"; } || return 1
    for i in $(seq 60); do [ "$(mig_status "$to")" = completed ] && break; sleep 0.5; done
    [ "$(mig_status "$to")" = completed ] ||
        { dump "$to"; fail "destination: migration $(mig_status "$to")"; } || return 1
    qmp "$from" quit > /dev/null
    wait_exit "$from" 30
    # The guest's network now leaves through the destination's tap.
    ip addr add 10.0.2.1/24 dev "$tap" && ip link set "$tap" up
}

# A running Linux guest moves by precopy, then on by postcopy, between
# colo-vmm processes in L1 (on an L1 CPU without XSAVE this crosses the
# KVM_CAP_XCRS path). A TCP echo connection from L1 into the guest, opened
# before the first move, carries on through both, byte-exact; the disk
# holds what the guest wrote before and after.
case_linux_migrate() {
    setup_io
    for k in 0 1 2; do
        dd if=/tmp/www/blob of=/tmp/part$k bs=1M skip=$k count=1 2>/dev/null
    done
    sent_md5=$(cat /tmp/part0 /tmp/part1 /tmp/part2 | md5sum | cut -d' ' -f1)
    l2_vm vm0 tap0
    setup_tap tap0 || return 1
    wait_for vm0 '^L2: echo server' 180 || return 1

    rm -f /tmp/echo.in /tmp/echoed
    mkfifo /tmp/echo.in
    nc 10.0.2.15 5000 < /tmp/echo.in > /tmp/echoed &
    echo $! >> /tmp/vms.pids
    exec 3> /tmp/echo.in
    cat /tmp/part0 >&3
    echo_wait 1048576 30 &&
        hop vm0 vm1 tap1 precopy && cat /tmp/part1 >&3 && echo_wait 2097152 60 &&
        hop vm1 vm2 tap2 postcopy && cat /tmp/part2 >&3 && echo_wait 3145728 60
    rc=$?
    exec 3>&-
    [ $rc = 0 ] || return 1
    got_md5=$(md5sum < /tmp/echoed | cut -d' ' -f1)
    [ "$got_md5" = "$sent_md5" ] || fail "echoed bytes differ (md5 $got_md5, sent $sent_md5)" || return 1
    echo "3 MiB echoed over one TCP connection, 1 MiB before, between and after the migrations: byte-exact"

    qmp vm2 system_powerdown > /dev/null
    wait_for vm2 '^L2: power button' 30 || return 1
    wait_exit vm2 30
    [ "$RC" = 0 ] || { dump vm2; fail "exit status $RC after the power button"; } || return 1
    before=$(l2_value vm0 disk-wrote)
    after=$(l2_value vm2 disk-wrote-after)
    got1=$(dd if=/tmp/disk.img bs=512 skip=1 count=1 2>/dev/null | tr -cd 'A-Za-z0-9-')
    got2=$(dd if=/tmp/disk.img bs=512 skip=2 count=1 2>/dev/null | tr -cd 'A-Za-z0-9-')
    [ -n "$before" ] && [ "$got1" = "$before" ] && [ -n "$after" ] && [ "$got2" = "$after" ] ||
        fail "disk: wrote '$before' then '$after', the image has '$got1' and '$got2'" || return 1
    echo "the disk has the guest's writes from before and after the migrations"
}

# ---- colo-vmm's own integration tests on L1's KVM (SVM with nested paging)
# The host's tree comes in read-only over 9p (tests/nested/run adds the
# -virtfs device when an int_ case is asked for); the tests run in a chroot
# with L1's /dev, /proc, /sys and a fresh /tmp, against the build the runner
# was given (colonested.build=, colonested.src= on L1's command line).

host_chroot() {
    [ -d /host/proc ] && [ -f /host/etc/debian_version ] && return 0
    mkdir -p /host
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro hostroot /host ||
        fail "cannot mount the host's tree over 9p" || return 1
    mount -t proc proc /host/proc
    mount -t sysfs sysfs /host/sys
    mount -o bind /dev /host/dev
    mount -t tmpfs tmpfs /host/tmp
    mount -t tmpfs tmpfs /host/run
    mount -t tmpfs tmpfs /host/var/tmp
}

# int_test FILE [VAR=VALUE...]: one Python test file of the source tree
# (with those variables in its environment), its TAP lines passed on;
# fails if any of its cases fails.
int_test() {
    host_chroot || return 1
    src=$(sed -n 's/.*colonested.src=\([^ ]*\).*/\1/p' /proc/cmdline)
    build=$(sed -n 's/.*colonested.build=\([^ ]*\).*/\1/p' /proc/cmdline)
    file=$1
    shift
    chroot /host /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        COLO_SRCDIR="$src" COLO_BUILDDIR="$build" PYTHONPATH="$src/tests/lib" \
        G_DEBUG=fatal-criticals "$@" python3 "$src/$file" > /tmp/int.out 2>&1
    rc=$?
    grep -E '^(ok|not ok|# )' /tmp/int.out | head -200
    [ $rc = 0 ] || { tail -20 /tmp/int.out; fail "$file exited $rc"; }
}

case_int_migration() { int_test tests/integration/test-vmm-migration.py; }
case_int_guest_io() { int_test tests/integration/test-guest-io.py; }
case_int_virtio_migration() { int_test tests/vmm/test-virtio-migration.py; }
case_int_guest_vmm() { int_test tests/guest/test-guest-vmm.py; }
case_int_memhp() { int_test tests/integration/test-vmm-memhp.py; }
case_int_boot() { int_test tests/integration/test-vmm-boot.py; }

# resets_of NAME N: N QMP system_reset of the L2 already up on NAME, each
# back to "ready".
resets_of() {
    boots=1
    while [ $boots -le "$2" ]; do
        qmp "$1" system_reset > /dev/null
        boots=$((boots + 1))
        t0=$(date +%s)
        wait_for "$1" '^L2: ready /dev/input' 300 $boots || return 1
        echo "$1: ready again $(($(date +%s) - t0)) s after system_reset ($((boots - 1)) of $2)"
    done
}

# The L2 of qemu_2cpu_resets below under colo-vmm: 2 vCPUs, no disk or
# NIC, idle, twenty resets. By hand, for the reset bug.
case_linux_bare_resets() {
    vm_start b -m 256M -smp 2 -kernel /nested/bzImage -initrd /nested/l2.cpio \
        -append "$L2_APPEND colotest.mode=idle"
    wait_for b '^L2: ready /dev/input' 300 || return 1
    resets_of b 20
}

# The same L2 under QEMU with KVM inside L1 (the host's QEMU, in the
# chroot; SeaBIOS, no disk or NIC), twenty resets: whether L1 or L2 fails
# across resets with another VMM too. By hand, for the reset bug; the
# second without an HPET, as colo-vmm's platform.
case_qemu_2cpu_resets() { qemu_resets pc; }
case_qemu_2cpu_resets_nohpet() { qemu_resets pc,hpet=off; }

# qemu_resets MACHINE: that case with -M MACHINE.
qemu_resets() {
    host_chroot || return 1
    mkdir -p /host/tmp/nested
    cp /nested/bzImage /nested/l2.cpio /host/tmp/nested/ || fail "cannot copy the L2 images" || return 1
    rm -f /host/tmp/q.qmp
    : > /host/tmp/q.console
    chroot /host /usr/bin/qemu-system-x86_64 -accel kvm -M "$1" -cpu host -smp 2 -m 256M \
        -kernel /tmp/nested/bzImage -initrd /tmp/nested/l2.cpio \
        -append "$L2_APPEND colotest.mode=idle" -display none -nodefaults \
        -serial file:/tmp/q.console -qmp unix:/tmp/q.qmp,server=on,wait=off \
        > /tmp/q.log 2>&1 < /dev/null &
    echo $! > /tmp/q.pid
    echo $! >> /tmp/vms.pids
    ln -sf /host/tmp/q.console /tmp/q.console
    ln -sf /host/tmp/q.qmp /tmp/q.qmp
    wait_for q '^L2: ready /dev/input' 300 || { cat /tmp/q.log; return 1; }
    resets_of q 20
}

# ---- COLO with the L2 Linux: tests/nested/linux-colo.py, in the host's
# tree like the int_ cases (python3, ip, iptables and colo-proxy come from
# there; L1 has the netfilter modules), with L1's copy of the L2 images.
# Two colo-vmm, a colo-proxy each, a client's connection through COLO,
# the secondary's loss, re-protection and the primary's loss, byte-exact.
case_linux_colo() {
    host_chroot || return 1
    mkdir -p /host/tmp/nested
    cp /nested/bzImage /nested/l2.cpio /host/tmp/nested/ || fail "cannot copy the L2 images" || return 1
    int_test tests/nested/linux-colo.py COLO_NESTED_KERNEL=/tmp/nested/bzImage \
        COLO_NESTED_INITRD=/tmp/nested/l2.cpio
}
