#!/usr/bin/env python3
"""The test guest's network and disk services under colo-vmm, from a client
network namespace: ping, UDP echo, TCP echo of 1 MiB byte-exact, a 10 MiB
stream checksummed, 20 connections at once, and 1,000 disk sequence numbers
written (each acknowledged after a flush), the VM restarted on the same
image, all read back.

Topology: namespace "vm" holds a bridge, the guest's tap (colo-vmm runs
there) and one end of a veth; the other end is in namespace "client" with
10.99.0.1/24. The guest is 10.99.0.15/24. Needs root, /dev/kvm and a
colo-vmm with -netdev/-device/-drive; skips (with the reason) otherwise."""
import ctypes
import os
import random
import subprocess
import sys
import threading
import time

import colo_vmm
from colo_vmm import Vmm, wait_until
import tap

sys.path.insert(0, os.path.join(colo_vmm.SRCDIR, "tests", "guest"))
import guestnet  # noqa: E402

GUEST_IP = "10.99.0.15"
CLIENT_IP = "10.99.0.1"
SUFFIX = "%d" % os.getpid()
NS_VM = "cgio-vm-" + SUFFIX
NS_CLIENT = "cgio-cl-" + SUFFIX
TAP = "cgiotap0"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def sh(*argv, ns=None, check=True):
    if ns:
        argv = ("ip", "netns", "exec", ns) + argv
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if check and r.returncode:
        raise AssertionError("%s: %s" % (" ".join(argv), r.stdout.decode(errors="replace")))
    return r


