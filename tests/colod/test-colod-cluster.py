#!/usr/bin/env python3
"""colod on real corosync (tests/lib/cluster.py: two nodes in network
namespaces, corosync-qnetd on a witness): the CPG group, the messages and
votequorum's verdict reach the state machine. This colod does not drive
colo-vmm yet, so the checks read its log: the decisions, and each action on
colo-vmm logged as not carried out.

node1 holds the newer copy (primary, generation 5), node2 an older one
(secondary, 4): node1 decides to start the VM, node2 stands by. A
partition leaves node1 quorate (qnetd's tie-break); node2, without a VM,
waits for quorum. Killing node2's colod is seen by node1; SIGTERM stops a
colod cleanly and its peer hears of it."""
import os
import shutil
import signal
import tempfile
import time

import cluster
import tap

BUILD = os.environ.get("COLO_BUILDDIR", ".")
COLOD = os.path.join(BUILD, "colod", "colod")
the = {}

CONF = """[vm]
name=web1
vmm-args=-m 64
state-dir={state}
[cluster]
peer-name={peer}
peer-node-id={peer_id}
[replication]
address={addr}
peer-address={peer_addr}
[proxy]
guest-interface=tap-web1
[timeouts]
peer-wait-ms=5000
"""


def get():
    """The file's cluster with corosync up and quorate (built once)."""
    if "c" not in the:
        cluster.require()
        the["dir"] = tempfile.mkdtemp(prefix="colod-cluster-test-")
        c = cluster.Cluster.create(os.path.join(the["dir"], "run"), token=1000, qdevice_timeout=3000)
        the["c"] = c
        c.start_corosync()
        seeds = {"node1": ("primary", 5), "node2": ("secondary", 4)}
        for i, n in enumerate(cluster.NODES):
            state = c.hostdir(n, "colo-web1")
            os.makedirs(state, exist_ok=True)
            with open(os.path.join(state, "state"), "w") as f:
                f.write("[colod-state]\nversion=1\nrole=%s\ngeneration=%d\n" % seeds[n])
            peer = cluster.NODES[1 - i]
            with open(c.hostdir(n, "web1.conf"), "w") as f:
                f.write(CONF.format(state=state, peer=peer, peer_id=2 - i, addr=cluster.REPL[n],
                                    peer_addr=cluster.REPL[peer]))
    return the["c"]


def start(c, node):
    c.spawn(node, "colod", COLOD, "--config", c.hostdir(node, "web1.conf"))


def wait_log(c, node, text, timeout=20):
    tap.wait_until(lambda: text in c.log(node, "colod", 400), timeout,
                   "%s's colod to log %r" % (node, text), interval=0.1)


def fail_with_logs(fn):
    def wrapped():
        try:
            fn()
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, the["c"].logs(40) if "c" in the else "")) from None
    wrapped.__name__ = fn.__name__
    return wrapped


@tap.timeout(120)
@fail_with_logs
def test_newest_copy_starts_the_other_stands_by():
    if not os.access(COLOD, os.X_OK):
        raise AssertionError("no %s (build first)" % COLOD)
    c = get()
    for n in cluster.NODES:
        start(c, n)
    wait_log(c, "node1", "-> primary-starting: this node holds the newest copy (primary, generation 5; the peer secondary, 4)")
    wait_log(c, "node1", "not carried out: start colo-vmm as primary")
    wait_log(c, "node2", "-> idle: the peer")


@tap.timeout(60)
@fail_with_logs
def test_partition_quorum_decides():
    c = get()
    c.fault("partition")
    wait_log(c, "node2", "the peer's colod (node 1) left the group (no quorum)", timeout=30)
    wait_log(c, "node2", "idle -> wait-quorum: no quorum")
    wait_log(c, "node1", "the peer's colod (node 2) left the group")
    assert "no quorum" not in c.log("node1", "colod", 400), c.log("node1", "colod")
    c.heal()
    wait_log(c, "node2", "the peer's colod (node 1) joined the group", timeout=30)
    wait_log(c, "node2", "wait-peer -> idle", timeout=30)


@tap.timeout(60)
@fail_with_logs
def test_killed_colod_seen_and_back():
    c = get()
    before = c.log("node1", "colod", 1000).count("the peer's colod (node 2) joined the group")
    c.fault("sigkill", "node2", "colod")
    wait_log(c, "node1", "the peer's colod (node 2) left the group")
    start(c, "node2")
    tap.wait_until(lambda: c.log("node1", "colod", 1000).count("the peer's colod (node 2) joined the group") > before,
                   20, "node2's colod to join again")
    wait_log(c, "node2", "-> idle: the peer")


@tap.timeout(60)
@fail_with_logs
def test_sigterm_stops_and_tells_the_peer():
    c = get()
    p = c.procs[("node2", "colod")]
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=10) == 0, c.log("node2", "colod")
    wait_log(c, "node2", "-> stopped: colod stops with the VM")
    p = c.procs[("node1", "colod")]
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=10) == 0, c.log("node1", "colod")
    # node1 heard node2's shutdown before it stopped itself.
    log = c.log("node1", "colod", 1000)
    assert "the peer's colod left the group" in log or "the peer's colod shut down" in log, log


def teardown():
    if "c" in the:
        the["c"].down()
    if "dir" in the:
        shutil.rmtree(the["dir"], ignore_errors=True)


cluster.run_tests(globals(), teardown)
