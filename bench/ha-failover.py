#!/usr/bin/env python3
"""Failover time with pacemaker managing colod, beside colod alone (issue
13's performance item; not a test).

  COLO_BUILDDIR=/path/to/build COLO_SRCDIR=/path/to/src bench/ha-failover.py \
      [--runs N] [--token MS] [--qdevice-timeout MS] [--mode pacemaker|colod|both] [--wait-score]
      [--keep DIR]

Root, /dev/kvm, corosync (+ qdevice, qnetd), pacemaker, crmsh and
resource-agents. The two-node cluster of tests/lib/pacemaker.py (corosync
token --token ms, qnetd's vote with --qdevice-timeout), the test guest
with its network (tests/lib/colo_ha.py, net=True) protected by COLO, the
client on the LAN reaching it through the LAN gateway's floating address
(ocf:heartbeat:IPaddr2 on the primary's node). Each run kills the primary
node (its whole host: off the network, every process killed) and measures
the time from the kill's start until the guest answers the client again: a
UDP echo request every 10 ms from the client, the first answer to a
request sent once the killed host is off the network and its processes
are dead. Then the node comes back and the VM is protected again before
the next run. With pacemaker a kill comes as soon as the VM is protected
and the guest answers: the secondary's promotion score must already be
there (colod's state hook runs the agent at secondary-protected; before,
only its monitor set it, up to the monitor's interval, 11 s, after the
protect, and a kill in that window took 7.7-8.9 s). --wait-score waits
for the score before each kill (the steady state).

  pacemaker  ocf:colo:colo and the floating IP as in docs/operations.md
             (colod --managed): pacemaker sees the node gone, promotes the
             survivor, then starts the address there
  colod      colod alone (unmanaged) on the same cluster: it fails over by
             itself when the peer leaves the CPG group; the bench moves the
             address as soon as the survivor's guest runs alone (QMP polled
             every 20 ms, then the same IPaddr2 start pacemaker runs), a
             stand-in for colod's role hook

Prints each run (also when the guest ran alone, for the part before the
address moved) and p50/max per mode."""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get("COLO_SRCDIR", "."), "tests", "lib"))
import cluster  # noqa: E402
import cluster_vm  # noqa: E402
import colo_ha as ha  # noqa: E402
import pacemaker  # noqa: E402
import tap  # noqa: E402
from qmp import QMPClient  # noqa: E402

# Runs on the client host: a UDP echo request to the guest every 10 ms,
# one line per answer: "SENT RECEIVED" (CLOCK_MONOTONIC, the same on every
# host here).
PROBE = r"""
import socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.01)
sent = {}
seq = 0
while True:
    now = time.monotonic()
    try:
        s.sendto(struct.pack("!Q", seq), (sys.argv[1], 7))
    except OSError:
        pass
    sent[seq] = now
    seq += 1
    end = now + 0.01
    while time.monotonic() < end:
        try:
            data = s.recv(64)
        except (socket.timeout, OSError):
            continue
        if len(data) == 8 and struct.unpack("!Q", data)[0] in sent:
            print("%.6f %.6f" % (sent.pop(struct.unpack("!Q", data)[0]), time.monotonic()), flush=True)
"""


class Probe:
    """PROBE on the client host; answers() -> [(sent, received)]."""
    def __init__(self, c):
        self.p = subprocess.Popen(c.host_argv("client", sys.executable, "-c", PROBE, cluster_vm.GUEST_IP),
                                  stdout=subprocess.PIPE, text=True)
        self.got = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.got.append(tuple(float(x) for x in line.split()))

    def answer_after(self, t):
        """The first answer to a request sent after @t, or None."""
        return next((a for a in list(self.got) if a[0] > t), None)

    def stop(self):
        self.p.kill()
        self.p.wait()


def alone(c, node):
    """Whether @node's guest runs outside COLO (failed over)."""
    try:
        q = QMPClient(c._fs(node, "/run/colo/%s/vmm.qmp" % ha.VM), timeout=2)
        try:
            return q.cmd("query-colo-status").get("mode") == "none" and q.cmd("query-status").get("running") is True
        finally:
            q.close()
    except Exception:
        return False


def protected(c):
    states = {n: ha.state(c, n) for n in cluster.NODES}
    prim = [n for n, s in states.items() if s == "primary-protected"]
    if prim and states[[n for n in cluster.NODES if n != prim[0]][0]] == "secondary-protected":
        return prim[0]
    return None


def start_colod(c, node):
    c.spawn(node, "colod", ha.COLOD, "--config", ha.CONF_PATH, "--logfile", ha.LOG_PATH)


def setup(mode, rundir, token, qdevice_timeout):
    ocf = ha.ocf_dir(os.path.join(rundir, "ocf"))
    c = pacemaker.PacemakerCluster.create(os.path.join(rundir, "run"), ocf_dir=ocf, token=token,
                                          qdevice_timeout=qdevice_timeout)
    c.start_corosync()
    ha.network(c)
    for n in cluster.NODES:
        ha.write_conf(c, n, managed=(mode == "pacemaker"), net=True)
    if mode == "pacemaker":
        c.start_pacemaker()
        for cmd in ha.CRM:
            c.run("node1", "sh", "-c", cmd, timeout=60)
    else:
        for n in cluster.NODES:
            start_colod(c, n)
        tap.wait_until(lambda: ha.state(c, "node1") == "wait-admin", 60, "colod to wait for a first failover")
        c.run("node1", ha.COLOCTL, "--vm", ha.VM, "failover")
    p = tap.wait_until(lambda: protected(c), 300, "the VM protected", interval=0.5)
    if mode == "colod":
        ha.start_floating_ip(c, p)
    tap.wait_until(lambda: ha.has_floating_ip(c, p), 60, "the floating IP on " + p, interval=0.5)
    return c


