#!/usr/bin/env python3
"""COLO with the network: two colo-vmm with the test guest's virtio-net, a
colo-proxy beside each, driven by the VMMs (-colo-proxy), and a client.
A TCP echo connection and a TCP byte stream, opened before protection,
carry on byte-exact through periodic checkpoints, through checkpoints the
primary's proxy asked for (counted under their reason), and through the
failover of either side (the other side's VMM and proxy killed with
SIGKILL, x-colo-lost-heartbeat on the survivor).

  c (client, bridge br0 = the LAN) --- ph (primary host: tap, colo-proxy) --- primary colo-vmm
     |                                   | 10.83.0.0/24: migration stream, proxy link
     +--- (down until takeover) ------ sh (secondary host: tap, colo-proxy) --- secondary colo-vmm

Both taps carry the gateway's address and MAC (the guest's ARP cache comes
from the primary); the secondary host's LAN port takes the primary's LAN
address and MAC when it takes over, as a floating address would. Needs
root, /dev/kvm, /dev/net/tun, ip and iptables; everything lives in
namespaces of the test's own."""
import json
import os
import signal
import subprocess
import sys
import time

import colo_vmm
from colo_vmm import Vmm, require_kvm, wait_until
import netns
import tap

sys.path.insert(0, os.path.join(colo_vmm.SRCDIR, "tests", "netfilter"))
sys.path.insert(0, os.path.join(colo_vmm.SRCDIR, "tests", "guest"))
from proxyctl import ProxyCtl  # noqa: E402
import guestnet  # noqa: E402

PROXY = os.path.join(colo_vmm.BUILDDIR, "netfilter", "colo-proxy")
GUEST_IP, GW_IP, CLIENT_IP = "10.81.0.2", "10.81.0.1", "10.82.0.2"
LAN_GW = "10.82.0.1"
PH_LINK, SH_LINK = "10.83.0.1", "10.83.0.2"
GUEST_MAC, GW_MAC, LAN_MAC = "52:54:00:81:00:02", "52:54:00:81:00:01", "52:54:00:82:00:01"
TAPS = {"ph": "cnp0", "sh": "cns0"}
ECHO_ROUND = 16 << 10
STREAM_ROUND = 64 << 10
STREAM_TOTAL = 1 << 30      # never reached: the client reads what it asks for per round


def client_main():
    """In the client namespace: one echo connection and one stream
    connection, opened at once and kept; every line on stdin is a round
    (ECHO_ROUND bytes echoed, STREAM_ROUND more bytes of the stream), both
    checked byte for byte; prints 'round N' after each."""
    g = guestnet.Guest(GUEST_IP, timeout=60)
    echo, stream = g.connect(guestnet.PORT_ECHO), g.connect(guestnet.PORT_STREAM)
    stream.sendall(b"%d\n" % STREAM_TOTAL)
    print("connected", flush=True)
    got = 0
    for n, _ in enumerate(sys.stdin):
        data = bytes((n * 31 + i) % 253 for i in range(ECHO_ROUND))
        echo.sendall(data)
        back = b""
        while len(back) < len(data):
            chunk = echo.recv(len(data) - len(back))
            if not chunk:
                raise AssertionError("round %d: the echo connection closed" % n)
            back += chunk
        if back != data:
            raise AssertionError("round %d: the echo differs" % n)
        want = guestnet.stream_bytes(got, STREAM_ROUND)
        have = b""
        while len(have) < STREAM_ROUND:
            chunk = stream.recv(STREAM_ROUND - len(have))
            if not chunk:
                raise AssertionError("round %d: the stream closed after %d bytes" % (n, got + len(have)))
            have += chunk
        if have != want:
            raise AssertionError("round %d: stream bytes %d.. differ" % (n, got))
        got += STREAM_ROUND
        print("round %d" % n, flush=True)


