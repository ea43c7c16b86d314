"""The protected test guest of the two-node cluster, run by colod.

Each node runs colod (docs/colod.md) for the VM web1 under
tests/cluster/colod-unit (what colod@.service does: after an unclean end
of colod its colo-vmm and colo-proxy are killed and colod starts again);
colod starts colo-vmm with the bundled test guest behind a tap (the
guest's gateway, 10.81.0.1, is the tap) and a 1 MiB virtio-blk disk
(RUNDIR/HOST/vm/disk.img, empty on both: protect copies it), starts
colo-proxy, and protects the guest: node1 is seeded with the newer
generation, so it starts the VM and node2 becomes its secondary. The
client reaches the guest at 10.81.0.2 through the LAN gateway 10.82.0.1,
which follows the primary through colod's role hook
(tests/cluster/role-change: the address on lan0 and a gratuitous ARP);
each node's LAN port has a MAC of its own. Nothing here moves it.

Every process is started through Cluster.spawn, detached, with its files
under RUNDIR/HOST/, so a later colo-cluster command finds them and
Cluster.down() kills them with the host. colod's sockets and pid files are
in the node's private /run (RUNDIR/HOST/fs/run/colo/web1/).

The API (the fault matrix builds on it, INTERFACES): start, status,
serving, start_observer, observer_path, coloctl, primary, wait_protected,
restart_node.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import cluster
import cluster_client
import colo_vmm
import tap
from qmp import QMPClient

BUILD = colo_vmm.BUILDDIR
COLOD = os.path.join(BUILD, "colod", "colod")
COLOCTL = os.path.join(BUILD, "coloctl", "coloctl")
PROXY = os.path.join(BUILD, "netfilter", "colo-proxy")
HERE = os.path.join(colo_vmm.SRCDIR, "tests", "cluster")
UNIT = os.path.join(HERE, "colod-unit")
HOOK = os.path.join(HERE, "role-change")
VM = "web1"
GUEST_IP, GW_IP = "10.81.0.2", "10.81.0.1"
GUEST_MAC, GW_MAC = "52:54:00:81:00:02", "52:54:00:81:00:01"
LAN_MAC = {"node1": "52:54:00:82:00:11", "node2": "52:54:00:82:00:12"}
TAP = "tap0"
MIGRATE_PORT, PROXY_PORT = 4444, 7700
DISK_SIZE = 1 << 20
SEEDS = {"node1": ("primary", 5), "node2": ("secondary", 4)}

CONF = """# written by tests/lib/cluster_vm.py (colo.conf(5))
[vm]
name={vm}
vmm-binary={vmm}
vmm-args=-m 64M -smp 1 -kernel {guest} -serial file:{vmdir}/serial.log \
 -append "ip={ip}/24 gw={gw} interval=0" \
 -netdev tap,id=n0,ifname={tap},script=no,downscript=no -device virtio-net-pci,netdev=n0,mac={mac} \
 -drive file={vmdir}/disk.img,if=virtio,format=raw
