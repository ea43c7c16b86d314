"""The protected test guest of the two-node cluster, driven over QMP the
way tests/lib/colo_net.py does it, UNTIL COLOD LANDS (issue 11): then
colod starts and drives colo-vmm and colo-proxy, and this module goes.

On node1 the primary colo-vmm runs the bundled test guest behind a tap
(the guest's gateway, 10.81.0.1, is the tap), with a 1 MiB virtio-blk
disk (RUNDIR/HOST/vm/disk.img, node2's starts empty), and a primary colo-proxy;
node2 runs the secondary colo-vmm (-incoming on the replication link) and
a secondary colo-proxy. start() enters COLO with QMP migrate (x-colo).
node1's LAN port carries the LAN gateway (10.82.0.1), through which the
client reaches the guest at 10.81.0.2; node2's LAN port has the same MAC
and stays down until failover() on node2 takes the address over. Nothing
calls failover() on its own: that is colod's job.

Every process is started through Cluster.spawn, detached, with its files
under RUNDIR/HOST/vm/, so a later colo-cluster command finds them and
Cluster.down() kills them with the host.
"""
import os
import sys
import time

import cluster
import cluster_client
import colo_vmm
import tap
from qmp import QMPClient

sys.path.insert(0, os.path.join(colo_vmm.SRCDIR, "tests", "netfilter"))
from proxyctl import ProxyCtl  # noqa: E402

PROXY = os.path.join(colo_vmm.BUILDDIR, "netfilter", "colo-proxy")
GUEST_IP, GW_IP = "10.81.0.2", "10.81.0.1"
GUEST_MAC, GW_MAC, LAN_MAC = "52:54:00:81:00:02", "52:54:00:81:00:01", "52:54:00:82:00:01"
TAP = "tap0"
MIGRATE_PORT, PROXY_PORT = 4444, 7700
DISK_SIZE = 1 << 20
ROLE = {"node1": "primary", "node2": "secondary"}


def require():
    """Skip (capability reasons) where the guest cannot run; a colo-proxy
    or colo-vmm that is not built is a failure."""
    colo_vmm.require_kvm()
    if not os.path.exists("/dev/net/tun"):
        tap.skip("no /dev/net/tun")
    if not os.access(PROXY, os.X_OK):
        raise AssertionError("colo-proxy not built at " + PROXY)


def vmdir(c, host, *name):
    return c.hostdir(host, "vm", *name)


def qmp(c, host, timeout=5.0):
    return QMPClient(vmdir(c, host, "qmp.sock"), timeout=timeout)


