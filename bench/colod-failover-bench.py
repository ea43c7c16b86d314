#!/usr/bin/env python3
"""colod's failover time, memory and idle CPU on real corosync (issue 11).

    bench/colod-failover-bench.py [--runs N] [--tokens 1000,300] [--build DIR]

Two nodes and a qnetd witness in network namespaces (tests/lib/cluster.py),
colod on both driving colo-vmm with the bundled test guest (64 MiB). Each
run builds the cluster afresh with corosync's token at the given value,
lets node1 (the newer copy) protect the VM onto node2, then cuts node1 off
and SIGKILLs everything on it at once (a power loss), and times how long
until node2's colod reports the VM running alone there (`coloctl --json
status`: state primary-alone, running true), polled every 10 ms. Printed
per token: p50 and max over the runs, against the membership detection
corosync needs (token + consensus, consensus = 1.2 x token), the goal being
that plus 300 ms. Once per token, while the pair is protected and idle:
each colod's resident memory (VmRSS, VmHWM) and its CPU over 10 s.

Root, /dev/kvm and corosync's packages are needed (as the colod tests).
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))


def coloctl_status(c, node, coloctl):
    r = c.run(node, coloctl, "--json", "--timeout", "1000", "status", check=False, timeout=10)
    if r.returncode != 0:
        return None
    try:
        return json.loads(r.stdout)
    except ValueError:
        return None


def wait_state(c, node, coloctl, want, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s = coloctl_status(c, node, coloctl)
        if s and s.get("state") == want:
            return s
        time.sleep(0.2)
    raise RuntimeError("%s did not reach %s in %d s:\n%s" % (node, want, timeout, c.logs(30)))


def colod_pid(c, node):
    pids = c.pids(node, "colod")
    if len(pids) != 1:
        raise RuntimeError("%s runs %d colod processes" % (node, len(pids)))
    return pids[0]


def memory_kib(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])    # utime + stime


def one_run(cluster, colod_cluster, coloctl, token, qdevice_ms, measure_idle, verbose):
    the = {}
    try:
        c = colod_cluster.get(the, {"node1": ("primary", 5), "node2": ("secondary", 4)}, token=token,
                              qdevice_timeout=qdevice_ms)
        for n in cluster.NODES:
            colod_cluster.start(c, n)
        wait_state(c, "node1", coloctl, "primary-protected", 180)
        wait_state(c, "node2", coloctl, "secondary-protected", 60)
        idle = None
        if measure_idle:
            pids = {n: colod_pid(c, n) for n in cluster.NODES}
            t0 = {n: cpu_ticks(p) for n, p in pids.items()}
            time.sleep(10)
            hz = os.sysconf("SC_CLK_TCK")
            idle = {n: dict(memory_kib(p), cpu_pct=100.0 * (cpu_ticks(p) - t0[n]) / hz / 10) for n, p in pids.items()}
        start = time.monotonic()
        c.fault("kill-host", "node1")
        while True:
            s = coloctl_status(c, "node2", coloctl)
            if s and s.get("state") == "primary-alone" and s.get("running"):
                took = time.monotonic() - start
                break
            if time.monotonic() - start > 60:
                raise RuntimeError("node2 did not take over in 60 s:\n%s" % c.logs(30))
            time.sleep(0.01)
        if verbose:
            print(c.log("node2", "colod", 12), flush=True)
        return took, idle
    finally:
        colod_cluster.teardown(the)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--tokens", default="1000,300", help="corosync token timeouts in ms, comma-separated")
    ap.add_argument("--qdevice-timeout", type=int, default=0,
                    help="corosync-qdevice's timeout in ms (default: the token's)")
    ap.add_argument("--verbose", action="store_true", help="print node2's colod log after each failover")
    ap.add_argument("--build", default=os.path.join(TOP, "_build", "normal"))
    opts = ap.parse_args()
    os.environ["COLO_BUILDDIR"] = os.path.abspath(opts.build)
    import cluster  # noqa: E402 (reads COLO_BUILDDIR)
    import colod_cluster  # noqa: E402
    coloctl = os.path.join(os.path.abspath(opts.build), "coloctl", "coloctl")
    cluster.require()
    for f in (colod_cluster.COLOD, colod_cluster.VMM, colod_cluster.GUEST, coloctl):
        if not os.path.exists(f):
            sys.exit("no %s (build first)" % f)

    rows = []
    for token in [int(t) for t in opts.tokens.split(",")]:
        times, idle = [], None
        qdevice = opts.qdevice_timeout or token
        for i in range(opts.runs):
            took, got = one_run(cluster, colod_cluster, coloctl, token, qdevice, i == 0, opts.verbose)
            idle = idle or got
            times.append(took)
            print("token %d ms, qdevice timeout %d ms, run %d: node2 serves %.0f ms after node1's loss"
                  % (token, qdevice, i + 1, took * 1000), flush=True)
        detect = token + 1.2 * token
        rows.append((token, statistics.median(times), max(times), detect))
        for n, v in sorted(idle.items()):
            print("token %d ms, %s's colod while protected and idle: VmRSS %d KiB, VmHWM %d KiB, CPU %.2f %%"
                  % (token, n, v["VmRSS"], v["VmHWM"], v["cpu_pct"]), flush=True)
    print()
    print("| token | runs | kill to serving p50 | max | token + consensus | goal (+300 ms) |")
    print("|---|---|---|---|---|---|")
    for token, p50, mx, detect in rows:
        print("| %d ms | %d | %.0f ms | %.0f ms | %.0f ms | %.0f ms |"
              % (token, opts.runs, p50 * 1000, mx * 1000, detect, detect + 300))


if __name__ == "__main__":
    main()
