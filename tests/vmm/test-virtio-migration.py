"""virtio devices across a live migration: the test guest uses virtio-blk
(its disk service) and virtio-net (UDP) from a client network namespace,
moves to a second colo-vmm (same disk image, its own tap on the same
bridge) and carries on with the same queues: blocks written before are
read back through the destination, new writes work, the network answers
once announce-self told the bridge where the guest is, and a TCP echo
connection opened before the migration goes on after it. Needs root (taps,
namespaces) and /dev/kvm. Everything lives in namespaces of the test's
own: "vm" holds the bridge, both VMMs and their taps, "cl" the client."""
import os
import socket
import struct
import subprocess
import sys

from colo_vmm import Vmm, require_kvm, wait_until
import netns
from qmp import QMPError
import tap

BR, VH, VC = "cvm-br", "cvm-vh", "cvm-vc"
TAPS = ("cvm-src", "cvm-dst")
CLIENT_IP, GUEST_IP = "10.78.0.1", "10.78.0.2"
MAC = "52:54:00:78:00:02"
DISK_MAGIC = 0x44475443     # tests/guest/disksvc.h
DISK_PORT = 9000


def setup(net):
    net.ip("vm", "link", "add", BR, "type", "bridge")
    net.up("vm", BR)
    net.veth("vm", VH, "cl", VC)
    net.ip("vm", "link", "set", VH, "master", BR, "up")
    for t in TAPS:
        net.ip("vm", "tuntap", "add", "dev", t, "mode", "tap")
        net.ip("vm", "link", "set", t, "master", BR, "up")
    net.up("cl", VC, CLIENT_IP + "/24")


def fdb_port(net):
    """The bridge port the guest's MAC was last seen on, or None."""
    for line in netns.sh("bridge", "-n", net.ns["vm"], "fdb", "show", "br", BR).stdout.splitlines():
        words = line.split()
        if words and words[0] == MAC and "dev" in words:
            return words[words.index("dev") + 1]
    return None


