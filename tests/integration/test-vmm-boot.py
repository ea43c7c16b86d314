"""colo-vmm boots the bundled test guest on KVM: banner, heartbeat, stop and
cont, reset, power-off through ACPI and by the guest itself, quit, signals."""
import os
import signal
import time

from colo_vmm import Vmm, require_kvm, wait_until
import tap


def heartbeat_advances(vm, by=2, timeout=30):
    start = vm.heartbeat()
    wait_until(lambda: vm.heartbeat() >= start + by, timeout, "the heartbeat to advance")


def test_boot_two_cpus_stop_cont_powerdown():
    require_kvm()
    with Vmm(smp=2, mem="64M", append="interval=1") as vm:
        banner = vm.wait_serial(r"colo-testguest ready:[^\n]*\n", 60).group(0)  # the whole line
        assert "cpus=2/2" in banner, banner
        st = vm.status()
        assert st["cpus_up"] == 2, st
        assert vm.qmp.cmd("query-status") == {"status": "running", "singlestep": False, "running": True}
        heartbeat_advances(vm)

        vm.qmp.cmd("stop")
        vm.qmp.wait_event("STOP", 10)
        assert vm.qmp.cmd("query-status")["status"] == "paused"
        frozen = vm.heartbeat()
        time.sleep(2.5)
        assert vm.heartbeat() == frozen, "heartbeat moved while paused"

        vm.qmp.cmd("cont")
        vm.qmp.wait_event("RESUME", 10)
        heartbeat_advances(vm)

        cpus = vm.qmp.cmd("query-cpus-fast")
        assert [c["cpu-index"] for c in cpus] == [0, 1], cpus
        assert all(c["thread-id"] > 0 and c["target"] == "x86_64" for c in cpus), cpus

        vm.qmp.cmd("system_powerdown")
        vm.qmp.wait_event("POWERDOWN", 10)
        ev = vm.qmp.wait_event("SHUTDOWN", 30)
        assert ev["data"] == {"guest": True, "reason": "guest-shutdown"}, ev
        assert vm.wait_exit(30) == 0
        assert "powering off" in vm.serial()


def test_start_paused():
    require_kvm()
    with Vmm(append="interval=0", extra=["-S"]) as vm:
        assert vm.qmp.cmd("query-status")["status"] == "prelaunch"
        time.sleep(1)
        assert "ready" not in vm.serial()
        vm.qmp.cmd("cont")
        vm.wait_serial(r"colo-testguest ready", 60)
        assert vm.qmp.cmd("query-status")["status"] == "running"


def test_system_reset_reboots_guest():
    require_kvm()
    with Vmm(smp=2, append="interval=0") as vm:
        vm.wait_serial(r"colo-testguest ready", 60)
        vm.qmp.cmd("system_reset")
        ev = vm.qmp.wait_event("RESET", 10)
        assert ev["data"] == {"guest": False, "reason": "host-qmp-system-reset"}, ev
        wait_until(lambda: vm.serial().count("colo-testguest ready") == 2, 60, "a second banner")
        assert vm.status()["cpus_up"] == 2


def test_guest_powers_itself_off():
    require_kvm()
    with Vmm(append="interval=0 poweroff_after=1") as vm:
        vm.wait_serial(r"colo-testguest ready", 60)
        ev = vm.qmp.wait_event("SHUTDOWN", 30)
        assert ev["data"]["guest"] is True
        assert vm.wait_exit(30) == 0


def test_quit():
    require_kvm()
    with Vmm(append="interval=0") as vm:
        vm.wait_serial(r"colo-testguest ready", 60)
        assert vm.qmp.cmd("quit") == {}
        ev = vm.qmp.wait_event("SHUTDOWN", 10)
        assert ev["data"] == {"guest": False, "reason": "host-qmp-quit"}, ev
        assert vm.wait_exit(10) == 0


def test_sigterm_is_clean():
    require_kvm()
    with Vmm(append="interval=0") as vm:
        vm.wait_serial(r"colo-testguest ready", 60)
        vm.proc.send_signal(signal.SIGTERM)
        ev = vm.qmp.wait_event("SHUTDOWN", 10)
        assert ev["data"]["reason"] == "host-signal", ev
        assert vm.wait_exit(10) == 0


def test_workload_dirties_memory():
    require_kvm()
    with Vmm(mem="64M", append="interval=0 dirty_pages=8 dirty_ms=50 area=2M") as vm:
        vm.wait_serial(r"colo-testguest ready", 60)
        first = vm.status()["pages_dirtied"]
        wait_until(lambda: vm.status()["pages_dirtied"] > first + 8, 30, "pages to be dirtied")


def test_file_backed_memory():
    require_kvm()
    with Vmm(mem="32M", append="interval=0", extra=["-mem-path", "/dev/shm"]) as vm:
        vm.wait_serial(r"colo-testguest ready", 60)
        heartbeat_advances(vm, by=1)


tap.run(globals())
