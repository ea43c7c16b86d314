#!/usr/bin/env python3
"""colod driving colo-proxy, on real corosync (tests/lib/cluster.py: two
nodes in network namespaces, corosync-qnetd on a witness), with the test
guest behind a tap on each node (tests/lib/cluster_vm.py's network: the
client reaches the guest through node1's LAN port) and the client's
observer (tests/lib/cluster_client.py) talking TCP and UDP to the guest;
the LAN gateway follows the primary through colod's role hook.

node1 holds the newer copy: it starts the VM and protects it onto node2;
COLO runs with a primary colo-proxy on node1 and a secondary one on node2,
and the client's replies are compared before they leave node1. Killing
node1's colo-proxy while it holds the guest's replies: colod lets them
out, removes its rules, starts it again (passing traffic), the guest stays reachable, and the VM is protected again with
fresh proxies. A failover with proxies: node1's colo-vmm dies, node2's
guest takes over (its proxy lets its output out), the client goes on
through node2, node1 comes back as the secondary. Pick-up: with the VM
running alone, colod gets SIGKILL and is started again: it adopts the
running colo-vmm (same pid, the guest never paused, no break for the
client); with the VM protected, colod restarts on SIGUSR1: the peer
waits, the new colod adopts colo-vmm and colo-proxy and COLO goes on.
Needs root, corosync, iptables, /dev/kvm and /dev/net/tun."""
import os
import signal
import sys
import time

import cluster
import cluster_client
import cluster_vm
import colod_cluster
import tap
from qmp import QMPClient

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "netfilter"))
from proxyctl import ProxyCtl  # noqa: E402

the = {}

CONF = cluster_vm.CONF


def node_conf(c, node):
    """The guest's disk (empty on both: protect copies it) and its keys."""
    os.makedirs(cluster_vm.vmdir(c, node), exist_ok=True)
    with open(cluster_vm.vmdir(c, node, "disk.img"), "wb") as f:
        f.truncate(cluster_vm.DISK_SIZE)
    return dict(vmdir=cluster_vm.vmdir(c, node), ip=cluster_vm.GUEST_IP, gw=cluster_vm.GW_IP, tap=cluster_vm.TAP,
                mac=cluster_vm.GUEST_MAC, proxy_port=cluster_vm.PROXY_PORT, hook=cluster_vm.HOOK, vm=cluster_vm.VM,
                migrate_port=cluster_vm.MIGRATE_PORT)


def get():
    """The file's cluster with corosync up and quorate, the guest's network
    and the colods' files (built once)."""
    if "c" not in the:
        colod_cluster.require()
        cluster_vm.require()
        c = colod_cluster.get(the, {"node1": ("primary", 5), "node2": ("secondary", 4)}, conf=CONF, more=node_conf)
        cluster_vm._network(c)
    return the["c"]


def rundir(c, node, *name):
    """/run/colo/web1 of @node (its /run is a directory of the test's)."""
    return c.hostdir(node, "fs", "run", "colo", "web1", *name)


start = colod_cluster.start


def count(c, node, text):
    return c.log(node, "colod", 20000).count(text)


def wait_log(c, node, text, timeout=30, before=0):
    tap.wait_until(lambda: count(c, node, text) > before, timeout, "%s's colod to log %r" % (node, text),
                   interval=0.1)


def colod_lines(n=80):
    """colod's own lines of each node's log (colo-vmm and colo-proxy log
    into the same file, and much more)."""
    text = ""
    for node in cluster.NODES if "c" in the else ():
        lines = [line for line in the["c"].log(node, "colod", 100000).splitlines() if "colod-web1" in line]
        text += "--- %s: colod\n%s\n" % (node, "\n".join(lines[-n:]))
    return text


def fail_with_logs(fn):
    def wrapped():
        try:
            fn()
        except AssertionError as e:
            raise AssertionError("%s\n%s%s" % (e, colod_lines(), the["c"].logs(40) if "c" in the else "")) from None
    wrapped.__name__ = fn.__name__
    return wrapped


def protected_counts(c, primary, secondary):
    return (count(c, primary, "-> primary-protected"), count(c, secondary, "-> secondary-protected"))


def wait_protected(c, primary, secondary, before, timeout=120):
    tap.wait_until(lambda: count(c, primary, "-> primary-protected") > before[0] and
                   count(c, secondary, "-> secondary-protected") > before[1], timeout,
                   "COLO with %s primary" % primary, interval=0.2)


def vm(c, node):
    return QMPClient(rundir(c, node, "vmm.qmp"), timeout=5)


