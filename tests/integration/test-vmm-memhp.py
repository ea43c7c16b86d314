"""RAM hot-add: object-add memory-backend-* + device_add pc-dimm on a
running guest, which finds the DIMM through the memory hot-plug controller
and dirties it; the same while a migration runs (precopy and multifd), a
cold-plugged DIMM the destination does not have yet, and refusals with
QEMU's words where hot-add cannot be."""
import subprocess

from colo_vmm import VMM, GUEST, Vmm, free_port, require_kvm, wait_until
from qmp import QMPError
import tap

MEM = "64M,slots=4,maxmem=1G"
APPEND = "interval=0 dirty_pages=32 dirty_ms=20 area=8M"
BACKEND = {"qom-type": "memory-backend-ram", "id": "mem1", "size": 32 << 20}
DIMM_BASE = 1 << 32     # the device memory area of a guest with <= 3 GiB of RAM


def hot_add(vm, backend="mem1", dimm="dimm1", size=32 << 20):
    vm.qmp.cmd("object-add", **{"qom-type": "memory-backend-ram", "id": backend, "size": size})
    vm.qmp.cmd("device_add", driver="pc-dimm", id=dimm, memdev=backend)


def guest_dimms(vm):
    return vm.guest_status()["dimms"]


def wait_guest_dirties_dimm(vm, timeout=60):
    """The guest has taken the DIMM and keeps writing it."""
    wait_until(lambda: guest_dimms(vm), timeout, "the guest to take the DIMM")
    first = sum(d["writes"] for d in guest_dimms(vm))
    wait_until(lambda: sum(d["writes"] for d in guest_dimms(vm)) > first, timeout,
               "the guest to write to the DIMM")


def expect_error(vm, name, args, text):
    try:
        vm.qmp.cmd(name, args=args)
    except QMPError as e:
        assert text in e.desc, (name, args, e.desc)
        return e
    raise AssertionError("%s %r succeeded" % (name, args))


def test_hot_add_running_guest_uses_it():
    require_kvm()
    with Vmm(mem=MEM, append=APPEND) as vm:
        vm.wait_serial("colo-testguest ready", 60)
        assert vm.qmp.cmd("query-memory-devices") == []
        hot_add(vm)
        vm.wait_serial(r"dimm slot=0 addr=0x100000000 size=32M", 60)
        wait_guest_dirties_dimm(vm)
        devs = vm.qmp.cmd("query-memory-devices")
        assert devs == [{"type": "dimm", "data": {
            "id": "dimm1", "addr": DIMM_BASE, "size": 32 << 20, "slot": 0, "node": 0,
            "memdev": "/objects/mem1", "hotplugged": True, "hotpluggable": True}}], devs
        assert vm.qmp.cmd("query-memory-size-summary") == {"base-memory": 64 << 20,
                                                          "plugged-memory": 32 << 20}
        assert [m["id"] for m in vm.qmp.cmd("query-memdev")] == ["mem1"]
        # A second one goes right after the first, in the next slot.
        hot_add(vm, "mem2", "dimm2", 16 << 20)
        vm.wait_serial(r"dimm slot=1 addr=0x102000000 size=16M", 60)
        wait_until(lambda: len(guest_dimms(vm)) == 2, 30, "the guest to take both DIMMs")
        vm.qmp.cmd("stop")
        assert vm.workload_problems() == []
        # The guest's writes really are in the DIMM: pages carry its pattern.
        assert vm.read_guest(DIMM_BASE, 4096)[:4] == b"CTGP"


