#!/usr/bin/env python3
"""colod on real corosync (tests/lib/cluster.py: two nodes in network
namespaces, corosync-qnetd on a witness), driving colo-vmm with the test
guest and colo-proxy on an idle tap (the guest has no network device:
tests/colod/test-colod-proxy.py checks the network). The checks read
colod's log and colo-vmm's processes.

node1 holds the newer copy (primary, generation 5), node2 an older one
(secondary, 4): node1 starts the VM and protects it onto node2 (COLO on
both). A partition leaves node1 quorate (qnetd's tie-break): node1 fails
over, node2 pauses its VM; after the heal node2 is re-protected. Killing
node2's colod makes node1 fail over; node2's colod back picks up the
colo-vmm it left, finds it stale (the peer went on), stops it and is
re-protected. SIGTERM stops a colod with its VM and the
peer takes over."""
import signal

import cluster
import colod_cluster
import tap

the = {}
fail_with_logs = colod_cluster.with_logs(the)


def get():
    return colod_cluster.get(the, {"node1": ("primary", 5), "node2": ("secondary", 4)})


def start(c, node):
    colod_cluster.start(c, node)


def wait_log(c, node, text, timeout=30):
    tap.wait_until(lambda: text in c.log(node, "colod", 400), timeout,
                   "%s's colod to log %r" % (node, text), interval=0.1)


def count(c, node, text):
    return c.log(node, "colod", 5000).count(text)


def wait_protected(c, primary, secondary, before, timeout=90):
    """Until @primary logged "-> primary-protected" more often than @before
    (a pair of counts) and @secondary "-> secondary-protected"."""
    tap.wait_until(lambda: count(c, primary, "-> primary-protected") > before[0] and
                   count(c, secondary, "-> secondary-protected") > before[1], timeout,
                   "COLO with %s primary" % primary, interval=0.2)


def protected_counts(c, primary, secondary):
    return (count(c, primary, "-> primary-protected"), count(c, secondary, "-> secondary-protected"))


@tap.timeout(180)
@fail_with_logs
def test_newest_copy_starts_and_is_protected():
    colod_cluster.require()
    c = get()
    for n in cluster.NODES:
        start(c, n)
    wait_log(c, "node1", "-> primary-starting: this node holds the newest copy (primary, generation 5; the peer secondary, 4)")
    wait_log(c, "node2", "-> idle: the peer")
    wait_protected(c, "node1", "node2", (0, 0))
    assert len(c.pids("node1", "colo-vmm")) == 1 and len(c.pids("node2", "colo-vmm")) == 1


@tap.timeout(180)
@fail_with_logs
def test_partition_quorum_decides():
    c = get()
    before = protected_counts(c, "node1", "node2")
    c.fault("partition")
    wait_log(c, "node2", "the peer's colod (node 1) left the group (no quorum)", timeout=30)
    wait_log(c, "node2", "secondary-protected -> paused: quorum lost")
    wait_log(c, "node1", "primary-protected -> primary-alone: failover (generation 7)")
    assert "no quorum" not in c.log("node1", "colod", 5000), c.log("node1", "colod")
    c.heal()
    wait_log(c, "node2", "the peer went on while this node had no quorum", timeout=60)
    wait_protected(c, "node1", "node2", before)


@tap.timeout(180)
@fail_with_logs
def test_killed_colod_failover_and_back():
    c = get()
    before = protected_counts(c, "node1", "node2")
    failovers = count(c, "node1", "-> primary-alone: failover")
    c.fault("sigkill", "node2", "colod")
    tap.wait_until(lambda: count(c, "node1", "-> primary-alone: failover") > failovers, 30, "node1's failover")
    start(c, "node2")
    # The new colod picks up the secondary its predecessor left; the peer
    # went on without it, so that copy is stale and goes.
    wait_log(c, "node2", "picked up the running colo-vmm (secondary, in COLO) left by an earlier colod", timeout=60)
    wait_log(c, "node2", "the peer runs the VM alone at a newer generation: this node's VM stopped")
    wait_protected(c, "node1", "node2", before)
    assert len(c.pids("node2", "colo-vmm")) == 1, c.pids("node2", "colo-vmm")


@tap.timeout(120)
@fail_with_logs
def test_sigterm_stops_and_the_peer_takes_over():
    c = get()
    p = c.procs[("node1", "colod")]
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=15) == 0, c.log("node1", "colod")
    wait_log(c, "node1", "-> stopped: colod stops with the VM")
    assert not c.pids("node1", "colo-vmm"), "node1's colo-vmm outlived its colod"
    wait_log(c, "node2", "secondary-protected -> primary-alone: failover")
    assert len(c.pids("node2", "colo-vmm")) == 1
    p = c.procs[("node2", "colod")]
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=15) == 0, c.log("node2", "colod")
    tap.wait_until(lambda: not c.pids("node2", "colo-vmm"), 10, "node2's colo-vmm to stop")


cluster.run_tests(globals(), lambda: colod_cluster.teardown(the))
