#!/usr/bin/env python3
"""Instructions the test guest spends per packet (not a test).

  COLO_BUILDDIR=/path/to/build bench/guest-instr-bench.py [--pings N] [--stream-kib K] [--profile]

Runs the guest under QEMU's TCG one instruction per block with the exec
log restricted to the guest's text (`-singlestep -d exec,nochain
-dfilter`), so every log line is one executed guest instruction (a `rep
movsq` once per iteration, as the KVM emulator pays it). A client in a
private network namespace drives the services with tests/guest/guestnet.py;
the instructions of the idle ticks over the same time are subtracted.
Needs root and qemu-system-x86_64 (a development tool here, not a
dependency). Prints the command line, the counts per packet and, with
--profile, where they go (by function). See docs/test-guest.md."""
import argparse
import bisect
import collections
import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
BUILD = os.environ.get("COLO_BUILDDIR", SRC)
GUEST = os.path.join(BUILD, "tests", "guest", "colo-testguest")
sys.path.insert(0, os.path.join(SRC, "tests", "guest"))
import guestnet  # noqa: E402

NS = "gib-%d" % os.getpid()
TAP = "gibtap0"
HOST_IP, GUEST_IP = "10.78.0.1", "10.78.0.2"


def sh(*argv, check=True):
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def guest_text():
    """[(address, function)] sorted, and the text range."""
    syms = []
    for line in sh("nm", "-n", GUEST).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW":
            syms.append((int(parts[0], 16), parts[2]))
    return syms, syms[0][0], syms[-1][0] + 0x1000


class ExecLog:
    def __init__(self, path, syms):
        self.path = path
        self.syms = syms
        self.addrs = [a for a, _ in syms]

    def mark(self):
        return os.path.getsize(self.path)

    def count(self, start, end, profile=None):
        n = 0
        with open(self.path, "rb") as f:
            f.seek(start)
            data = f.read(end - start)
        for line in data.split(b"\n"):
            if not line.startswith(b"Trace"):
                continue
            n += 1
            if profile is not None:
                pc = int(line.split(b"/")[1], 16)
                profile[self.syms[bisect.bisect_right(self.addrs, pc) - 1][1]] += 1
        return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pings", type=int, default=100)
    ap.add_argument("--stream-kib", type=int, default=1024)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("qemu-system-x86_64"):
        sys.exit("needs root and qemu-system-x86_64")
    syms, lo, hi = guest_text()
    tmp = tempfile.mkdtemp(prefix="guest-instr-")
    logpath = os.path.join(tmp, "exec.log")
    qemu = None
    try:
        sh("ip", "netns", "add", NS)
        for argv in (("ip", "link", "set", "lo", "up"), ("ip", "tuntap", "add", "dev", TAP, "mode", "tap"),
                     ("ip", "addr", "add", HOST_IP + "/24", "dev", TAP), ("ip", "link", "set", TAP, "up")):
            sh("ip", "netns", "exec", NS, *argv)
        argv = ["qemu-system-x86_64", "-M", "q35", "-accel", "tcg", "-singlestep", "-cpu", "qemu64", "-smp", "1",
                "-m", "64M", "-nographic", "-no-reboot", "-kernel", GUEST,
                "-append", "ip=%s/24 interval=0 dirty_ms=0" % GUEST_IP,
                "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % TAP,
                "-device", "virtio-net-pci,netdev=n0,disable-legacy=on,mac=52:54:00:12:34:56",
                "-d", "exec,nochain", "-dfilter", "0x%x..0x%x" % (lo, hi), "-D", logpath]
        print("# " + " ".join(argv), flush=True)
        qemu = subprocess.Popen(["ip", "netns", "exec", NS] + argv, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        # This process joins the namespace (it is the client from here on).
        fd = os.open("/run/netns/" + NS, os.O_RDONLY)
        if ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) != 0:   # CLONE_NEWNET
            sys.exit("setns: %s" % os.strerror(ctypes.get_errno()))
        os.close(fd)
        g = guestnet.Guest(GUEST_IP, timeout=60)
        deadline = time.monotonic() + 120
        while True:
            try:
                g.udp_echo(b"up", retries=1)
                break
            except OSError:
                if time.monotonic() > deadline or qemu.poll() is not None:
                    sys.exit("the guest did not come up")
        log = ExecLog(logpath, syms)
        time.sleep(1)
        a, t0 = log.mark(), time.monotonic()
        time.sleep(5)
        b, t1 = log.mark(), time.monotonic()
        idle = log.count(a, b) / (t1 - t0)
        print("idle: %.0f instructions/s (ticks at 100 Hz)" % idle)
        data = os.urandom(200 * 1024)
        cases = [
            ("ping", lambda: g.ping(args.pings), args.pings, "ping (request in, reply out)"),
            ("udp", lambda: [g.udp_echo(b"x" * 64) for _ in range(args.pings)], args.pings, "UDP echo, 64 bytes"),
            ("stream", lambda: g.stream(args.stream_kib * 1024), args.stream_kib * 1024 / 1460,
             "stream, per 1460-byte segment sent"),
            ("echo", lambda: g.tcp_echo(data), len(data) / 1460, "TCP echo, per 1460 bytes in and out"),
        ]
        for name, fn, units, what in cases:
            if name == "stream":
                g.stream(100)       # builds the pattern table, once
                time.sleep(2.5)     # its TIME_WAIT over: no timer scans in the next count
            time.sleep(0.5)
            a, t0 = log.mark(), time.monotonic()
            fn()
            time.sleep(0.3)
            b, t1 = log.mark(), time.monotonic()
            prof = collections.Counter() if args.profile else None
            n = log.count(a, b, prof) - idle * (t1 - t0)
            print("%-40s %7.0f instructions" % (what, n / units), flush=True)
            if prof:
                total = sum(prof.values())
                for fn_name, k in prof.most_common(8):
                    print("    %5.1f%% %s" % (100.0 * k / total, fn_name))
    finally:
        if qemu:
            qemu.terminate()
            qemu.wait()
        sh("ip", "netns", "del", NS, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