def test_hot_add_refusals():
    require_kvm()
    with Vmm(mem="64M", append=APPEND) as vm:
        vm.qmp.cmd("object-add", args=BACKEND)
        expect_error(vm, "device_add", {"driver": "pc-dimm", "id": "d", "memdev": "mem1"},
                     "please specify the 'slots' option")
    with Vmm(mem="64M,slots=2,maxmem=128M", append=APPEND) as vm:
        q = vm.qmp
        for args, text in [
            ({"qom-type": "memory-backend-ram", "id": "m", "size": 3 << 20}, "multiple of 2 MiB"),
            ({"qom-type": "memory-backend-ram", "id": "m", "size": 0}, "size 0"),
            ({"qom-type": "memory-backend-ram", "id": "m"}, "'size'"),
            ({"qom-type": "memory-backend-ram", "id": "9m", "size": 2 << 20}, "identifier"),
            ({"qom-type": "memory-backend-file", "id": "m", "size": 2 << 20}, "mem-path"),
            ({"qom-type": "iothread", "id": "m"}, "not supported"),
            ({"qom-type": "memory-backend-ram", "id": "m", "size": 2 << 20, "bogus": 1}, "bogus"),
        ]:
            expect_error(vm, "object-add", args, text)
        q.cmd("object-add", args=BACKEND)
        expect_error(vm, "object-add", BACKEND, "duplicate")
        q.cmd("object-add", **{"qom-type": "memory-backend-memfd", "id": "big", "size": 128 << 20})
        for args, text in [
            ({"driver": "virtio-net-pci", "id": "n"}, "only pc-dimm"),
            ({"driver": "pc-dimm", "id": "d"}, "'memdev'"),
            ({"driver": "pc-dimm", "id": "d", "memdev": "nope"}, "'nope' not found"),
            ({"driver": "pc-dimm", "id": "d", "memdev": "big"}, "not enough space"),
            ({"driver": "pc-dimm", "id": "d", "memdev": "mem1", "slot": 2}, "valid range is [0-1]"),
            ({"driver": "pc-dimm", "id": "d", "memdev": "mem1", "addr": 12345}, "aligned"),
        ]:
            expect_error(vm, "device_add", args, text)
        q.cmd("device_add", driver="pc-dimm", id="d1", memdev="mem1")
        expect_error(vm, "device_add", {"driver": "pc-dimm", "id": "d1", "memdev": "big"}, "Duplicate device ID")
        expect_error(vm, "device_add", {"driver": "pc-dimm", "id": "d2", "memdev": "mem1"}, "busy memdev")
        expect_error(vm, "object-del", {"id": "mem1"}, "in use")
        expect_error(vm, "device_del", {"id": "d1"}, "hot-unplug is not supported")
        e = expect_error(vm, "device_del", {"id": "nope"}, "not found")
        assert e.cls == "DeviceNotFound", e.cls
        q.cmd("object-del", id="big")
        assert [m["id"] for m in q.cmd("query-memdev")] == ["mem1"]
        assert q.cmd("query-status")["status"] == "running"
    # Bad command lines end at once with a message naming the option.
    for argv, text in [
        (["-m", "64M,maxmem=1G"], "slots"),
        (["-m", "64M,slots=2,maxmem=32M"], "maxmem"),
        (["-m", "64M,slots=99"], "slots"),
        (["-m", "64M,bogus=1"], "bogus"),
        (["-m", "64M,slots=2,maxmem=1G", "-object", "memory-backend-ram,id=m"], "size="),
        (["-m", "64M,slots=2,maxmem=1G", "-device", "pc-dimm,id=d,memdev=none"], "not found"),
    ]:
        p = subprocess.run([VMM, "-kernel", GUEST, "-serial", "none"] + argv,
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 1 and text in p.stderr, (argv, p.returncode, p.stderr)


def migrate_with_hot_add(channels):
    require_kvm()
    uri = "tcp:127.0.0.1:%d" % free_port()
    src = Vmm(smp=2, mem=MEM, append=APPEND).start()
    dst = Vmm(smp=2, mem=MEM, append=APPEND, extra=["-incoming", uri]).start()
    try:
        src.wait_serial("colo-testguest ready", 60)
        # The destination waits for the stream: its layout comes from there.
        dst.qmp.cmd("object-add", args=BACKEND)
        expect_error(dst, "device_add", {"driver": "pc-dimm", "id": "d", "memdev": "mem1"},
                     "incoming migration")
        dst.qmp.cmd("object-del", id="mem1")
        if channels:
            for vm in (src, dst):
                vm.qmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "multifd", "state": True}])
            src.qmp.cmd("migrate-set-parameters", args={"multifd-channels": channels})
        # Slower than the guest dirties its area: the migration goes on
        # until the limit is lifted, with the DIMM added on the way.
        src.qmp.cmd("migrate-set-parameters", args={"max-bandwidth": 1 << 20, "downtime-limit": 300})
        src.qmp.cmd("migrate", uri=uri)
        wait_until(lambda: src.qmp.cmd("query-migrate").get("status") == "active", 30, "the migration to start")
        hot_add(src)
        src.wait_serial(r"dimm slot=0", 60)
        wait_guest_dirties_dimm(src)
        q = src.qmp.cmd("query-migrate")
        assert q["status"] == "active", ("migration ended before the guest used the DIMM", q)
        # The bitmaps grew: the DIMM's pages are waiting to be sent.
        assert q["ram"]["total"] == (64 + 32) << 20, q
        src.qmp.cmd("migrate-set-parameters", args={"max-bandwidth": 0})
        wait_until(lambda: src.qmp.cmd("query-migrate")["status"] in ("completed", "failed"), 120,
                   "the migration to end")
        q = src.qmp.cmd("query-migrate")
        assert q["status"] == "completed", q
        assert q["ram"]["total"] == (64 + 32) << 20, q
        wait_until(lambda: dst.qmp.cmd("query-status")["status"] == "running", 30, "the destination to run")
        devs = dst.qmp.cmd("query-memory-devices")
        assert [(d["data"]["id"], d["data"]["addr"], d["data"]["size"], d["data"]["slot"]) for d in devs] == \
            [("dimm1", DIMM_BASE, 32 << 20, 0)], devs
        assert dst.qmp.cmd("query-memory-size-summary")["plugged-memory"] == 32 << 20
        # The guest goes on writing the DIMM on the destination, and every
        # page it wrote anywhere is there.
        wait_guest_dirties_dimm(dst)
        dst.qmp.cmd("stop")
        assert dst.workload_problems() == []
        # More RAM can be added there afterwards.
        dst.qmp.cmd("cont")
        hot_add(dst, "mem2", "dimm2", 8 << 20)
        dst.wait_serial(r"dimm slot=1", 60)
    finally:
        src.close()
        dst.close()


