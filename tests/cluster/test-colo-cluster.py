#!/usr/bin/env python3
"""tests/cluster/colo-cluster, as a person runs it, each command a fresh
process: up (hosts, corosync with the qdevice, the test guest protected
by COLO over QMP until colod lands), status --json, a client reaching the
guest through the LAN, faults and heal, and down leaving nothing behind:
no namespace, no process, no mount, nothing in /dev/shm or /tmp, no run
dir."""
import json
import os
import subprocess
import sys
import tempfile
import time

import cluster
import cluster_vm
import tap

SRCDIR = os.environ.get("COLO_SRCDIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CLI = os.path.join(SRCDIR, "tests", "cluster", "colo-cluster")
PREFIX = "cct%d-" % os.getpid()
the = {}


def cli(*args, check=True, timeout=120):
    r = subprocess.run([sys.executable, CLI, "--dir", the["run"], *args], capture_output=True, text=True,
                       timeout=timeout, env=dict(os.environ, COLO_CLUSTER_PREFIX=PREFIX, TMPDIR=the["tmp"]))
    if check and r.returncode:
        raise AssertionError("colo-cluster %s: exit %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r


def status():
    return json.loads(cli("status", "--json").stdout)


def echo(text, timeout=10):
    """@text through the guest's TCP echo service, from the client host."""
    code = ("import socket,sys; s=socket.create_connection((%r, 7), timeout=%d); s.sendall(%r); b=b''\n"
            "while len(b) < %d: b += s.recv(100) or sys.exit('closed')\nprint(b.decode())"
            % (cluster_vm.GUEST_IP, timeout, text.encode(), len(text)))
    r = subprocess.run(["ip", "netns", "exec", PREFIX + "client", sys.executable, "-c", code], capture_output=True,
                       text=True, timeout=timeout + 5)
    return r.stdout.strip() if r.returncode == 0 else "error: " + r.stderr.strip()[-300:]


def observer_after(rounds, timeout=30):
    """The client's observer once it has done @rounds rounds; none of its
    connections broke and no byte was wrong."""
    def enough():
        obs = status()["client"]["observer"]
        return obs if obs and obs["rounds"] >= rounds else None
    obs = tap.wait_until(enough, timeout, "%d rounds of the client" % rounds, interval=0.3)
    assert obs["broken"] == 0 and obs["wrong_bytes"] == 0 and obs["connected"], obs
    # UDP: answers, none twice or wrong (lost and late ones are UDP's lot).
    assert obs["udp_answered"] >= rounds // 2 and obs["udp_duplicate"] == 0 and obs["udp_wrong"] == 0, obs
    # The disk: every block read back holds what was acknowledged there.
    assert obs["disk"] and obs["disk_writes"] >= rounds // 2 and obs["writes_lost"] == 0, obs
    return obs


def ours(pids_comm):
    """The processes of @pids_comm ({pid: (comm, start time)}) still alive
    as themselves (a pid reused since is not ours; a zombie is dead, its
    parent, init, reaps it when it will)."""
    alive = []
    for pid, was in pids_comm.items():
        if proc_id(pid) == was:
            alive.append("%d %s" % (pid, was[0]))
    return alive


def proc_id(pid):
    """(comm, start time) of a live process @pid, else None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return None if rest[0] == "Z" else (cluster.comm(pid), rest[19])
    except (OSError, IndexError):
        return None


@tap.timeout(150)
def test_up_status_fault_heal_down():
    cluster.require()
    cluster_vm.require()
    the["tmp"] = tempfile.mkdtemp(prefix="colo-cluster-test-tmp-")
    the["run"] = os.path.join(the["tmp"], "run")
    shm_before = set(os.listdir("/dev/shm"))
    tmp_before = set(os.listdir("/tmp"))
    start = time.monotonic()
    cli("up")
    print("# up: %.1f s" % (time.monotonic() - start))
    c = cluster.Cluster.load(the["run"])
    assert all(ns.startswith(PREFIX) for ns in c.ns.values()), c.ns
    procs = {p: proc_id(p) for host in cluster.HOSTS for p in c.pids(host)}
    assert c.pids("client"), "no observer on the client host"

    st = status()
    assert set(st) == set(cluster.HOSTS), st
    for host, s in st.items():
        assert "role" in s and "running" in s, (host, s)
    assert (st["node1"]["role"], st["node1"]["running"], st["node1"]["protected"]) == ("primary", True, True), st
    assert (st["node2"]["role"], st["node2"]["running"], st["node2"]["protected"]) == ("secondary", True, True), st
    assert st["witness"]["running"] and all(st[n]["corosync"]["quorate"] for n in cluster.NODES), st
    human = cli("status").stdout
    assert "node1    primary    running; corosync quorate" in human, human
    assert echo("through colo") == "through colo"
    observer_after(10)
    assert cluster_vm.serving(c) == ["node1"]
    q = cli("exec", "node2", "corosync-quorumtool", "-s").stdout
    assert "Quorate:          Yes" in q and "node1" in q, q

    # A frozen secondary host: its own status says so at once, and node1
    # stays quorate alone (the qdevice's vote); heal thaws it.
    cli("fault", "stop-host", "node2")
    st = status()
    assert st["node2"]["frozen"] and not st["node2"]["running"] and not st["node2"]["corosync"]["running"], st
    c.wait_quorate(["node1"], members=["node1"], timeout=20)
    cli("heal")
    c.wait_quorate(cluster.NODES, timeout=30)
    st = status()
    assert st["node2"]["role"] == "secondary" and st["node2"]["running"], st
    assert echo("after the thaw") == "after the thaw"
    assert cli("fault", "sigkill", "node1", "no-such-process", check=False).returncode == 1
    assert cli("fault", "bogus", check=False).returncode == 1

    # The client's link flaps: a stall, nothing broken, nothing wrong.
    before = observer_after(0)
    cli("fault", "flap-client")
    cli("heal")
    obs = observer_after(before["rounds"] + 5)
    print("# flap-client: the client's longest stall %d ms; UDP: %d sent, %d lost, %d late" %
          (obs["longest_stall_ms"], obs["udp_sent"], obs["udp_lost"], obs["udp_late"]))
    assert obs["longest_stall_ms"] >= 1000, obs      # the link was down 3 x 0.5 s
    # node1 loses power; node2 is quorate alone, fails over by hand (as
    # colod will), takes the LAN address, and the client's connections go
    # on from it, every byte checked.
    before = observer_after(obs["rounds"] + 1)
    killed = time.monotonic()
    cli("fault", "kill-host", "node1")
    c.wait_quorate(["node2"], members=["node2"], timeout=20)
    quorate = time.monotonic() - killed
    r = cli("failover", "node2")
    assert "node2 left COLO ({'mode': 'secondary', 'reason': 'request'})" in r.stdout, r.stdout
    failed_over = time.monotonic() - killed
    observer_after(before["rounds"] + 2, timeout=60)
    resumed = time.monotonic() - killed
    obs = observer_after(before["rounds"] + 10, timeout=60)
    print("# node1 killed: node2 quorate alone after %.1f s, failed over by hand at %.1f s, the client's rounds "
          "went on at %.1f s (polled every 0.3 s)" % (quorate, failed_over, resumed))
    st = status()
    assert (st["node2"]["role"], st["node2"]["running"], st["node2"]["protected"]) == ("primary", True, False), st
    assert not st["node1"]["running"] and not st["node1"]["corosync"]["running"], st
    assert st["client"]["observer"]["broken"] == 0 and st["client"]["observer"]["wrong_bytes"] == 0, st
    assert "10.82.0.1/24" in c.ip("node2", "addr", "show", "lan0").stdout
    # Only node2 answers the client now (one host, no split brain).
    assert cluster_vm.serving(c) == ["node2"]

    # Everything the cluster ran, to look for after down.
    procs.update({p: proc_id(p) for host in cluster.HOSTS for p in c.pids(host)})
    names = {v[0] for v in procs.values() if v}
    assert {"corosync", "corosync-qnetd", "colo-vmm", "colo-proxy"} <= names, names
    cli("down")
    assert not os.path.exists(the["run"]), os.listdir(the["run"])
    left = [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
            if n.startswith(PREFIX)]
    assert not left, "namespaces left: %s" % left
    alive = ours(procs)
    assert not alive, "processes left: %s" % alive
    with open("/proc/self/mountinfo") as f:
        mounts = [line for line in f if the["tmp"] in line]
    assert not mounts, mounts
    shm_new = [f for f in set(os.listdir("/dev/shm")) - shm_before if any("-%d-" % p in f for p in procs)]
    assert not shm_new, "left in /dev/shm: %s" % shm_new
    tmp_new = [f for f in set(os.listdir("/tmp")) - tmp_before if any(str(p) in f for p in procs)]
    assert not tmp_new and not os.listdir(the["tmp"]), "left in /tmp: %s %s" % (tmp_new, os.listdir(the["tmp"]))
    # down is also safe a second time: nothing to do, a clear error.
    r = cli("down", check=False)
    assert r.returncode == 1 and "no cluster" in r.stderr, r


def teardown():
    """Whatever failed: the cluster goes (as down would), then the dirs."""
    if os.path.exists(os.path.join(the.get("run", "/nonexistent"), "state.json")):
        cluster.Cluster.load(the["run"]).down()
    if "tmp" in the:
        subprocess.run(["rm", "-rf", the["tmp"]])


if __name__ == "__main__":
    cluster.run_tests(globals(), teardown)
