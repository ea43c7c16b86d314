"""Logging start-up of the colo processes: a killed process's libqb
blackbox files (/dev/shm/qb-PROGRAM-PID-blackbox-*) are removed when the
next colo process starts, the daemon's are named after its own pid, and
any VM name, however long or odd, starts colo-vmm and stays whole in QMP."""
import os
import signal
import subprocess
import tempfile

from colo_vmm import BUILDDIR, GUEST, VMM, Vmm, require_kvm, wait_until
from qmp import QMPClient
import tap

PROXY = os.path.join(BUILDDIR, "netfilter", "colo-proxy")
SHM = "/dev/shm"


def blackbox(program, pid):
    return [os.path.join(SHM, "qb-%s-%d-blackbox-%s" % (program, pid, part)) for part in ("header", "data")]


def killed_vmm():
    """A colo-vmm killed with SIGKILL; returns its pid (its files are left).
    A colo process of another test starting in between (make -j check)
    sweeps them at once: then another try."""
    for _ in range(5):
        p = subprocess.Popen([VMM, "-kernel", GUEST, "-m", "32M", "-S", "-serial", "none"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        files = blackbox("colo-vmm", p.pid)
        wait_until(lambda: all(os.path.exists(f) for f in files) or p.poll() is not None, 20,
                   "the blackbox files")
        assert p.poll() is None, p.returncode
        p.kill()
        p.wait()
        if all(os.path.exists(f) for f in files):
            return p.pid
    raise AssertionError("a killed colo-vmm left no files five times: nothing to test")


def test_colo_proxy_sweeps_killed_vmm():
    require_kvm()
    pid = killed_vmm()
    # colo-proxy starts its logging, then fails on the missing interface.
    r = subprocess.run([PROXY, "--role", "primary", "--guest-iface", "colo-nonexist0",
                        "--listen", "127.0.0.1:1", "--no-rules"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "colo-nonexist0" in r.stderr, r
    for f in blackbox("colo-vmm", pid):
        assert not os.path.exists(f), f


def test_colo_vmm_sweeps_killed_vmm():
    require_kvm()
    pids = [killed_vmm() for _ in range(2)]
    r = subprocess.run([VMM, "-kernel", "/nonexistent", "-serial", "none"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1, r
    for pid in pids:
        for f in blackbox("colo-vmm", pid):
            assert not os.path.exists(f), f


def test_daemon_blackbox_named_after_daemon():
    require_kvm()
    with tempfile.TemporaryDirectory() as d:
        sock = os.path.join(d, "q.sock")
        pidfile = os.path.join(d, "vmm.pid")
        parent = subprocess.Popen([VMM, "-kernel", GUEST, "-m", "32M", "-S", "-daemonize",
                                   "-pidfile", pidfile, "-serial", "none",
                                   "-qmp", "unix:%s,server=on,wait=off" % sock])
        assert parent.wait(30) == 0
        daemon = int(open(pidfile).read())
        try:
            q = QMPClient(sock)
            try:
                assert all(os.path.exists(f) for f in blackbox("colo-vmm", daemon))
                # The parent's files went with it: they would look stale to the
                # next start-up's sweep while the daemon still writes them.
                assert not any(os.path.exists(f) for f in blackbox("colo-vmm", parent.pid))
                q.cmd("quit")
            finally:
                q.close()
            wait_until(lambda: not os.path.exists("/proc/%d" % daemon), 20, "the daemon to exit")
            assert not any(os.path.exists(f) for f in blackbox("colo-vmm", daemon))
        finally:
            # A failed check must not leave the daemon running.
            try:
                os.kill(daemon, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_any_name_starts():
    require_kvm()
    names = ["v" * 300, "%s%n%p" * 60 + "/../x", "vm/" + "é" * 200]
    for name in names:
        vm = Vmm(mem="32M", append="interval=0", extra=["-name", name])
        try:
            vm.start()
            assert vm.qmp.cmd("query-name") == {"name": name}
            vm.qmp.cmd("quit")
            assert vm.wait_exit(30) == 0
            log = open(vm.log_path, encoding="utf-8").read()
            # Log lines carry the name's first 64 bytes, '%' made '_'.
            ident = name.encode()[:64].decode(errors="ignore").replace("%", "_")
            assert ("%s[%d] " % (ident, vm.proc.pid)) in log, log[:400]
        finally:
            vm.close()


tap.run(globals())