def in_client(fn, *args):
    """Runs @fn in the client namespace, in a thread that entered it
    (setns affects only the calling thread; threads it starts inherit it)."""
    result, error = [], []

    def body():
        try:
            fd = os.open("/run/netns/" + NS_CLIENT, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            result.append(fn(*args))
        except BaseException as e:  # noqa: BLE001 - reported in the caller
            error.append(e)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    if error:
        raise error[0]
    return result[0]


class Env:
    """The two namespaces, the bridge and the disk image."""

    def __init__(self):
        self.ready = False
        self.vm = None
        self.disk = None

    def require(self):
        colo_vmm.require_kvm()
        if os.geteuid() != 0:
            tap.skip("needs root (network namespaces, a bridge, a tap)")
        if not os.access(colo_vmm.VMM, os.X_OK):
            tap.skip("colo-vmm is not built (%s)" % colo_vmm.VMM)
        helptext = subprocess.run([colo_vmm.VMM, "-help"], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT).stdout.decode(errors="replace")
        missing = [o for o in ("-netdev", "-device", "-drive") if o not in helptext]
        if missing:
            tap.skip("colo-vmm lacks %s (virtio devices not there yet)" % ", ".join(missing))
        if not self.ready:
            self.setup()

    def setup(self):
        sh("ip", "netns", "add", NS_VM)
        sh("ip", "netns", "add", NS_CLIENT)
        self.ready = True
        sh("ip", "-n", NS_VM, "link", "set", "lo", "up")
        sh("ip", "-n", NS_CLIENT, "link", "set", "lo", "up")
        sh("ip", "-n", NS_VM, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", NS_VM, "link", "add", "vb0", "type", "veth", "peer", "name", "vc0", "netns", NS_CLIENT)
        sh("ip", "-n", NS_VM, "link", "set", "vb0", "master", "br0")
        sh("ip", "-n", NS_VM, "tuntap", "add", "dev", TAP, "mode", "tap", "vnet_hdr")
        sh("ip", "-n", NS_VM, "link", "set", TAP, "master", "br0")
        for dev in ("br0", "vb0", TAP):
            sh("ip", "-n", NS_VM, "link", "set", dev, "up")
        sh("ip", "-n", NS_CLIENT, "addr", "add", CLIENT_IP + "/24", "dev", "vc0")
        sh("ip", "-n", NS_CLIENT, "link", "set", "vc0", "up")
        fd, self.disk = __import__("tempfile").mkstemp(prefix="colo-guest-io-", suffix=".img")
        os.ftruncate(fd, 4 << 20)
        os.close(fd)

    def start_vm(self):
        vm = Vmm(smp=1, mem="64M", append="ip=%s/24 interval=0" % GUEST_IP,
                 extra=["-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % TAP,
                        "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56",
                        "-drive", "file=%s,if=virtio,format=raw" % self.disk])
        vm.argv = ["ip", "netns", "exec", NS_VM] + vm.argv
        vm.start()
        try:
            vm.wait_serial(r"colo-testguest ready", 60)
            net = vm.wait_serial(r"colo-testguest: net: .*", 5).group(0)
            assert "ip=%s/24" % GUEST_IP in net and "disk_blocks=8192" in net, net
        except BaseException:
            vm.close()
            raise
        return vm

    def guest(self):
        """The running VM for the network tests (started once)."""
        self.require()
        if not self.vm:
            self.vm = self.start_vm()
        return guestnet.Guest(GUEST_IP, timeout=30)

    def close(self):
        if self.vm:
            self.vm.close()
        if self.ready:
            sh("ip", "netns", "del", NS_CLIENT, check=False)
            sh("ip", "netns", "del", NS_VM, check=False)
        if self.disk:
            os.unlink(self.disk)


env = Env()


def test_ping():
    g = env.guest()
    rtts = in_client(g.ping, 5)
    assert len(rtts) == 5, rtts
    print("# ping rtt ms: %s" % " ".join("%.2f" % (r * 1000) for r in rtts), flush=True)


def test_udp_echo():
    g = env.guest()
    for size in (1, 100, 1472):
        data = os.urandom(size)
        assert in_client(g.udp_echo, data) == data, size


def test_tcp_echo_1mib_byte_exact():
    g = env.guest()
    data = os.urandom(1 << 20)
    t0 = time.monotonic()
    got = in_client(g.tcp_echo, data)
    assert len(got) == len(data), (len(got), len(data))
    assert got == data, "echo differs at byte %d" % next(i for i in range(len(data)) if got[i] != data[i])
    print("# tcp echo 1 MiB in %.1f s" % (time.monotonic() - t0), flush=True)


def test_stream_10mib_checksummed():
    g = env.guest()
    n = 10 << 20
    t0 = time.monotonic()
    got, digest = in_client(g.stream, n)
    dt = time.monotonic() - t0
    assert got == n, got
    assert digest == guestnet.stream_digest(n), "stream content differs"
    print("# stream 10 MiB in %.1f s (%.0f KiB/s)" % (dt, n / 1024 / dt), flush=True)


def test_twenty_connections_at_once():
    g = env.guest()
    results = {}

    def one(i):
        try:
            if i % 2:
                data = random.Random(i).randbytes(32 * 1024)
                results[i] = g.tcp_echo(data) == data
            else:
                n = 64 * 1024 + i
                got, digest = g.stream(n)
                results[i] = got == n and digest == guestnet.stream_digest(n)
        except OSError as e:
            results[i] = e

    def all_at_once():
        # Connect all first, so the guest really holds 20 at a time.
        threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)

    in_client(all_at_once)
    assert results == {i: True for i in range(20)}, results


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_idle_with_devices_leaves_host_idle():
    """No busy polling: with the NIC and the disk up and no traffic, the
    guest sleeps between ticks (a polling vCPU would cost ~3 s here)."""
    env.guest()
    time.sleep(2.5)         # TIME_WAITs of the tests before are over
    before = cpu_seconds(env.vm.proc.pid)
    time.sleep(3)
    used = cpu_seconds(env.vm.proc.pid) - before
    assert used < 0.9, "idle guest with devices used %.2f s of host CPU in 3 s" % used


def test_disk_1000_seqs_across_restart():
    env.require()
    if env.vm:
        env.vm.close()
        env.vm = None
    seqs = {b: 1000003 * (b + 1) for b in range(1000)}
    vm = env.start_vm()
    try:
        g = guestnet.Guest(GUEST_IP, timeout=30)
        assert in_client(g.disk_info) == 8192
        t0 = time.monotonic()

        def write_all():
            for b, s in seqs.items():
                g.disk_write(b, s)
        in_client(write_all)
        print("# 1000 disk writes (each flushed) in %.1f s" % (time.monotonic() - t0), flush=True)
    finally:
        vm.close()      # the guest acknowledged every write after a flush
    vm = env.start_vm()
    try:
        g = guestnet.Guest(GUEST_IP, timeout=30)
        got = in_client(lambda: {b: g.disk_read(b) for b in seqs})
        assert got == seqs, [b for b in seqs if got[b] != seqs[b]][:10]
        assert in_client(g.disk_read, 1000) is None     # never written
    finally:
        vm.close()


if __name__ == "__main__":
    try:
        tap.run(globals())
    finally:
        env.close()
