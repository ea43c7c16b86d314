"""Who may drive colo's control sockets and who may reach its replication
ports (issue 11, "Security"; docs/colo-proxy.md and docs/qmp.md).

- colod's control socket, colo-vmm's QMP socket and colo-proxy's control
  socket: root connects; an
  unprivileged user (nobody, through setpriv) gets EACCES; with the group
  option a member of that group connects. The daemons run under umask 0
  and their directory is opened to everyone, so only the socket file's own
  mode protects it (before the fix it was 0777 less the umask).
- colo-vmm's -incoming with -global migration.x-allowed-peer: a stranger
  in another network namespace connects first and sends garbage; it is
  refused and logged, and the real migration from the allowed address
  still completes (before the fix the garbage failed the incoming
  migration and the destination exited).

colo-proxy's link with --peer is tested in test-proxy-link-peer.py.
Needs root (setpriv, network namespaces), KVM for the colo-vmm tests and
corosync (tests/lib/cluster.py) for colod.
"""
import grp
import os
import signal
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import colod_cluster  # noqa: E402
from colo_vmm import Vmm, require_kvm, wait_migration_end, wait_until
from netns import Netns, require
import tap

BUILDDIR = os.environ.get("COLO_BUILDDIR", os.getcwd())
PROXY = os.path.join(BUILDDIR, "netfilter", "colo-proxy")
COLOD = os.path.join(BUILDDIR, "colod", "colod")
NOBODY = 65534

# Run as the user given to setpriv: connect, read the QMP greeting.
CLIENT = """
import errno, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
    sys.exit(0)
s.settimeout(10)
print("greeting" if b'"QMP"' in s.recv(4096) else "no greeting")
"""


def require_setpriv():
    if os.geteuid() != 0:
        tap.skip("not root: needs to connect as another user (setpriv)")
    if not shutil.which("setpriv"):
        tap.skip("not installed: setpriv (Debian: util-linux)")


def free_gid():
    """A group id no group has: a member is made with setpriv --groups."""
    used = {g.gr_gid for g in grp.getgrall()}
    return next(g for g in range(61000, 65000) if g not in used)


