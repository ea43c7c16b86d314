"""Network namespaces for one test: the harness's namespace fixture.

    with Netns("vm", "client") as net:     # created, loopback up
        net.ip("vm", "link", "add", "br0", "type", "bridge")
        p = net.spawn("vm", "colo-vmm", ...)
    # processes killed, namespaces (and their links, taps, rules) gone,
    # also when the test failed

Names carry the test's pid, so parallel tests never meet, and nothing is
created in the host's own namespace. A command that fails raises
SetupError with its stderr: a broken set-up is a failure, never a skip.
"""
import os
import shutil
import signal
import subprocess
import tempfile

import tap


class SetupError(Exception):
    pass


def sh(*cmd, check=True, timeout=20):
    """Run @cmd; SetupError with its output if it fails and @check."""
    r = subprocess.run(cmd, timeout=timeout, capture_output=True, text=True)
    if check and r.returncode:
        raise SetupError("%s: exit %d: %s" % (" ".join(cmd), r.returncode, (r.stderr or r.stdout).strip()))
    return r


def require(tools=("ip",), why="network namespaces"):
    """Skip (capability reasons) without root or one of @tools."""
    if os.geteuid() != 0:
        tap.skip("not root: needs %s" % why)
    for tool in tools:
        if not shutil.which(tool):
            tap.skip("not installed: %s (Debian: %s)" % (tool, "iptables" if "tables" in tool else "iproute2"))


class Netns:
    def __init__(self, *keys, prefix="colo"):
        tag = "%d" % os.getpid()
        self.ns = {k: "%s%s-%s" % (prefix, k, tag) for k in keys}
        self.procs = []
        self.tmp = tempfile.mkdtemp(prefix="colo-netns-")
        self.created = []

    def create(self):
        for k, n in self.ns.items():
            sh("ip", "netns", "add", n)
            self.created.append(n)
            self.ip(k, "link", "set", "lo", "up")
        return self

    def __enter__(self):
        try:
            return self.create()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()

    def ip(self, ns, *args):
        return sh("ip", "-n", self.ns[ns], *args)

    def exe(self, ns, *cmd, **kw):
        return sh("ip", "netns", "exec", self.ns[ns], *cmd, **kw)

    def argv(self, ns, *cmd):
        """@cmd run inside namespace @ns (for a Popen of one's own)."""
        return ["ip", "netns", "exec", self.ns[ns], *cmd]

    def spawn(self, ns, *cmd, log=None, stdin=None):
        """Start @cmd in @ns in a process group of its own (killed by
        close()); output to tmp/@log, else a pipe."""
        out = open(os.path.join(self.tmp, log), "w") if log else subprocess.PIPE
        p = subprocess.Popen(self.argv(ns, *cmd), stdout=out, stdin=stdin,
                             stderr=subprocess.STDOUT if log else subprocess.PIPE, text=True,
                             start_new_session=True)
        if log:
            out.close()
        p.ns = ns
        self.procs.append(p)
        return p

    def veth(self, a, ia, b, ib):
        self.ip(a, "link", "add", ia, "type", "veth", "peer", "name", ib, "netns", self.ns[b])

    def up(self, ns, ifname, addr=None, mac=None):
        if mac:
            self.ip(ns, "link", "set", ifname, "address", mac)
        if addr:
            self.ip(ns, "addr", "add", addr, "dev", ifname)
        self.ip(ns, "link", "set", ifname, "up")

    def kill(self, p, sig=signal.SIGTERM):
        """Stop one spawned process (its group): @sig, then SIGKILL."""
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
                p.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(timeout=5)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
        for f in (p.stdout, p.stderr, p.stdin):
            if f:
                try:
                    f.close()
                except OSError:
                    pass

    def remove(self, ns):
        """A host or guest dies: its processes first, then the namespace."""
        for p in self.procs:
            if getattr(p, "ns", None) == ns:
                self.kill(p, signal.SIGKILL)
        sh("ip", "netns", "del", self.ns[ns])
        self.created.remove(self.ns[ns])
        del self.ns[ns]

    def close(self):
        for p in self.procs:
            self.kill(p)
        # Deleting a namespace also deletes its links, taps and iptables rules.
        for n in self.created:
            sh("ip", "netns", "del", n, check=False)
        self.created = []
        shutil.rmtree(self.tmp, ignore_errors=True)

    def log_tails(self, lines=30):
        """The last @lines of each log in tmp, as text."""
        text = ""
        for f in sorted(f for f in os.listdir(self.tmp) if f.endswith(".log")):
            with open(os.path.join(self.tmp, f), errors="replace") as fh:
                text += "--- %s\n%s" % (f, "".join(fh.readlines()[-lines:]))
        return text
