#!/usr/bin/env python3
"""COLO with a Linux guest: the nested case linux_colo (tests/nested), run
inside L1 (in a chroot of the host's tree, like the int_ cases) against
L1's KVM. The topology is tests/lib/colo_net.py's (a client on a bridge,
a primary and a secondary host, each with colo-vmm on a tap and its
colo-proxy), with the L2 Debian kernel and tests/nested/l2-init
(colotest.mode=colo: the guest's address, and a TCP echo server on port
5000) instead of the test guest.

A client connection into the guest, opened before protection, carries
rounds of echoed bytes (each checked, and the md5 of everything at the
end) through:

  1. COLO: protected with x-colo, periodic checkpoints, both proxies;
  2. the secondary's loss (its VMM and proxy killed with SIGKILL): the
     primary runs on after x-colo-lost-heartbeat;
  3. protection again from the survivor, a fresh secondary and fresh
     proxies (docs/colo.md: re-protect);
  4. the primary's loss: the secondary takes over (x-colo-lost-heartbeat,
     the LAN address moves to its host).

What was measured (checkpoints, pauses, time to take over) is printed as
TAP comments. Environment: COLO_NESTED_KERNEL, COLO_NESTED_INITRD (the L2
kernel and initramfs, as L1 has them), COLO_NESTED_DELAY (the checkpoint
delay in ms, default 500)."""
import hashlib
import os
import random
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import colo_net  # noqa: E402
from colo_net import GUEST_IP, GUEST_MAC, GW_IP, LAN_MAC, PH_LINK, SH_LINK, TAPS  # noqa: E402
from colo_vmm import Vmm, wait_until  # noqa: E402
import tap  # noqa: E402

KERNEL = os.environ.get("COLO_NESTED_KERNEL", "")
INITRD = os.environ.get("COLO_NESTED_INITRD", "")
DELAY = int(os.environ.get("COLO_NESTED_DELAY", "500"))
ECHO_PORT = 5000
ROUND = 64 << 10        # bytes echoed per round
# Everything is slow two levels down (QEMU's TCG runs L1, whose KVM runs
# L2): the bounds are wide, what it took is printed.
ROUND_SECONDS = 120
BOOT_SECONDS = 300


def round_bytes(n):
    return random.Random(n).randbytes(ROUND)


def client_main():
    """In the client namespace: one connection to the guest's echo server;
    each line on stdin is a round (ROUND bytes sent, the echo read back and
    compared); prints 'round N', and on EOF the md5 of all it sent and all
    it got back."""
    deadline = time.monotonic() + 60
    while True:
        try:
            s = socket.create_connection((GUEST_IP, ECHO_PORT), timeout=10)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    s.settimeout(ROUND_SECONDS * 2)
    print("connected", flush=True)
    sent, got = hashlib.md5(), hashlib.md5()
    n = 0
    for _ in sys.stdin:
        data = round_bytes(n)
        s.sendall(data)
        sent.update(data)
        back = b""
        while len(back) < len(data):
            chunk = s.recv(len(data) - len(back))
            if not chunk:
                raise AssertionError("round %d: the connection closed after %d bytes" % (n, len(back)))
            back += chunk
        got.update(back)
        if back != data:
            raise AssertionError("round %d: the echo differs" % n)
        print("round %d" % n, flush=True)
        n += 1
    print("md5 %s %s %d" % (sent.hexdigest(), got.hexdigest(), n * ROUND), flush=True)


