#!/usr/bin/env python3
"""colo-proxy benchmark (not a test): packets per second through
compare-and-release, TCP stream throughput and the latency colo-proxy adds,
each next to what the same namespaces and CPUs give without colo-proxy.

  sudo COLO_BUILDDIR=/path/to/build bench/proxy-bench.py [--stream-mib N] [--small-mib N]
       [--rounds N] [--l2] [--cc CC] [--echo-delay-us N] [--pings N]

The namespace set-up of tests/netfilter/test-proxy-netns.py: a client, a
primary host with the primary guest, a secondary host with the secondary
guest. Each round measures three ways of running the primary host, one
after the other (rounds interleave them, so a change in machine load hits
all three):

  forward     plain IP forwarding, no NFQUEUE: the topology's own ceiling;
  accept-all  a trivial NFQUEUE consumer (bench/proxy-bench-accept.c) that
              accepts every packet, with NFQA_CFG_F_GSO, whole packets
              copied and one batch verdict per read of up to 32: the
              ceiling of any NFQUEUE consumer here;
  colo-proxy  the full path: both proxies, NFQUEUE with GSO and batch
              verdicts, mirroring over AF_PACKET, the peer link over TCP,
              the secondary's copy compared before each release (with --l2
              the user-space L2 path of test-proxy-l2.py instead; then one
              round, colo-proxy last, since the L2 set-up replaces the
              forwarding path).

Each way runs:
  latency     UDP round trips one at a time to an echo server that answers
              --echo-delay-us late on the primary guest and at once on the
              secondary, so the secondary's copy always waits in the proxy
              and every reply is an already-matched packet. Printed: the
              client's round trip, and the time from the kernel's receipt
              of the reply on the primary host to its accept verdict (both
              NFQUEUE consumers read the kernel's receive timestamp);
  TCP stream  the client fetches --stream-mib MiB;
  small       the same with GSO off in the guests (gso_max_segs 1) and the
              client advertising an MSS of 88 bytes, so every packet is small.
Packets are counted on the primary host's side of the guest's veth.
The namespace "guests" cannot honour a checkpoint (a commit releases the
primary's packets uncompared, and the secondary's Linux stack is no copy
of the primary's): a checkpoint request stops the run, with its reason
and the proxies' log tails, instead of letting the stream limp on.
The last line is the full-path small-packet rate, "N kpps" (median of
the rounds)."""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "netfilter"))
import netns_topo as netns  # noqa: E402
from proxyctl import ProxyCtl  # noqa: E402

QUEUE = "7"


class CheckpointWatch(threading.Thread):
    """Watches the primary proxy for CHECKPOINT_REQUEST: the first one
    ends the client running then (the bench then fails with the reason)."""

    def __init__(self, bench, sock):
        super().__init__(daemon=True)
        self.bench = bench
        self.ctl = ProxyCtl(sock)
        self.event = None
        self.stop = False

    def run(self):
        while not self.stop and not self.event:
            ev = self.ctl.wait_event("CHECKPOINT_REQUEST", timeout=0.2)
            if ev:
                self.event = ev
                client = self.bench.client
                if client and client.poll() is None:
                    os.killpg(client.pid, signal.SIGKILL)


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
    """Where the CPU time of one phase goes: each consumer, and the machine."""

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
        return "CPU over %.2f s: %s%sall %d CPUs %.0f %% busy" % (wall, ", ".join(parts), "; " if parts else "",
                                                                   ncpu, busy)


def load():
    return "load %s" % " ".join(open("/proc/loadavg").read().split()[:3])


def pct(hist, p):
    """The p-th percentile (0..100) of {us: count}."""
    total = sum(hist.values())
    if not total:
        return float("nan")
    want, seen = total * p / 100.0, 0
    for us in sorted(hist):
        seen += hist[us]
        if seen >= want:
            return us
    return max(hist)


def lat_hist(stats, name):
    return {b[0]: b[1] for b in stats.get(name, {}).get("buckets", [])}


def lat_diff(s0, s1, name):
    h0, h1 = lat_hist(s0, name), lat_hist(s1, name)
    return {k: v - h0.get(k, 0) for k, v in h1.items() if v - h0.get(k, 0)}


