"""Shared by the colo-proxy link tests (test-proxy-link-peer.py,
test-tls-proxy-link.py): the namespace topology of tests/netfilter
(netns_topo.py), a UDP server in each guest namespace that answers at
once (primary) or SECONDARY_DELAY s later (secondary), a client, and a
stranger that forges the secondary's OUTPUT frame on the primary's link
port. The primary holds the guest's answer until the secondary's
matching output arrives over the link, so the client's wait tells who
released it."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "netfilter"))
from netns_topo import PROXY, wait_ready  # noqa: E402

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
    # COLO begins: the primary holds and compares from its first
    # checkpoint-begin (before it, nothing is held).
    pctl.execute("checkpoint-begin")
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


def start_secondary(topo, ssock, *extra, log="secondary.log"):
    return topo.spawn("sh", PROXY, "-r", "secondary", "-i", "sgh", "-q", "7", "-C", "10.79.0.1:7700", "-c", ssock,
                      *extra, "-d", log=log)


def start_guests(topo):
    """The two guests' UDP servers."""
    for ns, delay in (("pg", 0), ("sg", SECONDARY_DELAY)):
        if not wait_ready(topo.spawn(ns, sys.executable, "-c", SERVER, str(delay))):
            raise RuntimeError("UDP server did not start in " + ns)