class LinuxColo(colo_net.Colo):
    def __init__(self):
        super().__init__(prefix="lc-")
        self.rounds = 0

    def start_vmm(self, ns, extra):
        devices = ["-initrd", INITRD,
                   "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % TAPS[ns],
                   "-device", "virtio-net-pci,netdev=n0,mac=" + GUEST_MAC,
                   "-colo-proxy", os.path.join(self.net.tmp, ns + ".sock")]
        vm = Vmm(mem="256M", smp=2, kernel=KERNEL,
                 append="console=ttyS0 colotest.mode=colo colotest.ip=%s/24 colotest.gw=%s" % (GUEST_IP, GW_IP),
                 extra=devices + extra, wrap=self.net.argv(ns))
        self.vm[ns] = vm
        vm.start()
        return vm

    def start_secondary(self):
        self.start_vmm("sh", ["-incoming", "tcp:%s:4444" % SH_LINK])

    def round(self, timeout=ROUND_SECONDS):
        """One round through the connection, checked by the client; its
        duration."""
        t0 = time.monotonic()
        self.send("go")
        self.expect_line("round %d" % self.rounds, timeout)
        self.rounds += 1
        return time.monotonic() - t0

    def status(self, ns):
        return self.vm[ns].qmp.cmd("query-colo-status")

    def checkpoint_rounds(self, rounds, checkpoints):
        """@rounds rounds while at least @checkpoints periodic checkpoints
        pass; prints what they took."""
        start = self.status("ph")["checkpoints"]["count"]
        took = [self.round() for _ in range(rounds)]
        wait_until(lambda: self.status("ph")["checkpoints"]["count"] >= start + checkpoints, 120,
                   "%d checkpoints" % checkpoints, interval=0.5)
        print("# %d rounds of %d KiB in COLO: %s s" % (rounds, ROUND >> 10, ", ".join("%.2f" % t for t in took)),
              flush=True)

    def report(self, what):
        """The checkpoints both sides counted, and the primary proxy's
        comparisons."""
        # Counted since each colo-vmm started (the primary's across re-protection).
        for ns in ("ph", "sh"):
            cp = self.status(ns)["checkpoints"]
            p = cp["pause-us"]
            print("# %s, %s: %d checkpoints, pause p50 %.1f ms p99 %.1f ms max %.1f ms, last %d pages%s" %
                  (what, "primary" if ns == "ph" else "secondary", cp["count"], p["p50"] / 1e3, p["p99"] / 1e3,
                   p["max"] / 1e3, cp["last-pages"],
                   ", by reason %s" % {k: v for k, v in cp.get("reasons", {}).items() if v} if ns == "ph" else ""),
                  flush=True)
        st = self.ctl["ph"].execute("query-stats")
        print("# %s, primary proxy: compared %d released %d passthrough %d, secondary packets %d, mismatches %s" %
              (what, st["compared"], st["released"], st["passthrough"], st["secondary-packets"],
               {k: v for k, v in st["mismatches"].items() if v}), flush=True)
        return st

    def failover(self, ns, mode):
        """x-colo-lost-heartbeat on @ns; how long its answer and COLO_EXIT took."""
        vm = self.vm[ns]
        t0 = time.monotonic()
        vm.qmp.cmd("x-colo-lost-heartbeat")
        answered = time.monotonic() - t0
        ev = vm.qmp.wait_event("COLO_EXIT", 30)
        exited = time.monotonic() - t0
        assert ev["data"] == {"mode": mode, "reason": "request"}, ev
        st = self.status(ns)
        assert st["proxy"]["failed-over"] is True and self.ctl[ns].execute("query-status")["failed-over"], st
        return answered, exited

    def rebuild_secondary_host(self):
        """A fresh secondary host in place of the killed one: its links to
        the primary and to the LAN again (its tap is still there)."""
        net = self.net
        net.veth("ph", "ps", "sh", "sp")
        net.up("ph", "ps", PH_LINK + "/24")
        net.up("sh", "sp", SH_LINK + "/24")
        net.veth("sh", "sc", "c", "c1")
        net.ip("c", "link", "set", "c1", "master", "br0", "up")
        net.ip("sh", "link", "set", "sc", "address", LAN_MAC)

    def fresh_proxies(self):
        """A proxy that failed over serves no further COLO (docs/colo.md):
        both sides get new ones."""
        for ns in list(self.ctl):
            self.ctl.pop(ns).close()
        p = self.proxy.pop("ph", None)
        if p:
            self.net.kill(p)
        for ns in TAPS:
            try:
                os.unlink(os.path.join(self.net.tmp, ns + ".sock"))
            except FileNotFoundError:
                pass
        self.start_proxies()


