#!/usr/bin/env python3
"""The test guest under colo-vmm, from the guest's side: its workload in
real guest memory passes testguest.py's checker, every vCPU ticks, settings
are applied and reported, an idle guest leaves the host CPU idle, and
DIMMs present at boot or hot-added are found, dirtied and verify.
Skips without /dev/kvm."""
import os
import time

from colo_vmm import Vmm, require_kvm, wait_until
import tap
import testguest


def guest_memory(vm, st):
    mem = testguest.Memory()
    mem.add(testguest.STATUS_GPA, vm.read_guest(testguest.STATUS_GPA, testguest.PAGE_SIZE))
    if st["area_pages"]:
        mem.add(st["area_gpa"], vm.read_guest(st["area_gpa"], st["area_pages"] * testguest.PAGE_SIZE))
    return mem


def status(vm):
    return testguest.read_status(testguest.Memory.from_bytes(vm.read_guest(testguest.STATUS_GPA, 4096),
                                                             testguest.STATUS_GPA))


def test_workload_verifies_in_guest_memory():
    require_kvm()
    with Vmm(smp=2, mem="64M", append="interval=0 dirty_pages=64 dirty_ms=20 area=1M") as vm:
        vm.wait_serial(r"colo-testguest ready", 60)
        wait_until(lambda: status(vm)["heartbeat"] >= 2, 30, "two heartbeats")
        for _ in range(2):
            vm.qmp.cmd("stop")
            st = status(vm)
            assert st["flags"] & testguest.FLAG_WORKLOAD, st
            assert st["area_pages"] == 256 and st["area_gpa"] == 0x1000000, st
            assert [c["slice_pages"] for c in st["cpus"]] == [128, 128], st["cpus"]
            # Both CPUs wrote, more than one round over their slices.
            assert all(c["writes"] > 128 and c["ticks"] > 100 for c in st["cpus"]), st["cpus"]
            problems = testguest.verify_area(guest_memory(vm, st), st)
            assert problems == [], problems
            vm.qmp.cmd("cont")
            # Both CPUs write on after cont (checked twice over).
            wait_until(lambda: all(b["writes"] > a["writes"] + 128 for a, b in zip(st["cpus"], status(vm)["cpus"])),
                       30, "both CPUs to write a slice's worth after cont")


def test_settings_applied_and_reported():
    require_kvm()
    with Vmm(smp=2, mem="64M", append="hz=50 cpus=1 area=1G interval=0 bogus=1 dirty_ms") as vm:
        banner = vm.wait_serial(r"colo-testguest ready:[^\n]*\n", 60).group(0)  # the whole line
        serial = vm.serial()
        assert "cmdline: unknown setting, ignored: bogus=1" in serial, serial
        assert "cmdline: setting without a value: dirty_ms" in serial, serial
        assert "workload: area shrunk" in serial, serial
        assert "cpus=1/2" in banner and "hz=50" in banner, banner
        st = status(vm)
        assert st["cpus_up"] == 1 and st["cpus_found"] == 2 and st["hz"] == 50, st
        assert st["cmdline"] == "hz=50 cpus=1 area=1G interval=0 bogus=1 dirty_ms", st["cmdline"]
        # The area ends with the RAM entry holding 16 MiB: at most 48 MiB.
        assert 0 < st["area_pages"] <= (48 << 20) // 4096, st
        ticks = st["cpus"][0]["ticks"]
        time.sleep(1.0)
        ticks = status(vm)["cpus"][0]["ticks"] - ticks
        assert 30 <= ticks <= 75, "hz=50 gave %d ticks in 1 s" % ticks


