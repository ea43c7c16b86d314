#!/usr/bin/env python3
"""colo-proxy benchmark (not a test): packets per second through
compare-and-release, and TCP stream throughput, on this machine.

  sudo COLO_BUILDDIR=/path/to/build bench/proxy-bench.py [--stream-mib N] [--small-mib N] [--l2] [--cc CC]

1. engine: the compare engine alone (bench/proxy-bench-engine.c).
   Then UDP round trips client -> guest -> client, without and with the
   proxies (the added latency of the whole hold/compare/release path).
2. full path, TCP stream: the namespace set-up of
   tests/netfilter/test-proxy-netns.py (two guests, two proxies, NFQUEUE
   with GSO and batch verdicts; with --l2 the user-space L2 path of
   test-proxy-l2.py instead); the client fetches N MiB.
3. full path, small packets: the same with GSO off in the guests
   (gso_max_segs 1) and the client advertising an MSS of 88 bytes, so
   every packet the proxy holds and compares is small.
The last line is the full-path small-packet rate, "N kpps"."""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "netfilter"))
import netns_topo as netns  # noqa: E402
from proxyctl import ProxyCtl  # noqa: E402


class Coordinator(threading.Thread):
    """Stands in for colod: commits a checkpoint on both proxies whenever the
    primary asks (the namespaces cannot really be synchronised, so the
    secondary keeps its rewriter offsets)."""

    def __init__(self, sock, ssock):
        super().__init__(daemon=True)
        self.ctl = ProxyCtl(sock)
        self.sctl = ProxyCtl(ssock)
        self.commits = 0
        self.reasons = {}
        self.stop = False

    def run(self):
        while not self.stop:
            ev = self.ctl.wait_event("CHECKPOINT_REQUEST", timeout=0.2)
            if ev:
                r = ev["data"]["reason"]
                self.reasons[r] = self.reasons.get(r, 0) + 1
                self.ctl.execute("checkpoint-begin")
                self.sctl.execute("checkpoint-commit", {"keep-offsets": True})
                self.ctl.execute("checkpoint-commit")
                self.commits += 1


def cpu_seconds(pid):
    """(user, system) CPU seconds of a process so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    hz = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / hz, int(fields[12]) / hz


def machine_busy():
    """(busy, total) jiffies of all CPUs so far."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)


class CpuMeter:
    """Where the CPU time of one phase goes: each proxy, and the machine."""

    def __init__(self, procs):
        self.procs = procs
        self.start = {k: cpu_seconds(p.pid) for k, p in procs.items()}
        self.m0 = machine_busy()

    def report(self, wall):
        m1 = machine_busy()
        ncpu = os.cpu_count() or 1
        used = {k: [a - b for a, b in zip(cpu_seconds(p.pid), self.start[k])] for k, p in self.procs.items()}
        # System time includes the kernel work our syscalls trigger on
        # these veths: forwarding a released packet to the client,
        # a guest's TCP stack handling an injected frame.
        parts = ["%s %.2f s (%.0f %%; user %.2f s, system %.2f s)" % (k, sum(v), 100.0 * sum(v) / wall, v[0], v[1])
                 for k, v in used.items()]
        busy = (m1[0] - self.m0[0]) / max(1, m1[1] - self.m0[1]) * 100.0
        return "CPU over %.2f s: %s; all %d CPUs %.0f %% busy" % (wall, ", ".join(parts), ncpu, busy)


