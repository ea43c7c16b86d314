#!/usr/bin/env python3
"""A primary colo-proxy whose colo-vmm died (docs/colo-proxy.md, "A primary
whose colo-vmm died"), and the input mirrored during a checkpoint:

- Input that reaches the primary after a checkpoint's copy is mirrored
  in the next epoch: the secondary, which may commit that checkpoint
  before the primary does (the state and the mirror come over different
  connections), still delivers it instead of dropping it as stale.
- Told `vmm-lost`, the primary commits a checkpoint the secondary said it
  committed (FRAME_EPOCH): what the checkpoint covers goes out.
- A secondary that took over and serves says so (FRAME_SERVING): the
  primary emits PEER_SERVING; and it still delivers what the old primary
  mirrors afterwards.

  c (client) --- ph (primary host) --- pg (primary guest)
                  |  peer link
                 sh (secondary host) --- sg (secondary guest)

Needs root, ip and iptables (Debian: iproute2, iptables). Prints TAP."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_topo import PEER, converse_go as go, read_line, start_chat, start_pair, tap_main, wait_for  # noqa: E402

ROUND = 64 * 1024


def run(tap, topo):
    topo.setup()
    _, _, pctl, sctl = start_pair(topo)   # the primary is inside a checkpoint (begun, not committed)
    start_chat(topo, "7030")
    client = topo.spawn("c", sys.executable, PEER, "converse", "10.77.0.2", "7030", str(ROUND), "3",
                        stdin=subprocess.PIPE)
    go(client)
    line = read_line(client, 30)
    tap.ok(line == "round 1 %d" % ROUND, "a first round through both proxies (%s)" % line)

    # The secondary loads and commits the checkpoint, the primary has not
    # committed it yet (its colo-vmm died meanwhile, or the LOADED message
    # is on its way): the client's next request is not in that checkpoint.
    before = sctl.execute("query-stats")
    epoch = sctl.execute("checkpoint-commit")["epoch"]
    go(client)
    answered = read_line(client, 2.0)
    sst, pst = sctl.execute("query-stats"), pctl.execute("query-stats")
    # Its guest answered (the replay keeps the answer's segments): it got
    # the request.
    tap.ok(sst["mirror-stale"] == before["mirror-stale"] and sst["replay-kept"] > before["replay-kept"],
           "the request mirrored after the checkpoint's copy reaches the secondary's guest although the "
           "secondary committed first (mirror-stale %d -> %d)" % (before["mirror-stale"], sst["mirror-stale"]),
           json.dumps(sst, indent=1))
    tap.ok(answered is None and pst["queue-depth"] > 0,
           "the primary holds its guest's answer: the secondary's is of the next epoch (%d packets held)" %
           pst["queue-depth"], json.dumps(pst, indent=1))

    # colod: the primary's colo-vmm died. The secondary committed the
    # checkpoint, so what it covers goes out.
    reply = pctl.execute("vmm-lost")
    line = read_line(client, 30)
    pst = pctl.execute("query-stats")
    tap.ok(reply["released"] > 0 and pst["vmm-lost-released"] == reply["released"] and
           pctl.execute("query-status")["vmm-lost"] is True,
           "vmm-lost: the checkpoint the secondary committed (epoch %d) is committed here too, %d packets "
           "released" % (epoch, reply["released"]), json.dumps([reply, pst], indent=1))
    tap.ok(line == "round 2 %d" % ROUND, "the round arrives (%s)" % line)
    tap.ok(pctl.execute("vmm-lost")["released"] == 0, "vmm-lost a second time releases nothing more")
    try:
        sctl.execute("vmm-lost")
        refused = None
    except RuntimeError as e:
        refused = str(e)
    tap.ok(refused is not None and "secondary" in refused, "a secondary refuses vmm-lost (%s)" % refused)

    # The secondary takes over; once the clients reach it colod asks for
    # the replay, and it tells the old primary it serves.
    tap.ok(sctl.execute("failover").get("failed-over") is True, "the secondary takes over")
    sctl.execute("replay-output")
    ev = pctl.wait_event("PEER_SERVING", timeout=10)
    tap.ok(ev is not None and pctl.execute("vmm-lost")["peer-serving"] is True,
           "the old primary hears that the secondary serves (PEER_SERVING)", json.dumps(ev))

    # What a client still sends the old primary is mirrored, and the
    # secondary, having taken over, delivers it to its guest.
    go(client)
    tap.ok(wait_for(lambda: sctl.execute("query-stats")["mirror-after-takeover"] > 0, timeout=10),
           "input the old primary mirrors after the takeover reaches the new primary's guest",
           json.dumps(sctl.execute("query-stats"), indent=1))
    with open(os.path.join(topo.tmp, "primary.log"), errors="replace") as f:
        log = f.read()
    tap.ok("this primary's colo-vmm died" in log and "the secondary took over and serves the clients" in log,
           "the primary logs both")
    client.kill()
    client.wait(timeout=20)
    pctl.close()
    sctl.close()


if __name__ == "__main__":
    sys.exit(tap_main(run))