def connect_as(path, uid, groups=()):
    """What a client running as @uid (supplementary @groups) gets from
    connecting to @path: "greeting" or an errno name."""
    cmd = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % NOBODY]
    cmd += ["--groups=" + ",".join(str(g) for g in groups)] if groups else ["--clear-groups"]
    r = subprocess.run(cmd + [sys.executable, "-c", CLIENT, path], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def open_dir(path):
    """Everyone may enter @path: only the socket's mode is left to protect it."""
    os.chmod(path, 0o755)


def spawn_umask0(fn):
    """@fn() (which starts a daemon) under umask 0, as a careless service
    manager would leave it."""
    old = os.umask(0)
    try:
        return fn()
    finally:
        os.umask(old)


def check_socket(path, group=None):
    # Connectable: listening, so its mode is final (set before listen()).
    wait_until(lambda: connect_as(path, 0) == "greeting", 30, "root's connection to " + path)
    st = os.stat(path)
    mode = st.st_mode & 0o7777
    assert mode == (0o660 if group else 0o600), "%s is mode %o" % (path, mode)
    if group:
        assert st.st_gid == group, (path, st.st_gid, group)
    got = connect_as(path, NOBODY)
    assert got == "EACCES", "nobody connecting to %s: %s" % (path, got)
    if group:
        assert connect_as(path, NOBODY, [group]) == "greeting"


def test_vmm_qmp_socket():
    require_kvm()
    require_setpriv()
    gid = free_gid()
    for group in (None, gid):
        vm = Vmm(append="interval=0", qmp=False)
        vm.argv += ["-qmp", "unix:%s,server=on,wait=off%s" % (vm.qmp_path, ",group=%d" % group if group else "")]
        open_dir(vm.dir)
        spawn_umask0(vm.start)
        try:
            check_socket(vm.qmp_path, group)
            assert vm.qmp.cmd("query-status")["status"] in ("running", "prelaunch")
        finally:
            vm.close()


def test_proxy_control_socket():
    require_setpriv()
    require(("ip",), "a network namespace for colo-proxy's interface")
    gid = free_gid()
    with Netns("p") as net:
        net.ip("p", "link", "add", "d0", "type", "veth", "peer", "name", "d1")
        net.up("p", "d1")
        net.up("p", "d0")
        open_dir(net.tmp)
        for group in (None, gid):
            path = os.path.join(net.tmp, "ctl-%s.sock" % group)
            cmd = [PROXY, "-r", "secondary", "-i", "d0", "-C", "127.0.0.1:9", "--no-rules", "-c", path]
            cmd += ["--control-group", str(group)] if group else []
            p = spawn_umask0(lambda: net.spawn("p", *cmd, log="proxy-%s.log" % group))
            wait_until(lambda: os.path.exists(path) or p.poll() is not None, 20, "the control socket")
            assert p.poll() is None, net.log_tails()
            check_socket(path, group)
            net.kill(p)


@tap.timeout(240)
def test_colod_control_socket():
    """colod on node1 of the two-node harness (it needs corosync), its
    control socket in an open directory (--control), with and without
    [vm] socket-group."""
    require_setpriv()
    gid = free_gid()
    with colod_cluster.running(tmp_mode=0o755) as (c, tmp):
        for group in (None, gid):
            conf = colod_cluster.write_conf(c, "web1-%s.conf" % group, "socket-group=%d" % group if group else "")
            path = os.path.join(tmp, "colod-%s.sock" % group)
            pid = spawn_umask0(lambda: c.spawn("node1", "colod", COLOD, "--config", conf, "--control", path))
            wait_until(lambda: os.path.exists(path), 30, "colod's control socket")
            check_socket(path, group)
            os.kill(pid, signal.SIGTERM)
            wait_until(lambda: not c.pids("node1", "colod"), 30, "colod to stop")


def test_vmm_incoming_stranger_refused():
    """dst (10.80.0.1) waits for src (10.80.0.2); x (10.81.0.2), routed
    through dst's other veth, is a stranger."""
    require_kvm()
    require(("ip",), "network namespaces")
    with Netns("dst", "src", "x") as net:
        net.veth("dst", "ds", "src", "sd")
        net.veth("dst", "dx", "x", "xd")
        net.up("dst", "ds", "10.80.0.1/24")
        net.up("src", "sd", "10.80.0.2/24")
        net.up("dst", "dx", "10.81.0.1/24")
        net.up("x", "xd", "10.81.0.2/24")
        net.ip("x", "route", "add", "default", "via", "10.81.0.1")
        uri = "tcp:10.80.0.1:7801"
        guest = "interval=0 dirty_pages=16 dirty_ms=20 area=4M"
        dst = Vmm(append=guest, wrap=net.argv("dst"),
                  extra=["-incoming", uri, "-global", "migration.x-allowed-peer=10.80.0.2"]).start()
        src = Vmm(append=guest, wrap=net.argv("src")).start()
        try:
            assert dst.qmp.cmd("query-migrate-parameters")["x-allowed-peer"] == "10.80.0.2"
            src.wait_serial("colo-testguest ready", 60)
            # The stranger's first connection, with garbage where the hello goes.
            stranger = net.exe("x", sys.executable, "-c",
                               "import socket; s = socket.create_connection(('10.80.0.1', 7801), 5); "
                               "s.sendall(b'GARBAGE' * 100); print(s.recv(10))", check=False)
            assert "b''" in stranger.stdout or "Connection reset" in stranger.stderr, stranger
            wait_until(lambda: "refused a connection from 10.81.0.2" in open(dst.log_path).read(), 10,
                       "the refusal in colo-vmm's log")
            assert dst.proc.poll() is None, dst.output()
            assert dst.qmp.cmd("query-status")["status"] == "inmigrate"
            src.qmp.cmd("migrate-set-parameters", args={"max-bandwidth": 0})
            src.qmp.cmd("migrate", uri=uri)
            q = wait_migration_end(src)
            assert q["status"] == "completed", q
            wait_until(lambda: dst.qmp.cmd("query-status")["status"] == "running", 20, "the destination to run")
            hb = dst.heartbeat()
            wait_until(lambda: dst.heartbeat() > hb, 30, "the heartbeat on the destination")
            log = open(dst.log_path).read()
            assert log.count("refused a connection from 10.81.0.2") == 1, log
        finally:
            src.close()
            dst.close()


def test_allowed_peer_parameter():
    """migrate-set-parameters x-allowed-peer: checked, normalized, cleared."""
    require_kvm()
    with Vmm(append="interval=0", extra=["-incoming", "defer"]) as vm:
        assert vm.qmp.cmd("query-migrate-parameters")["x-allowed-peer"] == ""
        vm.qmp.cmd("migrate-set-parameters", args={"x-allowed-peer": "::ffff:10.1.2.3"})
        assert vm.qmp.cmd("query-migrate-parameters")["x-allowed-peer"] == "10.1.2.3"
        try:
            vm.qmp.cmd("migrate-set-parameters", args={"x-allowed-peer": "peer.example", "downtime-limit": 7})
            raise AssertionError("a host name was accepted")
        except Exception as e:
            assert "not an IPv4 or IPv6 address" in str(e), e
        p = vm.qmp.cmd("query-migrate-parameters")
        assert p["x-allowed-peer"] == "10.1.2.3" and p["downtime-limit"] != 7, p
        vm.qmp.cmd("migrate-set-parameters", args={"x-allowed-peer": ""})
        assert vm.qmp.cmd("query-migrate-parameters")["x-allowed-peer"] == ""


tap.run(globals())
