#!/usr/bin/env python3
"""COLO with the network: two colo-vmm with the test guest's virtio-net, a
colo-proxy beside each, driven by the VMMs (-colo-proxy), and a client
(the topology of tests/lib/colo_net.py). A TCP echo connection and a TCP
byte stream, opened before protection, carry on byte-exact through
periodic checkpoints, through checkpoints the primary's proxy asked for
(counted under their reason), and through the failover of either side
(the other side's VMM and proxy killed with SIGKILL,
x-colo-lost-heartbeat on the survivor)."""
import sys
import time

import colo_net
from colo_net import GUEST_IP, reasons
from colo_vmm import wait_until
import tap

import guestnet  # noqa: E402  (tests/guest, on the path through colo_net)

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


class Colo(colo_net.Colo):
    """The shared topology, with the rounds of this test's client."""

    def __init__(self):
        super().__init__()
        self.rounds = 0

    def round(self, timeout=60):
        """One round on both connections, checked by the client."""
        self.send("go")
        self.expect_line("round %d" % self.rounds, timeout)
        self.rounds += 1


def protected_pair():
    """Both VMMs, the client's two connections opened and used before
    protection, then COLO with both proxies; a round after each few
    periodic checkpoints."""
    colo_net.require()
    t = Colo()
    try:
        t.setup()
        pri = t.start_pair()
        t.start_client(__file__)
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
        t.take_over_lan()
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
