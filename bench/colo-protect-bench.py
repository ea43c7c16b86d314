#!/usr/bin/env python3
"""Protect benchmark (not a test): how long the primary's guest stands still
when COLO protection starts, and how long until it is protected, by precopy
x-colo and by snapshot protect (x-colo with postcopy-ram, docs/colo.md).

  COLO_BUILDDIR=/path/to/build bench/colo-protect-bench.py [--mem 64M,256M,1G]
      [--bandwidth BYTES/S] [--timeout S] [--rates idle,fast]

Needs /dev/kvm. For each RAM size and dirty rate a fresh primary (the test
guest, 2 vCPUs) and secondary on 127.0.0.1 are started for each way of
protecting, one after the other. Reported per run:

  start pause   snapshot protect: its one pause to take the snapshot
                (query-migrate snapshot.pause-us); precopy has none
  final pause   the stop before COLO begins (both): from the MIGRATION event
                "device" (the guest has stopped) to "colo" (it runs again),
                by the VMM's own event timestamps; an upper bound
  to COLO       from migrate to status colo on the primary
  copies peak   snapshot protect: the most pages held as copies at once
                (the primary's memory overhead), with the write faults

Dirty rates are the test guest's workload (-append): idle (none) and fast
(its whole 8 MiB area every 20 ms, as fast as the emulated guest can write
it). A precopy that has not reached COLO after --timeout seconds is
cancelled and printed as "no convergence". QEMU is not run here (its COLO
has precopy only: it behaves as the precopy rows at best).
"""
import argparse
import contextlib
import io
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
os.environ.setdefault("COLO_SRCDIR", os.path.join(HERE, ".."))

from colo_vmm import Vmm, free_port  # noqa: E402
from qmp import QMPTimeout  # noqa: E402

RATES = {
    "idle": "interval=0 dirty_pages=0 area=8M",
    "fast": "interval=0 dirty_pages=2048 dirty_ms=20 area=8M",
}


def event_time(ev):
    ts = ev["timestamp"]
    return ts["seconds"] + ts["microseconds"] / 1e6


def caps(vm, snapshot):
    vm.qmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "x-colo", "state": True},
                                                        {"capability": "postcopy-ram", "state": snapshot},
                                                        {"capability": "events", "state": True}])


def wait_status(vm, wanted, timeout):
    """The time (VMM clock) of the MIGRATION event with status @wanted, or
    None if the migration ends otherwise or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ev = vm.qmp.wait_event("MIGRATION", max(0.1, deadline - time.monotonic()))
        except QMPTimeout:
            return None
        status = ev["data"]["status"]
        if status == wanted:
            return event_time(ev)
        if status in ("failed", "cancelled", "completed"):
            return None
    return None


def run(mem, rate, snapshot, bandwidth, timeout):
    guest = RATES[rate]
    pri = Vmm(smp=2, mem=mem, append=guest).start()
    sec = None
    try:
        pri.wait_serial("colo-testguest ready", 60)
        uri = "tcp:127.0.0.1:%d" % free_port()
        sec = Vmm(smp=2, mem=mem, append=guest, extra=["-incoming", uri]).start()
        caps(sec, False)
        caps(pri, snapshot)
        pri.qmp.cmd("migrate-set-parameters", args={"max-bandwidth": bandwidth, "x-checkpoint-delay": 1000})
        time.sleep(1)   # the workload running
        start = time.monotonic()
        pri.qmp.cmd("migrate", uri=uri)
        stopped = wait_status(pri, "device", timeout)
        running = wait_status(pri, "colo", 120) if stopped else None
        took = time.monotonic() - start
        if running is None:
            q = pri.qmp.cmd("query-migrate")
            pri.qmp.cmd("migrate_cancel")
            return {"converged": False, "status": q.get("status"), "error": q.get("error-desc"),
                    "passes": q.get("ram", {}).get("dirty-sync-count")}
        snap = pri.qmp.cmd("query-migrate").get("snapshot") or {}
        return {"converged": True, "start_ms": snap.get("pause-us", 0) / 1e3 if snapshot else None,
                "final_ms": (running - stopped) * 1e3, "to_colo_s": took,
                "copies_peak": snap.get("copies-peak"), "faults": snap.get("faults"), "waits": snap.get("waits")}
    finally:
        # A secondary whose sync was cancelled exits with 1 on purpose:
        # keep its log (which close() prints) out of the table.
        with contextlib.redirect_stdout(io.StringIO()):
            pri.close()
            if sec:
                sec.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mem", default="64M,256M,1G")
    ap.add_argument("--rates", default="idle,fast")
    ap.add_argument("--bandwidth", type=int, default=64 << 20, help="max-bandwidth, bytes/s (0 = unlimited)")
    ap.add_argument("--timeout", type=float, default=60, help="s a precopy may take before it counts as not converging")
    args = ap.parse_args()
    print("# protect: max-bandwidth %s, precopy given %.0f s" %
          ("unlimited" if not args.bandwidth else "%d MiB/s" % (args.bandwidth >> 20), args.timeout), flush=True)
    print("%-6s %-5s %-9s %12s %12s %10s %s" % ("RAM", "dirty", "protect", "start pause", "final pause",
                                                  "to COLO", "primary overhead"))
    for mem in args.mem.split(","):
        for rate in args.rates.split(","):
            for snapshot in (False, True):
                r = run(mem, rate, snapshot, args.bandwidth, args.timeout)
                name = "snapshot" if snapshot else "precopy"
                if not r["converged"] and r["status"] != "active":
                    print("%-6s %-5s %-9s %s: %s" % (mem, rate, name, r["status"], r["error"]), flush=True)
                    continue
                if not r["converged"]:
                    print("%-6s %-5s %-9s no convergence in %.0f s (%s passes)" %
                          (mem, rate, name, args.timeout, r["passes"]), flush=True)
                    continue
                over = ("%d KiB copies peak (%d faults, %d waits)" % (r["copies_peak"] * 4, r["faults"], r["waits"])
                        if snapshot else "-")
                print("%-6s %-5s %-9s %12s %10.1f ms %8.1f s %s" %
                      (mem, rate, name, "%.2f ms" % r["start_ms"] if snapshot else "-", r["final_ms"],
                       r["to_colo_s"], over), flush=True)


if __name__ == "__main__":
    main()