def _network(c):
    for host in cluster.NODES:
        c.ip(host, "tuntap", "add", "dev", TAP, "mode", "tap", "vnet_hdr")
        c.ip(host, "link", "set", TAP, "address", GW_MAC)
        c.ip(host, "addr", "add", GW_IP + "/24", "dev", TAP)
        c.ip(host, "link", "set", TAP, "up")
        c.run(host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    for host in cluster.NODES:
        # Counts what the guest's side sends out to the LAN from this
        # host (after the proxy let it go): served().
        c.run(host, "iptables", "-t", "mangle", "-N", "colo-served")
        c.run(host, "iptables", "-t", "mangle", "-A", "POSTROUTING", "-o", "lan0", "-j", "colo-served")
        c.run(host, "iptables", "-t", "mangle", "-A", "colo-served", "-s", GUEST_IP)
    c.ip("node2", "link", "set", "lan0", "down")
    for host in cluster.NODES:
        c.ip(host, "link", "set", "lan0", "address", LAN_MAC)
    c.ip("node1", "addr", "add", cluster.LAN_GW + "/24", "dev", "lan0")
    c.ip("client", "route", "add", "10.81.0.0/24", "via", cluster.LAN_GW)


def _vmm(c, host, extra):
    d = vmdir(c, host)
    argv = [colo_vmm.VMM, "-m", "64M", "-smp", "1", "-kernel", colo_vmm.GUEST,
            "-serial", "file:" + os.path.join(d, "serial.log"), "-D", os.path.join(d, "vmm.log"),
            "-append", "ip=%s/24 gw=%s interval=0" % (GUEST_IP, GW_IP),
            "-qmp", "unix:%s,server=on,wait=off" % os.path.join(d, "qmp.sock"),
            "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % TAP,
            "-device", "virtio-net-pci,netdev=n0,mac=" + GUEST_MAC,
            "-colo-proxy", os.path.join(d, "proxy.sock"),
            "-drive", "file=%s,if=virtio,format=raw" % os.path.join(d, "disk.img")] + extra
    c.spawn(host, "colo-vmm", *argv)


def serial(c, host):
    try:
        with open(vmdir(c, host, "serial.log"), errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def start(c, delay=300, timeout=90):
    """Both VMMs and proxies, the guest booted on node1 and protected:
    returns once both sides are in COLO with their proxies connected."""
    for host in cluster.NODES:
        os.makedirs(vmdir(c, host), exist_ok=True)
        # The secondary's image starts empty too: protect copies the disk.
        with open(vmdir(c, host, "disk.img"), "wb") as f:
            f.truncate(DISK_SIZE)
    _network(c)
    _vmm(c, "node1", [])
    _vmm(c, "node2", ["-incoming", "tcp:%s:%d" % (cluster.REPL["node2"], MIGRATE_PORT)])

    def booted():
        c._alive("node1", "colo-vmm")
        return "colo-testguest ready" in serial(c, "node1")
    tap.wait_until(booted, timeout, "the test guest to boot on node1")
    link = "%s:%d" % (cluster.REPL["node1"], PROXY_PORT)
    c.spawn("node1", "colo-proxy", PROXY, "-r", "primary", "-i", TAP, "-q", "9", "-L", link,
            "-c", vmdir(c, "node1", "proxy.sock"))
    c.spawn("node2", "colo-proxy", PROXY, "-r", "secondary", "-i", TAP, "-q", "9", "-C", link,
            "-c", vmdir(c, "node2", "proxy.sock"))
    for host in cluster.NODES:
        tap.wait_until(lambda: c._alive(host, "colo-proxy") or os.path.exists(vmdir(c, host, "proxy.sock")),
                       10, "colo-proxy's control socket on " + host)
    ctl = ProxyCtl(vmdir(c, "node1", "proxy.sock"))
    try:
        tap.wait_until(lambda: ctl.execute("query-status")["peer-link"], 10, "the proxies to link up")
    finally:
        ctl.sock.close()
    vms = {host: qmp(c, host) for host in cluster.NODES}
    try:
        for vm in vms.values():
            vm.cmd("migrate-set-capabilities", capabilities=[{"capability": "x-colo", "state": True}])
        vms["node1"].cmd("migrate-set-parameters", args={"x-checkpoint-delay": delay, "max-bandwidth": 0})
        vms["node1"].cmd("migrate", uri="tcp:%s:%d" % (cluster.REPL["node2"], MIGRATE_PORT))
        for host, vm in vms.items():
            tap.wait_until(lambda: vm.cmd("query-migrate").get("status") == "colo", timeout, "COLO on " + host)
            tap.wait_until(lambda: vm.cmd("query-colo-status")["proxy"]["connected"], 10,
                           "colo-vmm on %s connected to its proxy" % host)
    finally:
        for vm in vms.values():
            vm.close()


def failover(c, host):
    """What colod will do when the peer is lost, by hand: @host's colo-vmm
    leaves COLO and runs on alone (x-colo-lost-heartbeat; its proxy stops
    holding and comparing); on node2 it also takes the LAN gateway's
    address, as a floating address moves. Returns the COLO_EXIT event."""
    with qmp(c, host) as vm:
        vm.cmd("x-colo-lost-heartbeat")
        ev = vm.wait_event("COLO_EXIT", 10)
    if host == "node2":
        c.ip("node2", "addr", "add", cluster.LAN_GW + "/24", "dev", "lan0")
        c.ip("node2", "link", "set", "lan0", "up")
    return ev


def served(c, host):
    """How many packets from the guest @host has sent out to the LAN."""
    out = c.run(host, "iptables", "-t", "mangle", "-L", "colo-served", "-vnx", timeout=5).stdout
    rows = [line.split() for line in out.splitlines()[2:] if line.strip()]
    return int(rows[0][0]) if rows else 0


def serving(c, interval=3.0):
    """The nodes that sent the guest's packets to the LAN during @interval
    seconds: one while the client's observer runs; two is a split brain.
    (Seconds, not one: on a loaded machine the observer's rounds, 0.3 s
    apart, were once all late for a whole second.)"""
    before = {h: served(c, h) for h in cluster.NODES}
    time.sleep(interval)
    return [h for h in cluster.NODES if served(c, h) > before[h]]


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


def observer_path(c):
    return c.hostdir("client", "observer.json")


def status(c, host):
    """What node @host runs: {role (primary, secondary; primary too for a
    guest running outside COLO; none without a VMM or with one waiting;
    unknown for a VMM stopped by SIGSTOP, then frozen is true),
    running (its guest runs), protected (in COLO), vm-status, colo,
    checkpoints, served-packets (served())}."""
    out = {"role": "none", "running": False}
    if os.path.exists(vmdir(c, host)):
        out["served-packets"] = served(c, host)
    if not os.path.exists(vmdir(c, host, "qmp.sock")) or not c.pids(host, "colo-vmm"):
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
