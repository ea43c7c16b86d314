#!/usr/bin/env python3
"""Guest network benchmark (not a test): the test guest under colo-vmm,
reached from a client network namespace.

  COLO_BUILDDIR=/path/to/build bench/guest-net-bench.py [--pings N] [--udp N] [--stream-mib M]

Needs root and /dev/kvm. The path is the one the integration tests use:
client namespace -- veth -- bridge -- tap -- colo-vmm's virtio-net -- guest.
The tap is created persistent beforehand so that it can join the bridge
before colo-vmm attaches to it.

Measures
  - ping round trips (ICMP echo from a raw socket, 50 ms apart):
    min / avg / p50 / p99 / max;
  - UDP echo round trips to port 7 (64-byte datagrams, one at a time);
  - TCP stream throughput from the guest's stream service (port 19,
    docs/test-guest.md), the bytes checked against the guest's pattern;
  - colo-vmm's own cost: CPU time of the virtio-net I/O thread per frame
    through the tap (the tap's packet counters), and of the whole process;
  - the guest's receive work per frame from its status page (tests/guest/
    status.h: TSC cycles in receive interrupts over frames received), in
    TSC cycles and in microseconds; at the emulator's ~1 M instructions/s
    one microsecond is about one instruction.
Every run prints the command line, the load average and the numbers."""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
BUILD = os.environ.get("COLO_BUILDDIR", SRC)
VMM = os.path.join(BUILD, "vmm", "colo-vmm")
GUEST = os.path.join(BUILD, "tests", "guest", "colo-testguest")
sys.path.insert(0, os.path.join(SRC, "tests", "guest"))
sys.path.insert(0, os.path.join(SRC, "tests", "lib"))

NS = "gnb-client"
BR, TAP, VH, VC = "gnb-br", "gnb-tap", "gnb-vh", "gnb-vc"
CLIENT_IP, GUEST_IP, PREFIX = "10.77.0.1", "10.77.0.2", 24
GUEST_MAC = "52:54:00:12:34:56"


def sh(*argv, check=True, ns=None):
    if ns:
        argv = ("ip", "netns", "exec", ns) + argv
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def teardown():
    for argv in (("ip", "netns", "del", NS), ("ip", "link", "del", BR), ("ip", "link", "del", VH),
                 ("ip", "tuntap", "del", "dev", TAP, "mode", "tap")):
        sh(*argv, check=False)


def setup():
    teardown()
    sh("ip", "netns", "add", NS)
    sh("ip", "link", "add", BR, "type", "bridge")
    sh("ip", "link", "set", BR, "up")
    sh("ip", "link", "add", VH, "type", "veth", "peer", "name", VC)
    sh("ip", "link", "set", VC, "netns", NS)
    sh("ip", "link", "set", VH, "master", BR, "up")
    sh("ip", "tuntap", "add", "dev", TAP, "mode", "tap")
    sh("ip", "link", "set", TAP, "master", BR, "up")
    sh("ip", "addr", "add", "%s/%d" % (CLIENT_IP, PREFIX), "dev", VC, ns=NS)
    sh("ip", "link", "set", VC, "up", ns=NS)
    sh("ip", "link", "set", "lo", "up", ns=NS)


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


