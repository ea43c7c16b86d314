#!/usr/bin/env python3
"""colo-proxy's replay at a takeover (docs/colo-proxy.md, "Replay at a
takeover"), in network namespaces: the primary holds its guest's answer
(the secondary's copy never reaches it), its host dies, and the secondary
that takes over sends its own guest's copy of that answer to the client,
so the client has the bytes although the secondary guest itself cannot
send anything (its interface is down at that moment): what the client
acknowledged before is not sent again, nothing is sent twice, and the
connection goes on byte for byte once the guest is back.

  c (client, on bridge br0) --- ph (primary host) --- pg (primary guest)
          |                      |  peer link
          +------- sc (down) --- sh (secondary host) --- sg (secondary guest)

Needs root, ip and iptables (Debian: iproute2, iptables). Prints TAP."""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_topo import PEER, converse_go, read_line, sh, start_chat, start_pair, tap_main, wait_for  # noqa: E402

ROUND = 64 * 1024
PORT = "7013"


def digest(size):
    return sh(sys.executable, PEER, "digest", str(size)).stdout.strip()


def client_received(topo):
    """Bytes the client's connection to the guest has received (ss -ti)."""
    out = topo.exe("c", "ss", "-tin", "dst", "10.77.0.2:%s" % PORT).stdout
    m = re.search(r"bytes_received:(\d+)", out)
    return int(m.group(1)) if m else 0


def run(tap, topo):
    topo.setup()
    _, _, pctl, sctl = start_pair(topo)
    start_chat(topo, PORT)
    client = topo.spawn("c", sys.executable, PEER, "converse", "10.77.0.2", PORT, str(ROUND), "3",
                        stdin=subprocess.PIPE)

    # 1. A round through both proxies.
    converse_go(client)
    line = read_line(client, 30)
    tap.ok(line == "round 1 %d" % ROUND, "the first round arrives through both proxies (%s)" % line)
    st = sctl.execute("query-stats")
    tap.ok(st["replay-kept"] > 0, "the secondary keeps its guest's output for a takeover (%d frames)" %
           st["replay-kept"], json.dumps(st, indent=1))
    got_before = client_received(topo)

    # 2. The secondary's copies stop reaching the primary, which holds its
    # own guest's answer to the next request (the link stays up: only what
    # the secondary sends is dropped, well within its 4 s user timeout).
    topo.exe("sh", "iptables", "-I", "OUTPUT", "-o", "sp", "-p", "tcp", "--dport", "7700", "-j", "DROP")
    converse_go(client)
    tap.ok(wait_for(lambda: sctl.execute("query-stats")["replay-held-bytes"] > 8192, timeout=5),
           "the secondary guest's answer is kept", json.dumps(sctl.execute("query-stats"), indent=1))
    # The primary's guest may answer after the secondary's (CI saw 0 held
    # when this was read once, at once).
    wait_for(lambda: pctl.execute("query-stats")["queue-depth"] > 0, timeout=5)
    held = pctl.execute("query-stats")["queue-depth"]
    tap.ok(held > 0 and client_received(topo) == got_before,
           "the primary holds its guest's answer: the client has nothing of it (%d packets held)" % held)
    pctl.close()

    # 3. The primary host dies; the secondary takes over with its guest cut
    # off, so whatever reaches the client now is the replay.
    topo.primary_host_dies()
    topo.exe("sh", "iptables", "-D", "OUTPUT", "-o", "sp", "-p", "tcp", "--dport", "7700", "-j", "DROP")
    topo.ip("sg", "link", "set", "sg0", "down")
    topo.take_over_lan()
    early = sctl.execute("replay-output")
    tap.ok(early == {"frames": 0, "packets": 0, "at-failover": True},
           "replay-output before the failover is kept for it", json.dumps(early))
    tap.ok(sctl.execute("failover").get("failed-over") is True, "the secondary takes over")
    st = sctl.execute("query-stats")
    diag = json.dumps(st, indent=1)
    tap.ok(st["replay-packets-sent"] > 0 and st["replay-send-failed"] == 0 and st["replay-held-frames"] == 0,
           "at its failover it sent what it kept (%d packets, %d segments the client had or sent twice skipped)" %
           (st["replay-packets-sent"], st["replay-skipped"]), diag)
    tap.ok(st["replay-skipped"] > 0, "what the client had acknowledged was not sent again", diag)
    tap.ok(wait_for(lambda: client_received(topo) > got_before, timeout=5),
           "the client got the held answer's bytes from the replay (%d bytes), the guest being cut off" %
           (client_received(topo) - got_before))
    again = sctl.execute("replay-output")
    tap.ok(again["frames"] == 0 and again["packets"] == 0 and not again["at-failover"],
           "a second replay-output sends nothing", json.dumps(again))

    # 4. The guest comes back: the connection goes on, byte-exact.
    topo.ip("sg", "link", "set", "sg0", "up")
    topo.ip("sg", "route", "replace", "default", "via", "10.77.0.1")
    lines = [read_line(client, 40)]
    converse_go(client)
    lines.append(read_line(client, 40))
    client.stdin.close()
    try:
        client.wait(timeout=20)
        out = client.stdout.read().strip()
    except subprocess.TimeoutExpired:
        out = "client did not end"
    tap.ok(lines == ["round 2 %d" % ROUND, "round 3 %d" % ROUND],
           "the connection goes on through the survivor (%s)" % lines,
           "client: %s" % (client.stderr.read() if client.poll() is not None else "still running"))
    tap.ok(out == digest(3 * ROUND), "the client's whole stream is byte-exact", out)
    tap.ok(sctl.execute("query-stats")["nfq-verdict-errors"] == 0, "no verdict errors")
    sctl.close()


if __name__ == "__main__":
    sys.exit(tap_main(run, lan=True))
