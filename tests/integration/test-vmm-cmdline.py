"""colo-vmm refuses bad command lines with a clear message and exit code 1,
and starts nothing; -daemonize and -pidfile behave as in QEMU."""
import os
import subprocess
import tempfile

from colo_vmm import GUEST, VMM, require_kvm, wait_until
from qmp import QMPClient
import tap


def run(*args, timeout=30):
    return subprocess.run([VMM, *args], capture_output=True, text=True, timeout=timeout)


def refused(args, message):
    with tempfile.TemporaryDirectory() as d:
        sock = os.path.join(d, "q.sock")
        serial = os.path.join(d, "serial")
        # The case's own words go last, so a trailing option lacks its argument.
        extra = [] if "-qmp" in args else ["-qmp", "unix:%s,server=on,wait=off" % sock,
                                           "-serial", "file:" + serial]
        r = run(*extra, *args)
        assert r.returncode == 1, (args, r.returncode, r.stderr)
        assert message in r.stderr, (args, r.stderr)
        assert r.stderr.startswith("colo-vmm: "), r.stderr
        assert not os.path.exists(sock), "a QMP socket was created"


def test_bad_options():
    refused(["-kernel", GUEST, "-bogus"], "-bogus: invalid option")
    refused(["-kernel", GUEST, "-m"], "-m: requires an argument")
    refused(["-kernel", GUEST, "-m", "12Q"], "invalid size")
    refused(["-kernel", GUEST, "-smp", "many"], "-smp")
    refused(["-m", "64M"], "no -kernel")
    refused(["-kernel", GUEST, "-serial", "pty"], "unknown character device")
    refused(["-kernel", GUEST, "-qmp", "tcp:127.0.0.1:4444"], "-qmp")


def test_bad_incoming():
    require_kvm()
    refused(["-kernel", GUEST, "-incoming", "tcp:127.0.0.1:99999"],
            "-incoming: 'tcp:127.0.0.1:99999': port 99999 is out of range (1 to 65535)")
    refused(["-kernel", GUEST, "-incoming", "tcp:127.0.0.1:0"], "port 0 is out of range")


def test_bad_kernels():
    require_kvm()
    refused(["-kernel", "/nonexistent/kernel"], "cannot read the kernel")
    with tempfile.NamedTemporaryFile() as f:
        f.write(b"this is not a kernel" * 100)
        f.flush()
        refused(["-kernel", f.name], "")
    # Endless files are refused before any read (they would fill memory),
    # and so is a file bigger than the guest's RAM (sized, not read).
    refused(["-kernel", "/dev/zero"], "cannot read the kernel: /dev/zero is not a regular file")
    refused(["-kernel", GUEST, "-initrd", "/dev/zero"],
            "cannot read the initrd: /dev/zero is not a regular file")
    with tempfile.NamedTemporaryFile() as f:
        f.truncate((32 << 20) + 1)
        refused(["-m", "32M", "-kernel", f.name], "is larger than the guest's RAM (33554432 bytes)")
        refused(["-m", "32M", "-kernel", GUEST, "-initrd", f.name], "the initrd")


def test_help_and_version():
    r = run("-help")
    assert r.returncode == 0 and "-serial DEV" in r.stdout, r
    r = run("-version")
    assert r.returncode == 0 and r.stdout.startswith("colo-vmm "), r


def test_daemonize_pidfile():
    require_kvm()
    with tempfile.TemporaryDirectory() as d:
        sock = os.path.join(d, "q.sock")
        pidfile = os.path.join(d, "vmm.pid")
        serial = os.path.join(d, "serial")
        r = run("-kernel", GUEST, "-m", "32M", "-append", "interval=0", "-daemonize",
                "-pidfile", pidfile, "-serial", "file:" + serial,
                "-qmp", "unix:%s,server=on,wait=off" % sock)
        assert r.returncode == 0, r
        pid = int(open(pidfile).read())
        assert os.path.exists("/proc/%d" % pid)
        # A second instance on the same pid file is refused.
        r2 = run("-kernel", GUEST, "-m", "32M", "-pidfile", pidfile, "-serial", "none")
        assert r2.returncode == 1 and "pid file" in r2.stderr, r2
        q = QMPClient(sock)
        try:
            wait_until(lambda: "colo-testguest ready" in open(serial).read(), 60, "the banner")
            q.cmd("quit")
        finally:
            q.close()
        wait_until(lambda: not os.path.exists("/proc/%d" % pid), 20, "the daemon to exit")
        assert not os.path.exists(pidfile)


def test_daemonize_failure_reported():
    require_kvm()
    r = run("-kernel", "/nonexistent", "-daemonize", "-serial", "none")
    assert r.returncode == 1 and "cannot read the kernel" in r.stderr, r


tap.run(globals())
