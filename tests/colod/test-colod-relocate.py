#!/usr/bin/env python3
"""colod's relocation by postcopy and its protect-mode, on real corosync
(tests/lib/cluster.py: two nodes in network namespaces, corosync-qnetd on
a witness), colod driving colo-vmm with the test guest (no disk, so it may
move by postcopy; docs/colo.md, "Relocation").

node1 holds the newer copy and protects the VM onto node2; `coloctl
unprotect` leaves it alone with node2 standing by (node2's own protection
turned off too, so that the moved guest can be checked before anyone
protects it). `coloctl switchover` on node2 asks node1 to move the VM
there: node1 migrates by postcopy, node2 runs the guest at a newer
generation, its heartbeat goes on and its workload area verifies (the
guest's own record, tests/guest/testguest.py); then `coloctl protect` on
node2 re-protects node1 as its secondary. `coloctl set protect-mode
snapshot` on node2 and a new protect reach protected by snapshot protect
(query-migrate's snapshot completed). Last, a move whose source is lost
after the guest began to run on the target: the VM is down, both colods
wait for an administrator, whose failover starts it again."""
import json
import os
import signal
import time

import cluster
import colod_cluster
import tap
from qmp import QMPClient

the = {}
fail_with_logs = colod_cluster.with_logs(the)


def get():
    colod_cluster.require(colod_cluster.COLOCTL)
    return colod_cluster.get(the, {"node1": ("primary", 5), "node2": ("secondary", 4)})


def coloctl(c, node, *args):
    code, out, err = colod_cluster.coloctl(c, node, *args, timeout=30)
    assert code == 0, "coloctl %s on %s: exit %d: %s%s" % (" ".join(args), node, code, out, err)
    return out


def status(c, node):
    return json.loads(coloctl(c, node, "--json", "status"))


def wait_state(c, node, state, timeout=60):
    return colod_cluster.wait_state(c, node, state, timeout)


@tap.timeout(120)
@fail_with_logs
def test_protected_then_alone():
    c = get()
    for n in cluster.NODES:
        colod_cluster.start(c, n)
    wait_state(c, "node1", "primary-protected", 90)
    wait_state(c, "node2", "secondary-protected", 30)
    coloctl(c, "node1", "unprotect")
    wait_state(c, "node1", "primary-alone")
    wait_state(c, "node2", "idle")
    coloctl(c, "node2", "unprotect")  # it protects nothing on its own after the move
    assert status(c, "node2")["protect"] is False


@tap.timeout(150)
@fail_with_logs
def test_switchover_moves_by_postcopy():
    c = get()
    g = colod_cluster.Guest(c, "node1")
    hb = g.heartbeat()
    g.close()
    gen = status(c, "node1")["generation"]
    t0 = time.monotonic()
    out = coloctl(c, "node2", "switchover")
    assert "switchover" in out or out == "", out
    st2 = wait_state(c, "node2", "primary-alone", 90)
    took = time.monotonic() - t0
    st1 = wait_state(c, "node1", "idle", 30)
    log1, log2 = c.log("node1", "colod", 4000), c.log("node2", "colod", 4000)
    assert "postcopy: the VM runs on the peer now" in log1, log1
    assert "relocated: the VM runs on the peer" in log1, log1
    assert "postcopy: the VM runs here now" in log2, log2
    assert st2["generation"] > gen and st2["role"] == "primary", (gen, st2)
    assert not c.pids("node1", "colo-vmm"), "node1's colo-vmm outlived the move"
    assert st1["peer"]["generation"] == st2["generation"], st1
    with open(os.path.join(c.hostdir("node2", "colo-web1"), "state")) as f:
        assert "generation=%d" % st2["generation"] in f.read()
    # The guest goes on on node2 from where it was, its memory whole.
    g = colod_cluster.Guest(c, "node2")
    try:
        tap.wait_until(lambda: g.heartbeat() > hb, 30, "the heartbeat on node2")
        g.qmp.cmd("stop")
        problems = g.workload_problems(dimms=False)
        g.qmp.cmd("cont")
    finally:
        g.close()
    assert problems == [], problems
    print("# moved in %.1f s (switchover to primary-alone on node2)" % took)


@tap.timeout(150)
@fail_with_logs
def test_old_node_reprotected():
    c = get()
    coloctl(c, "node2", "protect")
    wait_state(c, "node2", "primary-protected", 120)
    st = wait_state(c, "node1", "secondary-protected", 30)
    assert st["role"] == "secondary" and st["generation"] == status(c, "node2")["generation"], st


@tap.timeout(150)
@fail_with_logs
def test_protect_mode_snapshot():
    c = get()
    assert status(c, "node2")["settings"]["protect-mode"] == "precopy"
    coloctl(c, "node2", "set", "protect-mode", "snapshot")
    assert status(c, "node2")["settings"]["protect-mode"] == "snapshot"
    coloctl(c, "node2", "unprotect")
    wait_state(c, "node2", "primary-alone")
    wait_state(c, "node1", "idle")
    coloctl(c, "node2", "protect")
    wait_state(c, "node2", "primary-protected", 120)
    wait_state(c, "node1", "secondary-protected", 30)
    with QMPClient(colod_cluster.rundir(c, "node2", "vmm.qmp"), timeout=10) as q:
        snap = q.cmd("query-colo-status").get("snapshot")
    assert snap and snap["status"] == "completed", snap



@tap.timeout(150)
@fail_with_logs
def test_source_lost_in_postcopy():
    """The source's colo-vmm killed once the guest runs on the target, its
    memory not all there (the postcopy stream slowed to 128 KiB/s): neither
    copy is whole, both colods stop their half and wait for an
    administrator (relocation-lost); failover starts the VM again."""
    c = get()
    coloctl(c, "node2", "unprotect")
    wait_state(c, "node2", "primary-alone")
    wait_state(c, "node1", "idle")
    coloctl(c, "node1", "unprotect")
    with QMPClient(colod_cluster.rundir(c, "node2", "vmm.qmp"), timeout=10) as q:
        q.cmd("migrate-set-parameters", **{"max-postcopy-bandwidth": 128 << 10})
    gen = status(c, "node2")["generation"]
    coloctl(c, "node1", "switchover")
    tap.wait_until(lambda: "postcopy: the VM runs here now" in c.log("node1", "colod", 4000), 60,
                   "the guest to run on node1")
    st = status(c, "node1")
    assert st["state"] == "relocate-target" and st["running"] and st["generation"] > gen, st
    for pid in c.pids("node2", "colo-vmm"):
        os.kill(pid, signal.SIGKILL)
    for n in cluster.NODES:
        st = wait_state(c, n, "wait-admin", 60)
        assert st["waiting"] == "relocation-lost", st
        tap.wait_until(lambda: not c.pids(n, "colo-vmm"), 10, "%s's colo-vmm to stop" % n)
    coloctl(c, "node1", "failover")
    st = wait_state(c, "node1", "primary-alone", 60)
    assert st["running"] and st["generation"] > gen + 1, st


cluster.run_tests(globals(), lambda: colod_cluster.teardown(the))
