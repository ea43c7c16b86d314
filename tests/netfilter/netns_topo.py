"""Shared by the colo-proxy namespace tests: TAP output, the namespace
topology and small helpers.

  c (client) --- ph (primary host: colo-proxy, NFQUEUE) --- pg (primary guest)
                  |  peer link
                 sh (secondary host: colo-proxy)        --- sg (secondary guest)

With lan=True the client sits on a bridge ("the LAN") with a port to each
host; the secondary's port stays down until it takes over, then gets the
primary's LAN address and MAC (as a floating gateway address would)."""
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BUILDDIR = os.environ.get("COLO_BUILDDIR", os.getcwd())
PROXY = os.path.join(BUILDDIR, "netfilter", "colo-proxy")
PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "netns-peer.py")
GUEST_MAC, GW_MAC = "52:54:00:77:00:02", "52:54:00:77:00:01"
LAN_MAC = "52:54:00:78:00:01"


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, diag=None):
        self.n += 1
        if not cond:
            self.failed += 1
            for line in (diag or "").splitlines():
                print("# " + line)
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, name), flush=True)
        return cond

    def skip_all(self, why):
        print("1..0 # SKIP " + why)
        sys.exit(0)


def sh(*cmd, check=True, timeout=20):
    return subprocess.run(cmd, check=check, timeout=timeout, capture_output=True, text=True)


class Topology:
    def __init__(self, lan=False):
        self.lan = lan
        tag = "%d" % os.getpid()
        self.ns = {k: "colo%s-%s" % (k, tag) for k in ("c", "ph", "pg", "sh", "sg")}
        self.procs = []
        self.tmp = tempfile.mkdtemp(prefix="colo-proxy-netns-")

    def ip(self, ns, *args):
        sh("ip", "-n", self.ns[ns], *args)

    def exe(self, ns, *cmd, **kw):
        return sh("ip", "netns", "exec", self.ns[ns], *cmd, **kw)

    def spawn(self, ns, *cmd, log=None, stdin=None):
        out = open(os.path.join(self.tmp, log), "w") if log else subprocess.PIPE
        p = subprocess.Popen(["ip", "netns", "exec", self.ns[ns], *cmd], stdout=out, stdin=stdin,
                             stderr=subprocess.STDOUT if log else subprocess.PIPE, text=True,
                             start_new_session=True)
        p.ns = ns
        self.procs.append(p)
        return p

    def veth(self, a, ia, b, ib):
        self.ip(a, "link", "add", ia, "type", "veth", "peer", "name", ib, "netns", self.ns[b])

    def up(self, ns, ifname, addr, mac=None):
        if mac:
            self.ip(ns, "link", "set", ifname, "address", mac)
        self.ip(ns, "addr", "add", addr, "dev", ifname)
        self.ip(ns, "link", "set", ifname, "up")

    def setup(self):
        for n in self.ns.values():
            sh("ip", "netns", "add", n)
        for n in self.ns:
            self.ip(n, "link", "set", "lo", "up")
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

    def take_over_lan(self):
        """The secondary host answers for the primary's LAN address."""
        self.up("sh", "sc", "10.78.0.1/24")
        self.exe("sh", "sysctl", "-qw", "net.ipv4.ip_forward=1")

    def remove(self, ns):
        """A host or guest dies: its processes first, then the namespace."""
        for p in self.procs:
            if getattr(p, "ns", None) == ns and p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(timeout=5)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
        sh("ip", "netns", "del", self.ns[ns])
        del self.ns[ns]

    def teardown(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(timeout=5)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        # Deleting a namespace also deletes its veths and iptables rules.
        for n in self.ns.values():
            sh("ip", "netns", "del", n, check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


def wait_ready(proc, timeout=10):
    deadline = time.monotonic() + timeout
    line = proc.stdout.readline() if proc.stdout else ""
    return line.strip() == "ready" and time.monotonic() < deadline


def read_line(proc, timeout=10.0):
    """The next line the process prints, or None after timeout."""
    if not select.select([proc.stdout], [], [], timeout)[0]:
        return None
    return proc.stdout.readline().strip()


def wait_for(fn, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    return None


def forward_rules(topo, ns):
    out = topo.exe(ns, "iptables", "-S", "FORWARD").stdout
    return [line for line in out.splitlines() if "colo-proxy" in line]


def dump_logs(tmp):
    """The proxies' logs of a failed run: their tails as TAP comments, whole
    into $COLO_KEEP_LOGS (a directory) when set."""
    keep = os.environ.get("COLO_KEEP_LOGS")
    for f in sorted(f for f in os.listdir(tmp) if f.endswith(".log")):
        with open(os.path.join(tmp, f)) as fh:
            lines = fh.readlines()
        print("# --- %s\n%s" % (f, "".join("# " + line for line in lines[-30:])), end="")
        if keep:
            os.makedirs(keep, exist_ok=True)
            shutil.copy(os.path.join(tmp, f), os.path.join(keep, "%d-%s" % (os.getpid(), f)))


def tap_main(run, lan=False):
    """Run run(tap, topo) as a TAP test: SKIP without root or tools, clean up always."""
    tap = Tap()
    if os.geteuid() != 0:
        tap.skip_all("needs root (network namespaces, NFQUEUE, iptables)")
    for tool in ("ip", "iptables", "ip6tables"):
        if not shutil.which(tool):
            tap.skip_all("%s not installed (Debian: iproute2, iptables)" % tool)
    if not os.access(PROXY, os.X_OK):
        tap.skip_all("colo-proxy not built at " + PROXY)
    topo = Topology(lan)
    try:
        run(tap, topo)
    except Exception as e:  # a broken set-up fails loudly, never hangs
        tap.ok(False, "test run", "%s: %s" % (type(e).__name__, e))
    finally:
        if tap.failed:
            dump_logs(topo.tmp)
        topo.teardown()
    print("1..%d" % tap.n)
    return 1 if tap.failed else 0
