#!/usr/bin/env python3
"""A secondary colo-proxy whose colo-vmm lost the primary (`primary-lost`,
docs/colo-proxy.md, "A primary whose colo-vmm died"): it tells the
primary's proxy, which releases nothing more on its copies, and keeps its
guest's datagrams, which its takeover then sends once.

  c (client) --- ph (primary host) --- pg (primary guest)
                  |  peer link
                 sh (secondary host) --- sg (secondary guest)

A UDP request after the mark: both guests answer, and yet the primary
lets nothing out (a release there and the replay would answer the client
twice; the secondary's copies after the mark are not even compared); the
secondary's answer goes at its takeover.
Before the mark, a request is answered through the primary as always.

A request only the secondary's guest answers before the mark (the
primary's guest drops it, as a dead one would): its answer waits at the
primary's proxy for a copy that never comes; once the mark and `vmm-lost`
are both in, that proxy sends it to the client itself, once, and the
takeover does not send it again.

Needs root, ip and iptables (Debian: iproute2, iptables). Prints TAP."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_topo import PEER, read_line, start_pair, tap_main, wait_for, wait_ready  # noqa: E402

PORT = "7032"
ORPHAN_PORT = "7033"
# One request, then every answer for @2 seconds, one per line, and "end".
LISTEN = """import socket, sys, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(sys.argv[1].encode(), ("10.77.0.2", %s))
print("sent", flush=True)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    u.settimeout(max(end - time.monotonic(), 0.01))
    try:
        print(u.recv(2048).decode(), flush=True)
    except socket.timeout:
        pass
print("end", flush=True)
""" % ORPHAN_PORT
# One request, its answer or "none" after 1.5 s.
ASK = """import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(1.5)
u.sendto(sys.argv[1].encode(), ("10.77.0.2", %s))
try:
    print(u.recv(2048).decode())
except socket.timeout:
    print("none")
""" % PORT


def kernel_held(topo):
    """What the primary's NFQUEUE (queue 7) holds in the kernel: a packet
    the engine matched but may not release stays there."""
    for line in topo.exe("ph", "cat", "/proc/net/netfilter/nfnetlink_queue").stdout.splitlines():
        f = line.split()
        if f and f[0] == "7":
            return int(f[2])
    return 0


def ask(topo, text):
    return topo.exe("c", sys.executable, "-c", ASK, text).stdout.strip()


def run(tap, topo):
    topo.setup()
    _, _, pctl, sctl = start_pair(topo)
    for g in ("pg", "sg"):
        for port in (PORT, ORPHAN_PORT):
            if not wait_ready(topo.spawn(g, sys.executable, PEER, "uecho", port)):
                raise RuntimeError("UDP echo server did not start")
    topo.exe("pg", "iptables", "-I", "INPUT", "-p", "udp", "--dport", ORPHAN_PORT, "-j", "DROP")
    got = ask(topo, "first")
    tap.ok(got == "first", "before the mark a request is answered through the primary (%s)" % got)
    kept0 = sctl.execute("query-stats")["replay-datagrams-kept"]
    tap.ok(kept0 == 0, "nothing kept before the mark")

    copies = pctl.execute("query-stats")["secondary-packets"]
    listener = topo.spawn("c", sys.executable, "-c", LISTEN, "orphan", "8")
    if read_line(listener) != "sent":
        raise RuntimeError("the orphan request was not sent")
    tap.ok(wait_for(lambda: pctl.execute("query-stats")["secondary-packets"] > copies, timeout=5),
           "the secondary's answer to a request the primary's guest drops reaches the primary's proxy")

    sctl.execute("primary-lost")
    tap.ok(wait_for(lambda: "the secondary lost this primary's checkpoints" in
                    open(os.path.join(topo.tmp, "primary.log"), errors="replace").read(), timeout=5),
           "the primary's proxy hears of it")
    got = ask(topo, "second")
    sst, pst = sctl.execute("query-stats"), pctl.execute("query-stats")
    held = kernel_held(topo)
    tap.ok(got == "none" and held > 0,
           "after the mark the primary lets its guest's answer out no more (%s, %d held in the kernel)" % (got, held), json.dumps(pst, indent=1))
    tap.ok(sst["replay-datagrams-kept"] == 1, "the secondary keeps its guest's answer for the takeover",
           json.dumps(sst, indent=1))
    tap.ok(pctl.execute("query-stats")["vmm-lost-datagrams-sent"] == 0, "nothing of it sent before vmm-lost")
    pctl.execute("vmm-lost")
    got = read_line(listener, 5)
    pst = pctl.execute("query-stats")
    tap.ok(got == "orphan" and pst["vmm-lost-datagrams-sent"] == 1 and pst["vmm-lost-datagrams-withheld"] == 0,
           "after the mark and vmm-lost the primary's proxy sends the secondary's unmatched answer (%s), "
           "one its own guest never sent" % got, json.dumps(pst, indent=1))
    try:
        pctl.execute("primary-lost")
        refused = None
    except RuntimeError as e:
        refused = str(e)
    tap.ok(refused is not None and "primary" in refused, "a primary refuses primary-lost (%s)" % refused)

    topo.take_over_lan()
    tap.ok(sctl.execute("failover").get("failed-over") is True, "the secondary takes over")
    sctl.execute("replay-output")
    sst = sctl.execute("query-stats")
    tap.ok(sst["replay-datagrams-sent"] == 1 and sst["replay-send-failed"] == 0,
           "its takeover sends the kept answer once", json.dumps(sst, indent=1))
    rest = []
    while rest[-1:] != ["end"]:
        line = read_line(listener, 10)
        if line is None:
            break
        rest.append(line)
    tap.ok(rest == ["end"], "the unmatched answer reached the client once (after it: %s)" % rest)
    pctl.close()
    sctl.close()


if __name__ == "__main__":
    sys.exit(tap_main(run, lan=True))