def colo_status(c, node):
    with vm(c, node) as q:
        return q.cmd("query-colo-status")


def proxy(c, node, command):
    ctl = ProxyCtl(rundir(c, node, "proxy.sock"))
    try:
        return ctl.execute(command)
    finally:
        ctl.sock.close()


def proxy_rules(c, node):
    """colo-proxy's iptables rules on @node (found by their comment)."""
    out = c.run(node, "iptables", "-S", "FORWARD", timeout=10).stdout
    return [line for line in out.splitlines() if "colo-proxy" in line]


def queued(c, node):
    """How many packets node's NFQUEUE holds (the kernel's count), -1
    when no program is bound to it."""
    out = c.run(node, "cat", "/proc/net/netfilter/nfnetlink_queue").stdout
    rows = [line.split() for line in out.splitlines() if line.split()[:1] == [str(cluster_vm.QUEUE_NUM)]]
    return int(rows[0][2]) if rows else -1


def observed(c):
    return cluster_client.read(cluster_vm.observer_path(c)) or {}


def wait_rounds(c, more, timeout=30, what="the client's rounds through the guest"):
    """Until the observer completed @more rounds beyond now; returns its state."""
    start_rounds = observed(c).get("rounds", 0)
    tap.wait_until(lambda: observed(c).get("rounds", 0) >= start_rounds + more, timeout, what, interval=0.2)
    return observed(c)


def connected_proxies(c):
    return all(colo_status(c, n).get("proxy", {}).get("connected") for n in cluster.NODES)


@tap.timeout(240)
@fail_with_logs
def test_protected_with_proxies():
    c = get()
    for n in cluster.NODES:
        start(c, n)
    wait_log(c, "node1", "-> primary-starting: this node holds the newest copy")
    wait_protected(c, "node1", "node2", (0, 0), timeout=180)
    assert len(c.pids("node1", "colo-proxy")) == 1 and len(c.pids("node2", "colo-proxy")) == 1, \
        (c.pids("node1", "colo-proxy"), c.pids("node2", "colo-proxy"))
    assert proxy(c, "node1", "query-status")["role"] == "primary"
    assert proxy(c, "node2", "query-status")["role"] == "secondary"
    tap.wait_until(lambda: connected_proxies(c), 20, "both colo-vmm connected to their proxies")
    # The queue the VM's file names ([proxy] queue-num), not queue 0.
    assert any("NFQUEUE --queue-num 9" in r for r in proxy_rules(c, "node1")), proxy_rules(c, "node1")
    assert any("DROP" in r for r in proxy_rules(c, "node2")), proxy_rules(c, "node2")
    cluster_vm.start_observer(c)
    before = proxy(c, "node1", "query-stats")
    obs = wait_rounds(c, 5)
    after = proxy(c, "node1", "query-stats")
    # The client's replies left node1 only after the secondary's matched.
    assert after["compared"] > before["compared"], (before, after)
    # coloctl status shows the proxy's own counters (colod polls them).
    def colod_proxy(node):
        with QMPClient(rundir(c, node, "colod.sock"), timeout=5) as q:
            return q.cmd("query-status")["colo-proxy"]
    tap.wait_until(lambda: (colod_proxy("node1") or {}).get("stats", {}).get("compared", 0) > 0, 10,
                   "colod's status to show node1's proxy comparing")
    cp = colod_proxy("node1")
    assert cp["role"] == "primary" and cp["pid"] == c.pids("node1", "colo-proxy")[0], cp
    assert colod_proxy("node2")["role"] == "secondary"
    assert obs.get("wrong_bytes", 0) == 0 and obs.get("udp_wrong", 0) == 0, obs
    assert cluster_vm.serving(c) == ["node1"]
    # The protect began only once the proxies were linked: the input from
    # the sync's stop on is mirrored over that link.
    log = c.log("node1", "colod", 20000)
    link, stop = log.find("notice: link up"), log.find("running -> finish-migrate")
    assert 0 <= link < stop, (link, stop)