def lat_text(h):
    # 1 us buckets: a bucket's value is its lower bound; "+1" is the upper.
    return "%d packets, p50 %d us, p99 %d us, p99.9 %d us" % (sum(h.values()), pct(h, 50) + 1, pct(h, 99) + 1,
                                                           pct(h, 99.9) + 1) if h else "no packets"


class Bench:
    def __init__(self, args, build):
        self.args = args
        self.build = build
        self.topo = netns.Topology()
        self.results = {}   # mode -> list of dicts
        self.client = None  # the client process running now
        self.watch = None   # CheckpointWatch while colo-proxy runs

    def chrt(self):
        return ["chrt", "-f", str(self.args.chrt)] if self.args.chrt else []

    def rx_packets(self):
        out = subprocess.run(["ip", "-n", self.topo.ns["ph"], "-s", "-j", "link", "show", self.primary_if],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out)[0]["stats64"]["rx"]["packets"]

    def why(self):
        """What the proxies said: a checkpoint request, their log tails."""
        text = ""
        if self.watch and self.watch.event:
            text += ("colo-proxy asked for a checkpoint (%s); the namespace guests cannot honour one\n" %
                     json.dumps(self.watch.event.get("data")))
        return text + self.topo.log_tails(20)

    def client_run(self, *args, timeout=600):
        """Run netns-peer.py @args in the client namespace, stopped early
        by a checkpoint request: (exit status, stdout, stderr)."""
        self.client = self.topo.spawn("c", sys.executable, netns.PEER, *args)
        try:
            out, err = self.client.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.topo.kill(self.client)
            out, err = "", "no answer within %d s" % timeout
        rc, self.client = self.client.returncode, None
        if self.watch and self.watch.event:
            raise RuntimeError("%s stopped: %s" % (args[0], self.why()))
        return rc, out, err

    def fetch(self, mib):
        t0 = time.monotonic()
        rc, out, err = self.client_run("fetch", "10.77.0.2", "7000", str(mib << 20), "nohash")
        dt = time.monotonic() - t0
        n = int(out.split()[0]) if out.split() else 0
        if rc or n != mib << 20:
            raise RuntimeError("fetch got %d of %d bytes in %.1f s (exit %s): %s\n%s" % (
                n, mib << 20, dt, rc, err.strip() or "no error output", self.why()))
        return dt

    def uping(self, port, count):
        rc, out, err = self.client_run("uping", "10.77.0.2", str(port), str(count), timeout=300)
        if rc:
            raise RuntimeError("uping failed (exit %d): %s\n%s" % (rc, err.strip(), self.why()))
        return [float(x) for x in out.split()]

    def small(self, on):
        for g, dev in (("pg", "pg0"), ("sg", "sg0")):
            self.topo.ip(g, "link", "set", dev, "gso_max_segs", "1" if on else "65535")
        self.topo.ip("c", "route", "change", "default", "via", "10.78.0.1", *(["advmss", "88"] if on else []))

    def stop(self, proc):
        """Stop a process we started (its own process group) and return its output."""
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        out = proc.communicate(timeout=10)[0] if proc.stdout else ""
        return out or ""

    # --- one mode: latency, stream, small -------------------------------

    def transfer(self, hooks, phase, mib):
        """The client fetches mib MiB: (seconds, packets from the guest, the hooks' text, CPU)."""
        hooks.begin(phase)
        rx0 = self.rx_packets()
        meter = CpuMeter(hooks.procs)
        dt = self.fetch(mib)
        cpu = meter.report(dt)
        pk = self.rx_packets() - rx0
        return dt, pk, hooks.end(phase), cpu

    def measure(self, mode, hooks):
        res = {"mode": mode}
        a = self.args
        hooks.begin("latency")
        res["rtt"] = self.uping(7004, a.pings)
        lat_line = hooks.end("latency")
        res["lat"] = getattr(hooks, "lat", None)
        print("%s, latency: UDP round trip to a guest that answers %d us late: p50 %.0f us, p99 %.0f us%s (%s)" % (
            mode, a.echo_delay_us, res["rtt"][0], res["rtt"][1], lat_line, load()), flush=True)

        dt, pk, extra, cpu = self.transfer(hooks, "stream", a.stream_mib)
        res["gbps"] = a.stream_mib * 8 * 1.048576e6 / dt / 1e9
        print("%s, TCP stream: %d MiB in %.2f s = %.2f Gbit/s, %d packets from the guest%s (%s)" % (
            mode, a.stream_mib, dt, res["gbps"], pk, extra, load()), flush=True)
        print("  " + cpu, flush=True)

        self.small(True)
        try:
            dt, pk, extra, cpu = self.transfer(hooks, "small", a.small_mib)
        finally:
            self.small(False)
        res["kpps"] = pk / dt / 1000.0
        print("%s, small packets: %d MiB in %.2f s, %d packets (%.0f bytes each on average) = %.0f kpps%s (%s)" % (
            mode, a.small_mib, dt, pk, (a.small_mib << 20) / max(pk, 1), res["kpps"], extra, load()), flush=True)
        print("  " + cpu, flush=True)
        self.results.setdefault(mode, []).append(res)

    class NoHooks:
        procs = {}

        def begin(self, phase):
            pass

        def end(self, phase):
            return ""

    def run_forward(self):
        self.measure("forward", self.NoHooks())

    class AcceptAllHooks:
        """One consumer per phase, so its figures are the phase's alone."""

        def __init__(self, bench):
            self.bench = bench
            self.procs = {}
            self.proc = None

        def begin(self, phase):
            topo = self.bench.topo
            self.proc = topo.spawn("ph", *self.bench.chrt(), os.path.join(self.bench.build, "tests", "netfilter",
                                                                         "proxy-bench-accept"),
                                   "--queue", QUEUE, "--batch", "32")
            if not netns.wait_ready(self.proc):
                raise RuntimeError("proxy-bench-accept did not start")
            self.procs = {"accept-all consumer": self.proc}

        def end(self, phase):
            v = self.bench.stop(self.proc).split()
            self.proc = None
            if len(v) < 7:
                return "; accept-all consumer printed %s" % v
            self.lat = (int(v[4]), int(v[5]))
            return ("; accept-all consumer: %s packets in %s reads, %s verdicts, kernel receipt to verdict "
                    "p50 %s us, p99 %s us, max %s us" % (v[0], v[2], v[3], v[4], v[5], v[6]))

    def run_accept_all(self):
        rule = ["FORWARD", "-i", "pgh", "-j", "NFQUEUE", "--queue-num", QUEUE]
        self.topo.exe("ph", "iptables", "-A", *rule)
        hooks = self.AcceptAllHooks(self)
        try:
            self.measure("accept-all", hooks)
        finally:
            if hooks.proc:
                self.stop(hooks.proc)
            self.topo.exe("ph", "iptables", "-D", *rule, check=False)

    class ProxyHooks:
        def __init__(self, bench, pctl, sctl, procs):
            self.bench, self.pctl, self.sctl, self.procs = bench, pctl, sctl, procs

        def begin(self, phase):
            self.before = (self.pctl.execute("query-stats"), self.sctl.execute("query-stats"))

        def end(self, phase):
            after = (self.pctl.execute("query-stats"), self.sctl.execute("query-stats"))
            if phase == "latency":
                text = self.bench.lat_text(self.before[0], after[0])
                self.lat = self.bench.lat
                return text
            return self.bench.proxy_text(self.before, after)

    def run_colo_proxy(self):
        topo, a = self.topo, self.args
        pmode = ["--uplink", "pu0"] if a.l2 else ["-q", QUEUE, "--kernel-timestamps"]
        psock, ssock = os.path.join(topo.tmp, "p.sock"), os.path.join(topo.tmp, "s.sock")
        for s in (psock, ssock):
            if os.path.exists(s):
                os.unlink(s)
        pproc = topo.spawn("ph", *self.chrt(), netns.PROXY, "-r", "primary", "-i", "pgh", *pmode, "-L", "10.79.0.1:7700",
                           "-c", psock, log="primary.log")
        sproc = topo.spawn("sh", *self.chrt(), netns.PROXY, "-r", "secondary", "-i", "sgh", "-q", QUEUE,
                           *(["--forward-all"] if a.l2 else []), "-C", "10.79.0.1:7700", "-c", ssock,
                           log="secondary.log")
        try:
            if not netns.wait_for(lambda: os.path.exists(psock) and os.path.exists(ssock)):
                raise RuntimeError("proxies did not start")
            pctl, sctl = ProxyCtl(psock), ProxyCtl(ssock)
            if not netns.wait_for(lambda: pctl.execute("query-status")["peer-link"]):
                raise RuntimeError("proxies did not link up")
            pctl.execute("checkpoint-begin")   # COLO begins: compare from here
            self.watch = CheckpointWatch(self, psock)
            self.watch.start()
            self.measure("colo-proxy", self.ProxyHooks(self, pctl, sctl,
                                                       {"primary proxy": pproc, "secondary proxy": sproc}))
        finally:
            if self.watch:
                self.watch.stop = True
                self.watch.join(2)
                self.watch = None
            for p in (pproc, sproc):
                self.stop(p)

    def lat_text(self, s0, s1):
        m = lat_diff(s0, s1, "matched-verdict-latency-us")
        r = lat_diff(s0, s1, "matched-read-latency-us")
        if not m or not r:
            self.lat = None
            return ""   # the L2 path has no NFQUEUE
        self.lat = (pct(m, 50) + 1, pct(m, 99) + 1)
        return ("; proxy, kernel receipt to verdict of the already-matched: %s; of that, colo-proxy's read to "
                "verdict p50 %d us, p99 %d us") % (lat_text(m), pct(r, 50) + 1, pct(r, 99) + 1)

    def proxy_text(self, before, after):
        (p0, s0), (p1, s1) = before, after

        def d(st0, st1, k):
            return st1.get(k, 0) - st0.get(k, 0)

        def per(st0, st1, num, den):
            return d(st0, st1, num) / max(1, d(st0, st1, den))
        bad = {k: v - p0["mismatches"].get(k, 0) for k, v in p1["mismatches"].items() if v - p0["mismatches"].get(k, 0)}
        hist = {}
        for b0, b1 in zip(p0["hold-time-us"], p1["hold-time-us"]):
            if b1["count"] - b0["count"]:
                hist[b1.get("below", "inf")] = b1["count"] - b0["count"]
        m = lat_diff(p0, p1, "matched-verdict-latency-us")
        al = lat_diff(p0, p1, "verdict-latency-us")
        return ("; %d held, %d released, %d batch verdicts, mismatches %s\n"
                "  frames per syscall: primary NFQUEUE %.1f, capture %.1f, link write %.1f; secondary capture "
                "%.1f, link write %.1f, injection %.1f\n"
                "  lost on the way: link %d (primary) %d (secondary), injection errors %d, NFQUEUE %d\n"
                "  kernel receipt to verdict: all %s; already matched %s\n"
                "  hold-time histogram (us): %s") % (
            d(p0, p1, "held"), d(p0, p1, "released"), d(p0, p1, "nfq-batch-verdicts"), json.dumps(bad),
            per(p0, p1, "nfq-packets", "nfq-recv-calls"), per(p0, p1, "guest-frames", "capture-recv-calls"),
            per(p0, p1, "link-sent", "link-writes"), per(s0, s1, "guest-frames", "capture-recv-calls"),
            per(s0, s1, "link-sent", "link-writes"), per(s0, s1, "injected", "inject-calls"),
            d(p0, p1, "link-dropped-full") + d(p0, p1, "link-dropped-down"),
            d(s0, s1, "link-dropped-full") + d(s0, s1, "link-dropped-down"), d(s0, s1, "inject-errors"),
            d(p0, p1, "nfq-lost"), lat_text(al), lat_text(m),
            ", ".join("<%s: %d" % (k, v) for k, v in hist.items()))

    def main(self):
        a = self.args
        eng = subprocess.run([os.path.join(self.build, "tests", "netfilter", "proxy-bench-engine")], check=True,
                             capture_output=True, text=True, timeout=300).stdout
        for line in eng.splitlines():
            print(line if line.startswith("engine") else "engine: " + line, flush=True)
        topo = self.topo
        netns.require(("ip", "iptables"), "network namespaces, NFQUEUE")
        topo.setup()
        self.primary_if = "pgh"
        a.modes = a.modes.split(",")
        if a.cc:
            os.environ["COLO_PEER_CC"] = a.cc
        for g, delay in (("pg", [str(a.echo_delay_us)]), ("sg", [])):
            for args in (["uecho", "7004", *delay], ["serve", "7000"]):
                if not netns.wait_ready(topo.spawn(g, sys.executable, netns.PEER, *args)):
                    raise RuntimeError("guest server did not start")
        rounds = 1 if a.l2 else a.rounds
        for r in range(rounds):
            print("--- round %d of %d (%s%s)" % (r + 1, rounds, load(),
                                                 ", consumers SCHED_FIFO %d" % a.chrt if a.chrt else ""), flush=True)
            if "forward" in a.modes:
                self.run_forward()
            if "accept-all" in a.modes:
                self.run_accept_all()
            if a.l2:
                topo.use_l2_path()
            if "colo-proxy" in a.modes:
                self.run_colo_proxy()
        self.summary()

    def summary(self):
        def med(mode, k):
            v = [r[k] for r in self.results.get(mode, [])]
            return statistics.median(v) if v else float("nan")
        print("--- summary (medians of %d rounds)" % len(self.results.get("colo-proxy", [])))
        if len(self.results) < 3:
            print("%.0f kpps" % med("colo-proxy", "kpps"))
            return
        for k, unit, fmt in (("gbps", "Gbit/s", "%.2f"), ("kpps", "kpps", "%.0f")):
            f, acc, cp = med("forward", k), med("accept-all", k), med("colo-proxy", k)
            print(("%s: forward " + fmt + ", accept-all " + fmt + ", colo-proxy " + fmt + " %s; colo-proxy is "
                   "%.0f %% of accept-all, accept-all %.0f %% of forward") % (
                       "TCP stream" if k == "gbps" else "small packets", f, acc, cp, unit, 100 * cp / acc,
                       100 * acc / f))
        f = [r["rtt"] for r in self.results["forward"]]
        cp = [r["rtt"] for r in self.results["colo-proxy"]]
        # The p99 of a difference of two round trips that include a sleep
        # of the echo server is noise; the proxy's own figures below are not.
        print("already-matched reply, client round trip added by colo-proxy: p50 %.0f us" % (
            statistics.median(c[0] for c in cp) - statistics.median(x[0] for x in f)))
        for mode in ("accept-all", "colo-proxy"):
            lat = [r["lat"] for r in self.results[mode] if r.get("lat")]
            if lat:
                print("already-matched packet, kernel receipt to verdict (%s): p50 %.0f us, p99 %.0f us" % (
                    mode, statistics.median(x[0] for x in lat), statistics.median(x[1] for x in lat)))
        print("%.0f kpps" % med("colo-proxy", "kpps"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stream-mib", type=int, default=1024)
    ap.add_argument("--small-mib", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=1, help="repeat forward, accept-all, colo-proxy N times")
    ap.add_argument("--modes", default="forward,accept-all,colo-proxy",
                    help="which of forward, accept-all, colo-proxy to run (default all three)")
    ap.add_argument("--echo-delay-us", type=int, default=2000,
                    help="the primary guest's echo answers this late, so the secondary's copy is waiting")
    ap.add_argument("--pings", type=int, default=2000)
    ap.add_argument("--chrt", type=int, metavar="PRIO",
                    help="run the NFQUEUE consumers (both proxies, the accept-all consumer) under chrt -f PRIO "
                    "(SCHED_FIFO), as a deployment that keeps them ahead of other work would")
    ap.add_argument("--l2", action="store_true", help="the primary on the user-space L2 path (--uplink)")
    ap.add_argument("--cc", help="TCP congestion control of the guests' servers (a namespace may use only "
                    "what net.ipv4.tcp_allowed_congestion_control lists; default: the host's)")
    args = ap.parse_args()
    b = Bench(args, os.environ.get("COLO_BUILDDIR", os.getcwd()))
    try:
        b.main()
    except (netns.tap.Skip, RuntimeError) as e:     # not root, a tool missing; a failed run, and why
        sys.exit("proxy-bench: " + str(e))
    finally:
        b.topo.close()


if __name__ == "__main__":
    main()