def test_hot_add_during_precopy():
    migrate_with_hot_add(0)


def test_hot_add_during_multifd_precopy():
    migrate_with_hot_add(2)


def test_hot_add_refused_in_postcopy():
    """Once the guest runs on the destination, the source cannot add RAM
    (the destination's RAM is registered with userfaultfd): a clear error,
    and the migration completes regardless."""
    require_kvm()
    uri = "tcp:127.0.0.1:%d" % free_port()
    src = Vmm(mem=MEM, append=APPEND).start()
    dst = Vmm(mem=MEM, append=APPEND, extra=["-incoming", uri]).start()
    try:
        src.wait_serial("colo-testguest ready", 60)
        for vm in (src, dst):
            vm.qmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "postcopy-ram", "state": True}])
        src.qmp.cmd("migrate-set-parameters", args={"max-bandwidth": 1 << 20, "max-postcopy-bandwidth": 1 << 20})
        src.qmp.cmd("migrate", uri=uri)
        wait_until(lambda: src.qmp.cmd("query-migrate").get("status") == "active", 30, "precopy to start")
        src.qmp.cmd("migrate-start-postcopy")
        wait_until(lambda: src.qmp.cmd("query-migrate")["status"] != "active", 30, "postcopy to start")
        q = src.qmp.cmd("query-migrate")
        assert q["status"] == "postcopy-active", q
        src.qmp.cmd("object-add", args=BACKEND)
        expect_error(src, "device_add", {"driver": "pc-dimm", "id": "d", "memdev": "mem1"}, "postcopy-active")
        assert src.qmp.cmd("query-memory-devices") == []
        src.qmp.cmd("migrate-set-parameters", args={"max-postcopy-bandwidth": 0})
        wait_until(lambda: src.qmp.cmd("query-migrate")["status"] in ("completed", "failed"), 120,
                   "the migration to end")
        assert src.qmp.cmd("query-migrate")["status"] == "completed"
        wait_until(lambda: dst.qmp.cmd("query-migrate").get("status") == "completed", 60,
                   "the destination to complete")
        # Afterwards the destination takes RAM again.
        hot_add(dst)
        dst.wait_serial(r"dimm slot=0", 60)
    finally:
        src.close()
        dst.close()


def test_cold_plugged_dimm_migrates_to_a_plain_destination():
    """-object/-device on the source's command line; the destination has
    only the slots and learns the DIMM from the stream."""
    require_kvm()
    uri = "tcp:127.0.0.1:%d" % free_port()
    cold = ["-object", "memory-backend-memfd,id=cold,size=16M", "-device", "pc-dimm,id=dimm0,memdev=cold,slot=3"]
    src = Vmm(mem=MEM, append=APPEND, extra=cold).start()
    dst = Vmm(mem=MEM, append=APPEND, extra=["-incoming", uri]).start()
    try:
        src.wait_serial(r"dimm slot=3 addr=0x100000000 size=16M", 60)
        wait_guest_dirties_dimm(src)
        assert src.qmp.cmd("query-memory-devices")[0]["data"]["hotplugged"] is False
        src.qmp.cmd("migrate-set-parameters", args={"max-bandwidth": 0})
        src.qmp.cmd("migrate", uri=uri)
        wait_until(lambda: src.qmp.cmd("query-migrate")["status"] in ("completed", "failed"), 120,
                   "the migration to end")
        assert src.qmp.cmd("query-migrate")["status"] == "completed", src.qmp.cmd("query-migrate")
        wait_until(lambda: dst.qmp.cmd("query-status")["status"] == "running", 30, "the destination to run")
        assert [d["data"]["slot"] for d in dst.qmp.cmd("query-memory-devices")] == [3]
        wait_guest_dirties_dimm(dst)
        dst.qmp.cmd("stop")
        assert dst.workload_problems() == []
    finally:
        src.close()
        dst.close()


def test_destination_without_slots_refuses_cleanly():
    """A destination started without slots cannot take the DIMM: it says
    so and exits; the source carries on."""
    require_kvm()
    uri = "tcp:127.0.0.1:%d" % free_port()
    src = Vmm(mem=MEM, append=APPEND).start()
    dst = Vmm(mem="64M", append=APPEND, extra=["-incoming", uri]).start()
    try:
        src.wait_serial("colo-testguest ready", 60)
        hot_add(src)
        src.qmp.cmd("migrate", uri=uri)
        wait_until(lambda: src.qmp.cmd("query-migrate")["status"] in ("completed", "failed"), 60,
                   "the migration to end")
        assert src.qmp.cmd("query-migrate")["status"] == "failed"
        assert dst.wait_exit(30) == 1
        assert "slots" in dst.output(), dst.output()
        assert src.qmp.cmd("query-status")["status"] == "running"
        hb = src.heartbeat()
        wait_until(lambda: src.heartbeat() > hb, 30, "the source's heartbeat")
    finally:
        src.close()
        dst.close()


tap.run(globals())
