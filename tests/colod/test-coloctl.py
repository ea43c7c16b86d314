#!/usr/bin/env python3
"""coloctl against colod on real corosync (tests/lib/cluster.py: two nodes
in network namespaces, corosync-qnetd on a witness), colod driving
colo-vmm with the test guest. Every check goes through coloctl, run on the
node (its private /run holds /run/colo/web1/colod.sock, which coloctl
finds on its own).

Before colod runs: no socket (exit 2), bad usage (exit 1). node1 holds
the newer copy and is protected onto node2: status in both forms,
checked against colo-vmm's processes; metrics parsed; set forwarded to
colo-vmm (read back over its QMP); garbage on the control socket; a
stopped colod (exit 4). switchover from the primary and from the
secondary, failover on the secondary, each checked by both nodes' status
and by the events node2's `coloctl --json events` printed; unprotect and
protect, and commands the state machine refuses (exit 3 with its
reason); the secondary's colod killed: its stale socket (exit 2), the
primary's events (peer gone, failover)."""
import json
import os
import re
import signal
import time

import cluster
import colod_cluster
import tap

SRC = os.path.abspath(os.environ.get("COLO_SRCDIR", "."))
COLOCTL = colod_cluster.COLOCTL
the = {}
fail_with_logs = colod_cluster.with_logs(the)


def get():
    """The file's cluster with corosync up and quorate (built once)."""
    colod_cluster.require(COLOCTL)
    return colod_cluster.get(the, {"node1": ("primary", 5), "node2": ("secondary", 4)})


coloctl = colod_cluster.coloctl


def ok(c, node, *args):
    code, out, err = coloctl(c, node, *args)
    assert code == 0, "coloctl %s on %s: exit %d: %s%s" % (" ".join(args), node, code, out, err)
    return out


def status(c, node):
    out = ok(c, node, "--json", "status")
    assert out.count("\n") == 1, "--json status is not one line: %r" % out
    return json.loads(out)


def refused(c, node, args, reason):
    code, out, err = coloctl(c, node, *args)
    assert code == 3, "coloctl %s on %s: exit %d, not 3 (refused): %s%s" % (" ".join(args), node, code, out, err)
    assert reason in err, "refusal without its reason %r: %r" % (reason, err)


wait_state = colod_cluster.wait_state


def wait_protected(c, primary, secondary, timeout=120):
    """Until @primary is primary-protected and @secondary
    secondary-protected, both saying so; returns their status."""
    p = wait_state(c, primary, "primary-protected", timeout)
    s = wait_state(c, secondary, "secondary-protected", timeout)
    return p, s


def views_agree(c, primary, secondary):
    """Both status objects once each node's view of its peer caught up
    (a node reaches its protected state on its own colo-vmm's word; the
    peer's hello with its new state and generation follows over CPG), or
    None."""
    p, s = status(c, primary), status(c, secondary)
    if (p["peer"]["state"] == s["state"] and s["peer"]["state"] == p["state"] and
            p["peer"]["generation"] == s["generation"] and s["peer"]["generation"] == p["generation"]):
        return p, s
    return None


def check_pair(c, primary, secondary):
    wait_protected(c, primary, secondary)
    got = tap.wait_for(lambda: views_agree(c, primary, secondary), 15, interval=0.2)
    p, s = got or (status(c, primary), status(c, secondary))
    pid = {n: c.pids(n, "colo-vmm") for n in cluster.NODES}
    assert len(pid[primary]) == 1 and len(pid[secondary]) == 1, pid
    assert p["role"] == "primary" and p["running"] is True, p
    assert s["role"] == "secondary" and s["running"] is False, s
    assert p["generation"] == s["generation"], (p, s)
    assert p["peer"]["present"] and p["peer"]["role"] == "secondary" and p["peer"]["generation"] == p["generation"], p
    assert s["peer"]["role"] == "primary" and s["peer"]["state"] == "primary-protected", s
    # colod's pid of colo-vmm, in the host's pid namespace too (netns only).
    assert p["vmm"]["pid"] in pid[primary] and s["vmm"]["pid"] in pid[secondary], (p["vmm"], s["vmm"], pid)
    assert p["vmm"]["kind"] == "primary" and s["vmm"]["kind"] == "secondary", (p["vmm"], s["vmm"])
    return p, s


def events(c):
    """What node2's coloctl --json events printed: the event objects."""
    out = []
    with open(c.hostdir("node2", "events.log"), errors="replace") as f:
        for line in f:
            if line.startswith("{"):
                out.append(json.loads(line))
    return out


def wait_event_state(c, new, after, timeout=30):
    """Until node2's event stream holds a COLOD_STATE to @new past index
    @after; returns the events."""
    def seen():
        return any(e["event"] == "COLOD_STATE" and e["data"]["new"] == new for e in events(c)[after:])
    tap.wait_until(seen, timeout, "a COLOD_STATE event to %s on node2" % new, interval=0.2)
    return events(c)


