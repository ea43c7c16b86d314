"""COLO's disks between two colo-vmm: the initial sync copies every disk
into a secondary that starts with empty images; the primary's writes reach
the secondary's image with each checkpoint, a half-finished epoch's writes
are dropped at failover, and the secondary guest's own writes stay its own
until a checkpoint replaces them.

Topology: the primary's guest tap in namespace "p", the secondary's in "s",
each with the host side at 10.99.0.1/24; the guest is 10.99.0.15 on both
(no colo-proxy here: clients talk to one guest at a time through its own
namespace). Writes go through the test guest's disk service, each one
acknowledged after the guest's flush."""
import filecmp
import json
import os
import subprocess
import tempfile

import colo_vmm
from colo_vmm import Vmm, wait_until
import netns
import tap

GUEST_IP = "10.99.0.15"
HOST_IP = "10.99.0.1"
HOST_MAC = "02:00:0a:63:00:01"
TAP = "coloddtap0"
SIZES = (4 << 20, 1 << 20)      # two disks


def client(net, ns, ops):
    """Runs disk operations (("write", block, seq) / ("read", block)) against
    the guest from namespace @ns; returns the reads' results in order."""
    script = (
        "import json, sys\n"
        "sys.path.insert(0, %r)\n"
        "import guestnet\n"
        "g = guestnet.Guest(%r, timeout=10)\n"
        "out = []\n"
        "for op in json.loads(sys.argv[1]):\n"
        "    if op[0] == 'write':\n"
        "        g.disk_write(op[1], op[2])\n"
        "    else:\n"
        "        out.append(g.disk_read(op[1]))\n"
        "print(json.dumps(out))\n" % (os.path.join(colo_vmm.SRCDIR, "tests", "guest"), GUEST_IP))
    r = subprocess.run(net.argv(ns, "python3", "-c", script, json.dumps(ops)), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, "disk client in %s: %s" % (ns, r.stderr[-2000:])
    return json.loads(r.stdout)


class Pair:
    """A primary and a secondary, each with its tap in its own namespace and
    its own images (the secondary's empty), in COLO once enter() returns."""

    def __init__(self, net, tmp, fill):
        self.net, self.tmp = net, tmp
        self.images = {}
        for side in ("p", "s"):
            for i, size in enumerate(SIZES):
                path = os.path.join(tmp, "%s%d.img" % (side, i))
                with open(path, "wb") as f:
                    if side == "p" and fill:
                        f.write(os.urandom(size))
                    else:
                        f.truncate(size)
                self.images[side, i] = path
            net.ip(side, "tuntap", "add", "dev", TAP, "mode", "tap", "vnet_hdr")
            # One client network in truth: the same host address and MAC on
            # both sides, so that a checkpoint's copy of the primary guest's
            # neighbour table holds on the secondary too.
            net.up(side, TAP, HOST_IP + "/24", mac=HOST_MAC)
        # The VMMs live in different namespaces: the migration goes through
        # a unix socket.
        self.uri = "unix:" + os.path.join(tmp, "migration.sock")
        # A read-only disk, the same image on both sides: neither copied
        # nor replicated, and the guest can read it on either.
        self.readonly = os.path.join(tmp, "ro.img")
        with open(self.readonly, "wb") as f:
            f.write(os.urandom(1 << 20))
        self.pri = self.start("p")
        self.sec = self.start("s", ["-incoming", self.uri])

    def start(self, side, extra=()):
        argv = ["-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % TAP,
                "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56"]
        for i in range(len(SIZES)):
            argv += ["-drive", "file=%s,if=virtio,format=raw" % self.images[side, i]]
        argv += ["-drive", "file=%s,if=virtio,format=raw,readonly=on" % self.readonly]
        vm = Vmm(smp=1, mem="64M", append="ip=%s/24 interval=0" % GUEST_IP, extra=argv + list(extra),
                 wrap=self.net.argv(side))
        return vm.start()

    def enter(self, delay):
        self.pri.wait_serial(r"colo-testguest ready", 60)
        for vm in (self.pri, self.sec):
            vm.qmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "x-colo", "state": True}])
        self.pri.qmp.cmd("migrate-set-parameters", args={"x-checkpoint-delay": delay, "max-bandwidth": 0})
        self.pri.qmp.cmd("migrate", uri=self.uri)
        for vm in (self.pri, self.sec):
            wait_until(lambda: vm.qmp.cmd("query-migrate").get("status") == "colo", 60, "COLO")

    def checkpoint(self):
        n = self.pri.qmp.cmd("query-colo-status")["checkpoints"]["count"]
        self.pri.qmp.cmd("x-colo-checkpoint")
        wait_until(lambda: self.pri.qmp.cmd("query-colo-status")["checkpoints"]["count"] > n, 30,
                   "the checkpoint")

    def fail_over_to_secondary(self):
        self.pri.proc.kill()
        self.pri.wait_exit(10)
        self.sec.qmp.cmd("x-colo-lost-heartbeat")
        ev = self.sec.qmp.wait_event("COLO_EXIT", 10)
        assert ev["data"] == {"mode": "secondary", "reason": "request"}, ev

    def close(self):
        self.pri.close()
        self.sec.close()