class Colo:
    """The namespaces, proxies, VMMs and the client of one test."""

    def __init__(self):
        self.net = netns.Netns("c", "ph", "sh", prefix="cnet-")
        self.vm = {}
        self.ctl = {}
        self.proxy = {}
        self.client = None
        self.rounds = 0

    def setup(self):
        net = self.net.create()
        net.ip("c", "link", "add", "br0", "type", "bridge")
        net.veth("ph", "pc", "c", "c0")
        net.veth("sh", "sc", "c", "c1")
        for port in ("c0", "c1"):
            net.ip("c", "link", "set", port, "master", "br0", "up")
        net.up("c", "br0", CLIENT_IP + "/24")
        net.ip("c", "route", "add", "10.81.0.0/24", "via", LAN_GW)
        net.up("ph", "pc", LAN_GW + "/24", LAN_MAC)
        net.ip("sh", "link", "set", "sc", "address", LAN_MAC)   # up at takeover
        net.veth("ph", "ps", "sh", "sp")
        net.up("ph", "ps", PH_LINK + "/24")
        net.up("sh", "sp", SH_LINK + "/24")
        for ns, dev in TAPS.items():
            net.ip(ns, "tuntap", "add", "dev", dev, "mode", "tap", "vnet_hdr")
            net.up(ns, dev, GW_IP + "/24", GW_MAC)
        net.exe("ph", "sysctl", "-qw", "net.ipv4.ip_forward=1")

    def start_vmm(self, ns, extra):
        devices = ["-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % TAPS[ns],
                   "-device", "virtio-net-pci,netdev=n0,mac=" + GUEST_MAC,
                   "-colo-proxy", os.path.join(self.net.tmp, ns + ".sock")]
        vm = Vmm(mem="64M", append="ip=%s/24 gw=%s interval=0" % (GUEST_IP, GW_IP), extra=devices + extra,
                 wrap=self.net.argv(ns))
        self.vm[ns] = vm
        vm.start()
        return vm

    def start_proxies(self):
        sock = {ns: os.path.join(self.net.tmp, ns + ".sock") for ns in TAPS}
        self.proxy["ph"] = self.net.spawn("ph", PROXY, "-r", "primary", "-i", TAPS["ph"], "-q", "9",
                                          "-L", PH_LINK + ":7700", "-c", sock["ph"], "-d", log="proxy-ph.log")
        self.proxy["sh"] = self.net.spawn("sh", PROXY, "-r", "secondary", "-i", TAPS["sh"], "-q", "9",
                                          "-C", PH_LINK + ":7700", "-c", sock["sh"], "-d", log="proxy-sh.log")
        for ns in TAPS:
            wait_until(lambda: os.path.exists(sock[ns]), 10, "the %s proxy's control socket" % ns)
            self.ctl[ns] = ProxyCtl(sock[ns])
        wait_until(lambda: self.ctl["ph"].execute("query-status")["peer-link"], 10, "the proxies to link up")

    def start_client(self):
        self.client = subprocess.Popen(self.net.argv("c", sys.executable, os.path.abspath(__file__), "--client"),
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
        self.expect_line("connected", 60)

    def expect_line(self, want, timeout):
        import select
        if not select.select([self.client.stdout], [], [], timeout)[0]:
            raise AssertionError("the client printed nothing for %d s (waiting for %r)\n%s" %
                                 (timeout, want, self.diag()))
        line = self.client.stdout.readline().strip()
        if line != want:
            if self.client.poll() is not None:
                line += " / client: " + self.client.stderr.read()
            raise AssertionError("client: %r, not %r\n%s" % (line, want, self.diag()))

    def round(self, timeout=60):
        """One round on both connections, checked by the client."""
        self.client.stdin.write("go\n")
        self.client.stdin.flush()
        self.expect_line("round %d" % self.rounds, timeout)
        self.rounds += 1

    def diag(self):
        out = {}
        for ns, vm in self.vm.items():
            if vm.proc and vm.proc.poll() is None:
                try:
                    out[ns] = vm.qmp.cmd("query-colo-status")
                except Exception as e:  # noqa: BLE001 - diagnostics only
                    out[ns] = str(e)
        return json.dumps(out, indent=1) + "\n" + self.net.log_tails(15)

    def protect(self, delay):
        pri, sec = self.vm["ph"], self.vm["sh"]
        for vm in (pri, sec):
            vm.qmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "x-colo", "state": True}])
        pri.qmp.cmd("migrate-set-parameters", args={"x-checkpoint-delay": delay, "max-bandwidth": 0})
        pri.qmp.cmd("migrate", uri="tcp:%s:4444" % SH_LINK)
        for vm in (pri, sec):
            wait_until(lambda: vm.qmp.cmd("query-migrate").get("status") == "colo", 60, "COLO")
        for ns in TAPS:
            wait_until(lambda: self.vm[ns].qmp.cmd("query-colo-status")["proxy"]["connected"], 10,
                       "colo-vmm on %s connected to its proxy" % ns)

    def kill(self, ns):
        """The host @ns dies: its VMM and its proxy get SIGKILL, and it drops
        off the LAN and the inter-host link."""
        self.vm[ns].proc.kill()
        self.vm[ns].proc.wait(10)
        os.killpg(self.proxy[ns].pid, signal.SIGKILL)
        self.proxy[ns].wait(10)
        for dev in ("pc", "ps") if ns == "ph" else ("sc", "sp"):
            self.net.ip(ns, "link", "del", dev)

    def lost_heartbeat(self, ns, mode):
        vm = self.vm[ns]
        start = time.monotonic()
        vm.qmp.cmd("x-colo-lost-heartbeat")
        took = time.monotonic() - start
        assert took < 0.1, "x-colo-lost-heartbeat took %.3f s" % took
        ev = vm.qmp.wait_event("COLO_EXIT", 10)
        assert ev["data"] == {"mode": mode, "reason": "request"}, ev
        st = vm.qmp.cmd("query-colo-status")
        assert st["proxy"]["failed-over"] is True and self.ctl[ns].execute("query-status")["failed-over"], st

    def close(self):
        try:
            if self.client and self.client.poll() is None:
                self.client.kill()
                self.client.wait()
            for c in self.ctl.values():
                c.close()
            for vm in self.vm.values():
                vm.close()
        finally:
            self.net.close()