@tap.timeout(60)
@fail_with_logs
def test_without_colod():
    c = get()
    code, out, err = coloctl(c, "node1", "status")
    assert code == 2 and "no colod control socket under /run/colo" in err, (code, out, err)
    code, out, err = coloctl(c, "node1", "--vm", "web1", "--json", "status")
    assert code == 2 and "cannot reach colod at /run/colo/web1/colod.sock" in err, (code, out, err)
    for args in (["reboot"], [], ["set", "log-level"], ["status", "now"], ["--timeout", "x", "status"],
                 ["-s", "/x", "--vm", "web1", "status"]):
        code, out, err = coloctl(c, "node1", *args)
        assert code == 1 and err.startswith("coloctl: ") and not out, (args, code, out, err)
    assert "unknown command 'reboot'" in coloctl(c, "node1", "reboot")[2]


@tap.timeout(240)
@fail_with_logs
def test_status_when_protected():
    c = get()
    for n in cluster.NODES:
        colod_cluster.start(c, n)
    p, s = check_pair(c, "node1", "node2")
    assert p["vm"] == "web1" and p["node-id"] == 1 and s["node-id"] == 2, (p, s)
    assert p["generation"] == 6 and p["quorate"] and not p["managed"] and p["waiting"] is None, p
    # colo-vmm's query-colo-status, once colod polled it in COLO.
    tap.wait_until(lambda: status(c, "node1")["colo"], 10, "node1's colo status", interval=0.3)
    p = status(c, "node1")
    assert p["colo"]["mode"] == "primary" and "checkpoints" in p["colo"], p["colo"]
    text = ok(c, "node1", "status")
    for part in ("VM web1 on node 1: primary-protected", "role         primary, generation 6, the guest serves here",
                 "quorum       yes", "colo-vmm     pid %d, primary" % p["vmm"]["pid"], "Peer node 2: present",
                 "COLO: primary"):
        assert part in text, "%r not in:\n%s" % (part, text)
    text = ok(c, "node2", "--vm", "web1", "status")
    assert "VM web1 on node 2: secondary-protected" in text and "the guest does not serve here" in text, text


@tap.timeout(60)
@fail_with_logs
def test_metrics():
    c = get()
    text = ok(c, "node1", "metrics")
    families, samples = {}, {}
    for line in text.splitlines():
        m = re.match(r"^# (HELP|TYPE) ([a-z0-9_]+) (.+)$", line)
        if m:
            families.setdefault(m.group(2), {})[m.group(1)] = m.group(3)
            continue
        m = re.match(r'^([a-z0-9_]+)\{((?:[a-z_]+="[^"]*",?)+)\} (\S+)$', line)
        assert m, "not a Prometheus line: %r" % line
        assert set(families.get(m.group(1), {})) == {"HELP", "TYPE"}, "no HELP/TYPE before %r" % line
        samples[m.group(1) + "{" + m.group(2) + "}"] = float(m.group(3))
    assert samples['colod_role{vm="web1",role="primary"}'] == 1, samples
    assert samples['colod_generation{vm="web1"}'] == 6 and samples['colod_quorate{vm="web1"}'] == 1, samples
    assert samples['colod_protected{vm="web1"}'] == 1 and samples['colod_running{vm="web1"}'] == 1, samples
    assert samples['colod_colo_checkpoints_total{vm="web1"}'] >= 0, samples
    assert families["colod_colo_checkpoints_total"]["TYPE"] == "counter", families


