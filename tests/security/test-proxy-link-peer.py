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
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from link_forge import SECONDARY_DELAY, exchange, start_guests, start_primary, start_secondary  # noqa: E402
from netns_topo import tap_main, wait_for  # noqa: E402
from proxyctl import ProxyCtl  # noqa: E402


def run(tap, topo):
    topo.setup()
    psock, ssock = os.path.join(topo.tmp, "p.sock"), os.path.join(topo.tmp, "s.sock")
    start_guests(topo)

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
