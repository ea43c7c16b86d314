#!/usr/bin/env python3
"""COLO checkpoint benchmark (not a test): colo-vmm's COLO against QEMU's, side by side.

  COLO_BUILDDIR=/path/to/build bench/colo-bench.py [--checkpoints N] [--delay MS] [--mib M]

Needs /dev/kvm and ss (iproute2); about 5 minutes with the defaults, more
on a loaded machine.

A primary and a secondary on 127.0.0.1 run the test guest (-kernel) in
periodic COLO: no NIC, no disk, no colo-compare; x-colo on both sides,
x-checkpoint-delay on the primary, the secondary started with
`-incoming defer`. Each case boots a fresh pair per VMM (the order of the
VMMs rotates from case to case), waits for COLO, lets --warmup checkpoints
pass and then measures --checkpoints checkpoints:

  colo-vmm          the COLO_CHECKPOINT event of each checkpoint on either
                    side: its pause-us, and pages
  QEMU TCP_NODELAY  QEMU with an LD_PRELOAD shim (bench/colo-bench-nodelay.c,
                    compiled here with cc) that sets TCP_NODELAY on the
                    migration socket on both sides (checked in their logs)
  QEMU stock        QEMU as it is (7.2 leaves Nagle on: its small COLO
                    messages wait for the peer's delayed ACK)

QEMU runs `-M pc -accel kvm` (7.2's q35 aborts at the first checkpoint; TCG
hangs) with the trace events colo_* written with timestamps (-msg
timestamp=on, -D). The primary's pause is the time its vCPUs do not run
because of the checkpoint: for colo-vmm its pause-us (from the request to
stop the vCPUs until they have been resumed); for QEMU, from the trace,
from `checkpoint-reply` received (vm_stop follows) to colo_vm_state_change
stop => run (vm_start has resumed the vCPUs). The secondary's pause runs
from the checkpoint's request until it has loaded and runs again (QEMU:
its run => stop to stop => run). The bytes each checkpoint put on the wire
come from the primary's socket (ss: bytes_sent) for both VMMs, so a QEMU
checkpoint's pages are these bytes / 4 KiB (a zero page costs less).

Cases: an idle guest, and two dirty workloads (--dirty-4, --dirty-12: the
test guest's -append, meant to dirty about 4 and 12 MiB per checkpoint at a
200 ms interval; a loaded machine's guest writes less, so the pages each
checkpoint carried are printed). Then 16 MiB: --rate-delay between
checkpoints, long enough for the guest to rewrite its whole 16 MiB area
(--dirty-16); the rate the pair sustains with 16 MiB dirty is 1 / the p50
of the time a checkpoint occupies the pair, from the primary's request to
LOADED at the primary (QEMU: its trace; colo-vmm, whose next checkpoint
starts x-checkpoint-delay after the last has ended: the time between two
COLO_CHECKPOINT events less the delay). The ratios
colo-vmm / QEMU, the growth of the pause with the MiB captured and the
goals of issue 10 come last.

--chrt runs every VMM SCHED_FIFO, to tell the waiting for a CPU on a loaded
machine from the work (fine for the idle case; with a dirty workload the
emulated vCPUs would take the CPUs from everything else).

Without qemu-system-x86_64 only colo-vmm is measured (said so at the top
and at the end); without cc, QEMU with TCP_NODELAY is left out."""
import argparse
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "lib"))
from qmp import QMPError, QMPTimeout  # noqa: E402

# The process handling (Vmm, free_port, kill_all, check_build) is migration-bench's.
_spec = importlib.util.spec_from_file_location("migration_bench", os.path.join(HERE, "migration-bench.py"))
mb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mb)
log = mb.log

QEMU = mb.QEMU
BANNER = b"colo-testguest ready"
PAGE = 4096
MIB = 1 << 20

VARIANTS = ("colo", "qemu-nodelay", "qemu-stock")
# Not in the default set: colo-vmm with the checkpoints' pages on
# --multifd-channels multifd channels (QEMU 7.2's COLO has one channel).
# colo-tls: colo-vmm with the checkpoint stream under TLS (certificates
# from tests/lib/tls_certs.py; docs/performance.md, "TLS").
EXTRA_VARIANTS = ("colo-multifd", "colo-tls")
LABEL = {"colo": "colo-vmm", "colo-multifd": "colo-vmm multifd", "colo-tls": "colo-vmm TLS",
         "qemu-nodelay": "QEMU TCP_NODELAY", "qemu-stock": "QEMU stock"}