@tap.timeout(60)
@fail_with_logs
def test_set_garbage_and_timeout():
    c = get()
    assert ok(c, "node1", "set", "checkpoint-delay", "2500").strip() == "checkpoint-delay = 2500"
    # Forwarded to the running colo-vmm: read back over its QMP socket.
    probe = ("import sys; sys.path.insert(0, %r); from qmp import QMPClient\n"
             "with QMPClient('/run/colo/web1/vmm.qmp') as q:\n"
             "    print(q.cmd('query-migrate-parameters')['x-checkpoint-delay'])" % os.path.join(SRC, "tests", "lib"))
    tap.wait_until(lambda: c.run("node1", "python3", "-c", probe).stdout.strip() == "2500", 10,
                   "colo-vmm's x-checkpoint-delay to be 2500")
    assert status(c, "node1")["settings"]["checkpoint-delay"] == 2500
    refused(c, "node1", ["set", "colour", "red"],
            "unknown setting 'colour' (settings: checkpoint-delay, log-level, protect-mode)")
    refused(c, "node1", ["set", "log-level", "loud"], "log-level: 'loud' is none of")
    # Garbage on the control socket: colod serves on.
    junk = ("import socket, os\ns = socket.socket(socket.AF_UNIX)\ns.connect('/run/colo/web1/colod.sock')\n"
            "s.sendall(b'\\xff\\x00{]]\\n' + os.urandom(100000) + b'\\n{\"execute\": 5}\\n')\ns.close()")
    c.run("node1", "python3", "-c", junk)
    assert status(c, "node1")["state"] == "primary-protected"
    # A colod that does not answer: exit 4 within the timeout.
    colod_pids = c.pids("node1", "colod")
    assert len(colod_pids) == 1, colod_pids
    os.kill(colod_pids[0], signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        code, out, err = coloctl(c, "node1", "--timeout", "700", "status")
        took = time.monotonic() - t0
    finally:
        os.kill(colod_pids[0], signal.SIGCONT)
    assert code == 4 and "did not answer within 700 ms" in err, (code, out, err)
    assert took < 5, took
    assert status(c, "node1")["state"] == "primary-protected"


@tap.timeout(240)
@fail_with_logs
def test_switchover_both_ways():
    c = get()
    c.spawn("node2", "events", COLOCTL, "--json", "events")
    tap.wait_until(lambda: "following the events of colod (VM web1)" in c.log("node2", "events"), 10,
                   "coloctl events to connect")
    # From the primary's side: node2 takes the VM.
    out = ok(c, "node1", "switchover")
    assert out.startswith("switchover: accepted"), out
    check_pair(c, "node2", "node1")
    evs = wait_event_state(c, "primary-protected", 0)
    states = [e["data"]["new"] for e in evs if e["event"] == "COLOD_STATE"]
    assert states[0] != "primary-protected" and states[-1] == "primary-protected", states
    last = [e for e in evs if e["event"] == "COLOD_STATE"][-1]["data"]
    assert last["role"] == "primary" and last["running"] is True and "timestamp" in evs[-1], evs[-1]
    # From the secondary's side: node1 takes it back.
    n = len(events(c))
    out = ok(c, "node1", "--json", "switchover")
    assert json.loads(out)["state"], out
    check_pair(c, "node1", "node2")
    wait_event_state(c, "secondary-protected", n)


@tap.timeout(240)
@fail_with_logs
def test_failover_both_ways():
    c = get()
    n = len(events(c))
    gen = status(c, "node1")["generation"]
    out = ok(c, "node2", "failover")
    assert out.startswith("failover: accepted"), out
    p, s = check_pair(c, "node2", "node1")
    assert p["generation"] > gen, (gen, p)
    wait_event_state(c, "primary-protected", n)
    ok(c, "node1", "failover")
    check_pair(c, "node1", "node2")


@tap.timeout(180)
@fail_with_logs
def test_protect_unprotect_refusals():
    c = get()
    refused(c, "node2", ["unprotect"], "unprotect is for the primary; this node is the secondary")
    refused(c, "node1", ["failover"], "failover does not apply in state primary-protected")
    refused(c, "node1", ["promote"], "promote is for managed mode ([cluster] managed = true, under pacemaker)")
    ok(c, "node1", "unprotect")
    st = wait_state(c, "node1", "primary-alone", 60)
    assert st["protect"] is False and st["running"] is True, st
    wait_state(c, "node2", "idle", 60)
    # (switchover would move the VM by postcopy now: test-colod-relocate.py)
    refused(c, "node2", ["failover"], "the peer runs the VM: use switchover")
    ok(c, "node1", "protect")
    check_pair(c, "node1", "node2")
    assert status(c, "node1")["protect"] is True
    # Events ended cleanly on SIGTERM of coloctl; colod still there.
    p = c.procs[("node2", "events")]
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=10) == 0, c.log("node2", "events")


@tap.timeout(120)
@fail_with_logs
def test_killed_colod():
    """The secondary's colod killed: its stale socket gives exit 2, and so
    does its coloctl events; the primary's events show the peer gone and
    the failover."""
    c = get()
    c.spawn("node1", "events1", COLOCTL, "--json", "events")
    c.spawn("node2", "events2", COLOCTL, "events")
    for n in ("node1", "node2"):
        tap.wait_until(lambda: "following the events" in c.log(n, "events" + n[-1]), 10, "%s's coloctl events" % n)
    gen = status(c, "node1")["generation"]
    c.fault("sigkill", "node2", "colod")
    code, out, err = coloctl(c, "node2", "status")
    assert code == 2 and "cannot reach colod at /run/colo/web1/colod.sock" in err, (code, out, err)
    # Following the events of a colod that went: exit 2.
    assert c.procs[("node2", "events2")].wait(timeout=10) == 2, c.log("node2", "events2")
    assert "coloctl: colod closed the connection" in c.log("node2", "events2"), c.log("node2", "events2")
    st = wait_state(c, "node1", "primary-alone", 30)
    assert st["peer"]["present"] is False and st["generation"] > gen and st["running"], st

    def seen():
        evs = []
        with open(c.hostdir("node1", "events1.log"), errors="replace") as f:
            evs = [json.loads(line) for line in f if line.startswith("{")]
        peer = [e["data"] for e in evs if e["event"] == "COLOD_PEER"]
        states = [e["data"]["new"] for e in evs if e["event"] == "COLOD_STATE"]
        return peer == [{"node-id": 2, "present": False}] and states and states[-1] == "primary-alone"
    tap.wait_until(seen, 10, "COLOD_PEER (absent) and COLOD_STATE to primary-alone in node1's events")


cluster.run_tests(globals(), lambda: colod_cluster.teardown(the))
