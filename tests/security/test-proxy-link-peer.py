#!/usr/bin/env python3
"""colo-proxy --peer: a stranger cannot release held packets through the
primary's link port (issue 11, "Security"; docs/colo-proxy.md).

The namespace topology of tests/netfilter (netns_topo.py): the client
namespace c (10.78.0.2) is the stranger, the secondary host sh (10.79.0.2)
the real peer. The primary guest answers a UDP datagram at once, the
secondary guest 4 s later, so the primary holds its answer until then.
Meanwhile the stranger connects to the primary's link port and sends an
OUTPUT frame carrying a copy of the answer.

1. Without --peer (as before the fix) the forged frame releases the held
   answer early: this shows the forgery is a good one.
2. With --peer 10.79.0.2 the stranger is refused (counted, logged once),
   the link to the real secondary stays up (no new connect, no PEER_LINK
   down), and the answer leaves only on the secondary's own output.

Needs root, ip and iptables. Prints TAP."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "netfilter"))
from netns_topo import PROXY, tap_main, wait_for, wait_ready  # noqa: E402
from proxyctl import ProxyCtl  # noqa: E402

SECONDARY_DELAY = 4.0
FORGE_AT = 0.5

SERVER = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 7100))
print("ready", flush=True)
while True:
    data, addr = s.recvfrom(2048)
    time.sleep(float(sys.argv[1]))
    s.sendto(data, addr)
"""

CLIENT = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 7200))
s.settimeout(20)
t0 = time.monotonic()
s.sendto(sys.argv[1].encode(), ("10.77.0.2", 7100))
print("sent", flush=True)
data, _ = s.recvfrom(2048)
print("%.3f %s" % (time.monotonic() - t0, data.decode()), flush=True)
"""

# The stranger: one OUTPUT frame (docs/colo-proxy.md, "Inter-host frames")
# with the primary guest's answer, as the secondary would have sent it.
STRANGER = """
import socket, struct, sys
payload, epoch = sys.argv[1].encode(), int(sys.argv[2])
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
udp = struct.pack("!HHHH", 7100, 7200, 8 + len(payload), 0) + payload
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                 socket.inet_aton("10.77.0.2"), socket.inet_aton("10.78.0.2"))
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
eth = bytes.fromhex("525400770001525400770002") + b"\\x08\\x00"
frame = bytes(10) + eth + ip + udp
s = socket.create_connection(("10.79.0.1", 7700), 5)
s.sendall(b"CP" + bytes([1, 3]) + struct.pack("!II", epoch, len(frame)) + frame)
s.settimeout(3)
try:
    s.recv(100)
except OSError:
    pass
"""


def exchange(topo, pctl, word):
    """The client sends @word; the stranger forges the answer FORGE_AT s
    later. Returns the seconds until the client got its answer."""
    client = topo.spawn("c", sys.executable, "-c", CLIENT, word)
    assert client.stdout.readline().strip() == "sent"
    time.sleep(FORGE_AT)
    epoch = pctl.execute("query-status")["epoch"]
    topo.exe("c", sys.executable, "-c", STRANGER, word, str(epoch), check=False)
    out, _ = client.communicate(timeout=30)
    took, got = out.split()
    assert got == word, out
    return float(took)


def start_primary(topo, psock, *extra, log="primary.log"):
    return topo.spawn("ph", PROXY, "-r", "primary", "-i", "pgh", "-q", "7", "-L", "10.79.0.1:7700", "-c", psock,
                      "-t", "30000", "--no-checkpoint-on-mismatch", *extra, "-d", log=log)


def start_secondary(topo, ssock, log="secondary.log"):
    return topo.spawn("sh", PROXY, "-r", "secondary", "-i", "sgh", "-q", "7", "-C", "10.79.0.1:7700", "-c", ssock,
                      "-d", log=log)


def run(tap, topo):
    topo.setup()
    psock, ssock = os.path.join(topo.tmp, "p.sock"), os.path.join(topo.tmp, "s.sock")
    for ns, delay in (("pg", 0), ("sg", SECONDARY_DELAY)):
        if not wait_ready(topo.spawn(ns, sys.executable, "-c", SERVER, str(delay))):
            raise RuntimeError("UDP server did not start in " + ns)

    # 1. No --peer: the forgery works.
    primary, secondary = start_primary(topo, psock), start_secondary(topo, ssock)
    pctl = ProxyCtl(psock)
    tap.ok(wait_for(lambda: pctl.execute("query-status")["peer-link"]) is not None, "the proxies link up")
    took = exchange(topo, pctl, "forged-early")
    tap.ok(took < SECONDARY_DELAY - 1, "without --peer the stranger's frame releases the held answer (%.2f s)" % took)
    # A fresh pair (the two proxies' epochs start together again), once the
    # secondary guest's late answer to the first word is out of the way.
    time.sleep(SECONDARY_DELAY)
    topo.kill(primary)
    topo.kill(secondary)
    pctl.sock.close()

    # 2. --peer: refused, the real link untouched, the answer waits for the secondary.
    start_primary(topo, psock, "--peer", "10.79.0.2", log="primary-peer.log")
    start_secondary(topo, ssock, log="secondary-2.log")
    pctl = ProxyCtl(psock)
    tap.ok(wait_for(lambda: pctl.execute("query-status")["peer-link"], timeout=10) is not None,
           "the secondary reconnects to a primary with --peer")
    before = pctl.execute("query-stats")
    pctl.events.clear()
    took = exchange(topo, pctl, "held-for-real")
    after = pctl.execute("query-stats")
    tap.ok(took >= SECONDARY_DELAY - 0.5,
           "with --peer the answer left only on the secondary's output (%.2f s, secondary answers after %.1f s)"
           % (took, SECONDARY_DELAY))
    tap.ok(after["link-refused"] == before["link-refused"] + 1, "the stranger's connection was refused and counted",
           "before %d after %d" % (before["link-refused"], after["link-refused"]))
    downs = [e for e in pctl.events if e.get("event") == "PEER_LINK" and not e["data"]["up"]]
    tap.ok(pctl.execute("query-status")["peer-link"] and not downs,
           "the link to the real secondary stayed up", repr(list(pctl.events)))
    with open(os.path.join(topo.tmp, "primary-peer.log")) as f:
        log = f.read()
    tap.ok(log.count("refused a connection from 10.78.0.2") == 1, "the refusal is logged once",
           log[-2000:])


sys.exit(tap_main(run))