def with_pair(fill, delay, body):
    colo_vmm.require_kvm()
    netns.require(("ip",), "network namespaces and taps")
    with netns.Netns("p", "s", prefix="cdsk") as net, tempfile.TemporaryDirectory(prefix="colo-disk-") as tmp:
        pair = Pair(net, tmp, fill)
        try:
            pair.enter(delay)
            body(pair)
        finally:
            pair.close()


def test_initial_sync_copies_every_disk():
    """The secondary starts from empty images; after failover (its guest
    wrote nothing) its images are the primary's, byte for byte."""
    def body(pair):
        pair.checkpoint()
        pair.fail_over_to_secondary()
        pair.sec.qmp.cmd("quit")
        pair.sec.wait_exit(30)
        for i in range(len(SIZES)):
            assert filecmp.cmp(pair.images["p", i], pair.images["s", i], shallow=False), "disk %d differs" % i
    with_pair(True, 200, body)


def test_checkpointed_writes_survive_failover():
    """Writes acknowledged before a checkpoint read back from the secondary
    after failover; writes of the epoch that never reached a checkpoint are
    not there (without colo-proxy their acknowledgements left early: with
    it they would have been held)."""
    def body(pair):
        before = [("write", b, 1000 + b) for b in range(0, 400, 2)]
        after = [("write", b, 5000 + b) for b in range(1, 400, 2)]
        client(pair.net, "p", before)
        pair.checkpoint()
        client(pair.net, "p", after)
        pair.fail_over_to_secondary()
        reads = client(pair.net, "s", [("read", b) for b in range(400)])
        for b, v in enumerate(reads):
            want = 1000 + b if b % 2 == 0 else None
            assert v == want, "block %d: %r, want %r" % (b, v, want)
        # The survivor's own writes now reach its image.
        client(pair.net, "s", [("write", 7, 77)])
        assert client(pair.net, "s", [("read", 7)]) == [77]
    with_pair(False, 60000, body)


def test_secondary_guest_writes_are_dropped_at_checkpoint():
    """The secondary guest's own writes go to its overlay: its image keeps
    the primary's data, and a checkpoint replaces its view with the
    primary's."""
    def body(pair):
        client(pair.net, "p", [("write", 3, 33)])
        pair.checkpoint()
        # Only the secondary's guest hears this one (no proxy mirrors it).
        client(pair.net, "s", [("write", 3, 99), ("write", 4, 44)])
        assert client(pair.net, "s", [("read", 3), ("read", 4)]) == [99, 44]
        pair.checkpoint()
        assert client(pair.net, "s", [("read", 3), ("read", 4)]) == [33, None]
    with_pair(False, 60000, body)


tap.run(globals())