def run():
    for var, path in (("COLO_NESTED_KERNEL", KERNEL), ("COLO_NESTED_INITRD", INITRD)):
        if not path or not os.path.exists(path):
            raise AssertionError("%s: no L2 image at %r" % (var, path))
    colo_net.require()
    t = LinuxColo()
    try:
        t.setup()
        t0 = time.monotonic()
        pri = t.start_vmm("ph", [])
        pri.wait_serial(r"L2: ready", BOOT_SECONDS)
        print("# L2 up (echo server, power button) %.0f s after colo-vmm started" % (time.monotonic() - t0),
              flush=True)
        t.start_secondary()
        t.start_client(__file__)
        t.round()
        tap.ok(True, "a client connection into the L2 Linux guest, before protection")

        # 1. COLO.
        t.start_proxies()
        t0 = time.monotonic()
        t.protect(delay=DELAY)
        mig = pri.qmp.cmd("query-migrate")
        print("# protected (x-colo, 256 MiB guest, checkpoint delay %d ms) in %.1f s (initial sync: total-time %s ms)"
              % (DELAY, time.monotonic() - t0, mig.get("total-time")), flush=True)
        t.checkpoint_rounds(6, 6)
        st = t.report("COLO")
        tap.ok(st["compared"] > 0 and st["secondary-packets"] > 0,
               "in COLO: rounds through both proxies, the primary's output compared with the secondary's", diag=st)
        tap.ok(t.status("sh")["mode"] == "secondary" and t.status("ph")["mode"] == "primary",
               "both sides in COLO after the rounds")

        # 2. The secondary is lost; the primary runs on.
        t.kill("sh")
        t0 = time.monotonic()
        answered, exited = t.failover("ph", "primary")
        t.round()
        print("# secondary lost: x-colo-lost-heartbeat answered in %.3f s, COLO_EXIT after %.3f s, the next "
              "round done %.2f s after the request" % (answered, exited, time.monotonic() - t0), flush=True)
        t.round()
        tap.ok(pri.qmp.cmd("query-status")["status"] == "running",
               "the secondary killed: the primary runs on alone, the connection carries on")

        # 3. Protected again from the survivor.
        t.vm.pop("sh").close()
        t.rebuild_secondary_host()
        t.fresh_proxies()
        t.start_secondary()
        t0 = time.monotonic()
        t.protect(delay=DELAY)
        print("# protected again in %.1f s" % (time.monotonic() - t0), flush=True)
        t.checkpoint_rounds(4, 4)
        st = t.report("COLO again")
        tap.ok(st["compared"] > 0, "protected again: a fresh secondary and proxies, rounds in COLO", diag=st)

        # 4. The primary is lost; the secondary takes over.
        t.kill("ph")
        t0 = time.monotonic()
        answered, exited = t.failover("sh", "secondary")
        t.take_over_lan()
        first = t.round()
        print("# primary lost: x-colo-lost-heartbeat answered in %.3f s, COLO_EXIT after %.3f s, the next "
              "round done %.2f s after the request (the round itself %.2f s)" %
              (answered, exited, time.monotonic() - t0, first), flush=True)
        t.round()
        tap.ok(t.vm["sh"].qmp.cmd("query-status")["status"] == "running",
               "the primary killed: the secondary took over, the connection carries on")

        t.client.stdin.close()
        line = t.read_line(ROUND_SECONDS, "the md5 line")
        _, sent, got, total = line.split()
        print("# %d rounds, %s bytes each way over one connection: md5 sent %s, echoed %s" %
              (t.rounds, total, sent, got), flush=True)
        tap.ok(sent == got and int(total) == t.rounds * ROUND,
               "the stream byte-exact through COLO, both failovers and the re-protection (md5)")
    except BaseException:
        print("# " + t.diag().replace("\n", "\n# "), flush=True)
        for ns, vm in t.vm.items():
            print("# --- L2 console on %s (last lines):\n# %s" %
                  (ns, "\n# ".join(vm.serial().replace("\r", "").splitlines()[-20:])), flush=True)
        raise
    finally:
        t.close()


if __name__ == "__main__":
    # The client runs this file again, in its namespace (colo_net.start_client).
    sys.exit(client_main() if sys.argv[1:] == ["--client"] else tap.main(run, deadline=840))
