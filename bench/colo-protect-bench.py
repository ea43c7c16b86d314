#!/usr/bin/env python3
"""Protect benchmark (not a test): how long the primary's guest stands still
when COLO protection starts, and how long until it is protected, by precopy
x-colo and by snapshot protect (x-colo with postcopy-ram, docs/colo.md).

  COLO_BUILDDIR=/path/to/build bench/colo-protect-bench.py [--mem 64M,256M,1G]
      [--bandwidth BYTES/S] [--timeout S] [--rates idle,fast]
      [--ways precopy,snapshot,qemu]

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

Dirty rates are the test guest's workload (-append): idle (none), medium
(2 MiB of its 8 MiB area every 20 ms) and fast (its whole 8 MiB area every
20 ms); under this machine's emulator the guest writes less than asked
(about 8 MiB/s of distinct pages at fast). A precopy that has not reached
COLO after --timeout seconds is cancelled and printed as "no convergence".

"qemu" is QEMU 7.2's COLO protect in the same run, the same guest and link
(`-M pc -accel kvm`, x-colo, the same max-bandwidth; its COLO has precopy
only: x-colo with postcopy-ram is refused). Its final pause is from its
STOP event to its RESUME event (QEMU has no "device" status without
pause-before-switchover), by its own event timestamps. Without
qemu-system-x86_64 those rows are left out, and the top line says so.
"""
import argparse
import contextlib
import importlib.util
import io
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
os.environ.setdefault("COLO_SRCDIR", os.path.join(HERE, ".."))

from colo_vmm import BUILDDIR, Vmm, free_port  # noqa: E402
from qmp import QMPTimeout  # noqa: E402

# QEMU's process handling is migration-bench's (as colo-bench.py uses it).
_spec = importlib.util.spec_from_file_location("migration_bench", os.path.join(HERE, "migration-bench.py"))
mb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mb)

RATES = {
    "idle": "interval=0 dirty_pages=0 area=8M",
    "medium": "interval=0 dirty_pages=512 dirty_ms=20 area=8M",
    "fast": "interval=0 dirty_pages=2048 dirty_ms=20 area=8M",
}
LABEL = {"precopy": "precopy", "snapshot": "snapshot", "qemu": "QEMU"}


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


def qemu_start(d, name, mem, guest, incoming=None):
    """A QEMU 7.2 with the test guest (migration-bench's Vmm: its QMP, its
    output in @d, killed at exit whatever happens)."""
    qmp = os.path.join(d, name + ".qmp")
    argv = [mb.QEMU, "-M", "pc", "-accel", "kvm", "-m", mem, "-smp", "2",
            "-kernel", os.path.join(BUILDDIR, "tests", "guest", "colo-testguest"), "-append", guest,
            "-nodefaults", "-display", "none", "-monitor", "none",
            "-serial", "file:" + os.path.join(d, name + ".serial"), "-qmp", "unix:%s,server=on,wait=off" % qmp]
    return mb.Vmm(argv + (["-incoming", incoming] if incoming else []), qmp, os.path.join(d, name + ".log"), 30)


def wait_serial(path, text, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, "rb") as f:
            if text.encode() in f.read():
                return
        time.sleep(0.05)
    raise RuntimeError("QEMU's guest did not print %r" % text)


def run_qemu(mem, rate, bandwidth, timeout):
    """QEMU's precopy COLO protect, measured as run() measures colo-vmm's."""
    guest = RATES[rate]
    d = tempfile.mkdtemp(prefix="colo-protect-qemu-")
    pri = sec = None
    try:
        pri = qemu_start(d, "pri", mem, guest)
        wait_serial(os.path.join(d, "pri.serial"), "colo-testguest ready", 60)
        port = free_port()
        sec = qemu_start(d, "sec", mem, guest, incoming="defer")
        caps = [{"capability": "x-colo", "state": True}, {"capability": "events", "state": True}]
        for vm in (sec, pri):
            vm.qmp.cmd("migrate-set-capabilities", capabilities=caps)
        sec.qmp.cmd("migrate-incoming", uri="tcp:127.0.0.1:%d" % port)
        pri.qmp.cmd("migrate-set-parameters", args={"max-bandwidth": bandwidth or (64 << 30),
                                                     "x-checkpoint-delay": 1000})
        time.sleep(1)   # the workload running
        start = time.monotonic()
        pri.qmp.cmd("migrate", uri="tcp:127.0.0.1:%d" % port)
        colo = wait_status(pri, "colo", timeout)
        took = time.monotonic() - start
        if colo is None:
            q = pri.qmp.cmd("query-migrate")
            return {"converged": False, "status": q.get("status"), "error": q.get("error-desc"),
                    "passes": q.get("ram", {}).get("dirty-sync-count")}
        stop = pri.qmp.wait_event("STOP", 10)
        resume = pri.qmp.wait_event("RESUME", 10)
        return {"converged": True, "start_ms": None, "final_ms": (event_time(resume) - event_time(stop)) * 1e3,
                "to_colo_s": took}
    finally:
        for vm in (pri, sec):
            if vm:
                vm.close()
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mem", default="64M,256M,1G")
    ap.add_argument("--rates", default="idle,fast")
    ap.add_argument("--bandwidth", type=int, default=64 << 20, help="max-bandwidth, bytes/s (0 = unlimited)")
    ap.add_argument("--timeout", type=float, default=60, help="s a precopy may take before it counts as not converging")
    ap.add_argument("--ways", default="precopy,snapshot,qemu",
                    help="colo-vmm's precopy and snapshot protect, QEMU 7.2's precopy COLO")
    args = ap.parse_args()
    ways = args.ways.split(",")
    print("# protect: max-bandwidth %s, precopy given %.0f s" %
          ("unlimited" if not args.bandwidth else "%d MiB/s" % (args.bandwidth >> 20), args.timeout), flush=True)
    if "qemu" in ways and not shutil.which(mb.QEMU):
        print("# QEMU not installed (%s): its rows are left out" % mb.QEMU, flush=True)
        ways.remove("qemu")
    print("%-6s %-5s %-9s %12s %12s %10s %s" % ("RAM", "dirty", "protect", "start pause", "final pause",
                                                  "to COLO", "primary overhead"))
    for mem in args.mem.split(","):
        for rate in args.rates.split(","):
            for name in ways:
                snapshot = name == "snapshot"
                if name == "qemu":
                    r = run_qemu(mem, rate, args.bandwidth, args.timeout)
                else:
                    r = run(mem, rate, snapshot, args.bandwidth, args.timeout)
                if not r["converged"] and r["status"] != "active":
                    print("%-6s %-5s %-9s %s: %s" % (mem, rate, LABEL[name], r["status"], r["error"]), flush=True)
                    continue
                if not r["converged"]:
                    print("%-6s %-5s %-9s no convergence in %.0f s (%s passes)" %
                          (mem, rate, LABEL[name], args.timeout, r["passes"]), flush=True)
                    continue
                over = ("%d KiB copies peak (%d faults, %d waits)" % (r["copies_peak"] * 4, r["faults"], r["waits"])
                        if snapshot else "-")
                print("%-6s %-5s %-9s %12s %10.1f ms %8.1f s %s" %
                      (mem, rate, LABEL[name], "%.2f ms" % r["start_ms"] if snapshot else "-", r["final_ms"],
                       r["to_colo_s"], over), flush=True)


if __name__ == "__main__":
    main()