def client(net, *args):
    """Runs this file's client part inside the namespace; returns its output."""
    r = subprocess.run(net.argv("cl", sys.executable, os.path.abspath(__file__), "--client")
                       + [str(a) for a in args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


def tcp_client_main():
    """In the namespace: one TCP connection to the guest's echo service,
    kept open; every line on stdin is a round of 64 KiB sent and checked
    byte for byte; prints 'round N ok' after each."""
    c = socket.create_connection((GUEST_IP, 7), timeout=60)
    for n, _ in enumerate(sys.stdin):
        data = bytes((n * 7 + i) % 251 for i in range(64 << 10))
        c.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = c.recv(len(data) - len(got))
            if not chunk:
                raise AssertionError("the guest closed the connection after %d bytes" % len(got))
            got += chunk
        assert got == data, "round %d: echo differs" % n
        print("round %d ok" % n, flush=True)


def client_main(argv):
    """In the namespace: 'write FIRST N' / 'read FIRST N' on the disk
    service (block b holds seq 5000 + b), 'echo' on UDP port 7, 'tcp' (see
    tcp_client_main)."""
    if argv[0] == "tcp":
        tcp_client_main()
        return
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    tag = [0]

    def disk(op, block, seq=0):
        tag[0] += 1
        req = struct.pack("<IB3xIIQ", DISK_MAGIC, op, tag[0], block, seq)
        for _ in range(20):
            s.sendto(req, (GUEST_IP, DISK_PORT))
            try:
                while True:
                    data, _ = s.recvfrom(64)
                    _, _, status, t, _, value = struct.unpack("<IBBxxIIQ", data[:24])
                    if t == tag[0]:
                        return status, value
            except socket.timeout:
                continue
        raise AssertionError("no reply from the disk service (op %d block %d)" % (op, block))

    if argv[0] == "echo":
        for i in range(20):
            msg = b"colo-%d" % i
            s.sendto(msg, (GUEST_IP, 7))
            try:
                if s.recvfrom(64)[0] == msg:
                    print("echo ok")
                    return
            except socket.timeout:
                pass
        raise AssertionError("no UDP echo")
    first, n = int(argv[1]), int(argv[2])
    for b in range(first, first + n):
        if argv[0] == "write":
            assert disk(1, b, 5000 + b) == (0, 0) or disk(2, b)[1] == 5000 + b, b
        status, value = disk(2, b)
        assert (status, value) == (0, 5000 + b), (b, status, value)
    print("%s ok" % argv[0])


def test_virtio_devices_migrate():
    require_kvm()
    netns.require(("ip", "bridge"), "taps, network namespaces")
    if not os.path.exists("/dev/net/tun"):
        tap.skip("no /dev/net/tun")
    with tap.tempdir("cvm-") as tmp, netns.Netns("vm", "cl", prefix="cvm-") as net:
        migrate_with_devices(tmp, net)


def migrate_with_devices(tmp, net):
    disk = os.path.join(tmp, "disk.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    setup(net)
    src = dst = tcp = None
    try:
        uri = "unix:" + os.path.join(tmp, "mig.sock")

        def devices(tap_name):
            return ["-drive", "file=%s,if=virtio,format=raw" % disk,
                    "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % tap_name,
                    "-device", "virtio-net-pci,netdev=n0,mac=" + MAC]
        append = "ip=%s/24" % GUEST_IP
        src = Vmm(mem="64M", append=append, extra=devices(TAPS[0]), wrap=net.argv("vm")).start()
        dst = Vmm(mem="64M", append=append, extra=devices(TAPS[1]) + ["-incoming", uri], wrap=net.argv("vm")).start()
        src.wait_serial("colo-testguest ready", 90)
        assert "echo ok" in client(net, "echo")
        assert "write ok" in client(net, "write", 0, 10)
        # A TCP connection that lives through the migration.
        tcp = subprocess.Popen(net.argv("cl", sys.executable, os.path.abspath(__file__), "--client", "tcp"),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

        def tcp_round(n):
            tcp.stdin.write("go\n")
            tcp.stdin.flush()
            line = tcp.stdout.readline()
            assert line == "round %d ok\n" % n, (n, line, tcp.poll())
        tcp_round(0)

        assert fdb_port(net) == TAPS[0]
        src.qmp.cmd("migrate", uri=uri)
        wait_until(lambda: src.qmp.cmd("query-migrate").get("status") in ("completed", "failed"), 120,
                   "the migration to end", interval=0.1)
        q = src.qmp.cmd("query-migrate")
        assert q["status"] == "completed", q
        wait_until(lambda: dst.qmp.cmd("query-status")["status"] == "running", 30, "the destination to run")
        # The bridge still sends the guest's MAC to the source's tap until
        # the destination announces it (QEMU does this on its own).
        dst.qmp.cmd("announce-self", initial=50, max=550, rounds=1, step=100)
        wait_until(lambda: fdb_port(net) == TAPS[1], 10, "the bridge to learn the guest's new port")
        try:
            dst.qmp.cmd("announce-self", bogus=1)
            raise AssertionError("announce-self took an unknown argument")
        except QMPError as e:
            assert "bogus" in e.desc, e.desc

        assert "read ok" in client(net, "read", 0, 10)     # written through the source
        assert "write ok" in client(net, "write", 10, 10)  # the same queues go on here
        assert "echo ok" in client(net, "echo")
        # The connection opened on the source carries on with the guest here.
        tcp_round(1)
        tcp_round(2)
        tcp.stdin.close()
        assert tcp.wait(30) == 0
        assert "announced 1 NIC" in open(dst.log_path).read()
    finally:
        if tcp and tcp.poll() is None:
            tcp.kill()
            tcp.wait()
        for vm in (src, dst):
            if vm:
                vm.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_main(sys.argv[2:])
    else:
        tap.run(globals())