def test_crash_reported():
    require_kvm()
    with Vmm(smp=2, mem="64M", append="interval=0 crash_after=1") as vm:
        vm.wait_serial(r"colo-testguest ready", 60)
        line = vm.wait_serial(r"EXCEPTION vector=6 \(#UD invalid opcode\).*cpu=0", 30).group(0)
        st = wait_until(lambda: (lambda s: s if s["flags"] & testguest.FLAG_CRASHED else None)(status(vm)),
                        10, "the crashed flag")
        assert st["crash_vector"] == 6 and st["crash_cpu"] == 0, st
        assert 0x100000 <= st["crash_rip"] < 0x110000, st
        assert "rip=0x%x" % st["crash_rip"] in line, line
        # CPU 0 halted for good; CPU 1 still ticks (a second's worth).
        t0, t1 = st["cpus"][0]["ticks"], st["cpus"][1]["ticks"]
        st = wait_until(lambda: (lambda s: s if s["cpus"][1]["ticks"] >= t1 + 100 else None)(status(vm)), 30,
                        "CPU 1 to tick on")
        assert st["cpus"][0]["ticks"] == t0, st["cpus"]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_idle_guest_leaves_host_idle():
    require_kvm()
    with Vmm(smp=2, mem="64M", append="interval=0 dirty_ms=0") as vm:
        vm.wait_serial(r"colo-testguest ready", 60)
        time.sleep(0.5)
        before = cpu_seconds(vm.proc.pid)
        time.sleep(3)
        used = cpu_seconds(vm.proc.pid) - before
        # Two vCPUs ticking at 100 Hz; a busy-polling vCPU would use ~3 s.
        assert used < 0.9, "idle guest used %.2f s of host CPU in 3 s" % used
        st = status(vm)
        assert st["pages_dirtied"] == 0 and not st["flags"] & testguest.FLAG_WORKLOAD, st
        assert all(c["online"] == 1 and c["ticks"] > 250 for c in st["cpus"]), st["cpus"]


def test_dimms_found_dirtied_and_verified():
    require_kvm()
    vm = Vmm(smp=2, mem="64M,slots=4,maxmem=1G", append="interval=1 dirty_pages=64 dirty_ms=20 area=1M",
             extra=["-object", "memory-backend-ram,id=cold,size=16M",
                    "-device", "pc-dimm,id=dimm0,memdev=cold,slot=3"])
    try:
        vm.start()      # a start failure is the test's failure, with colo-vmm's words
        vm.wait_serial(r"colo-testguest: dimm slot=3 addr=0x100000000 size=16M\r?\n", 60)
        vm.wait_serial(r"colo-testguest ready", 60)
        vm.qmp.cmd("object-add", **{"qom-type": "memory-backend-ram", "id": "hot", "size": 8 << 20})
        vm.qmp.cmd("device_add", driver="pc-dimm", id="dimm1", memdev="hot")
        vm.wait_serial(r"colo-testguest: dimm slot=0 addr=0x101000000 size=8M\r?\n", 30)
        # Both DIMMs share 64 pages per 20 ms: the 8 MiB one wraps within 2 s.
        wait_until(lambda: all(d["writes"] > d["pages"] for d in vm.guest_status()["dimms"][1:]), 30,
                   "the hot-added DIMM written all over")
        vm.qmp.cmd("stop")
        st = vm.guest_status()
        assert st["flags"] & testguest.FLAG_MEMHP, st
        assert (st["dimm_count"], st["dimms_seen"], st["dimms_ignored"], st["hotplug_scis"]) == (2, 2, 0, 1), st
        assert [(d["slot"], d["flags"], d["gpa"], d["pages"]) for d in st["dimms"]] == [
            (3, testguest.DIMM_BOOT, 0x100000000, 4096), (0, testguest.DIMM_HOTPLUG, 0x101000000, 2048)], st
        # Shared evenly, 32 pages each per period (the hot one may have started later).
        assert st["dimms"][0]["writes"] >= st["dimms"][1]["writes"] > 0, st["dimms"]
        assert vm.workload_problems() == []
        vm.qmp.cmd("cont")
        assert "dimms=2 dimm_dirtied=" in vm.wait_serial(r"status hb=\d+ .*dimms=2.*", 10).group(0)
        # After a reset both are found at boot again.
        vm.qmp.cmd("system_reset")
        wait_until(lambda: vm.serial().count("colo-testguest ready") == 2, 60, "the guest to boot again")
        st = vm.guest_status()
        assert [(d["slot"], d["flags"], d["gpa"]) for d in st["dimms"]] == [
            (0, testguest.DIMM_BOOT, 0x101000000), (3, testguest.DIMM_BOOT, 0x100000000)], st
        assert st["hotplug_scis"] == 0, st

    finally:
        vm.close()

if __name__ == "__main__":
    tap.run(globals())
