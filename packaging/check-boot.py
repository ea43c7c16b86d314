#!/usr/bin/env python3
"""check-boot.py SRCDIR BUILDDIR VMM: the test guest of BUILDDIR boots under
the colo-vmm at VMM (packaging/check passes the installed one) until its
banner, then quits over QMP. Exit 0 on success, 77 with the reason on a
missing capability (no KVM), 1 on a failure."""
import os
import sys

srcdir, builddir, vmm_path = sys.argv[1:4]
os.environ["COLO_SRCDIR"] = srcdir
os.environ["COLO_BUILDDIR"] = builddir
sys.path.insert(0, os.path.join(srcdir, "tests", "lib"))

import colo_vmm  # noqa: E402
import tap  # noqa: E402

colo_vmm.VMM = vmm_path     # the harness's fixture, with this binary instead of the build's
try:
    colo_vmm.require_kvm()
    with colo_vmm.Vmm(append="interval=0") as vm:
        exe = os.readlink("/proc/%d/exe" % vm.proc.pid)
        assert exe == os.path.realpath(vmm_path), "running %s, not %s" % (exe, vmm_path)
        banner = vm.wait_serial(r"colo-testguest ready:[^\n]*\n", 60).group(0)
        vm.qmp.cmd("quit")
        assert vm.wait_exit(30) == 0
    print(banner.strip())
except tap.Skip as e:
    print(e)
    sys.exit(77)
except Exception as e:  # noqa: BLE001 (any failure is reported, with its cause)
    print("%s: %s" % (type(e).__name__, e))
    sys.exit(1)