@tap.timeout(240)
@fail_with_logs
def test_killed_primary_proxy():
    c = get()
    protected = protected_counts(c, "node1", "node2")
    cleanups = count(c, "node1", "the dead proxy's rules are gone")
    restarts = count(c, "node1", "starting colo-proxy again as primary")
    released = count(c, "node1", "the dead colo-proxy held")
    old = c.pids("node1", "colo-proxy")
    # With the secondary's proxy stopped, node1's holds the guest's replies
    # (nothing to compare them with) when it is killed: colod, which kept a
    # copy of its queue's socket, lets them out (the primary runs on alone),
    # rather than the kernel dropping them with the queue.
    c.fault("sigstop", "node2", "colo-proxy")
    tap.wait_until(lambda: queued(c, "node1") > 0, 10, "node1's proxy to hold the guest's output")
    c.fault("sigkill", "node1", "colo-proxy")
    wait_log(c, "node1", "the dead colo-proxy held: the primary runs on alone", before=released)
    print("# " + [line for line in c.log("node1", "colod", 100000).splitlines() if "the dead colo-proxy held" in line][-1])
    c.heal()
    wait_log(c, "node1", "the dead proxy's rules are gone", before=cleanups)
    wait_log(c, "node1", "starting colo-proxy again as primary", before=restarts)
    tap.wait_until(lambda: c.pids("node1", "colo-proxy") and c.pids("node1", "colo-proxy") != old, 20,
                   "a new colo-proxy on node1")
    # The restarted proxy passes traffic: no rule holds the guest's output
    # while COLO is broken.
    tap.wait_until(lambda: not proxy_rules(c, "node1"), 20, "node1's proxy rules to be gone")
    wait_rounds(c, 5, what="the client's rounds while node1's proxy was restarted")
    # COLO broke with the proxy: node1 runs on and protects again, with
    # fresh proxies on both nodes.
    wait_protected(c, "node1", "node2", protected, timeout=180)
    tap.wait_until(lambda: connected_proxies(c), 20, "both colo-vmm connected to their proxies again")
    wait_rounds(c, 5, what="the client's rounds after re-protection")
    assert cluster_vm.serving(c) == ["node1"]


@tap.timeout(300)
@fail_with_logs
def test_failover_with_proxies():
    c = get()
    failovers = count(c, "node2", "secondary-protected -> primary-alone: failover")
    proxy_failovers = count(c, "node2", "COLO: colo-proxy failed over")
    protected = protected_counts(c, "node2", "node1")
    carry_reads = count(c, "node2", "over to the primary colo-proxy") + count(c, "node2", "nothing to carry over")
    replays = count(c, "node2", "colo-proxy sent the guest's last output again")
    lingers = count(c, "node1", "colo-proxy stays until the secondary serves the clients")
    linger_ends = count(c, "node1", "primary): the secondary serves the clients")
    c.fault("sigkill", "node1", "colo-vmm")
    wait_log(c, "node2", "secondary-protected -> primary-alone: failover", before=failovers)
    # colo-vmm told its proxy: the secondary guest's output goes out.
    wait_log(c, "node2", "COLO: colo-proxy failed over", before=proxy_failovers)
    # The LAN gateway's address moves with the primary: colod's role
    # hook (tests/cluster/role-change) on node2.
    tap.wait_until(lambda: cluster.LAN_GW + "/" in c.ip("node2", "addr", "show", "lan0").stdout, 20,
                   "the LAN gateway on node2")
    # node1 comes back as the secondary at once; node2's proxy becomes a
    # primary one.
    wait_protected(c, "node2", "node1", protected, timeout=180)
    wait_rounds(c, 5, timeout=60, what="the client's rounds through node2")
    assert cluster_vm.serving(c) == ["node2"]
    assert proxy(c, "node2", "query-status")["role"] == "primary"
    assert proxy(c, "node1", "query-status")["role"] == "secondary"
    # The taken-over proxy's rewriter flows were read before it was
    # replaced (issue 14: carried over to the primary one, if any).
    assert count(c, "node2", "over to the primary colo-proxy") + count(c, "node2", "nothing to carry over") > \
        carry_reads, colod_lines()
    # The taken-over proxy sent its guest's output once more after the role
    # hook moved the address, before the re-protection replaced it
    # (docs/colo-proxy.md, "Replay at a takeover").
    log = c.log("node2", "colod", 100000)
    assert count(c, "node2", "colo-proxy sent the guest's last output again") > replays, colod_lines()
    assert log.rindex("role-change hook (primary) done") < log.rindex("sent the guest's last output again") < \
        log.rindex("stopping colo-proxy"), colod_lines()
    # node1's proxy outlived its colo-vmm, mirroring the clients' input to
    # node2, until node2 said it serves them (docs/colod.md, "A primary
    # whose colo-vmm died"); only then did node1 start its secondary.
    log1 = c.log("node1", "colod", 100000)
    assert count(c, "node1", "colo-proxy stays until the secondary serves the clients") > lingers, colod_lines()
    assert count(c, "node1", "primary): the secondary serves the clients") > linger_ends, colod_lines()
    assert log1.rindex("primary): the secondary serves the clients") < log1.rindex("colo-vmm started as secondary"), \
        colod_lines()
    assert not any("DROP" in r for r in proxy_rules(c, "node2")), proxy_rules(c, "node2")
    assert any("DROP" in r for r in proxy_rules(c, "node1")), proxy_rules(c, "node1")
    tap.wait_until(lambda: connected_proxies(c), 20, "both colo-vmm connected to their proxies")
    wait_rounds(c, 5, what="the client's rounds through node2, protected")


