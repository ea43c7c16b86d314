#!/usr/bin/env python3
"""The primary colo-proxy's input during the initial sync
(docs/colo-proxy.md, "Input during the initial sync"): before its first
checkpoint-begin it mirrors nothing, but it keeps what it reads while a
secondary is linked, and the sync's checkpoint-begin (`input-since-ns`:
when colo-vmm began to stop its guest) mirrors what it read since then.
That input reached the primary's guest after the stop, so the sync's copy
lacks it, and the secondary's guest must get it as the primary's will.

  c (client) --- ph (primary host) --- pg (primary guest)
                  |  peer link
                 sh (secondary host) --- sg (secondary guest)

Needs root, ip and iptables (Debian: iproute2, iptables). Prints TAP."""
import os
import select
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_topo import start_pair, tap_main, wait_for  # noqa: E402

PORT = 7041
# Every datagram that reaches this guest, one per line.
RECORD = """import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", %d))
print("ready", flush=True)
while True:
    print(u.recv(2048).decode(), flush=True)
""" % PORT
SEND = """import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for word in sys.argv[1:]:
    u.sendto(word.encode(), ("10.77.0.2", %d))
""" % PORT


def lines(proc, timeout):
    """What @proc printed until it stayed quiet for @timeout seconds, a
    line each (read from its pipe directly: a buffered reader may hold
    lines that select() no longer sees)."""
    fd, data = proc.stdout.fileno(), b""
    while select.select([fd], [], [], timeout)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data.decode().split()


def run(tap, topo):
    topo.setup()
    _, _, pctl, sctl = start_pair(topo, arm=False)
    rec = {}
    for g in ("pg", "sg"):
        rec[g] = topo.spawn(g, sys.executable, "-c", RECORD)
        if lines(rec[g], 1.0) != ["ready"]:
            raise RuntimeError("the recorder on %s did not start" % g)

    topo.exe("c", sys.executable, "-c", SEND, "before-1", "before-2")
    tap.ok(lines(rec["pg"], 1.0) == ["before-1", "before-2"] and lines(rec["sg"], 0.3) == [],
           "before COLO the primary's guest gets the input, the secondary's nothing")
    since = time.monotonic_ns()        # colo-vmm begins to stop its guest
    topo.exe("c", sys.executable, "-c", SEND, "after-1", "after-2")
    tap.ok(lines(rec["pg"], 1.0) == ["after-1", "after-2"], "input after the stop reaches the primary's tap")
    tap.ok(wait_for(lambda: pctl.execute("query-stats")["input-packets"] == 0, timeout=2) and
           lines(rec["sg"], 0.3) == [], "nothing mirrored or compared yet")

    for bad in ("soon", -1, 1.5):
        try:
            pctl.execute("checkpoint-begin", {"input-since-ns": bad})
            refused = None
        except RuntimeError as e:
            refused = str(e)
        tap.ok(refused is not None and "input-since-ns" in refused, "input-since-ns %r refused (%s)" % (bad, refused))
    tap.ok(pctl.execute("query-stats")["sync-input-mirrored"] == 0, "a refused one mirrors nothing")

    pctl.execute("checkpoint-begin", {"input-since-ns": since})
    got = lines(rec["sg"], 1.0)
    st = pctl.execute("query-stats")
    # The host's own frames for the guest (ARP, neighbour discovery) may
    # come along: the counts are at least the two datagrams.
    tap.ok(got == ["after-1", "after-2"] and st["sync-input-mirrored"] >= 2,
           "the sync's checkpoint-begin mirrors the input since the stop, in order, and only that (%s, %d)" %
           (got, st["sync-input-mirrored"]))
    tap.ok(st["input-packets"] >= 2, "the engine saw it as input (%d)" % st["input-packets"])
    mirrored = st["sync-input-mirrored"]

    # Armed: a later checkpoint-begin has nothing kept to mirror.
    pctl.execute("checkpoint-begin", {"input-since-ns": 0})
    tap.ok(lines(rec["sg"], 0.5) == [] and pctl.execute("query-stats")["sync-input-mirrored"] == mirrored,
           "a later checkpoint-begin mirrors nothing again")
    topo.exe("c", sys.executable, "-c", SEND, "armed")
    tap.ok(lines(rec["sg"], 1.0) == ["armed"] and lines(rec["pg"], 0.3) == ["armed"],
           "from then on input is mirrored as it comes")
    tap.ok(sctl.execute("query-stats")["mirror-stale"] == 0, "the secondary took every mirrored frame")


if __name__ == "__main__":
    tap_main(run)