def one_run(c, mode, wait_score):
    """Kills the primary's host; returns (survivor, seconds to the guest
    alone there, seconds to the client's first answer, the survivor's
    promotion score at the kill, pacemaker's DC at the kill)."""
    p = protected(c)
    s = [n for n in cluster.NODES if n != p][0]
    probe = Probe(c)
    try:
        tap.wait_until(lambda: probe.answer_after(0), 30, "the guest to answer the client before the kill")
        score = dc = None
        if mode == "pacemaker":
            # A lost DC costs an election and a join before any transition.
            m = c.mon(s)
            cur = m.find("summary/current_dc") if m is not None else None
            dc = cur.get("name") if cur is not None else None
            if wait_score:
                tap.wait_until(lambda: c.promotion_score(s, "web1", s), 30, "the promotion score of " + s,
                               interval=0.5)
            score = c.promotion_score(s, "web1", s)
        t0 = time.monotonic()
        c.fault("kill-host", p)
        # Requests sent before the host was off the network and its
        # processes dead may have been answered by it.
        t_dead = time.monotonic()
        tap.wait_until(lambda: alone(c, s), 120, "the guest alone on " + s, interval=0.02)
        t_alone = time.monotonic() - t0
        if mode == "colod":
            ha.start_floating_ip(c, s)
        a = tap.wait_until(lambda: probe.answer_after(t_dead), 120, "the guest to answer through " + s, interval=0.01)
    finally:
        probe.stop()
    return s, t_alone, a[1] - t0, score, dc


def not_logs(d, names):
    """copytree's ignore: sockets, FIFOs, big files (disk images) and
    libqb's IPC buffers (they come and go while the copy runs)."""
    def skip(n):
        path = os.path.join(d, n)
        if n.startswith("qb-"):
            return True
        if os.path.islink(path) or os.path.isdir(path):
            return False
        return not os.path.isfile(path) or os.path.getsize(path) > 16 << 20
    return [n for n in names if skip(n)]


def run_mode(mode, runs, token, qdevice_timeout, wait_score, keep):
    rundir = tempfile.mkdtemp(prefix="colo-ha-bench-")
    times = []
    c = None
    try:
        c = setup(mode, rundir, token, qdevice_timeout)
        for i in range(runs):
            p = protected(c)
            s, t_alone, t_answer, score, dc = one_run(c, mode, wait_score)
            times.append(t_answer)
            print("%s run %d: kill of %s -> guest alone on %s %.2f s, answering the client %.2f s%s" % (
                mode, i + 1, p, s, t_alone, t_answer,
                "" if mode != "pacemaker" else " (%s's promotion score at the kill: %s; the DC: %s)" % (
                    s, score, dc)), flush=True)
            c.heal()
            if mode == "pacemaker":
                c.restart_node(p)
            else:
                c.restart_node(p, pacemaker=False)
                start_colod(c, p)
            tap.wait_until(lambda: protected(c) == s, 300, "the VM protected again", interval=0.5)
    finally:
        try:
            if c and keep:
                # Each node's logs (pacemaker.log, colod's, corosync's) for
                # reading a run's timeline afterwards; down() removes them.
                dest = os.path.join(keep, mode)
                try:
                    shutil.copytree(c.rundir, dest, ignore=not_logs, symlinks=True, dirs_exist_ok=True)
                except shutil.Error as e:
                    # A file gone between the listing and its copy; the
                    # others are copied.
                    print("# %s: %d files not copied (gone meanwhile?)" % (mode, len(e.args[0])), flush=True)
                print("# %s: the run's files in %s" % (mode, dest), flush=True)
        finally:
            # Whatever the copy did: a cluster left up runs its VMs on.
            if c:
                c.down()
            shutil.rmtree(rundir, ignore_errors=True)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--token", type=int, default=1000)
    ap.add_argument("--qdevice-timeout", type=int, default=1000, help="ms (docs/operations.md: the token's)")
    ap.add_argument("--mode", choices=("pacemaker", "colod", "both"), default="both")
    ap.add_argument("--wait-score", action="store_true",
                    help="wait for the secondary's promotion score before each kill")
    ap.add_argument("--keep", metavar="DIR", help="copy each mode's run files (the nodes' logs) to DIR/MODE")
    a = ap.parse_args()
    modes = ("colod", "pacemaker") if a.mode == "both" else (a.mode,)
    res = {m: run_mode(m, a.runs, a.token, a.qdevice_timeout, a.wait_score, a.keep) for m in modes}
    for m, t in res.items():
        print("%-9s token %d ms, qdevice timeout %d ms, %d runs: p50 %.2f s, max %.2f s" % (
            m, a.token, a.qdevice_timeout, len(t), statistics.median(t), max(t)))


if __name__ == "__main__":
    main()
