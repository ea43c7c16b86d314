#!/usr/bin/env python3
"""A frozen primary colo-proxy (docs/colo-proxy.md, "A frozen primary"):
one that was not scheduled for longer than --fence-after-ms holds every
release until the secondary answers a ping on the link, since the
secondary may have taken over meanwhile. Frozen (SIGSTOP) while its
secondary stays a secondary: the answer comes at once and a connection
goes on byte-exact. Frozen while the secondary takes over: it answers
that it took over, and nothing the old primary compared gets out after
its thaw, until colod fails it over alone (then it does).

  c (client) --- ph (primary host) --- pg (primary guest)
                  |  peer link
                 sh (secondary host) --- sg (secondary guest)

An older secondary, which answers no ping, causes no fence.

Needs root, ip and iptables (Debian: iproute2, iptables). Prints TAP."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_topo import PEER, PROXY, converse_go as go, read_line, start_chat, start_pair, tap_main, wait_for  # noqa: E402
from proxyctl import ProxyCtl  # noqa: E402

ROUND = 256 * 1024
FENCE_MS = 400
FROZEN_S = 1.5


def freeze(proc, seconds):
    os.killpg(proc.pid, signal.SIGSTOP)
    time.sleep(seconds)


def thaw(proc):
    os.killpg(proc.pid, signal.SIGCONT)


def run(tap, topo):
    topo.setup()
    primary, _, pctl, sctl = start_pair(topo, primary_args=("--fence-after-ms", str(FENCE_MS)))
    start_chat(topo, "7010")
    client = topo.spawn("c", sys.executable, PEER, "converse", "10.77.0.2", "7010", str(ROUND), "3",
                        stdin=subprocess.PIPE)
    go(client)
    line = read_line(client, 30)
    st = pctl.execute("query-stats")
    tap.ok(line == "round 1 %d" % ROUND and st["fences"] == 0 and st["fenced"] is False,
           "a first round through both proxies, no fence (%s)" % line, json.dumps(st, indent=1))

    # 1. Frozen while its secondary stays one: fenced on waking, the
    # secondary answers at once, the connection goes on.
    freeze(primary, FROZEN_S)
    thaw(primary)
    wait_for(lambda: pctl.execute("query-stats")["fences"] >= 1 and not pctl.execute("query-stats")["fenced"],
             timeout=10)
    st = pctl.execute("query-stats")
    tap.ok(st["fences"] == 1 and st["fenced"] is False,
           "frozen %.1f s: fenced on waking, lifted once the secondary answered" % FROZEN_S,
           json.dumps(st, indent=1))
    go(client)
    line = read_line(client, 30)
    tap.ok(line == "round 2 %d" % ROUND, "the connection goes on after the fence (%s)" % line)
    with open(os.path.join(topo.tmp, "primary.log"), errors="replace") as f:
        log = f.read()
    tap.ok("not scheduled for" in log and "fence lifted (the secondary answered on the link)" in log,
           "the primary logs the freeze and the answer")

    # 2. Frozen while the secondary takes over: no answer on waking, and
    # what the guest sends the client stays held, even what a checkpoint
    # commit lets go (its colo-vmm may have finished one from before).
    os.killpg(primary.pid, signal.SIGSTOP)
    reply = sctl.execute("failover")
    time.sleep(FROZEN_S)
    thaw(primary)
    wait_for(lambda: pctl.execute("query-stats")["fences"] >= 2, timeout=10)
    before = pctl.execute("query-stats")
    go(client)                  # the primary guest answers; nothing may get out
    answered = read_line(client, 1.5)
    pctl.execute("checkpoint-begin")
    pctl.execute("checkpoint-commit")
    answered = answered or read_line(client, 1.5)
    after = pctl.execute("query-stats")
    sst = sctl.execute("query-stats")
    diag = json.dumps({"failover": reply, "before": before, "after": after, "secondary": sst}, indent=1)
    tap.ok(after["fenced"] is True and sst["pings-refused"] >= 1,
           "frozen while the secondary took over: still fenced, the secondary refused its ping", diag)
    tap.ok(answered is None and after["fence-deferred"] > 0,
           "nothing the old primary let go after waking got out (%d packets kept back, a commit's too)" %
           after["fence-deferred"], diag)

    # 3. colod fails it over alone (as after its peer's loss): the fence
    # goes, what it held goes out, the connection completes.
    pctl.execute("failover")
    line = answered or read_line(client, 30)
    st = pctl.execute("query-stats")
    tap.ok(st["fenced"] is False and st["fence-released"] >= after["fence-deferred"] and
           line == "round 3 %d" % ROUND,
           "failed over alone: fence lifted, what it kept back goes out, the round arrives (%s)" % line,
           json.dumps(st, indent=1))
    client.stdin.close()
    client.wait(timeout=20)
    pctl.close()
    sctl.close()

    # 4. An older secondary colo-proxy answers no ping (a stand-in that
    # links up, says hello and nothing more): no fence against it, else a
    # freeze would hold the output for good.
    p2sock = os.path.join(topo.tmp, "p2.sock")
    primary2 = topo.spawn("ph", PROXY, "-r", "primary", "-i", "pgh", "-q", "8", "-L", "10.79.0.1:7702",
                          "--no-rules", "-c", p2sock, "--fence-after-ms", str(FENCE_MS), "-d", log="primary2.log")
    topo.spawn("sh", sys.executable, "-c", OLD_SECONDARY, log="old-secondary.log")
    p2ctl = ProxyCtl(p2sock)
    linked = wait_for(lambda: p2ctl.execute("query-status")["peer-link"])
    p2ctl.execute("checkpoint-begin")
    time.sleep(0.3)
    freeze(primary2, FROZEN_S)
    thaw(primary2)
    time.sleep(1.0)
    st = p2ctl.execute("query-stats")
    tap.ok(linked and st["fences"] == 0 and st["fenced"] is False,
           "an older secondary (answers no ping): no fence after a freeze", json.dumps(st, indent=1))
    p2ctl.close()


# A secondary colo-proxy of before the fence: it connects, says hello
# (frame.h's header, type 1, role byte 0) and never answers anything.
OLD_SECONDARY = '''
import socket, struct, time
s = socket.create_connection(("10.79.0.1", 7702))
s.sendall(struct.pack(">HBBII", 0x4350, 1, 1, 0, 1) + b"\\0")
while s.recv(65536):
    pass
'''


if __name__ == "__main__":
    sys.exit(tap_main(run))