state-dir={state}
[cluster]
peer-name={peer}
peer-node-id={peer_id}
[replication]
address={addr}
peer-address={peer_addr}
migration-port={migrate_port}
proxy-port={proxy_port}
[proxy]
guest-interface={tap}
queue-num=9
proxy-binary={proxy}
[timeouts]
peer-wait-ms=5000
protect-retry-ms=2000
restart-grace-ms=20000
[hooks]
role-change={hook}
role-change-timeout-ms=5000
"""
# The NFQUEUE of the primary's colo-proxy ([proxy] queue-num above).
QUEUE_NUM = 9
assert "queue-num=%d\n" % QUEUE_NUM in CONF


def require():
    """Skip (capability reasons) where the guest cannot run; a binary of
    ours that is not built is a failure."""
    colo_vmm.require_kvm()
    if not os.path.exists("/dev/net/tun"):
        tap.skip("no /dev/net/tun")
    if not shutil.which("arping"):
        tap.skip("not installed: arping (Debian: iputils-arping)")
    for f in (COLOD, COLOCTL, PROXY, colo_vmm.VMM, colo_vmm.GUEST):
        if not os.access(f, os.X_OK):
            raise AssertionError("not built: " + f)


def vmdir(c, host, *name):
    return c.hostdir(host, "vm", *name)


def rundir(c, host, *name):
    """/run/colo/web1 of @host, seen from here."""
    return c.hostdir(host, "fs", "run", "colo", VM, *name)


def qmp(c, host, timeout=5.0):
    return QMPClient(rundir(c, host, "vmm.qmp"), timeout=timeout)


def _network(c):
    for host in cluster.NODES:
        c.ip(host, "tuntap", "add", "dev", TAP, "mode", "tap", "vnet_hdr")
        c.ip(host, "link", "set", TAP, "address", GW_MAC)
        c.ip(host, "addr", "add", GW_IP + "/24", "dev", TAP)
        c.ip(host, "link", "set", TAP, "up")
        c.run(host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        c.ip(host, "link", "set", "lan0", "address", LAN_MAC[host])
        # Counts what the guest's side sends out to the LAN from this
        # host (after the proxy let it go): served().
        c.run(host, "iptables", "-t", "mangle", "-N", "colo-served")
        c.run(host, "iptables", "-t", "mangle", "-A", "POSTROUTING", "-o", "lan0", "-j", "colo-served")
        c.run(host, "iptables", "-t", "mangle", "-A", "colo-served", "-s", GUEST_IP)
    c.ip("client", "route", "add", "10.81.0.0/24", "via", cluster.LAN_GW)


def _files(c, host):
    """The node's VM file, state file (SEEDS) and empty disk."""
    i = cluster.NODES.index(host)
    peer = cluster.NODES[1 - i]
    state = c.hostdir(host, "colo-" + VM)
    os.makedirs(state, exist_ok=True)
    os.makedirs(vmdir(c, host), exist_ok=True)
    with open(os.path.join(state, "state"), "w") as f:
        f.write("[colod-state]\nversion=1\nrole=%s\ngeneration=%d\n" % SEEDS[host])
    with open(vmdir(c, host, "disk.img"), "wb") as f:
        f.truncate(DISK_SIZE)
    with open(conf_path(c, host), "w") as f:
        f.write(CONF.format(vm=VM, vmm=colo_vmm.VMM, guest=colo_vmm.GUEST, proxy=PROXY, state=state, peer=peer,
                            peer_id=2 - i, addr=cluster.REPL[host], peer_addr=cluster.REPL[peer],
                            vmdir=vmdir(c, host), ip=GUEST_IP, gw=GW_IP, tap=TAP, mac=GUEST_MAC,
                            migrate_port=MIGRATE_PORT, proxy_port=PROXY_PORT, hook=HOOK))


def conf_path(c, host):
    return c.hostdir(host, VM + ".conf")


def start_colod(c, host):
    """colod on @host, under colod-unit (as systemd would run it)."""
    c.spawn(host, "colod", UNIT, COLOD, conf_path(c, host), VM, HOOK)


