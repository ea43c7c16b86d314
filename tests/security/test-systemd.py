#!/usr/bin/env python3
"""colod under systemd (issue 11, "systemd"; docs/colod.md): the unit file
passes systemd-analyze verify, the tmpfiles.d entry creates /run/colo and
/var/lib/colo with the documented modes, and colod speaks sd_notify's
protocol: READY=1 once it has joined the CPG group (real corosync, the
two-node harness of tests/lib/cluster.py), WATCHDOG=1 from its main loop
at half the WATCHDOG_USEC interval, STOPPING=1 on SIGTERM."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import tap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

BUILD = os.path.abspath(os.environ.get("COLO_BUILDDIR", "."))
SRC = os.path.abspath(os.environ.get("COLO_SRCDIR", os.path.join(os.path.dirname(__file__), "..", "..")))
COLOD = os.path.join(BUILD, "colod", "colod")
UNIT = os.path.join(BUILD, "systemd", "colod@.service")
TMPFILES = os.path.join(SRC, "systemd", "colo.conf")


def need(tool):
    if not shutil.which(tool):
        tap.skip("not installed: %s (Debian: systemd)" % tool)


def verify(path):
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", path], capture_output=True, text=True, timeout=60)
    return r.returncode, (r.stdout + r.stderr).strip()


def test_unit_verifies():
    need("systemd-analyze")
    assert os.path.exists(COLOD), "colod not built: " + COLOD
    with open(UNIT) as f:
        text = f.read()
    assert "@bindir@" not in text, text
    exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    assert exec_start.split("=", 1)[1].split()[0].endswith("/colod"), exec_start
    for key in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "KillMode=process", "ExecStopPost="):
        assert key in text, key
    with tempfile.TemporaryDirectory() as d:
        # The installed path does not exist here: the built colod stands in.
        unit = os.path.join(d, "colod@.service")
        with open(unit, "w") as f:
            f.write(text.replace(exec_start.split("=", 1)[1].split()[0], COLOD))
        rc, out = verify(unit)
        assert rc == 0 and out == "", "systemd-analyze verify: rc %d\n%s" % (rc, out)
        # The check itself can fail.
        with open(unit, "w") as f:
            f.write(text.replace("Type=notify", "Type=notifyy"))
        rc, out = verify(unit)
        assert "notifyy" in out, out


def stop_post(text, vm):
    """The unit's ExecStopPost command line for @vm, as systemd would run
    it: %i replaced, $$ made $ (argv for subprocess)."""
    line = next(l for l in text.splitlines() if l.startswith("ExecStopPost="))
    cmd = line.split("=", 1)[1].replace("%i", vm).replace("$$", "$")
    assert cmd.startswith("/bin/sh -c '") and cmd.endswith("'"), cmd
    return ["/bin/sh", "-c", cmd[len("/bin/sh -c '"):-1]]


def test_stop_post_kills_vm_after_unclean_end():
    """After a crash, kill or watchdog (SERVICE_RESULT not success) the
    VM's colo-vmm and colo-proxy die at once; after a clean end (SIGTERM:
    colod stopped them; SIGUSR1: left for the next colod) they stay."""
    if os.geteuid() != 0:
        tap.skip("not root: the command uses /run/colo")
    with open(UNIT) as f:
        text = f.read()
    vm = "colo-test-%d" % os.getpid()
    run = os.path.join("/run/colo", vm)
    os.makedirs(run)
    procs = []
    try:
        for name in ("vmm", "proxy"):
            p = subprocess.Popen(["sleep", "60"])
            procs.append(p)
            with open(os.path.join(run, name + ".pid"), "w") as f:
                f.write("%d\n" % p.pid)
        cmd = stop_post(text, vm)
        r = subprocess.run(cmd, env=dict(os.environ, SERVICE_RESULT="success"), timeout=10)
        assert r.returncode == 0 and all(p.poll() is None for p in procs), "a clean end killed the VM"
        for result in ("signal", "watchdog", "core-dump", "timeout", "exit-code"):
            r = subprocess.run(cmd, env=dict(os.environ, SERVICE_RESULT=result), timeout=10)
            assert r.returncode == 0, result
        for p in procs:
            assert p.wait(10) == -9, p.returncode
        # Nothing to kill (no pid files): still a success.
        shutil.rmtree(run)
        assert subprocess.run(cmd, env=dict(os.environ, SERVICE_RESULT="signal"), timeout=10).returncode == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(run, ignore_errors=True)


def test_tmpfiles_modes():
    need("systemd-tmpfiles")
    if os.geteuid() != 0:
        tap.skip("not root: systemd-tmpfiles --root creates root-owned directories")
    with tempfile.TemporaryDirectory() as root:
        r = subprocess.run(["systemd-tmpfiles", "--create", "--root=" + root, TMPFILES], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        for path, mode in (("run/colo", 0o711), ("var/lib/colo", 0o700)):
            st = os.stat(os.path.join(root, path))
            assert st.st_mode & 0o7777 == mode and st.st_uid == 0, (path, oct(st.st_mode))


@tap.timeout(240)
def test_colod_notify():
    import colod_cluster
    with colod_cluster.running() as (c, tmp), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as mgr:
        path = os.path.join(tmp, "notify")
        mgr.bind(path)
        conf = colod_cluster.write_conf(c, "web1.conf")
        pid = c.spawn("node1", "colod", "env", "NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=400000", COLOD,
                      "--config", conf, "--debug")

        def recv(timeout):
            mgr.settimeout(timeout)
            try:
                return mgr.recv(4096).decode()
            except socket.timeout:
                return None
        first = recv(30)
        assert first == "READY=1", "first notification %r\n%s" % (first, c.log("node1", "colod"))
        got, start = [], time.monotonic()
        while time.monotonic() - start < 2.0:
            m = recv(1.0)
            if m:
                got.append(m)
        assert got.count("WATCHDOG=1") >= 6 and set(got) == {"WATCHDOG=1"}, got
        os.kill(pid, signal.SIGTERM)
        msgs = []
        while "STOPPING=1" not in msgs:
            m = recv(10)
            if m is None:
                break
            msgs.append(m)
        assert "STOPPING=1" in msgs, msgs


tap.run(globals())
