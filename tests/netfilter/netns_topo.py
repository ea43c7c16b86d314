"""Shared by the colo-proxy namespace tests (and bench/proxy-bench.py): the
namespace topology on tests/lib's Netns, the TAP main, small helpers.

  c (client) --- ph (primary host: colo-proxy, NFQUEUE) --- pg (primary guest)
                  |  peer link
                 sh (secondary host: colo-proxy)        --- sg (secondary guest)

With lan=True the client sits on a bridge ("the LAN") with a port to each
host; the secondary's port stays down until it takes over, then gets the
primary's LAN address and MAC (as a floating gateway address would)."""
import json
import os
import select
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import tap  # noqa: E402
from netns import Netns, SetupError, require, sh  # noqa: E402,F401  (sh: for the tests)
from tap import wait_for  # noqa: E402,F401

BUILDDIR = os.environ.get("COLO_BUILDDIR", os.getcwd())
PROXY = os.path.join(BUILDDIR, "netfilter", "colo-proxy")
PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "netns-peer.py")
GUEST_MAC, GW_MAC = "52:54:00:77:00:02", "52:54:00:77:00:01"
LAN_MAC = "52:54:00:78:00:01"


class Topology(Netns):
    def __init__(self, lan=False):
        super().__init__("c", "ph", "pg", "sh", "sg")
        self.lan = lan

    def setup(self):
        self.create()
        self.veth("ph", "pgh", "pg", "pg0")
        self.veth("sh", "sgh", "sg", "sg0")
        self.veth("ph", "pc", "c", "c0")
        if self.lan:
            self.ip("c", "link", "add", "br0", "type", "bridge")
            self.ip("c", "link", "set", "c0", "master", "br0")
            self.ip("c", "link", "set", "c0", "up")
            self.ip("ph", "link", "set", "pc", "address", LAN_MAC)
        self.veth("ph", "ps", "sh", "sp")
        self.up("pg", "pg0", "10.77.0.2/24", GUEST_MAC)
        self.up("sg", "sg0", "10.77.0.2/24", GUEST_MAC)
        self.up("ph", "pgh", "10.77.0.1/24", GW_MAC)
        self.up("sh", "sgh", "10.77.0.1/24", GW_MAC)
        self.up("ph", "pc", "10.78.0.1/24")
        self.up("c", "br0" if self.lan else "c0", "10.78.0.2/24")
        self.up("ph", "ps", "10.79.0.1/24")
        self.up("sh", "sp", "10.79.0.2/24")
        for g in ("pg", "sg"):
            self.ip(g, "route", "add", "default", "via", "10.77.0.1")
        self.ip("c", "route", "add", "default", "via", "10.78.0.1")
        if self.lan:
            self.veth("sh", "sc", "c", "c1")
            self.ip("sh", "link", "set", "sc", "address", LAN_MAC)
            self.ip("c", "link", "set", "c1", "master", "br0")
            self.ip("c", "link", "set", "c1", "up")
        self.exe("ph", "sysctl", "-qw", "net.ipv4.ip_forward=1")

    def use_l2_path(self):
        """The primary host for colo-proxy --uplink pu0: pgh and pu0 are
        ports of a bridge that stays down (the kernel ignores their
        frames), pu1 is the guest's gateway."""
        self.ip("ph", "addr", "flush", "dev", "pgh")
        self.ip("ph", "link", "add", "pu0", "type", "veth", "peer", "name", "pu1")
        self.up("ph", "pu1", "10.77.0.1/24", GW_MAC)
        self.ip("ph", "link", "set", "pgh", "address", "52:54:00:77:00:11")
        self.ip("ph", "link", "add", "hold0", "type", "bridge")
        for dev in ("pgh", "pu0"):
            self.ip("ph", "link", "set", dev, "master", "hold0")
        self.ip("ph", "link", "set", "pu0", "up")
        # The two "guests" are independent stacks, not replicas: their IPv6
        # autoconfiguration chatter (router solicitations, MLD reports at
        # random times) would differ.
        for g in ("pg", "sg"):
            self.exe(g, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")

    def primary_host_dies(self):
        """The primary host and its guest vanish. A dead host sends
        nothing, so its links go down first: killing the guest's servers
        would have its kernel send FINs, and a deleted namespace is torn
        down in the background, answering with RSTs meanwhile."""
        for link in ("pc", "ps", "pgh"):
            self.ip("ph", "link", "set", link, "down")
        self.remove("pg")
        self.remove("ph")

    def take_over_lan(self):
        """The secondary host answers for the primary's LAN address."""
        self.up("sh", "sc", "10.78.0.1/24")
        self.exe("sh", "sysctl", "-qw", "net.ipv4.ip_forward=1")


def wait_ready(proc, timeout=10):
    """True once @proc printed "ready" (within @timeout seconds)."""
    return read_line(proc, timeout) == "ready"


def start_pair(topo, primary_args=(), secondary_prefix=(), arm=True):
    """A primary colo-proxy on ph (queue 7, listening on 10.79.0.1:7700,
    with @primary_args) and its secondary on sh (run under
    @secondary_prefix, e.g. env), linked up; with @arm the primary armed by
    its first checkpoint-begin (it compares and holds from then on).
    Returns (primary, secondary, their ProxyCtl)."""
    from proxyctl import ProxyCtl
    psock, ssock = os.path.join(topo.tmp, "p.sock"), os.path.join(topo.tmp, "s.sock")
    primary = topo.spawn("ph", PROXY, "-r", "primary", "-i", "pgh", "-q", "7", "-L", "10.79.0.1:7700",
                         "-c", psock, "-d", *primary_args, log="primary.log")
    secondary = topo.spawn("sh", *secondary_prefix, PROXY, "-r", "secondary", "-i", "sgh", "-q", "7",
                           "-C", "10.79.0.1:7700", "-c", ssock, "-d", log="secondary.log")
    pctl, sctl = ProxyCtl(psock), ProxyCtl(ssock)
    if not wait_for(lambda: pctl.execute("query-status")["peer-link"]):
        raise RuntimeError("the proxies did not link up")
    if arm:
        pctl.execute("checkpoint-begin")
    return primary, secondary, pctl, sctl


def start_chat(topo, *ports):
    """netns-peer.py chat servers on both guests, one per port."""
    for g in ("pg", "sg"):
        for port in ports:
            if not wait_ready(topo.spawn(g, sys.executable, PEER, "chat", port)):
                raise RuntimeError("chat server did not start")


def converse_go(client):
    """Start a round of a converse client (netns-peer.py converse); False
    if it is gone."""
    try:
        client.stdin.write("go\n")
        client.stdin.flush()
        return True
    except BrokenPipeError:
        return False


def read_line(proc, timeout=10.0):
    """The next line the process prints, or None after timeout."""
    if not select.select([proc.stdout], [], [], timeout)[0]:
        return None
    return proc.stdout.readline().strip()


def forward_rules(topo, ns):
    out = topo.exe(ns, "iptables", "-S", "FORWARD").stdout
    return [line for line in out.splitlines() if "colo-proxy" in line]


class CheckpointRequested(AssertionError):
    pass


def checkpoint_failure(ev):
    """The namespace stand-ins for guests cannot honour a checkpoint: a
    commit releases the primary's packets uncompared, and the secondary's
    Linux stack is no copy of the primary's. So a request where none was
    expected ends the test, with its reason (tap_main adds the proxies' log
    tails)."""
    return CheckpointRequested("colo-proxy asked for a checkpoint (%s); the namespace guests cannot honour one" %
                               json.dumps(ev.get("data")))


def no_checkpoint(topo, ctl):
    """Raise CheckpointRequested if @ctl (the primary's ProxyCtl) saw a
    CHECKPOINT_REQUEST event so far."""
    ev = ctl.wait_event("CHECKPOINT_REQUEST", timeout=0.05)
    if ev:
        raise checkpoint_failure(ev)


def watched(topo, ctl, ns, *cmd, timeout=60):
    """Run @cmd in @ns to its end, watching the primary proxy (@ctl): a
    checkpoint request stops it and raises CheckpointRequested, rather
    than letting the stream limp on. A CompletedProcess (text)."""
    p = topo.spawn(ns, *cmd)
    deadline = time.monotonic() + timeout
    try:
        while p.poll() is None:
            ev = ctl.wait_event("CHECKPOINT_REQUEST", timeout=0.2)
            if ev:
                raise checkpoint_failure(ev)
            if time.monotonic() > deadline:
                raise AssertionError("%s still running after %d s" % (" ".join(cmd), timeout))
        out, err = p.communicate()
        return subprocess.CompletedProcess(cmd, p.returncode, out, err)
    finally:
        topo.kill(p)


def tap_main(run, lan=False):
    """Run run(tap, topo) as a TAP test: SKIP without root or tools, a
    failure for anything else that goes wrong; clean up always, with the
    proxies' logs shown when a check failed."""
    def body():
        require(("ip", "iptables", "ip6tables"), "network namespaces, NFQUEUE, iptables")
        if not os.access(PROXY, os.X_OK):
            raise AssertionError("colo-proxy not built at " + PROXY)
        topo = Topology(lan)
        good = False
        try:
            run(tap, topo)
            good = True
        finally:
            if tap.failed() or not good:
                dump_logs(topo)
            topo.close()
    return tap.main(body)


def dump_logs(topo):
    """The proxies' logs of a failed run: their tails as TAP comments, whole
    into $COLO_KEEP_LOGS (a directory) when set."""
    keep = os.environ.get("COLO_KEEP_LOGS")
    print("# " + topo.log_tails().replace("\n", "\n# "), flush=True)
    if keep:
        os.makedirs(keep, exist_ok=True)
        for f in os.listdir(topo.tmp):
            if f.endswith(".log"):
                shutil.copy(os.path.join(topo.tmp, f), os.path.join(keep, "%d-%s" % (os.getpid(), f)))
