#!/usr/bin/env python3
"""The two-node cluster's membership and quorum (tests/lib/cluster.py):
corosync on both nodes forms one membership with the qdevice's vote from
corosync-qnetd on the witness; a full partition between the nodes leaves
exactly one side quorate (qnetd's ffsplit tie-break: the lowest node id,
node1); after heal both are members again; the replication link's
faults (drop-repl, reject-repl) do what they say and leave the ring
alone; a frozen corosync (sigstop) drops its node out until heal; a
node that loses power
(kill-host: off the network, every process SIGKILLed) leaves the other
quorate through the qdevice, also when it was the tie-break's winner,
and no longer once qnetd dies too.

One cluster for the file (its set-up is most of the time), torn down at
the end whatever happened."""
import os
import shutil
import sys
import tempfile
import time

import cluster
import tap

TOKEN = 1000
the = {}


def get():
    """The file's cluster, up and quorate (built by the first test)."""
    if "c" not in the:
        cluster.require()
        the["dir"] = tempfile.mkdtemp(prefix="colo-cluster-test-")
        the["c"] = cluster.Cluster.create(os.path.join(the["dir"], "run"), token=TOKEN, qdevice_timeout=3000)
        the["c"].start_corosync()
    return the["c"]


def quorate(c, host):
    q = c.quorum(host)
    return bool(q and q["quorate"])


@tap.timeout(90)
def test_membership_forms_with_quorum_through_qdevice():
    c = get()
    for host in cluster.NODES:
        q = c.quorum(host)
        assert q["quorate"] and q["members"] == [1, 2], q["raw"]
        # Two nodes and the qdevice: 3 votes expected, all 3 cast.
        assert q["expected_votes"] == 3 and q["total_votes"] == 3 and q["qdevice"], q["raw"]
        tool = c.run(host, "corosync-qdevice-tool", "-sv").stdout
        assert "State:\t\t\tConnected" in tool and "TLS active:\t\tYes" in tool, tool
        token = c.run(host, "corosync-cmapctl", "-g", "runtime.config.totem.token").stdout
        assert token.strip().endswith("= %d" % TOKEN), token


@tap.timeout(60)
def test_partition_leaves_exactly_one_side_quorate():
    c = get()
    start = time.monotonic()
    c.fault("partition")
    # Each side sees itself alone, and qnetd gave its vote to one side.
    for host in cluster.NODES:
        tap.wait_until(lambda: (c.quorum(host) or {}).get("members") == [int(host[-1])], 20,
                       "%s to see itself alone" % host)
    c.wait_quorate(["node1"], members=["node1"], timeout=20)
    took = time.monotonic() - start
    # And it stays so: sampled for longer than the qdevice's heartbeat.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        sides = [h for h in cluster.NODES if quorate(c, h)]
        assert sides == ["node1"], "quorate: %s\n%s" % (sides, "".join(c.quorum(h)["raw"] for h in cluster.NODES))
        time.sleep(0.3)
    print("# partition: node1 alone quorate after %.1f s (token %d ms)" % (took, TOKEN))
    c.heal()
    c.wait_quorate(cluster.NODES, timeout=30)


def connect(c, timeout=2.0):
    """A TCP connection from node1 to node2 over the replication link:
    'ok', 'refused' or 'timeout'."""
    code = ("import socket\ntry:\n socket.create_connection((%r, %d), timeout=%g)\n print('ok')\n"
            "except ConnectionRefusedError:\n print('refused')\nexcept OSError:\n print('timeout')"
            % (cluster.REPL["node2"], LISTEN_PORT, timeout))
    return c.run("node1", sys.executable, "-c", code, timeout=timeout + 10).stdout.strip()


LISTEN_PORT = 4444


@tap.timeout(60)
def test_replication_link_faults():
    """drop-repl black-holes the replication link, reject-repl refuses
    at once; neither touches the ring; heal restores it. flap-client
    leaves the client's link up."""
    c = get()
    c.spawn("node2", "listener", sys.executable, "-c",
            "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            "s.bind((%r, %d)); s.listen(64); time.sleep(3600)" % (cluster.REPL["node2"], LISTEN_PORT))
    tap.wait_until(lambda: connect(c) == "ok", 10, "the listener on node2")
    c.fault("drop-repl")
    start = time.monotonic()
    assert connect(c) == "timeout" and time.monotonic() - start >= 1.5
    c.heal()
    assert connect(c) == "ok"
    c.fault("reject-repl")
    start = time.monotonic()
    assert connect(c) == "refused" and time.monotonic() - start < 1.5
    # The ring is another link: both nodes stay members all along.
    c.wait_quorate(cluster.NODES, timeout=1)
    c.heal()
    assert connect(c) == "ok"
    c.fault("flap-client")
    for host, dev in (("client", "eth0"), ("lan", "client")):
        link = c.ip(host, "link", "show", dev).stdout
        assert "state UP" in link, link
    c.heal()


@tap.timeout(60)
def test_stopped_corosync_and_heal():
    """sigstop of one process by name: node2's corosync frozen, node1
    goes on alone with the qdevice's vote; heal (SIGCONT) brings node2
    back into the membership."""
    c = get()
    c.fault("sigstop", "node2", "corosync")
    assert c.frozen("node2", "corosync") and not c.frozen("node2", "corosync-qdevice")
    c.wait_quorate(["node1"], members=["node1"], timeout=20)
    c.heal()
    assert not c.frozen("node2", "corosync")
    c.wait_quorate(cluster.NODES, timeout=30)
    try:
        c.fault("sigkill", "node2", "no-such-process")
        raise AssertionError("a signal to no process was taken")
    except cluster.SetupError as e:
        assert "no process no-such-process on node2" in str(e), e


@tap.timeout(60)
def test_killed_node_leaves_the_other_quorate():
    """Last: node1 does not come back."""
    c = get()
    start = time.monotonic()
    c.fault("kill-host", "node1")     # the tie-break's winner: the slower case
    assert not c.pids("node1"), "processes left on node1: %s" % c.pids("node1")
    c.wait_quorate(["node2"], members=["node2"], timeout=30)
    print("# node1 killed: node2 quorate alone after %.1f s (token %d ms, qdevice timeout %d ms)" %
          (time.monotonic() - start, TOKEN, c.state["qdevice_timeout"]))


@tap.timeout(60)
def test_lone_node_loses_quorum_with_the_witness():
    """After node1's loss, node2 holds quorum only through the qdevice's
    vote: when qnetd dies too, node2 is no longer quorate."""
    c = get()
    c.wait_quorate(["node2"], members=["node2"], timeout=20)
    start = time.monotonic()
    c.fault("sigkill", "witness", "corosync-qnetd")
    tap.wait_until(lambda: not quorate(c, "node2"), 20, "node2 to lose quorum")
    q = c.quorum("node2")
    assert q["members"] == [2] and q["total_votes"] == 1 and not q["qdevice"], q["raw"]
    print("# qnetd killed: node2 alone lost quorum after %.1f s" % (time.monotonic() - start))


def teardown():
    c = the.get("c")
    if c:
        c.down()
    if "dir" in the:
        shutil.rmtree(the["dir"], ignore_errors=True)


if __name__ == "__main__":
    cluster.run_tests(globals(), teardown)
