#!/usr/bin/env python3
"""The quick-start demo: boot the bundled test guest under colo-vmm with two
vCPUs, show its console, pause and resume it over QMP, and power it off.

usage: scripts/demo.py BUILDDIR
"""
import os
import sys
import time

top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("COLO_BUILDDIR", sys.argv[1] if len(sys.argv) > 1 else os.path.join(top, "_build", "normal"))
sys.path.insert(0, os.path.join(top, "tests", "lib"))

from colo_vmm import Vmm  # noqa: E402


def say(text):
    print("\n\033[1m==> %s\033[0m" % text, flush=True)


def follow(vm, seconds, shown):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        text = vm.serial()
        if len(text) > shown:
            sys.stdout.write("".join("    | " + line + "\n" for line in text[shown:].splitlines()))
            sys.stdout.flush()
            shown = len(text)
        time.sleep(0.2)
    return shown


def main():
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        sys.exit("demo: colo-vmm needs /dev/kvm (run as root on a host with KVM)")
    vm = Vmm(smp=2, mem="64M", append="interval=1 dirty_pages=16 dirty_ms=100 area=4M")
    say("starting: " + " ".join(vm.argv))
    with vm:
        vm.wait_serial("colo-testguest ready", 60)
        shown = follow(vm, 4, 0)
        say("QMP query-status -> %s" % vm.qmp.cmd("query-status"))
        say("QMP stop: the guest stands still (heartbeat %d)" % vm.heartbeat())
        vm.qmp.cmd("stop")
        shown = follow(vm, 3, shown)
        say("after 3 s paused, heartbeat is still %d; QMP cont" % vm.heartbeat())
        vm.qmp.cmd("cont")
        shown = follow(vm, 3, shown)
        say("QMP system_powerdown: ACPI power button, the guest powers off")
        vm.qmp.cmd("system_powerdown")
        ev = vm.qmp.wait_event("SHUTDOWN", 30)
        code = vm.wait_exit(30)
        follow(vm, 0.5, shown)
        say("SHUTDOWN event %s; colo-vmm exited with %d" % (ev.get("data"), code))
        return code


if __name__ == "__main__":
    sys.exit(main())
