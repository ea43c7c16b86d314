"""The two-node cluster on one machine (issue 14): hosts as namespaces,
corosync with a qdevice vote from corosync-qnetd on a witness, and faults.

    c = Cluster.create(rundir, token=1000)  # namespaces and links
    c.start_corosync()                      # qnetd, certificates, corosync, qdevice
    c.wait_quorate(("node1", "node2"))
    c.fault("partition")                    # or kill-host node1, drop-repl, ...
    c.heal()
    c.down()                                # every process, namespace and file gone

Hosts: node1 and node2 (the cluster), witness (corosync-qnetd), client,
and lan (the guests' LAN bridge, a switch with no address). Each runs in a
network namespace of its own, and every command on a host gets a mount
namespace (a fresh one per command, `ip netns exec` makes it) in which
/etc/corosync, /var/lib/corosync, /run, /dev/shm, /var/log/corosync and,
where pacemaker is installed, /var/lib/pacemaker and /var/log/pacemaker
are bind mounts of the host's own directories under the run dir: two
corosyncs on one machine never share a file, and every file a host leaves
lives under the run dir.

Links (veth pairs; addresses below):

    client eth0 ---- lan: br0 (the guests' LAN) ---- node1 lan0, node2 lan0
    node1 ring0 ----------------------------------- node2 ring0   the corosync ring
    node1 repl0 ----------------------------------- node2 repl0   the replication link
    node1 wit0 ---- witness w1, witness w2 ---- node2 wit0         qdevice to qnetd

All state is in RUNDIR/state.json, so Cluster.load(rundir) in another
process (tests/cluster/colo-cluster status, fault, down) sees the same
cluster. down() kills every process in every namespace of the cluster
(found through the namespaces, not through pids remembered), deletes the
namespaces and removes the run dir.
"""
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import tap
from netns import SetupError, sh

NODES = ("node1", "node2")
HOSTS = ("lan", "client", "witness") + NODES
CLUSTER_NAME = "colotest"

RING = {"node1": "10.90.0.1", "node2": "10.90.0.2"}
REPL = {"node1": "10.91.0.1", "node2": "10.91.0.2"}
# Each node reaches the witness over a link of its own; qnetd listens on
# the witness's address on lo, routed through both.
WIT_NODE = {"node1": "10.92.1.1", "node2": "10.92.2.1"}
WIT_SIDE = {"node1": "10.92.1.2", "node2": "10.92.2.2"}
QNETD_ADDR = "10.92.0.1"
QNETD_PORT = 5403
# The guests' LAN: the client, and each node's port (the primary's takes
# the LAN gateway address, tests/lib/colo_net.py's plan). Each node's port
# has an address of its own first, as a real host's LAN interface does: the
# gateway is then a secondary address, and the kernel sources its own ARP
# requests (to forward to the client) from the node's address. Without it a
# node that still held the gateway address while frozen (SIGSTOP: its
# kernel runs on) asked for the client "from" the gateway and turned the
# client's ARP entry back to itself after the peer had taken over (an 8 s
# stall until the entry failed over, seen at stop-host:primary).
CLIENT_ADDR = "10.82.0.2"
LAN_GW = "10.82.0.1"
NODE_LAN = {"node1": "10.82.0.11", "node2": "10.82.0.12"}

# Directories of a host that are its own: the bind mounts of host_argv().
PRIVATE = ("/etc/corosync", "/var/lib/corosync", "/var/log/corosync", "/run", "/dev/shm",
           "/var/lib/pacemaker", "/var/log/pacemaker")

FAULTS = ("sigkill", "sigstop", "kill-host", "stop-host", "drop-repl", "reject-repl", "partition",
          "flap-client", "disk-full")
# Each node's disk: a small filesystem of its own (tmpfs) at RUNDIR/NODE/vm,
# where the VM's image and state live, so disk-full can fill it.
DISK_MB = 32

TOOLS = {"corosync": "corosync", "corosync-quorumtool": "corosync", "corosync-cfgtool": "corosync",
         "corosync-qdevice": "corosync-qdevice", "corosync-qdevice-net-certutil": "corosync-qdevice",
         "corosync-qnetd": "corosync-qnetd", "corosync-qnetd-certutil": "corosync-qnetd",
         "certutil": "libnss3-tools", "iptables": "iptables", "ip": "iproute2", "bridge": "iproute2"}