def serial(c, host):
    try:
        with open(vmdir(c, host, "serial.log"), errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def coloctl(c, node, *args, timeout=5.0):
    """`coloctl --json ARGS` on @node, parsed; a failure (colod not
    there, refused, no answer) raises AssertionError with coloctl's
    message and exit status (2: unreachable, 3: refused, 4: no answer)."""
    r = c.run(node, COLOCTL, "--vm", VM, "--timeout", str(int(timeout * 1000)), "--json", *args, check=False,
              timeout=timeout + 10)
    if r.returncode != 0:
        raise AssertionError("coloctl %s on %s: exit %d: %s" % (" ".join(args), node, r.returncode,
                                                                r.stderr.strip() or r.stdout.strip()))
    out = r.stdout.strip()
    return json.loads(out) if out else {}


def colod_status(c, node, timeout=2.0):
    """@node's `coloctl --json status`, or None (no colod, frozen, ...)."""
    if not c.pids(node, "colod") or c.frozen(node, "colod"):
        return None
    try:
        return coloctl(c, node, "status", timeout=timeout)
    except (AssertionError, ValueError, subprocess.TimeoutExpired):
        return None


def runs_primary(c, node):
    """Whether colod on @node runs the VM as primary, not paused, now."""
    st = colod_status(c, node)
    return bool(st and st["vmm"]["kind"] == "primary" and not st["vmm"]["paused"])


def primary(c):
    """The node whose colod runs the VM as primary, not paused, now; None
    if none does (or, a split brain, both)."""
    found = [n for n in cluster.NODES if runs_primary(c, n)]
    return found[0] if len(found) == 1 else None


def _proxy_connected(c, node):
    try:
        with qmp(c, node, timeout=2) as vm:
            return vm.cmd("query-colo-status").get("proxy", {}).get("connected", False)
    except Exception:  # noqa: BLE001 - not yet: colo-vmm starting or gone
        return False


def wait_protected(c, primary, timeout=120):
    """Until colod on both nodes says protected with @primary the
    primary, and both colo-vmm are connected to their proxies."""
    secondary = cluster.NODES[1 - cluster.NODES.index(primary)]
    seen = {}

    def protected():
        for n, want in ((primary, "primary-protected"), (secondary, "secondary-protected")):
            seen[n] = colod_status(c, n)
            if not seen[n] or seen[n]["state"] != want:
                return False
        return _proxy_connected(c, primary) and _proxy_connected(c, secondary)
    try:
        tap.wait_until(protected, timeout, "COLO with %s primary" % primary, interval=0.3)
    except AssertionError as e:
        raise AssertionError("%s; colod said: %s" % (e, {n: s and {k: s[k] for k in ("state", "reason")}
                                                         for n, s in seen.items()})) from None


def start(c, delay=None, timeout=180):
    """Both nodes' colod (with colo-vmm and colo-proxy under them), the
    guest booted on node1 and protected onto node2; returns once
    protected and both proxies connected. @delay: the checkpoint delay
    in ms (coloctl set checkpoint-delay), default colo-vmm's."""
    _network(c)
    for host in cluster.NODES:
        _files(c, host)
        start_colod(c, host)
    if delay is not None:
        for host in cluster.NODES:
            tap.wait_until(lambda: colod_status(c, host) is not None, 30, "colod's control socket on " + host)
            coloctl(c, host, "set", "checkpoint-delay", str(delay))
    wait_protected(c, "node1", timeout)


def restart_node(c, node, wait=True, timeout=180):
    """@node back after a host kill (or any killed process), as a host
    comes back from a reboot: whatever is left on it killed, its volatile
    state gone (/run, /dev/shm, iptables faults, colo-proxy's rules, the
    LAN address), then corosync and corosync-qdevice and colod again.
    colod rejoins and, the peer having gone on at a newer generation,
    becomes its secondary; with @wait, returns once protected again."""
    c._kill_all([node])
    for d in ("/run", "/dev/shm"):
        path = c._fs(node, d)
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
    os.makedirs(c._fs(node, "/run/corosync-qdevice"), exist_ok=True)
    c.run(node, "iptables", "-F", "colo-fault")
    c.run(node, PROXY, "--cleanup", "--guest-iface", TAP, check=False)
    c.lan_reset(node)
    c.state["stopped"] = [s for s in c.state["stopped"] if s[0] != node]
    c.state["faults"] = [f for f in c.state["faults"] if f[1] != node]
    c.save()
    c.spawn(node, "corosync", "corosync", "-f")
    tap.wait_until(lambda: c._ipc_ready(node), 60, "corosync to answer on " + node)
    c.spawn(node, "corosync-qdevice", "corosync-qdevice", "-f")
    c.wait_quorate(cluster.NODES, timeout=60)
    start_colod(c, node)
    if wait:
        other = cluster.NODES[1 - cluster.NODES.index(node)]
        wait_protected(c, other, timeout)


def served(c, host):
    """How many packets from the guest @host has sent out to the LAN;
    None without the guest's network (colo-cluster up --no-guest)."""
    r = c.run(host, "iptables", "-t", "mangle", "-L", "colo-served", "-vnx", check=False, timeout=5)
    if r.returncode != 0:
        return None
    out = r.stdout
    rows = [line.split() for line in out.splitlines()[2:] if line.strip()]
    return int(rows[0][0]) if rows else 0


def serving(c, interval=3.0, counts=False):
    """The nodes that sent the guest's packets to the LAN during @interval
    seconds: one while the client's observer runs; two is a split brain.
    (Seconds, not one: on a loaded machine the observer's rounds, 0.3 s
    apart, were once all late for a whole second.) With @counts, a dict
    of those nodes and how many packets each sent."""
    before = {h: served(c, h) for h in cluster.NODES}
    time.sleep(interval)
    sent = {h: served(c, h) - before[h] for h in cluster.NODES}
    sent = {h: n for h, n in sent.items() if n > 0}
    return sent if counts else list(sent)


def start_observer(c):
    """The client's workload and observer (tests/lib/cluster_client.py)
    on the client host, writing RUNDIR/client/observer.json; returns once
    its first round went through."""
    out = observer_path(c)
    c.spawn("client", "observer", sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                              "cluster_client.py"), GUEST_IP, out)

    def first_round():
        c._alive("client", "observer")
        return (cluster_client.read(out) or {}).get("rounds", 0) > 0
    tap.wait_until(first_round, 30, "the client's first round through the guest")