# Client-side code run inside the namespace (this script re-invoked).
def icmp_checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def client_ping(n):
    """ICMP echo with a raw socket (no ping(8) needed), 50 ms apart."""
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.settimeout(1.0)
    ident = os.getpid() & 0xffff
    rtts = []
    for seq in range(n):
        body = bytes(range(56))
        hdr = bytes([8, 0, 0, 0]) + ident.to_bytes(2, "big") + seq.to_bytes(2, "big")
        pkt = hdr[:2] + icmp_checksum(hdr + body).to_bytes(2, "big") + hdr[4:] + body
        t0 = time.perf_counter()
        s.sendto(pkt, (GUEST_IP, 0))
        try:
            while True:
                data, _ = s.recvfrom(2048)
                icmp = data[(data[0] & 15) * 4:]
                if icmp[0] == 0 and icmp[4:6] == pkt[4:6] and icmp[6:8] == pkt[6:8] and icmp[8:] == body:
                    rtts.append((time.perf_counter() - t0) * 1e3)
                    break
        except socket.timeout:
            pass
        time.sleep(0.05)
    if not rtts:
        print("no reply")
        return
    print("%d/%d replies, RTT ms min %.3f avg %.3f p50 %.3f p99 %.3f max %.3f" % (
        len(rtts), n, min(rtts), statistics.mean(rtts), percentile(rtts, 50),
        percentile(rtts, 99), max(rtts)))