# A trace line of QEMU's log backend with -msg timestamp=on:
#   1234@1764765600.123456:colo_receive_message Receive 'checkpoint-reply' message
TRACE_RE = re.compile(rb"^\d+@(\d+)\.(\d+):(colo_send_message|colo_receive_message|colo_vm_state_change) (.*)$",
                      re.M)


def percentile(sorted_vals, p):
    """As colo-vmm computes it (the nearest rank): p50 the lower median."""
    n = len(sorted_vals)
    if not n:
        return 0
    if p == 50:
        return sorted_vals[(n - 1) // 2]
    return sorted_vals[(n * p + 99) // 100 - 1]


def bytes_sent(port):
    """bytes_sent of the established TCP sockets whose peer is 127.0.0.1:@port
    (the primary's ends of the migration connections: one, or with multifd
    the main one and the channels)."""
    out = subprocess.run(["ss", "-tinH", "state", "established", "dst", "127.0.0.1:%d" % port],
                         capture_output=True, text=True, check=True).stdout
    m = re.findall(r"bytes_sent:(\d+)", out)
    if not m:
        raise RuntimeError("ss: no socket to port %d: %s" % (port, out))
    return sum(int(n) for n in m)


def build_shim(workdir):
    """The TCP_NODELAY shim, or None without a C compiler."""
    cc = shutil.which(os.environ.get("CC", "cc"))
    if not cc:
        return None
    so = os.path.join(workdir, "nodelay.so")
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", so, os.path.join(HERE, "colo-bench-nodelay.c"), "-ldl"],
                   check=True)
    return so


# --- the two VMMs ----------------------------------------------------------

def colo_argv(args, append, qmp, serial, incoming=None):
    argv = [os.path.join(args.build, "vmm", "colo-vmm"), "-m", "%dM" % args.mib, "-smp", str(args.smp),
            "-kernel", os.path.join(args.build, "tests", "guest", "colo-testguest"), "-append", append,
            "-serial", "file:" + serial, "-qmp", "unix:%s,server=on,wait=off" % qmp]
    return argv + (["-incoming", incoming] if incoming else [])


def qemu_argv(args, append, qmp, serial, trace=None, incoming=None):
    argv = [QEMU, "-M", "pc", "-accel", "kvm", "-m", "%dM" % args.mib, "-smp", str(args.smp),
            "-kernel", os.path.join(args.build, "tests", "guest", "colo-testguest"), "-append", append,
            "-nodefaults", "-display", "none", "-monitor", "none", "-serial", "file:" + serial,
            "-qmp", "unix:%s,server=on,wait=off" % qmp]
    if trace:
        argv += ["-msg", "timestamp=on", "-D", trace, "-trace", "enable=colo_*"]
    return argv + (["-incoming", incoming] if incoming else [])


class Pair:
    """A primary and a secondary of one VMM in COLO, with their files in @d."""

    def __init__(self, variant, append, delay, args, d, shim):
        self.variant, self.d, self.delay = variant, d, delay
        self.qemu = not variant.startswith("colo")
        self.port = mb.free_port()
        uri = "tcp:127.0.0.1:%d" % self.port
        self.trace = {side: os.path.join(d, side + ".trace") for side in ("pri", "sec")}
        env = dict(os.environ)
        if variant == "qemu-nodelay":
            env["LD_PRELOAD"] = shim
        self.pri = self.sec = None
        p = {k: os.path.join(d, k) for k in ("pri.qmp", "sec.qmp", "pri.serial", "sec.serial")}
        if self.qemu:
            sec_argv = qemu_argv(args, append, p["sec.qmp"], p["sec.serial"], self.trace["sec"], incoming="defer")
            pri_argv = qemu_argv(args, append, p["pri.qmp"], p["pri.serial"], self.trace["pri"])
        else:
            sec_argv = colo_argv(args, append, p["sec.qmp"], p["sec.serial"], incoming="defer")
            pri_argv = colo_argv(args, append, p["pri.qmp"], p["pri.serial"])
        if variant == "colo-tls":
            obj = "tls-creds-x509,id=tls0,dir=%s,endpoint=%%s,verify-peer=on" % args.tls_pki
            sec_argv += ["-object", obj % "server", "-global", "migration.tls-creds=tls0"]
            pri_argv += ["-object", obj % "client", "-global", "migration.tls-creds=tls0"]
        if args.chrt:
            sec_argv, pri_argv = (["chrt", "-f", str(args.chrt)] + a for a in (sec_argv, pri_argv))
        self.sec = mb.Vmm(sec_argv, p["sec.qmp"], os.path.join(d, "sec.log"), args.timeout, env)
        self.pri = mb.Vmm(pri_argv, p["pri.qmp"], os.path.join(d, "pri.log"), args.timeout, env)
        deadline = time.monotonic() + args.timeout
        while BANNER not in open(p["pri.serial"], "rb").read():
            if time.monotonic() > deadline or self.pri.proc.poll() is not None:
                raise RuntimeError("%s: the test guest did not come up: %s" % (variant, self.pri.output()))
            time.sleep(0.05)
        caps = [{"capability": "x-colo", "state": True}, {"capability": "events", "state": True}]
        if variant == "colo-multifd":
            caps.append({"capability": "multifd", "state": True})
        for vm in (self.sec, self.pri):
            vm.cmd("migrate-set-capabilities", capabilities=caps)
            if variant == "colo-multifd":
                vm.cmd("migrate-set-parameters", **{"multifd-channels": args.multifd_channels})
        self.pri.cmd("migrate-set-parameters", **{"x-checkpoint-delay": delay, "max-bandwidth": 64 << 30})
        self.sec.cmd("migrate-incoming", uri=uri)
        self.pri.cmd("migrate", uri=uri)
        for vm in (self.pri, self.sec):
            while vm.cmd("query-migrate").get("status") != "colo":
                st = vm.cmd("query-migrate").get("status")
                if time.monotonic() > deadline or st in ("failed", "cancelled", "completed"):
                    raise RuntimeError("%s: no COLO (%s): %s" % (variant, st, vm.output()))
                time.sleep(0.05)
        if variant == "qemu-nodelay":
            for vm in (self.pri, self.sec):
                if "colo-bench-nodelay: TCP_NODELAY" not in vm.output():
                    raise RuntimeError("the TCP_NODELAY shim did not take: %s" % vm.output())

    def close(self):
        for vm in (self.pri, self.sec):
            if vm:
                vm.close()

    # What the trace shows of a checkpoint, from @begin to @end: the
    # primary's pause (it stops once the secondary's reply is in), the
    # secondary's (its first stop => run is COLO's start, not a checkpoint)
    # and the whole checkpoint at the primary, from the request to LOADED.
    SPANS = {"pri": ("pri", (b"colo_receive_message", b"'checkpoint-reply'"),
                     (b"colo_vm_state_change", b"'stop' => 'run'")),
             "sec": ("sec", (b"colo_vm_state_change", b"'run' => 'stop'"),
                     (b"colo_vm_state_change", b"'stop' => 'run'")),
             "cycle": ("pri", (b"colo_send_message", b"'checkpoint-request'"),
                       (b"colo_receive_message", b"'vmstate-loaded'"))}

    def qemu_spans(self, what):
        """Per checkpoint so far, the span @what (a key of SPANS) in us, from the trace."""
        side, begin, end = self.SPANS[what]
        with open(self.trace[side], "rb") as f:
            text = f.read()
        spans, t0 = [], None
        for sec, usec, ev, rest in TRACE_RE.findall(text):
            t = int(sec) * 1000000 + int(usec)
            if ev == begin[0] and begin[1] in rest:
                t0 = t
            elif ev == end[0] and end[1] in rest and t0 is not None:
                spans.append(t - t0)
                t0 = None
        return spans

    def colo_status(self, vm):
        return vm.cmd("query-colo-status")["checkpoints"]

    @staticmethod
    def colo_events(vm, after, n, timeout):
        """@vm's COLO_CHECKPOINT events for checkpoints @after + 1 to @after + @n."""
        got, deadline = [], time.monotonic() + timeout
        while len(got) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("colo-vmm: %d COLO_CHECKPOINT events not seen in %.0f s" % (n, timeout))
            try:
                ev = vm.qmp.wait_event("COLO_CHECKPOINT", timeout=left)
            except QMPTimeout:
                continue
            if after < ev["data"]["count"] <= after + n:
                got.append(ev)
        return got

    def count(self):
        return len(self.qemu_spans("pri")) if self.qemu else self.colo_status(self.pri)["count"]

    def wait_count(self, n, timeout):
        deadline = time.monotonic() + timeout
        while self.count() < n:
            if time.monotonic() > deadline:
                raise RuntimeError("%s: %d checkpoints not reached in %.0f s" % (self.variant, n, timeout))
            time.sleep(0.02)

    def measure(self, warmup, n, timeout):
        """After @warmup checkpoints, @n more: per-checkpoint pauses (us) of
        either side, colo-vmm's pages per checkpoint, the bytes sent and the
        time taken."""
        self.wait_count(warmup, timeout)
        r = {"pri": [], "sec": [], "cycle": [], "pages": []}
        if self.qemu:
            start = self.count()
            b0, t0 = bytes_sent(self.port), time.monotonic()
            self.wait_count(start + n, timeout + n)
            # A poll late under load may have seen one more: the bytes and
            # the time cover them, the pauses are the first @n.
            done = self.count()
            b1, t1 = bytes_sent(self.port), time.monotonic()
            for what in ("pri", "sec", "cycle"):
                r[what] = self.qemu_spans(what)[start:start + n]
        else:
            # Every checkpoint's COLO_CHECKPOINT event, on either side.
            first = {side: self.colo_status(vm)["count"] for side, vm in (("pri", self.pri), ("sec", self.sec))}
            b0, t0 = bytes_sent(self.port), time.monotonic()
            evs = self.colo_events(self.pri, first["pri"], n, timeout + n)
            b1, t1 = bytes_sent(self.port), time.monotonic()
            r["pri"], r["pages"] = [e["data"]["pause-us"] for e in evs], [e["data"]["pages"] for e in evs]
            # The next checkpoint starts x-checkpoint-delay after the last
            # one has ended (LOADED, then the event): what is more between
            # two events is the checkpoint, from its request to LOADED.
            stamps = [e["timestamp"]["seconds"] * 1000000 + e["timestamp"]["microseconds"] for e in evs]
            r["cycle"] = [b - a - self.delay * 1000 for a, b in zip(stamps, stamps[1:])]
            r["sec"] = [e["data"]["pause-us"] for e in self.colo_events(self.sec, first["sec"], n, timeout)]
            start, done = first["pri"], first["pri"] + n
        r.update({"checkpoints": done - start, "bytes": b1 - b0, "seconds": t1 - t0})
        return r


def run_case(variant, append, delay, n, args, workdir, shim):
    d = tempfile.mkdtemp(prefix=variant + "-", dir=workdir)
    pair = None
    try:
        pair = Pair(variant, append, delay, args, d, shim)
        return pair.measure(args.warmup, n, args.timeout)
    finally:
        if pair:
            pair.close()
        if not args.keep:
            shutil.rmtree(d, ignore_errors=True)


# --- the report -------------------------------------------------------------

def summary(r):
    pri, sec = sorted(r["pri"]), sorted(r["sec"])
    return {"p50": percentile(pri, 50) / 1e3, "p99": percentile(pri, 99) / 1e3, "max": (pri[-1] if pri else 0) / 1e3,
            "sec50": percentile(sec, 50) / 1e3, "sec99": percentile(sec, 99) / 1e3,
            "cycle50": percentile(sorted(r["cycle"]), 50) / 1e3,
            "mib": r["bytes"] / max(r["checkpoints"], 1) / MIB,
            "pages": sum(r["pages"]) / len(r["pages"]) if r["pages"] else None,
            "rate": r["checkpoints"] / r["seconds"]}


def fmt_case(variant, r, s):
    pages = "%.0f pages" % s["pages"] if s["pages"] is not None else "~%.0f pages" % (s["mib"] * MIB / PAGE)
    return ("  %-17s primary paused p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms | secondary p50 %6.2f p99 %6.2f ms"
            " | request to loaded p50 %6.2f ms | %s, %.2f MiB on the wire per checkpoint; %d checkpoints, %.2f/s" %
            (LABEL[variant], s["p50"], s["p99"], s["max"], s["sec50"], s["sec99"], s["cycle50"], pages, s["mib"],
             r["checkpoints"], s["rate"]))


def report(table, cases, variants):
    """Ratios, growth with the pages, the rate, the goals: the last lines."""
    met = {}
    for case, _, _, _ in cases:
        c = table.get((case, "colo"))
        for q in ("qemu-nodelay", "qemu-stock"):
            o = table.get((case, q))
            if c and o:
                r50, r99 = c["p50"] / o["p50"], c["p99"] / o["p99"]
                log("%-6s colo-vmm / %-17s primary's pause p50 %.2f, p99 %.2f (%.2f / %.2f ms against %.2f / %.2f ms)"
                    % (case, LABEL[q] + ":", r50, r99, c["p50"], c["p99"], o["p50"], o["p99"]))
                if q == "qemu-nodelay":
                    met.setdefault("fifth", []).append(r50 <= 0.2 and r99 <= 0.2)
    for v in variants:
        # Least squares over the cases: the primary's pause against the MiB a checkpoint carried.
        pts = [(table[(case, v)]["mib"], table[(case, v)]["p50"]) for case, _, _, _ in cases if (case, v) in table]
        if len(pts) >= 2:
            mx, my = sum(x for x, _ in pts) / len(pts), sum(y for _, y in pts) / len(pts)
            sxx = sum((x - mx) ** 2 for x, _ in pts)
            if sxx > 0:
                slope = sum((x - mx) * (y - my) for x, y in pts) / sxx
                log("%-17s primary's pause p50 grows %.2f ms per MiB a checkpoint carries (least squares, %s)" %
                    (LABEL[v], slope, ", ".join("%.1f MiB %.1f ms" % pt for pt in pts)))
    for v in variants:
        s = table.get(("16mib", v))
        if s:
            # A checkpoint occupies the pair from its request until the
            # primary has LOADED: no more of them fit in a second.
            log("16 MiB dirty: %-17s sustains %.1f checkpoints/s (1 / p50 %.1f ms from the request to LOADED at the"
                " primary; %.2f MiB per checkpoint)" % (LABEL[v], 1e3 / s["cycle50"] if s["cycle50"] else 0,
                                                       s["cycle50"], s["mib"]))
    if not any(not v.startswith("colo") for v in variants):
        log("QEMU not measured: no ratios, colo-vmm only")
    if "fifth" in met:
        log("goal: at most a fifth of QEMU TCP_NODELAY's pause at p50 and p99 in every case: %s" %
            ("met" if all(met["fifth"]) else "NOT met"))
    idle = table.get(("idle", "colo"))
    if idle:
        log("goal: idle p99 under 2 ms: %s (%.2f ms)" % ("met" if idle["p99"] < 2 else "NOT met", idle["p99"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", type=int, default=100, help="checkpoints measured per case (default 100)")
    ap.add_argument("--warmup", type=int, default=10,
                    help="checkpoints let pass first (default 10: QEMU's first few wait ~40 ms on the secondary)")
    ap.add_argument("--delay", type=int, default=200, help="x-checkpoint-delay, ms (default 200)")
    ap.add_argument("--mib", type=int, default=128, help="guest RAM, MiB (default 128)")
    ap.add_argument("--smp", type=int, default=1, help="vCPUs (default 1)")
    ap.add_argument("--dirty-4", default="interval=0 dirty_pages=128 dirty_ms=10 area=4M",
                    help="test guest -append of the ~4 MiB case")
    ap.add_argument("--dirty-12", default="interval=0 dirty_pages=256 dirty_ms=10 area=12M",
                    help="test guest -append of the ~12 MiB case")
    ap.add_argument("--dirty-16", default="interval=0 dirty_pages=256 dirty_ms=10 area=16M",
                    help="test guest -append of the 16 MiB case")
    ap.add_argument("--cases", default="idle,4mib,12mib,16mib",
                    help="comma-separated, of idle, 4mib, 12mib, 16mib (default all)")
    ap.add_argument("--rate-delay", type=int, default=1000,
                    help="x-checkpoint-delay of the 16 MiB case, ms (default 1000: the guest here needs ~0.7 s"
                         " to dirty 16 MiB)")
    ap.add_argument("--rate-checkpoints", type=int, default=20, help="checkpoints of the 16 MiB case (default 20)")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help="comma-separated, of %s (default all but colo-multifd and colo-tls)" % ", ".join(VARIANTS + EXTRA_VARIANTS))
    ap.add_argument("--multifd-channels", type=int, default=2, help="channels of colo-multifd (default 2)")
    ap.add_argument("--chrt", type=int, default=0,
                    help="run both sides of every VMM SCHED_FIFO at this priority (diagnosis: how much of a pause"
                         " is waiting for a CPU; the vCPUs then take CPU from everything else)")
    ap.add_argument("--timeout", type=float, default=120, help="bound on every wait, s (default 120)")
    ap.add_argument("--keep", action="store_true", help="keep the logs and traces (printed at the end)")
    ap.add_argument("--build", default=os.environ.get("COLO_BUILDDIR", os.getcwd()),
                    help="build directory (default $COLO_BUILDDIR, else the current directory)")
    args = ap.parse_args()
    mb.check_build(args)
    if not shutil.which("ss"):
        sys.exit("needs ss (iproute2) for the bytes on the wire")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(1))
    workdir = tempfile.mkdtemp(prefix="colo-colobench-")
    try:
        variants = [v for v in args.variants.split(",") if v]
        if not shutil.which(QEMU):
            log("QEMU not installed (no %s): QEMU NOT MEASURED, colo-vmm only" % QEMU)
            variants = [v for v in variants if v.startswith("colo")]
        else:
            log("QEMU: " + subprocess.run([QEMU, "--version"], capture_output=True, text=True).stdout.splitlines()[0])
        shim = build_shim(workdir) if "qemu-nodelay" in variants else None
        if "colo-tls" in variants:
            from tls_certs import CA
            args.tls_ca = CA()
            args.tls_pki = args.tls_ca.pki()
        if "qemu-nodelay" in variants and not shim:
            log("no C compiler (cc): QEMU with TCP_NODELAY left out")
            variants.remove("qemu-nodelay")
        known = [("idle", "interval=0 dirty_pages=0", args.delay, args.checkpoints),
                 ("4mib", args.dirty_4, args.delay, args.checkpoints),
                 ("12mib", args.dirty_12, args.delay, args.checkpoints),
                 ("16mib", args.dirty_16, args.rate_delay, args.rate_checkpoints)]
        cases = [c for c in known if c[0] in args.cases.split(",")]
        log("guest RAM %d MiB, %d vCPU, %d checkpoints after %d per case%s, load %s" %
            (args.mib, args.smp, args.checkpoints, args.warmup, ", SCHED_FIFO %d" % args.chrt if args.chrt else "",
             " ".join("%.2f" % x for x in os.getloadavg())))
        t_start = time.monotonic()
        table = {}
        for k, (case, append, delay, n) in enumerate(cases):
            log("case %s, x-checkpoint-delay %d ms, -append \"%s\":" % (case, delay, append))
            # The order rotates from case to case: a load that drifts favours no VMM.
            for v in variants[k % len(variants):] + variants[:k % len(variants)]:
                r = run_case(v, append, delay, n, args, workdir, shim)
                table[(case, v)] = summary(r)
                log(fmt_case(v, r, table[(case, v)]))
        log("")
        log("%.0f s in all, load %s" % (time.monotonic() - t_start, " ".join("%.2f" % x for x in os.getloadavg())))
        report(table, cases, variants)
        if args.keep:
            log("logs and traces kept in %s" % workdir)
    except QMPError as e:
        sys.exit("QMP error: %s" % e)
    except RuntimeError as e:
        sys.exit("colo-bench: %s" % e)
    finally:
        mb.kill_all()
        if getattr(args, "tls_ca", None):
            args.tls_ca.close()
            shutil.rmtree(args.tls_pki, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
