#!/usr/bin/env python3
"""Failover time with pacemaker managing colod, beside colod alone (issue
13's performance item; not a test).

  COLO_BUILDDIR=/path/to/build COLO_SRCDIR=/path/to/src bench/ha-failover.py [--runs N] [--token MS] [--mode pacemaker|colod|both]

Root, /dev/kvm, corosync (+ qdevice, qnetd), pacemaker and crmsh. The
two-node cluster of tests/lib/pacemaker.py (corosync token --token ms,
qnetd's vote), the test guest protected by COLO (no network: colod does
not drive colo-proxy yet, so no client can reach the guest; the guest
"answers" here when the survivor's colo-vmm answers QMP with the guest
running outside COLO). Each run kills the primary node (every process in
its namespace), measures the time until the survivor's guest runs alone,
brings the node back and waits until the VM is protected again.

  pacemaker  ocf:colo:colo as in docs/operations.md (colod --managed):
             pacemaker sees the node gone and promotes the survivor
  colod      colod alone (unmanaged) on the same cluster: it fails over by
             itself when the peer leaves the CPG group

Prints each run and p50/max per mode."""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.environ.get("COLO_SRCDIR", "."), "tests", "lib"))
import cluster  # noqa: E402
import colo_ha as ha  # noqa: E402
import pacemaker  # noqa: E402
import tap  # noqa: E402
from qmp import QMPClient  # noqa: E402


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


def setup(mode, rundir, token):
    ocf = os.path.join(rundir, "ocf")
    os.makedirs(os.path.join(ocf, "colo"))
    shutil.copy(ha.AGENT, os.path.join(ocf, "colo", "colo"))
    c = pacemaker.PacemakerCluster.create(os.path.join(rundir, "run"), ocf_dir=ocf, token=token, qdevice_timeout=3000)
    c.start_corosync()
    for n in cluster.NODES:
        ha.write_conf(c, n, managed=(mode == "pacemaker"))
    if mode == "pacemaker":
        c.start_pacemaker()
        for cmd in ("crm configure primitive web1 ocf:colo:colo params config=%s colod=%s coloctl=%s logfile=%s "
                    "op start timeout=60s op stop timeout=60s op promote timeout=120s op demote timeout=60s "
                    "op monitor interval=10s role=Promoted timeout=30s "
                    "op monitor interval=11s role=Unpromoted timeout=30s" % (ha.CONF_PATH, ha.COLOD, ha.COLOCTL,
                                                                             ha.LOG_PATH),
                    "crm configure clone web1-clone web1 meta promotable=true promoted-max=1 promoted-node-max=1 "
                    "clone-max=2 clone-node-max=1 notify=true"):
            c.run("node1", "sh", "-c", cmd, timeout=60)
    else:
        for n in cluster.NODES:
            start_colod(c, n)
        tap.wait_until(lambda: ha.state(c, "node1") == "wait-admin", 60, "colod to wait for a first failover")
        c.run("node1", ha.COLOCTL, "--vm", ha.VM, "failover")
    tap.wait_until(lambda: protected(c), 300, "the VM protected", interval=0.5)
    return c


def run_mode(mode, runs, token):
    rundir = tempfile.mkdtemp(prefix="colo-ha-bench-")
    times = []
    c = None
    try:
        c = setup(mode, rundir, token)
        for i in range(runs):
            p = protected(c)
            s = [n for n in cluster.NODES if n != p][0]
            t0 = time.monotonic()
            c.fault("kill-host", p)
            tap.wait_until(lambda: alone(c, s), 120, "the guest alone on " + s, interval=0.02)
            times.append(time.monotonic() - t0)
            print("%s run %d: kill of %s -> guest alone on %s: %.2f s" % (mode, i + 1, p, s, times[-1]), flush=True)
            c.heal()
            if mode == "pacemaker":
                c.restart_node(p)
            else:
                c.restart_node(p, pacemaker=False)
                start_colod(c, p)
            tap.wait_until(lambda: protected(c) == s, 300, "the VM protected again", interval=0.5)
    finally:
        if c:
            c.down()
        shutil.rmtree(rundir, ignore_errors=True)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--token", type=int, default=1000)
    ap.add_argument("--mode", choices=("pacemaker", "colod", "both"), default="both")
    a = ap.parse_args()
    modes = ("colod", "pacemaker") if a.mode == "both" else (a.mode,)
    res = {m: run_mode(m, a.runs, a.token) for m in modes}
    for m, t in res.items():
        print("%-9s token %d ms, %d runs: p50 %.2f s, max %.2f s" % (m, a.token, len(t), statistics.median(t), max(t)))


if __name__ == "__main__":
    main()