class Pinger:
    """ping from the client to the guest every 50 ms (RUNDIR/client/ping.log):
    the longest gap between two answers is how long the guest was out of
    reach, without the retry intervals of a client's own protocols."""

    def __init__(self, c):
        self.c = c
        self.log = c.hostdir("client", "ping.log")
        if os.path.exists(self.log):
            os.unlink(self.log)
        self.pid = c.spawn("client", "ping", "ping", "-D", "-n", "-i", "0.05", "-W", "1", GUEST_IP)

    def stop(self):
        """Ends ping; returns the longest gap between answers, seconds."""
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        self.c.procs[("client", "ping")].wait(timeout=10)
        stamps = []
        with open(self.log, errors="replace") as f:
            for line in f:
                m = re.match(r"^\[(\d+\.\d+)\] \d+ bytes from", line)
                if m:
                    stamps.append(float(m.group(1)))
        return max((b - a for a, b in zip(stamps, stamps[1:])), default=0.0)


def observer_path(c):
    return c.hostdir("client", "observer.json")


def status(c, host):
    """What node @host runs: {role (primary, secondary; primary too for a
    guest running outside COLO; none without a VMM or with one waiting;
    unknown for a VMM stopped by SIGSTOP, then frozen is true),
    running (its guest runs), protected (in COLO), vm-status, colo,
    checkpoints, served-packets (served()), colod (its `coloctl --json
    status`, None without a colod that answers)}."""
    out = {"role": "none", "running": False, "colod": colod_status(c, host)}
    packets = served(c, host)
    if packets is not None:
        out["served-packets"] = packets
    if not os.path.exists(rundir(c, host, "vmm.qmp")) or not c.pids(host, "colo-vmm"):
        return out
    if c.frozen(host, "colo-vmm"):
        out.update(role="unknown", frozen=True)
        return out
    try:
        vm = qmp(c, host, timeout=2)
    except Exception as e:  # noqa: BLE001 - a frozen or dead VMM is a state to show
        out["error"] = str(e)
        return out
    try:
        st = vm.cmd("query-status")
        colo = vm.cmd("query-colo-status")
        out["running"] = st.get("running", False)
        out["vm-status"] = st.get("status")
        # In COLO the mode says it; outside, a running guest serves alone.
        mode = colo.get("mode", "none")
        out["role"] = mode if mode != "none" else ("primary" if out["running"] else "none")
        out["protected"] = mode != "none"
        out["colo"] = {k: colo[k] for k in ("mode", "last-mode", "reason") if k in colo}
        out["checkpoints"] = colo.get("checkpoints", {}).get("count")
    except Exception as e:  # noqa: BLE001
        out["error"] = str(e)
    finally:
        vm.close()
    return out


def colod_log(c, host, lines=60):
    """colod's own lines of @host's colod log (colo-vmm and colo-proxy
    write there too, and much more)."""
    text = c.log(host, "colod", 100000).splitlines()
    return "\n".join([line for line in text if "colod-" + VM in line or "role-change" in line or
                      "colod-unit" in line][-lines:])