def fetch(topo, mib):
    t0 = time.monotonic()
    r = topo.exe("c", sys.executable, netns.PEER, "fetch", "10.77.0.2", "7000", str(mib << 20), timeout=600,
                 check=False)
    if r.returncode:
        raise RuntimeError("fetch failed: " + r.stderr.strip().splitlines()[-1])
    dt = time.monotonic() - t0
    n = int(r.stdout.split()[0])
    if n != mib << 20:
        raise RuntimeError("fetch got %d bytes" % n)
    return dt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stream-mib", type=int, default=1024)
    ap.add_argument("--small-mib", type=int, default=16)
    ap.add_argument("--l2", action="store_true", help="the primary on the user-space L2 path (--uplink)")
    ap.add_argument("--cc", help="TCP congestion control of the guests' servers (a namespace may use only "
                    "what net.ipv4.tcp_allowed_congestion_control lists; default: the host's)")
    args = ap.parse_args()
    build = os.environ.get("COLO_BUILDDIR", os.getcwd())

    eng = subprocess.run([os.path.join(build, "tests", "netfilter", "proxy-bench-engine")], check=True,
                         capture_output=True, text=True, timeout=300).stdout
    for line in eng.splitlines():
        print(line if line.startswith("engine") else "engine: " + line, flush=True)

    topo = netns.Topology()
    try:
        topo.setup()
        if args.cc:
            os.environ["COLO_PEER_CC"] = args.cc
        for g in ("pg", "sg"):
            if not netns.wait_ready(topo.spawn(g, sys.executable, netns.PEER, "uecho", "7003")):
                raise RuntimeError("echo server did not start")

        def uping():
            out = topo.exe("c", sys.executable, netns.PEER, "uping", "10.77.0.2", "7003", "2000", timeout=120).stdout
            return [float(x) for x in out.split()]

        base = uping()
        if args.l2:
            topo.use_l2_path()
        pmode = ["--uplink", "pu0"] if args.l2 else ["-q", "7"]
        psock, ssock = os.path.join(topo.tmp, "p.sock"), os.path.join(topo.tmp, "s.sock")
        pproc = topo.spawn("ph", netns.PROXY, "-r", "primary", "-i", "pgh", *pmode, "-L", "10.79.0.1:7700",
                           "-c", psock, log="primary.log")
        sproc = topo.spawn("sh", netns.PROXY, "-r", "secondary", "-i", "sgh", "-q", "7",
                           *(["--forward-all"] if args.l2 else []), "-C", "10.79.0.1:7700",
                           "-c", ssock, log="secondary.log")
        pctl = ProxyCtl(psock)
        sctl = ProxyCtl(ssock)
        if not netns.wait_for(lambda: pctl.execute("query-status")["peer-link"]):
            raise RuntimeError("proxies did not link up")
        for g in ("pg", "sg"):
            if not netns.wait_ready(topo.spawn(g, sys.executable, netns.PEER, "serve", "7000")):
                raise RuntimeError("server did not start")
        coord = Coordinator(psock, ssock)
        coord.start()
        held = uping()
        print("full path, UDP round trip (2000, one at a time): p50 %.0f us, p99 %.0f us without colo-proxy; "
              "p50 %.0f us, p99 %.0f us with it" % (base[0], base[1], held[0], held[1]), flush=True)

        procs = {"primary proxy": pproc, "secondary proxy": sproc}
        before = pctl.execute("query-stats")
        meter = CpuMeter(procs)
        dt = fetch(topo, args.stream_mib)
        cpu = meter.report(dt)
        after = pctl.execute("query-stats")
        pk = after["held"] - before["held"]
        print("full path, TCP stream: %d MiB in %.2f s = %.2f Gbit/s, %d packets held and compared (GSO), "
              "%d batch verdicts" % (args.stream_mib, dt, args.stream_mib * 8 * 1.048576e6 / dt / 1e9, pk,
                                     after.get("nfq-batch-verdicts", 0) - before.get("nfq-batch-verdicts", 0)),
              flush=True)
        print("  " + cpu, flush=True)

        for g, dev in (("pg", "pg0"), ("sg", "sg0")):
            topo.ip(g, "link", "set", dev, "gso_max_segs", "1")
        topo.ip("c", "route", "change", "default", "via", "10.78.0.1", "advmss", "88")
        before, sbefore = pctl.execute("query-stats"), sctl.execute("query-stats")
        meter = CpuMeter(procs)
        try:
            dt = fetch(topo, args.small_mib)
        except RuntimeError:
            print(json.dumps({"primary": pctl.execute("query-stats"), "secondary": sctl.execute("query-stats"),
                              "checkpoints": coord.reasons}), file=sys.stderr)
            raise
        cpu = meter.report(dt)
        after, safter = pctl.execute("query-stats"), sctl.execute("query-stats")
        pk = after["held"] - before["held"]
        bad = {k: v for k, v in after["mismatches"].items() if v}
        print("full path, small packets: %d MiB in %.2f s, %d packets (%.0f bytes each on average), "
              "mismatches %s" % (args.small_mib, dt, pk, (args.small_mib << 20) / max(pk, 1), json.dumps(bad)))
        print("  " + cpu)

        def per_call(st0, st1, num, den):
            return (st1.get(num, 0) - st0.get(num, 0)) / max(1, st1.get(den, 0) - st0.get(den, 0))
        print("  frames per syscall: primary NFQUEUE %.1f, capture %.1f, link write %.1f; secondary capture %.1f, "
              "link write %.1f, injection %.1f" % (per_call(before, after, "nfq-packets", "nfq-recv-calls"),
                                  per_call(before, after, "guest-frames", "capture-recv-calls"),
                                  per_call(before, after, "link-sent", "link-writes"),
                                  per_call(sbefore, safter, "guest-frames", "capture-recv-calls"),
                                  per_call(sbefore, safter, "link-sent", "link-writes"),
                                  per_call(sbefore, safter, "injected", "inject-calls")))
        print("  lost on the way: link %d (primary) %d (secondary), injection errors %d, NFQUEUE %d" %
              (after["link-dropped-full"] + after["link-dropped-down"],
               safter["link-dropped-full"] + safter["link-dropped-down"], safter["inject-errors"],
               after.get("nfq-lost", 0)))
        hist = after["hold-time-us"]
        print("hold-time histogram (all packets, us): " +
              ", ".join("<%s: %d" % (b.get("below", "inf"), b["count"]) for b in hist if b["count"]))
        print("checkpoints the proxy asked for during the run: %d %s" % (coord.commits, json.dumps(coord.reasons)))
        coord.stop = True
        coord.join(2)
        print("%.0f kpps" % (pk / dt / 1000.0))
    finally:
        topo.teardown()


if __name__ == "__main__":
    main()
