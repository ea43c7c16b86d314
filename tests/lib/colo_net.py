"""COLO with the network, for the tests that need the whole product: two
colo-vmm with the test guest's virtio-net on taps, a colo-proxy beside
each, driven by the VMMs (-colo-proxy), and a client on the LAN.

  c (client, bridge br0 = the LAN) --- ph (primary host: tap, colo-proxy) --- primary colo-vmm
     |                                   | 10.83.0.0/24: migration stream, proxy link
     +--- (down until takeover) ------ sh (secondary host: tap, colo-proxy) --- secondary colo-vmm

Both taps carry the gateway's address and MAC (the guest's ARP cache comes
from the primary); the secondary host's LAN port takes the primary's LAN
address and MAC when it takes over (take_over_lan()), as a floating address
would. Needs root, /dev/kvm, /dev/net/tun, ip and iptables; everything
lives in namespaces of the test's own.

The client is a script of the test's own, run in namespace "c" with its
stdin and stdout as pipes (start_client, send, read_line, expect_line).
"""
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import colo_vmm
from colo_vmm import Vmm, require_kvm, wait_until
import netns
import tap

sys.path.insert(0, os.path.join(colo_vmm.SRCDIR, "tests", "netfilter"))
sys.path.insert(0, os.path.join(colo_vmm.SRCDIR, "tests", "guest"))
from proxyctl import ProxyCtl  # noqa: E402

PROXY = os.path.join(colo_vmm.BUILDDIR, "netfilter", "colo-proxy")
GUEST_IP, GW_IP, CLIENT_IP = "10.81.0.2", "10.81.0.1", "10.82.0.2"
LAN_GW = "10.82.0.1"
PH_LINK, SH_LINK = "10.83.0.1", "10.83.0.2"
GUEST_MAC, GW_MAC, LAN_MAC = "52:54:00:81:00:02", "52:54:00:81:00:01", "52:54:00:82:00:01"
TAPS = {"ph": "cnp0", "sh": "cns0"}


def require():
    """Skip (capability reasons) where the topology cannot be built; a
    colo-proxy that is not built is a failure."""
    require_kvm()
    netns.require(("ip", "iptables", "ip6tables"), "network namespaces, taps, NFQUEUE")
    if not os.path.exists("/dev/net/tun"):
        tap.skip("no /dev/net/tun")
    if not os.access(PROXY, os.X_OK):
        raise AssertionError("colo-proxy not built at " + PROXY)


class Colo:
    """The namespaces, proxies, VMMs and the client of one test."""

    def __init__(self, prefix="cnet-"):
        self.net = netns.Netns("c", "ph", "sh", prefix=prefix)
        self.vm = {}
        self.ctl = {}
        self.proxy = {}
        self.client = None

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

    def start_pair(self, extra=None):
        """Both VMMs (the secondary waiting for the migration), with
        @extra[ns] added to each one's arguments; returns once the
        primary's guest is ready."""
        extra = extra or {}
        pri = self.start_vmm("ph", extra.get("ph", []))
        self.start_vmm("sh", extra.get("sh", []) + ["-incoming", "tcp:%s:4444" % SH_LINK])
        pri.wait_serial("colo-testguest ready", 60)
        return pri

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

    def start_client(self, script, *args):
        """Runs `python3 @script --client @args` in the client namespace;
        returns once it printed 'connected'. Its stderr goes to client.log
        (in diag())."""
        with open(os.path.join(self.net.tmp, "client.log"), "w") as err:
            self.client = subprocess.Popen(self.net.argv("c", sys.executable, os.path.abspath(script), "--client",
                                                         *map(str, args)),
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                           text=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
        # A thread reads the lines: select() on the pipe would miss lines
        # already in the reader's buffer when several came at once.
        self.lines = queue.Queue()
        threading.Thread(target=self._read_lines, args=(self.client.stdout,), daemon=True).start()
        self.expect_line("connected", 60)

    def send(self, line):
        self.client.stdin.write(line + "\n")
        self.client.stdin.flush()

    def _read_lines(self, out):
        for line in out:
            self.lines.put(line)
        self.lines.put("")

    def read_line(self, timeout, want="a line"):
        """The client's next line (stripped); a failure with the
        diagnostics if none comes within @timeout or the client ended."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("the client printed nothing for %d s (waiting for %s)\n%s" %
                                 (timeout, want, self.diag())) from None
        if not line:
            self.client.wait(10)
            raise AssertionError("the client ended (%s) waiting for %s\n%s" %
                                 (self.client.returncode, want, self.diag()))
        return line.strip()

    def expect_line(self, want, timeout):
        line = self.read_line(timeout, repr(want))
        if line != want:
            raise AssertionError("client: %r, not %r\n%s" % (line, want, self.diag()))

    def diag(self):
        out = {}
        for ns, vm in self.vm.items():
            if vm.proc and vm.proc.poll() is None:
                try:
                    out[ns] = vm.qmp.cmd("query-colo-status")
                except Exception as e:  # noqa: BLE001 - diagnostics only
                    out[ns] = str(e)
        text = json.dumps(out, indent=1) + "\n" + self.net.log_tails(15)
        for ns, vm in self.vm.items():
            try:
                with open(vm.log_path, errors="replace") as f:
                    text += "--- colo-vmm on %s\n%s" % (ns, "".join(f.readlines()[-15:]))
            except OSError:
                pass
        return text

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

    def checkpoints(self):
        return self.vm["ph"].qmp.cmd("query-colo-status")["checkpoints"]["count"]

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
        colo_vmm.lost_heartbeat(vm)
        ev = vm.qmp.wait_event("COLO_EXIT", 10)
        assert ev["data"] == {"mode": mode, "reason": "request"}, ev
        st = vm.qmp.cmd("query-colo-status")
        assert st["proxy"]["failed-over"] is True and self.ctl[ns].execute("query-status")["failed-over"], st

    def take_over_lan(self):
        """The secondary host answers for the primary's LAN address now."""
        self.net.up("sh", "sc", LAN_GW + "/24")
        self.net.exe("sh", "sysctl", "-qw", "net.ipv4.ip_forward=1")

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
