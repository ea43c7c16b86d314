#!/usr/bin/env python3
"""The test guest's network and disk services under colo-vmm, from a client
network namespace: ping, UDP echo, TCP echo of 1 MiB byte-exact, a 10 MiB
stream checksummed, 20 connections at once, and 1,000 disk sequence numbers
written (each acknowledged after a flush), the VM restarted on the same
image, all read back.

Topology: namespace "vm" holds a bridge, the guest's tap (colo-vmm runs
there) and one end of a veth; the other end is in namespace "client" with
10.99.0.1/24. The guest is 10.99.0.15/24. Needs root and /dev/kvm; skips
(with the reason) otherwise. A failed set-up is a failure."""
import ctypes
import os
import random
import sys
import tempfile
import threading
import time

import colo_vmm
from colo_vmm import Vmm, wait_until
import netns
import tap

sys.path.insert(0, os.path.join(colo_vmm.SRCDIR, "tests", "guest"))
import guestnet  # noqa: E402

GUEST_IP = "10.99.0.15"
CLIENT_IP = "10.99.0.1"
TAP = "cgiotap0"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def in_client(fn, *args):
    """Runs @fn in the client namespace, in a thread that entered it
    (setns affects only the calling thread; threads it starts inherit it)."""
    result, error = [], []

    def body():
        try:
            fd = os.open("/run/netns/" + env.net.ns["cl"], os.O_RDONLY)
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
        self.net = None
        self.vm = None
        self.disk = None

    def require(self):
        colo_vmm.require_kvm()
        netns.require(("ip",), "network namespaces, a bridge, a tap")
        if not self.net:
            self.setup()

    def setup(self):
        self.net = netns.Netns("vm", "cl", prefix="cgio-")
        net = self.net.create()
        net.ip("vm", "link", "add", "br0", "type", "bridge")
        net.veth("vm", "vb0", "cl", "vc0")
        net.ip("vm", "link", "set", "vb0", "master", "br0")
        net.ip("vm", "tuntap", "add", "dev", TAP, "mode", "tap", "vnet_hdr")
        net.ip("vm", "link", "set", TAP, "master", "br0")
        for dev in ("br0", "vb0", TAP):
            net.up("vm", dev)
        net.up("cl", "vc0", CLIENT_IP + "/24")
        fd, self.disk = tempfile.mkstemp(prefix="colo-guest-io-", suffix=".img")
        os.ftruncate(fd, 4 << 20)
        os.close(fd)

    def start_vm(self):
        vm = Vmm(smp=1, mem="64M", append="ip=%s/24 interval=0" % GUEST_IP,
                 extra=["-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % TAP,
                        "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56",
                        "-drive", "file=%s,if=virtio,format=raw" % self.disk],
                 wrap=self.net.argv("vm"))
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
        try:
            if self.vm:
                self.vm.close()
        finally:
            if self.net:
                self.net.close()
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


def network_quiet(vm, window=0.5, timeout=30):
    """Wait until the guest neither sends nor receives a frame for
    @window seconds: the connections of the tests before are closed (their
    FIN retransmits, a late ACK), their TIME_WAITs need no traffic."""
    def frames():
        st = vm.guest_status()
        return st["net_rx_frames"], st["net_tx_frames"]
    last = [frames(), time.monotonic()]

    def quiet():
        now = frames()
        if now != last[0]:
            last[:] = [now, time.monotonic()]
        return time.monotonic() - last[1] >= window
    wait_until(quiet, timeout, "the guest's network to fall quiet", interval=0.1)


def test_idle_with_devices_leaves_host_idle():
    """No busy polling: with the NIC and the disk up and no traffic, the
    guest sleeps between ticks (a polling vCPU would cost ~3 s here)."""
    env.guest()
    network_quiet(env.vm)
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
