#!/usr/bin/env python3
"""Relocation benchmark (not a test): colod's `coloctl switchover` of a VM
that runs alone on one node to the other, which stands by (relocation by
postcopy, docs/colo.md "Relocation"), on real corosync
(tests/lib/colod_cluster.py: two nodes in network namespaces, the
replication link a veth pair).

  COLO_BUILDDIR=/path/to/build bench/colod-relocate-bench.py [--mem 256M,1G] [--runs 3]

Needs root, corosync, corosync-qnetd and /dev/kvm. Per RAM size a fresh
cluster; the test guest (2 vCPUs) writes its workload area, most of RAM
(RAM less 48 MiB), 2048 pages every 20 ms, and every page of the area is
written once before the first move. Then the VM moves back and forth
--runs times (neither node protects). Reported per move:

  pause     the source's stop: from its guest stopping to the device state
            and the list of pages not sent being on the wire (colo-vmm's
            "downtime" of the postcopy switch, from its log line)
  blocked   the target's vCPUs waiting for pages it fetched on demand
            (query-migrate postcopy-blocktime, summed over vCPUs)
  to run    from `coloctl switchover` until the target's colod says its
            guest runs there (relocate-target after postcopy began)
  total     from `coloctl switchover` until the target's colod is
            primary-alone (every page arrived)
"""
import argparse
import json
import os
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
os.environ.setdefault("COLO_SRCDIR", os.path.join(HERE, ".."))

import colod_cluster  # noqa: E402
import tap  # noqa: E402

CONF = colod_cluster.CONF.replace("vmm-args=-m 64M -kernel {guest}",
                                  "vmm-args=-m {mem} -smp 2 -kernel {guest} -append \"{append}\"")
DOWNTIME = re.compile(r"migration to \S+ completed: (\d+) ms, downtime (\d+) ms")


def size(text):
    return int(text[:-1]) << {"M": 20, "G": 30}[text[-1]]


def status(c, node):
    code, out, _ = colod_cluster.coloctl(c, node, "--json", "status", timeout=30)
    return json.loads(out) if code == 0 else {}


def wait_state(c, node, states, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        st = status(c, node)
        if st.get("state") in states:
            return st
        time.sleep(0.02)
    raise RuntimeError("%s not in %s after %d s: %s" % (node, states, timeout, status(c, node)))


def ok(c, node, *args):
    code, out, err = colod_cluster.coloctl(c, node, *args, timeout=60)
    if code:
        raise RuntimeError("coloctl %s on %s: %s%s" % (" ".join(args), node, out, err))


def fill(c, node, area_pages, timeout):
    """Until the guest wrote as many pages as its area holds."""
    g = colod_cluster.Guest(c, node)
    try:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if g.status()["pages_dirtied"] >= area_pages:
                    return
            except (AssertionError, OSError):
                pass  # not booted yet
            time.sleep(1)
    finally:
        g.close()
    raise RuntimeError("the guest did not write its %d-page area in %d s" % (area_pages, timeout))


def move(c, src, dst):
    """One switchover of the VM alone on @src to @dst: the row."""
    downtimes = len(DOWNTIME.findall(c.log(src, "colod", 200000)))
    t0 = time.monotonic()
    ok(c, dst, "switchover")
    runs = None
    end = t0 + 300
    while time.monotonic() < end:
        st = status(c, dst)
        if runs is None and st.get("running"):
            runs = time.monotonic() - t0
        if st.get("state") == "primary-alone":
            break
        time.sleep(0.01)
    else:
        raise RuntimeError("%s did not become primary-alone: %s" % (dst, status(c, dst)))
    total = time.monotonic() - t0
    wait_state(c, src, ("idle",), 60)
    found = DOWNTIME.findall(c.log(src, "colod", 200000))
    pause = int(found[-1][1]) if len(found) > downtimes else None
    g = colod_cluster.Guest(c, dst)
    try:
        blocked = g.qmp.cmd("query-migrate").get("postcopy-blocktime")
    finally:
        g.close()
    return {"pause": pause, "blocked": blocked, "runs": runs if runs is not None else total, "total": total}


def bench_size(mem, runs):
    the = {}
    area = size(mem) - (48 << 20)
    append = "interval=0 dirty_pages=2048 dirty_ms=20 area=%dM" % (area >> 20)
    try:
        c = colod_cluster.get(the, {"node1": ("primary", 5), "node2": ("none", 0)},
                              conf=CONF.replace("{mem}", mem).replace("{append}", append))
        for n in ("node1", "node2"):
            colod_cluster.start(c, n)
        wait_state(c, "node1", ("primary-alone", "protect-requested", "protecting", "primary-protected"), 120)
        ok(c, "node1", "unprotect")
        wait_state(c, "node1", ("primary-alone",), 120)
        wait_state(c, "node2", ("idle",), 120)
        ok(c, "node2", "unprotect")
        fill(c, "node1", area >> 12, 600)
        rows = []
        src, dst = "node1", "node2"
        for i in range(runs):
            r = move(c, src, dst)
            print("  %s run %d %s -> %s: pause %s ms, blocked %s ms, guest runs on the target after %.2f s, "
                  "all there after %.2f s" % (mem, i + 1, src, dst, r["pause"], r["blocked"], r["runs"], r["total"]),
                  flush=True)
            rows.append(r)
            src, dst = dst, src
            time.sleep(2)
        return rows
    finally:
        colod_cluster.teardown(the)


def med(rows, key):
    vals = [r[key] for r in rows if r[key] is not None]
    return statistics.median(vals) if vals else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mem", default="256M,1G", help="RAM sizes (default 256M,1G)")
    ap.add_argument("--runs", type=int, default=3, help="moves per size (default 3)")
    args = ap.parse_args()
    colod_cluster.require()
    results = {}
    for mem in args.mem.split(","):
        results[mem] = bench_size(mem, args.runs)
    print("\n| RAM | pause p50 (max) | vCPUs blocked p50 | guest runs on the target p50 | all there p50 (max) |")
    print("|---|---|---|---|---|")
    for mem, rows in results.items():
        print("| %s | %s ms (%s) | %s ms | %.2f s | %.2f s (%.2f) |" % (
            mem, med(rows, "pause"), max((r["pause"] or 0) for r in rows), med(rows, "blocked"),
            med(rows, "runs"), med(rows, "total"), max(r["total"] for r in rows)))


if __name__ == "__main__":
    try:
        main()
    except tap.Skip as e:
        print("skipped: %s" % e)
        sys.exit(77)