def client_udp(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    rtts, lost = [], 0
    for i in range(n):
        msg = i.to_bytes(4, "big") + bytes(60)
        t0 = time.perf_counter()
        s.sendto(msg, (GUEST_IP, 7))
        try:
            while True:
                data, _ = s.recvfrom(2048)
                if data == msg:
                    break
            rtts.append((time.perf_counter() - t0) * 1e6)
        except socket.timeout:
            lost += 1
    if not rtts:
        print("no reply")
        return
    print("%d/%d replies, RTT us p50 %.0f p99 %.0f max %.0f" % (
        len(rtts), n, percentile(rtts, 50), percentile(rtts, 99), max(rtts)))


def stream_table():
    """The guest's stream bytes (tests/guest/net.h): xorshift32 (13, 17, 5)
    from 0x2545f491, four bytes per step, little-endian, period 65521."""
    period, x, out = 65521, 0x2545f491, bytearray()
    while len(out) < period:
        x ^= (x << 13) & 0xffffffff
        x ^= x >> 17
        x ^= (x << 5) & 0xffffffff
        out += x.to_bytes(4, "little")
    return bytes(out[:period])


def client_stream(mib):
    """TCP port 19: "<length>\\n" in, that many pattern bytes out."""
    n = mib << 20
    s = socket.create_connection((GUEST_IP, 19), timeout=30)
    t0 = time.perf_counter()
    s.sendall(b"%d\n" % n)
    got = bytearray()
    while len(got) < n:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        got += chunk
    dt = time.perf_counter() - t0
    s.close()
    table = stream_table()
    want = (table * (n // len(table) + 1))[:n]
    print("%d/%d bytes in %.2f s: %.3f Mbit/s, %s" % (len(got), n, dt, len(got) * 8 / dt / 1e6,
          "content exact" if bytes(got) == want else "CONTENT DIFFERS"))


def in_namespace(what, arg):
    r = subprocess.run(["ip", "netns", "exec", NS, sys.executable, os.path.abspath(__file__),
                        "--client", what, str(arg)], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=os.path.join(SRC, "tests", "guest")))
    lines = r.stdout.strip().splitlines() or r.stderr.strip().splitlines() or ["?"]
    return lines[-1]


def thread_cpu(pid, name):
    """CPU seconds (user + system) of @pid's threads named @name, or of all
    of them when @name is None."""
    hz, total = os.sysconf("SC_CLK_TCK"), 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            comm = open("/proc/%d/task/%s/comm" % (pid, tid)).read().strip()
            fields = open("/proc/%d/task/%s/stat" % (pid, tid)).read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        if name is None or comm == name:
            total += int(fields[11]) + int(fields[12])
    return total / hz


def tap_frames():
    """Frames through the tap, both ways: what colo-vmm's virtio-net moved."""
    base = "/sys/class/net/%s/statistics/" % TAP
    return sum(int(open(base + f).read()) for f in ("rx_packets", "tx_packets"))


def guest_work(qmp_path, workdir):
    """Receive-interrupt cost per frame from the guest's status page."""
    from qmp import QMPClient
    path = os.path.join(workdir, "status.bin")
    with QMPClient(qmp_path) as q:
        q.cmd("pmemsave", val=0x9000, size=4096, filename=path)
    st = open(path, "rb").read()
    u64 = lambda off: int.from_bytes(st[off:off + 8], "little")
    tsc_hz, rx, tx, busy = u64(0x58), u64(0x70), u64(0x78), u64(0x88)
    if st[:4] != (0x53475443).to_bytes(4, "little") or not rx:
        return "no status page or no frames received"
    # Replies (and, for TCP, the next stream segments) are sent from the
    # receive interrupt, so its time covers frames in and out.
    per = busy / (rx + tx)
    us = per / tsc_hz * 1e6 if tsc_hz else float("nan")
    return ("%d frames in, %d out, %.3f s in receive interrupts (TSC %.0f MHz): "
            "%.0f TSC cycles = %.1f us per frame in or out" % (
                rx, tx, busy / tsc_hz if tsc_hz else float("nan"), tsc_hz / 1e6, per, us))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pings", type=int, default=100)
    ap.add_argument("--udp", type=int, default=200)
    ap.add_argument("--stream-mib", type=int, default=10)
    ap.add_argument("--boot-timeout", type=float, default=120)
    ap.add_argument("--client", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.client:
        {"ping": client_ping, "udp": client_udp, "stream": client_stream}[a.client[0]](int(a.client[1]))
        return 0
    if os.geteuid() != 0 or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("needs root and /dev/kvm")
        return 1

    print("command: %s" % " ".join(sys.argv))
    print("load average before: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
    workdir = tempfile.mkdtemp(prefix="guest-net-bench-")
    serial = os.path.join(workdir, "serial.log")
    setup()
    vmm = None
    try:
        qmp_path = os.path.join(workdir, "qmp.sock")
        argv = [VMM, "-m", "64M", "-kernel", GUEST, "-append", "ip=%s/%d" % (GUEST_IP, PREFIX),
                "-qmp", "unix:%s,server=on,wait=off" % qmp_path,
                "-serial", "file:" + serial, "-D", os.path.join(workdir, "vmm.log"),
                "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % TAP,
                "-device", "virtio-net-pci,netdev=n0,mac=%s" % GUEST_MAC]
        print("colo-vmm: %s" % " ".join(argv))
        vmm = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + a.boot_timeout
        while time.monotonic() < deadline and vmm.poll() is None:
            if os.path.exists(serial) and "ready" in open(serial, errors="replace").read():
                break
            time.sleep(0.2)
        if vmm.poll() is not None:
            print("colo-vmm exited (%d); see %s" % (vmm.returncode, workdir))
            return 1
        # The guest's first packets (gratuitous ARP) and our first ARP
        # request take a moment; one warm-up ping.
        in_namespace("ping", 3)
        cpu0, io0, frames0 = thread_cpu(vmm.pid, None), thread_cpu(vmm.pid, "virtio-net0"), tap_frames()
        print("ping:       %s" % in_namespace("ping", a.pings))
        print("UDP echo:   %s" % in_namespace("udp", a.udp))
        print("TCP stream: %s" % in_namespace("stream", a.stream_mib))
        frames = tap_frames() - frames0
        io = thread_cpu(vmm.pid, "virtio-net0") - io0
        cpu = thread_cpu(vmm.pid, None) - cpu0
        print("colo-vmm:   %d frames through the tap; virtio-net I/O thread %.2f s CPU = %.1f us per frame; "
              "whole process (vCPU emulating the guest included) %.2f s" % (
                  frames, io, io / frames * 1e6 if frames else float("nan"), cpu))
        time.sleep(2)   # the guest refreshes its status page once a second
        print("guest work: %s" % guest_work(qmp_path, workdir))
        print("load average after: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
    finally:
        if vmm and vmm.poll() is None:
            vmm.terminate()
            try:
                vmm.wait(10)
            except subprocess.TimeoutExpired:
                vmm.kill()
        teardown()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