def vmm_pauses(c, node):
    """How often @node's colo-vmm logged its guest stopping."""
    return c.log(node, "colod", 100000).count("running -> paused")


@tap.timeout(300)
@fail_with_logs
def test_kill9_colod_picks_up_the_vm():
    c = get()
    # node1's colod stops with its VM: node2 runs the VM alone (its proxy,
    # failed over, passes traffic). node1 stops its VM before it tells
    # node2, so node2's colo-vmm may report the secondary lost first: then
    # node2 claims the VM and takes it at the shutdown message
    # (failover-claimed -> primary-alone) instead of at once.
    failovers = count(c, "node2", "-> primary-alone")
    p = c.procs[("node1", "colod")]
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=20) == 0, colod_lines()
    wait_log(c, "node2", "-> primary-alone", before=failovers)
    vmm, prx = c.pids("node2", "colo-vmm"), c.pids("node2", "colo-proxy")
    assert len(vmm) == 1 and len(prx) == 1, (vmm, prx)
    tap.wait_until(lambda: proxy(c, "node2", "query-status")["failed-over"], 10, "node2's proxy to pass traffic")
    wait_rounds(c, 3)
    before, pauses = observed(c), vmm_pauses(c, "node2")
    picked = count(c, "node2", "picked up the running colo-vmm (primary) left by an earlier colod")
    c.fault("sigkill", "node2", "colod")
    time.sleep(1)
    start(c, "node2")
    wait_log(c, "node2", "picked up the running colo-vmm (primary) left by an earlier colod", before=picked)
    wait_log(c, "node2", "-> primary-alone: picked up the running colo-vmm")
    after = wait_rounds(c, 5, what="the client's rounds after colod's restart")
    assert c.pids("node2", "colo-vmm") == vmm, (vmm, c.pids("node2", "colo-vmm"))
    assert c.pids("node2", "colo-proxy") == prx, (prx, c.pids("node2", "colo-proxy"))
    assert count(c, "node2", "picked up colo-proxy pid %d" % prx[0]) == 1
    assert vmm_pauses(c, "node2") == pauses, "the picked-up guest was paused"
    assert after["broken"] == before["broken"], (before, after)
    assert after.get("udp_lost", 0) == before.get("udp_lost", 0), (before, after)
    with vm(c, "node2") as q:
        assert q.cmd("query-status")["running"]
    # The new colod drives the VM: node1 back is protected by it.
    protected = protected_counts(c, "node2", "node1")
    start(c, "node1")
    wait_protected(c, "node2", "node1", protected, timeout=180)
    tap.wait_until(lambda: connected_proxies(c), 20, "both colo-vmm connected to their proxies")


@tap.timeout(240)
@fail_with_logs
def test_restart_keeps_colo():
    c = get()
    vmm = {n: c.pids(n, "colo-vmm") for n in cluster.NODES}
    prx = {n: c.pids(n, "colo-proxy") for n in cluster.NODES}
    failovers = count(c, "node1", "-> primary-alone")
    picked = count(c, "node2", "picked up the running colo-vmm (primary, in COLO)")
    before = observed(c)
    p = c.procs[("node2", "colod")]
    p.send_signal(signal.SIGUSR1)
    assert p.wait(timeout=20) == 0, colod_lines()
    wait_log(c, "node1", "the peer's colod restarts")
    start(c, "node2")
    wait_log(c, "node2", "picked up the running colo-vmm (primary, in COLO)", before=picked)
    wait_log(c, "node2", "-> primary-protected: picked up")
    compared = proxy(c, "node2", "query-stats")["compared"]
    after = wait_rounds(c, 5, what="the client's rounds after colod's restart")
    assert proxy(c, "node2", "query-stats")["compared"] > compared, "COLO stopped comparing"
    assert count(c, "node1", "-> primary-alone") == failovers, colod_lines()
    assert {n: c.pids(n, "colo-vmm") for n in cluster.NODES} == vmm
    assert {n: c.pids(n, "colo-proxy") for n in cluster.NODES} == prx
    assert after["broken"] == before["broken"], (before, after)
    assert connected_proxies(c)


cluster.run_tests(globals(), lambda: colod_cluster.teardown(the))