def require():
    """Skip (capability reasons) without root or the cluster's tools."""
    if os.geteuid() != 0:
        tap.skip("not root: needs network and mount namespaces")
    for tool, package in TOOLS.items():
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
            tap.skip("not installed: %s (Debian: %s)" % (tool, package))


def run_tests(namespace, teardown):
    """tap.run(@namespace), then @teardown() whatever happened, also when
    the file is ended by SIGTERM: no daemon outlives a test file."""
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    try:
        tap.run(namespace)
    finally:
        teardown()


def ns_inode(name):
    try:
        return os.stat("/run/netns/" + name).st_ino
    except OSError:
        return None


def ns_pids(name):
    """Every process whose network namespace is @name (as `ip netns pids`,
    without failing on a namespace already gone)."""
    ino = ns_inode(name)
    if ino is None:
        return []
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.stat("/proc/%s/ns/net" % d).st_ino == ino:
                pids.append(int(d))
        except OSError:
            pass
    return pids


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


class Cluster:
    def __init__(self, rundir, state):
        self.rundir = rundir
        self.state = state
        self.ns = state["ns"]
        self.procs = {}     # (host, name): Popen, of the processes this process spawned

    # -- the run dir -------------------------------------------------------

    @classmethod
    def create(cls, rundir, token=1000, qdevice_timeout=10000, prefix=None):
        """Namespaces, links and the hosts' directories under @rundir (made
        here; an existing one is refused: one cluster per run dir).
        @token: corosync's token timeout in ms; @qdevice_timeout:
        corosync-qdevice's (quorum.device.timeout, ms), its heartbeat to
        qnetd is 0.8 of it."""
        os.makedirs(rundir)
        prefix = prefix or "cc%d-" % os.getpid()
        state = {"token": token, "qdevice_timeout": qdevice_timeout, "ns": {h: prefix + h for h in HOSTS}, "stopped": [], "faults": []}
        c = cls(os.path.abspath(rundir), state)
        c.save()
        try:
            c._build()
        except BaseException:
            c.down()
            raise
        return c

    @classmethod
    def load(cls, rundir):
        with open(os.path.join(rundir, "state.json")) as f:
            return cls(os.path.abspath(rundir), json.load(f))

    def save(self):
        tmp = os.path.join(self.rundir, "state.json.new")
        with open(tmp, "w") as f:
            json.dump(self.state, f, indent=1)
        os.rename(tmp, os.path.join(self.rundir, "state.json"))

    def hostdir(self, host, *sub):
        return os.path.join(self.rundir, host, *sub)

    def disk(self, node, *sub):
        """@node's disk (DISK_MB, a tmpfs mounted by create()): where its
        VM's files go, the filesystem disk-full fills."""
        return self.hostdir(node, "vm", *sub)

    # -- running things on a host ------------------------------------------

    def host_argv(self, host, *cmd):
        """@cmd run on @host: in its network namespace, with its private
        directories bound over the machine's (see the module's doc)."""
        binds = []
        for d in PRIVATE:
            if os.path.isdir(d):
                binds.append("mount --bind %s %s" % (self.hostdir(host, "fs", d.strip("/").replace("/", "_")), d))
        # corosync's daemons and tools are in /usr/sbin, not on every PATH.
        script = " && ".join(binds + ['PATH="$PATH:/usr/sbin:/sbin" exec "$@"'])
        return ["ip", "netns", "exec", self.ns[host], "sh", "-c", script, "sh", *cmd]

    def run(self, host, *cmd, check=True, timeout=20):
        return sh(*self.host_argv(host, *cmd), check=check, timeout=timeout)

    def spawn(self, host, name, *cmd):
        """Start @cmd on @host in a session of its own, detached from the
        caller (it outlives a colo-cluster command); output to
        RUNDIR/HOST/NAME.log. Returns the pid."""
        with open(self.hostdir(host, name + ".log"), "ab") as log:
            p = subprocess.Popen(self.host_argv(host, *cmd), stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[(host, name)] = p
        return p.pid

    def pids(self, host, name=None):
        """The processes on @host (by their network namespace); with
        @name, only those whose command name is @name."""
        pids = ns_pids(self.ns[host])
        # The kernel keeps 15 bytes of a command's name.
        return [p for p in pids if name is None or comm(p) == name[:15]]

    def frozen(self, host, name=None):
        """Whether the processes (called @name) on @host are all stopped
        (SIGSTOP), and there is one."""
        states = []
        for p in self.pids(host, name):
            try:
                with open("/proc/%d/stat" % p) as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
            except OSError:
                pass
        return bool(states) and all(st in "Tt" for st in states)

    def log(self, host, name, lines=40):
        try:
            with open(self.hostdir(host, name + ".log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no %s log on %s)\n" % (name, host)

    def logs(self, lines=25):
        """The tails of every host's logs, for a failure's diagnostics."""
        text = ""
        for host in HOSTS:
            d = self.hostdir(host)
            for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
                if f.endswith(".log"):
                    text += "--- %s/%s\n%s" % (host, f, self.log(host, f[:-4], lines))
        return text

    # -- the hosts and links -----------------------------------------------

    def ip(self, host, *args):
        return sh("ip", "-n", self.ns[host], *args)

    def _veth(self, a, ia, b, ib):
        self.ip(a, "link", "add", ia, "type", "veth", "peer", "name", ib, "netns", self.ns[b])

    def _up(self, host, dev, addr=None):
        if addr:
            self.ip(host, "addr", "add", addr, "dev", dev)
        self.ip(host, "link", "set", dev, "up")

    def lan_reset(self, node):
        """@node's LAN port as after a boot: up, its own address only."""
        self.ip(node, "addr", "flush", "dev", "lan0")
        self._up(node, "lan0", NODE_LAN[node] + "/24")

    def _build(self):
        for host in HOSTS:
            for d in PRIVATE:
                os.makedirs(self.hostdir(host, "fs", d.strip("/").replace("/", "_")), exist_ok=True)
            sh("ip", "netns", "add", self.ns[host])
            self.ip(host, "link", "set", "lo", "up")
        for n in NODES:
            os.makedirs(self.disk(n))
            sh("mount", "-t", "tmpfs", "-o", "size=%dm,mode=0755" % DISK_MB, "colo-disk-" + n, self.disk(n))
        self.ip("lan", "link", "add", "br0", "type", "bridge")
        self._up("lan", "br0")
        self._veth("client", "eth0", "lan", "client")
        self.ip("lan", "link", "set", "client", "master", "br0", "up")
        self._up("client", "eth0", CLIENT_ADDR + "/24")
        self._veth("node1", "ring0", "node2", "ring0")
        self._veth("node1", "repl0", "node2", "repl0")
        for n in NODES:
            self._veth(n, "lan0", "lan", n)
            self.ip("lan", "link", "set", n, "master", "br0", "up")
            self.lan_reset(n)
            self._up(n, "ring0", RING[n] + "/24")
            self._up(n, "repl0", REPL[n] + "/24")
            side = "w" + n[-1]
            self._veth(n, "wit0", "witness", side)
            self._up(n, "wit0", WIT_NODE[n] + "/30")
            self._up("witness", side, WIT_SIDE[n] + "/30")
            self.ip(n, "route", "add", QNETD_ADDR + "/32", "via", WIT_SIDE[n])
            # One chain per node for the faults; heal() flushes it.
            self.run(n, "iptables", "-N", "colo-fault")
            for hook in ("INPUT", "OUTPUT", "FORWARD"):
                self.run(n, "iptables", "-I", hook, "-j", "colo-fault")
        self.ip("witness", "addr", "add", QNETD_ADDR + "/32", "dev", "lo")

    # -- corosync, qdevice and qnetd ---------------------------------------

    def corosync_conf(self):
        nodes = "".join("    node {\n        name: %s\n        nodeid: %s\n        ring0_addr: %s\n    }\n" %
                        (n, n[-1], RING[n]) for n in NODES)
        return """# written by tests/lib/cluster.py
totem {
    version: 2
    cluster_name: %s
    transport: knet
    token: %d
    crypto_cipher: none
    crypto_hash: none
}
logging {
    to_stderr: yes
    to_logfile: yes
    logfile: /var/log/corosync/corosync.log
    to_syslog: no
    timestamp: on
}
quorum {
    provider: corosync_votequorum
    device {
        model: net
        votes: 1
        timeout: %d
        net {
            host: %s
            port: %d
            algorithm: ffsplit
            tie_breaker: lowest
            tls: on
        }
    }
}
nodelist {
%s}
""" % (CLUSTER_NAME, self.state["token"], self.state["qdevice_timeout"], QNETD_ADDR, QNETD_PORT, nodes)

    def _fs(self, host, path):
        """Where @path of @host's private directories is, seen from here."""
        for d in PRIVATE:
            if path == d or path.startswith(d + "/"):
                return self.hostdir(host, "fs", d.strip("/").replace("/", "_")) + path[len(d):]
        raise ValueError(path)

    def _certificates(self):
        """qnetd's CA and server certificate on the witness, the cluster's
        certificate signed by it on node1 and imported on every node: the
        steps of corosync-qdevice-net-certutil's help (its -Q does them
        over ssh)."""
        self.run("witness", "corosync-qnetd-certutil", "-i", "-G", timeout=60)
        ca = self._fs("witness", "/etc/corosync/qnetd/nssdb/qnetd-cacert.crt")
        for n in NODES:
            shutil.copy(ca, self._fs(n, "/etc/corosync/qnetd-cacert.crt"))
            self.run(n, "corosync-qdevice-net-certutil", "-i", "-c", "/etc/corosync/qnetd-cacert.crt", timeout=60)
        self.run("node1", "corosync-qdevice-net-certutil", "-r", "-n", CLUSTER_NAME, timeout=60)
        shutil.copy(self._fs("node1", "/etc/corosync/qdevice/net/nssdb/qdevice-net-node.crq"),
                    self._fs("witness", "/etc/corosync/qnetd/nssdb/qdevice-net-node.crq"))
        self.run("witness", "corosync-qnetd-certutil", "-s", "-c", "/etc/corosync/qnetd/nssdb/qdevice-net-node.crq",
                 "-n", CLUSTER_NAME, timeout=60)
        crt = "cluster-%s.crt" % CLUSTER_NAME
        shutil.copy(self._fs("witness", "/etc/corosync/qnetd/nssdb/" + crt),
                    self._fs("node1", "/etc/corosync/qdevice/net/nssdb/" + crt))
        self.run("node1", "corosync-qdevice-net-certutil", "-M", "-c", "/etc/corosync/qdevice/net/nssdb/" + crt,
                 timeout=60)
        p12 = self._fs("node1", "/etc/corosync/qdevice/net/nssdb/qdevice-net-node.p12")
        shutil.copy(p12, self._fs("node2", "/etc/corosync/qdevice-net-node.p12"))
        self.run("node2", "corosync-qdevice-net-certutil", "-m", "-c", "/etc/corosync/qdevice-net-node.p12",
                 timeout=60)

    def start_corosync(self, timeout=60):
        """qnetd on the witness, corosync and corosync-qdevice on both
        nodes; returns once both nodes see both members and the qdevice's
        vote (wait_quorate)."""
        for host in ("witness",) + NODES:
            os.makedirs(self._fs(host, "/run/corosync-qnetd"), exist_ok=True)
            os.makedirs(self._fs(host, "/run/corosync-qdevice"), exist_ok=True)
        self._certificates()
        self.spawn("witness", "corosync-qnetd", "corosync-qnetd", "-f", "-l", QNETD_ADDR, "-p", str(QNETD_PORT),
                   *self._heartbeat_option("heartbeat_interval_min"))
        for n in NODES:
            with open(self._fs(n, "/etc/corosync/corosync.conf"), "w") as f:
                f.write(self.corosync_conf())
            self.spawn(n, "corosync", "corosync", "-f")
        tap.wait_until(lambda: all(self._ipc_ready(n) for n in NODES), timeout,
                       "corosync to answer on both nodes")
        for n in NODES:
            self.spawn(n, "corosync-qdevice", "corosync-qdevice", "-f",
                       *self._heartbeat_option("net_heartbeat_interval_min"))
        self.wait_quorate(NODES, timeout=timeout, qdevice=True)

    def _heartbeat_option(self, name):
        """qdevice's heartbeat is 0.8 x its timeout, but both qdevice and
        qnetd raise one under 1 s to 1 s: qnetd then takes 1.5 s to find
        a lost node's qdevice dead, the survivor's vote waits that long,
        and a failover at token 300 took 1.2-1.6 s instead of 0.7-0.8 s.
        The option (@name, -S of either daemon) that lets a shorter
        timeout take effect, as docs/operations.md sets it."""
        heartbeat = self.state["qdevice_timeout"] * 8 // 10
        return ["-S", "%s=%d" % (name, heartbeat)] if heartbeat < 1000 else []

    def _ipc_ready(self, host):
        self._alive(host, "corosync")
        return self.run(host, "corosync-cfgtool", "-s", check=False).returncode == 0

    def _alive(self, host, name):
        """A SetupError with its log if @name, started on @host by this
        process, has exited."""
        if self.procs[(host, name)].poll() is not None:
            raise SetupError("%s on %s is not running:\n%s" % (name, host, self.log(host, name)))

    def quorum(self, host):
        """`corosync-quorumtool -s` on @host, parsed: {quorate, members
        (node ids), total_votes, expected_votes, qdevice (its vote counts
        and is alive), raw}; None when corosync does not answer."""
        try:
            out = self.run(host, "corosync-quorumtool", "-s", check=False, timeout=5).stdout
        except subprocess.TimeoutExpired:     # a frozen corosync
            return None
        if "Quorum provider" not in out:
            return None
        field = {}
        for line in out.splitlines():
            m = re.match(r"^([A-Za-z][A-Za-z ]+?):\s+(.*)$", line)
            if m:
                field[m.group(1)] = m.group(2).strip()
        # Rows: node id, votes, then the qdevice's flags for a node (A =
        # alive, V = voting) and its name, or "Qdevice" on the device's row.
        members, qdev_votes, local_flags = [], 0, []
        for line in out.splitlines():
            m = re.match(r"^\s*(\d+)\s+(\d+)\s+(\S.*)$", line)
            if m and m.group(3).startswith("Qdevice"):
                qdev_votes = int(m.group(2))
            elif m:
                members.append(int(m.group(1)))
                if m.group(3).endswith("(local)"):
                    local_flags = m.group(3).split()[0].split(",")
        qdev = qdev_votes > 0 and "A" in local_flags and "V" in local_flags
        return {"quorate": field.get("Quorate") == "Yes", "members": sorted(members),
                "total_votes": int(field.get("Total votes", 0)), "expected_votes": int(field.get("Expected votes", 0)),
                "qdevice": qdev, "raw": out}

    def wait_quorate(self, hosts, timeout=30, qdevice=True, members=None):
        """Until every one of @hosts is quorate with @members (default: both
        nodes) and, with @qdevice, the qdevice's vote."""
        want = sorted(int(n[-1]) for n in (members or NODES))

        def ready():
            for h in hosts:
                q = self.quorum(h)
                if not q or not q["quorate"] or q["members"] != want or (qdevice and not q["qdevice"]):
                    return False
            return True
        try:
            tap.wait_until(ready, timeout, "quorum on %s with members %s" % (", ".join(hosts), want), interval=0.2)
        except AssertionError as e:
            seen = "".join("--- corosync-quorumtool -s on %s\n%s" % (h, (self.quorum(h) or {"raw": "(no answer)\n"})["raw"])
                           for h in hosts)
            raise AssertionError("%s\n%s%s" % (e, seen, self.logs())) from None

    # -- faults ------------------------------------------------------------

    def signal(self, host, name, sig):
        """@sig to every process called @name on @host; how many got it."""
        pids = self.pids(host, name)
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        return len(pids)

    def _rule(self, host, *rule):
        self.run(host, "iptables", "-A", "colo-fault", *rule)

    def _isolate(self, host):
        """Nothing in or out of @host any more (not even a dying
        process's FIN): a host that lost power."""
        self._rule(host, "-j", "DROP")

    def fault(self, kind, host=None, name=None):
        """Inject one fault (FAULTS); recorded until heal():
        - sigkill, sigstop HOST NAME: that signal to the processes NAME on HOST
        - kill-host HOST: HOST drops off the network (a node's LAN port
          goes down too), then every process in its namespace gets
          SIGKILL (a power loss)
        - stop-host HOST: every process on HOST gets SIGSTOP (a frozen host)
        - drop-repl, reject-repl: the replication link black-holed (DROP)
          or cut (REJECT, TCP gets a reset) on both nodes
        - partition: the nodes no longer reach each other (ring and
          replication); each still reaches the witness
        - flap-client: the client's LAN link goes down and up 3 times
          (0.5 s down, 0.5 s up), at the switch's end
        - disk-full HOST: HOST's disk (disk()) filled to the last block
          by a file that heal() removes"""
        if kind == "sigkill":
            if not self.signal(host, name, signal.SIGKILL):
                raise SetupError("no process %s on %s" % (name, host))
        elif kind == "sigstop":
            if not self.signal(host, name, signal.SIGSTOP):
                raise SetupError("no process %s on %s" % (name, host))
            self.state["stopped"].append([host, name])
        elif kind == "kill-host":
            if host in NODES:
                self._isolate(host)
                # A dead host's NIC answers no ARP (iptables does not
                # filter it): the LAN address must not be claimed back.
                self.ip(host, "link", "set", "lan0", "down")
            self._kill_all([host])
        elif kind == "stop-host":
            for p in self.pids(host):
                try:
                    os.kill(p, signal.SIGSTOP)
                except ProcessLookupError:
                    pass
            self.state["stopped"].append([host, None])
        elif kind in ("drop-repl", "reject-repl"):
            for n in NODES:
                for d in ("-i", "-o"):
                    if kind == "drop-repl":
                        self._rule(n, d, "repl0", "-j", "DROP")
                    else:
                        if d == "-i":
                            self._rule(n, d, "repl0", "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset")
                        self._rule(n, d, "repl0", "-j", "REJECT")
        elif kind == "partition":
            for n in NODES:
                for dev in ("ring0", "repl0"):
                    self._rule(n, "-i", dev, "-j", "DROP")
                    self._rule(n, "-o", dev, "-j", "DROP")
        elif kind == "flap-client":
            # The switch's port goes down and up: the client loses its
            # carrier but keeps its addresses and routes.
            for _ in range(3):
                self.ip("lan", "link", "set", "client", "down")
                time.sleep(0.5)
                self.ip("lan", "link", "set", "client", "up")
                time.sleep(0.5)
        elif kind == "disk-full":
            if host not in NODES:
                raise SetupError("disk-full needs a node (%s)" % ", ".join(NODES))
            self._fill(self.disk(host, "disk-full.fill"))
        else:
            raise ValueError("unknown fault %r (one of %s)" % (kind, ", ".join(FAULTS)))
        self.state["faults"].append([kind, host, name])
        self.save()

    @staticmethod
    def _fill(path):
        """Write @path until its filesystem has no block left (ENOSPC)."""
        chunk = b"\0" * (1 << 20)
        with open(path, "ab", buffering=0) as f:
            try:
                while True:
                    f.write(chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
            # The last partial block: smaller writes until none fits.
            size = 1 << 19
            while size >= 512:
                try:
                    f.write(chunk[:size])
                except OSError:
                    size //= 2

    def _kill_all(self, hosts):
        """SIGKILL to every process on @hosts, until none is left (a
        process being killed is in its namespace until it has exited)."""
        for _ in range(100):
            pids = [p for host in hosts for p in ns_pids(self.ns[host])]
            if not pids:
                return
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        raise SetupError("processes still alive on %s: %s" % (", ".join(hosts), pids))

    def heal(self):
        """Undo what can be undone: the links' rules go, stopped processes
        continue, the client's link is up. Killed processes stay dead."""
        for n in NODES:
            self.run(n, "iptables", "-F", "colo-fault")
        for host, name in self.state["stopped"]:
            for p in self.pids(host, name):
                try:
                    os.kill(p, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        self.ip("lan", "link", "set", "client", "up")
        for n in NODES:
            try:
                os.unlink(self.disk(n, "disk-full.fill"))
            except FileNotFoundError:
                pass
        self.state["stopped"] = []
        self.state["faults"] = []
        self.save()

    # -- the end -----------------------------------------------------------

    def down(self):
        """Every process of every host killed (SIGKILL; stopped ones too),
        the namespaces deleted, the run dir removed. Works from any
        process, and on a half-built cluster."""
        self._kill_all(HOSTS)
        for n in NODES:
            if os.path.ismount(self.disk(n)):
                sh("umount", "-l", self.disk(n))
        for host in HOSTS:
            if ns_inode(self.ns[host]) is not None:
                sh("ip", "netns", "del", self.ns[host])
        shutil.rmtree(self.rundir, ignore_errors=True)
