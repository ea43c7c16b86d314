#!/usr/bin/env python3
"""A primary colo-proxy told `hold` (docs/colo-proxy.md, "A primary whose
COLO broke"): colo-vmm says so when its COLO breaks, and from then on
nothing leaves, not even what the secondary's copy matches, until colod
fails it over alone (then everything kept goes out) or stops it.

  c (client) --- ph (primary host) --- pg (primary guest)
                  |  peer link
                 sh (secondary host) --- sg (secondary guest)

Needs root, ip and iptables (Debian: iproute2, iptables). Prints TAP."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_topo import PEER, converse_go as go, read_line, start_chat, start_pair, tap_main  # noqa: E402

ROUND = 64 * 1024


def run(tap, topo):
    topo.setup()
    _, _, pctl, sctl = start_pair(topo)
    start_chat(topo, "7020")
    client = topo.spawn("c", sys.executable, PEER, "converse", "10.77.0.2", "7020", str(ROUND), "2",
                        stdin=subprocess.PIPE)
    go(client)
    line = read_line(client, 30)
    tap.ok(line == "round 1 %d" % ROUND, "a first round through both proxies (%s)" % line)

    # Held: both guests answer the next round and the copies match, but
    # nothing gets out.
    pctl.execute("hold")
    go(client)
    answered = read_line(client, 2.0)
    st = pctl.execute("query-stats")
    tap.ok(answered is None and st["fenced"] is True and st["fence-deferred"] > 0,
           "held: nothing gets out, though the copies match (%d packets kept back)" % st["fence-deferred"],
           json.dumps(st, indent=1))
    # Nothing but failover ends it: a checkpoint commit does not.
    pctl.execute("checkpoint-begin")
    pctl.execute("checkpoint-commit")
    answered = read_line(client, 1.0)
    tap.ok(answered is None and pctl.execute("query-stats")["fenced"] is True,
           "a checkpoint commit lets nothing out while held")

    try:
        sctl.execute("hold")
        refused = None
    except RuntimeError as e:
        refused = str(e)
    tap.ok(refused is not None and "secondary" in refused, "a secondary refuses hold (%s)" % refused)

    # colod fails it over alone: what it kept goes out, the round arrives.
    pctl.execute("failover")
    line = read_line(client, 30)
    st = pctl.execute("query-stats")
    tap.ok(line == "round 2 %d" % ROUND and st["fenced"] is False and st["fence-released"] > 0,
           "failed over: what it kept back goes out, the round arrives (%s)" % line, json.dumps(st, indent=1))
    with open(os.path.join(topo.tmp, "primary.log"), errors="replace") as f:
        log = f.read()
    tap.ok("nothing leaves until colod fails this primary over" in log, "the primary logs the hold")
    client.stdin.close()
    client.wait(timeout=20)
    pctl.close()
    sctl.close()


if __name__ == "__main__":
    sys.exit(tap_main(run))