def reasons(vm):
    return vm.qmp.cmd("query-colo-status")["checkpoints"]["reasons"]


def protected_pair():
    """Both VMMs, the client's two connections opened and used before
    protection, then COLO with both proxies; a round after each few
    periodic checkpoints."""
    require_kvm()
    netns.require(("ip", "iptables", "ip6tables"), "network namespaces, taps, NFQUEUE")
    if not os.path.exists("/dev/net/tun"):
        tap.skip("no /dev/net/tun")
    if not os.access(PROXY, os.X_OK):
        raise AssertionError("colo-proxy not built at " + PROXY)
    t = Colo()
    try:
        t.setup()
        pri = t.start_vmm("ph", [])
        t.start_vmm("sh", ["-incoming", "tcp:%s:4444" % SH_LINK])
        pri.wait_serial("colo-testguest ready", 60)
        t.start_client()
        t.round()                   # before protection, through plain routing
        t.start_proxies()
        t.protect(delay=300)
        for _ in range(3):
            n = pri.qmp.cmd("query-colo-status")["checkpoints"]["count"]
            t.round()
            wait_until(lambda: pri.qmp.cmd("query-colo-status")["checkpoints"]["count"] >= n + 2, 30,
                       "periodic checkpoints")
        st = t.ctl["ph"].execute("query-stats")
        # The primary's output was held and compared with the secondary's.
        assert st["compared"] > 0 and st["secondary-packets"] > 0 and st["epoch"] >= 7, st
        print("# primary proxy: compared %d released %d passthrough %d, secondary packets %d, mismatches %s" %
              (st["compared"], st["released"], st["passthrough"], st["secondary-packets"],
               {k: v for k, v in st["mismatches"].items() if v}), flush=True)
        assert reasons(pri)["periodic"] >= 6, reasons(pri)
    except BaseException:
        print("# " + t.diag().replace("\n", "\n# "), flush=True)
        t.close()
        raise
    return t


def proxy_requested_checkpoints(t):
    """With the periodic checkpoint far away and the secondary's guest
    stopped, only the primary proxy's requests release anything: rounds go
    on, through checkpoints counted as stale (held packets time out), then
    as queue-full (a queue of two packets)."""
    pri, sec = t.vm["ph"], t.vm["sh"]
    pri.qmp.cmd("migrate-set-parameters", args={"x-checkpoint-delay": 600000})
    t.ctl["ph"].execute("set-parameters", {"compare_timeout": 100, "expired_scan_cycle": 50})
    before = reasons(pri)
    sec.qmp.cmd("stop")
    try:
        time.sleep(0.5)                 # the pending periodic wait ends
        periodic = reasons(pri)["periodic"]
        t.round()
        t.round()
        stale = reasons(pri)
        t.ctl["ph"].execute("set-parameters", {"compare_timeout": 1000, "max_queue_size": 2})
        t.round()
    finally:
        sec.qmp.cmd("cont")
    after = reasons(pri)
    assert after["periodic"] == periodic, (before, after)
    assert stale["stale"] >= before["stale"] + 2, (before, stale)
    assert after["queue-full"] >= stale["queue-full"] + 1, (stale, after)
    requests = pri.qmp.cmd("query-colo-status")["proxy"]["requests"]
    assert requests >= after["stale"] + after["queue-full"] - before["stale"] - before["queue-full"], \
        (requests, before, after)
    t.ctl["ph"].execute("set-parameters", {"compare_timeout": 3000, "expired_scan_cycle": 1000,
                                           "max_queue_size": 16384})
    pri.qmp.cmd("migrate-set-parameters", args={"x-checkpoint-delay": 300})
    print("# proxy-requested checkpoints: %s -> %s -> %s" % (before, stale, after), flush=True)


@tap.timeout(170)
def test_secondary_takes_over_the_connections():
    t = protected_pair()
    try:
        proxy_requested_checkpoints(t)
        t.round()
        t.kill("ph")
        t.lost_heartbeat("sh", "secondary")
        # The secondary host answers for the primary's LAN address now.
        t.net.up("sh", "sc", LAN_GW + "/24")
        t.net.exe("sh", "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for _ in range(3):
            t.round()
        assert t.vm["sh"].qmp.cmd("query-status")["status"] == "running"
    finally:
        t.close()


@tap.timeout(170)
def test_primary_runs_on_without_the_secondary():
    t = protected_pair()
    try:
        t.kill("sh")
        t.lost_heartbeat("ph", "primary")
        rules = t.net.exe("ph", "iptables", "-S", "FORWARD").stdout
        assert "colo-proxy" not in rules, rules
        for _ in range(3):
            t.round()
    finally:
        t.close()


if __name__ == "__main__":
    if sys.argv[1:] == ["--client"]:
        client_main()
    else:
        tap.run(globals())
