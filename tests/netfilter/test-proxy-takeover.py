#!/usr/bin/env python3
"""colo-proxy secondary takeover in network namespaces: a connection
established through both proxies keeps working, byte for byte, after the
primary host (its namespace, proxy and guest) is gone and the secondary
took over; and after re-protection (issue 14), when a primary colo-proxy
started with the taken-over secondary's flows (--carry-flows, as colod
does) replaces it: unprotected, comparing (held until each checkpoint
commit), and failed over alone; the new secondary holds those flows aside
and rewrites them on after a takeover of its own.

  c (client, on bridge br0) --- ph (primary host) --- pg (primary guest)
          |                      |  peer link
          +------- sc (down) --- sh (secondary host) --- sg (secondary guest)

The two guests are independent Linux stacks with their own initial
sequence numbers and timestamp clocks, so the secondary's connection has a
non-zero offset that the proxy must keep rewriting after takeover.

Needs root, ip and iptables (Debian: iproute2, iptables). Prints TAP."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_topo import PEER, PROXY, converse_go, forward_rules, no_checkpoint, read_line, sh, start_chat, start_pair, tap_main, wait_for, wait_ready  # noqa: E402,E501
from proxyctl import ProxyCtl  # noqa: E402

ROUND = 512 * 1024


def digest(size):
    return sh(sys.executable, PEER, "digest", str(size)).stdout.strip()


# Put first on the secondary proxy's PATH: each iptables tool it runs is
# recorded, with the IPv4 FORWARD chain as it stands right after the call,
# one file per call (the two families run at once).
WATCH = """#!/bin/sh
/usr/sbin/$(basename "$0") "$@"
rc=$?
f=$(mktemp "%(dir)s/call.XXXXXX")
{ echo "$(basename "$0") $*"; /usr/sbin/iptables -S FORWARD; } > "$f"
exit $rc
"""


def watch_tools(topo):
    """A directory of wrappers of the iptables tools (WATCH); returns it."""
    bindir, calls = os.path.join(topo.tmp, "watch-bin"), os.path.join(topo.tmp, "watch-calls")
    os.makedirs(bindir)
    os.makedirs(calls)
    for tool in ("iptables", "ip6tables", "iptables-restore", "ip6tables-restore"):
        path = os.path.join(bindir, tool)
        with open(path, "w") as f:
            f.write(WATCH % {"dir": calls})
        os.chmod(path, 0o755)
    return bindir, calls


def calls_since(calls):
    """The tool calls recorded in @calls (then removed): [(command, chain)]."""
    out = []
    for name in sorted(os.listdir(calls)):
        with open(os.path.join(calls, name)) as f:
            command, _, chain = f.read().partition("\n")
        os.unlink(os.path.join(calls, name))
        out.append((command, [line for line in chain.splitlines() if "colo-proxy" in line]))
    return out


def run(tap, topo):
    topo.setup()
    bindir, calls = watch_tools(topo)
    # COLO begins: the primary compares (and holds) from its first
    # checkpoint-begin; before it the guest is unprotected and passes.
    _, secondary, pctl, sctl = start_pair(
        topo, secondary_prefix=("env", "PATH=%s:%s" % (bindir, os.environ.get("PATH", "/usr/bin:/bin"))))
    start_chat(topo, "7010", "7011")

    # 1. One connection through both proxies, compared all the way.
    client = topo.spawn("c", sys.executable, PEER, "converse", "10.77.0.2", "7010", str(ROUND), "3",
                        stdin=subprocess.PIPE)
    client.stdin.write("go\n")
    client.stdin.flush()
    line = read_line(client, 30)
    # The connection that lives on to re-protection (its own server: chat
    # serves one connection at a time).
    carried = topo.spawn("c", sys.executable, PEER, "converse", "10.77.0.2", "7011", str(ROUND), "5",
                         stdin=subprocess.PIPE)
    carried_lines = [converse_round(carried)]
    no_checkpoint(topo, pctl)
    pst, sst = pctl.execute("query-stats"), sctl.execute("query-stats")
    diag = json.dumps({"primary": pst, "secondary": sst}, indent=1)
    tap.ok(line == "round 1 %d" % ROUND and carried_lines == ["round 1 %d" % ROUND],
           "first %d KiB arrive through both proxies on each connection (%s, %s)" % (ROUND >> 10, line, carried_lines))
    tap.ok(pst["released"] == pst["compared"] and not any(pst["mismatches"].values()),
           "before takeover every released packet was compared, zero mismatches", diag)
    tap.ok(sst["rewriter-flows"] >= 2 and sst["offsets-learned"] >= 2,
           "the secondary learned the connection's offset", diag)
    pctl.close()

    # 2. The primary host dies: proxy, guest and namespaces gone.
    topo.primary_host_dies()
    calls_since(calls)      # those of the start-up
    t0 = time.monotonic()
    reply = sctl.execute("failover")
    took = time.monotonic() - t0
    tap.ok(reply.get("failed-over") is True and sctl.execute("query-status")["failed-over"],
           "the secondary takes over (%.3f s)" % took, json.dumps(reply))
    # DROP gives way to NFQUEUE in one transaction per family: never a
    # moment with neither (the guest's packets of a flow with an offset
    # would leave unrewritten), and one process per family, not one per
    # rule (a slow host stays within colo-vmm's failover deadline).
    swap = calls_since(calls)
    tap.ok(sorted(c.split()[0] for c, _ in swap) == ["ip6tables-restore", "iptables-restore"] and
           all(len(chain) == 2 and all("NFQUEUE" in r for r in chain) for _, chain in swap),
           "takeover: one iptables-restore per family, DROP swapped for NFQUEUE at once",
           json.dumps(swap, indent=1))
    rules = forward_rules(topo, "sh")
    tap.ok(len(rules) == 2 and all("NFQUEUE" in r for r in rules) and not any("DROP" in r for r in rules),
           "takeover swapped DROP for NFQUEUE both ways", "\n".join(rules))
    topo.take_over_lan()
    carried_lines.append(converse_round(carried))
    tap.ok(sctl.execute("query-stats")["rewriter-flows"] >= 2, "the flows with an offset are kept")
    before = sctl.execute("query-stats")

    # 3. The same connection goes on, served by the secondary guest.
    lines = []
    try:
        for _ in range(2):
            client.stdin.write("go\n")
            client.stdin.flush()
            lines.append(read_line(client, 40))
        client.stdin.close()
        client.wait(timeout=20)
        # The digest line may already sit in the pipe's read buffer.
        out = client.stdout.read().strip()
    except (subprocess.TimeoutExpired, BrokenPipeError):
        out = "client failed: %s" % client.stderr.read() if client.poll() is not None else "timeout"
    after = sctl.execute("query-stats")
    diag = json.dumps({"before": before, "after": after, "client": lines + [out]}, indent=1)
    tap.ok(lines == ["round 2 %d" % ROUND, "round 3 %d" % ROUND],
           "after takeover the established connection keeps working", diag)
    tap.ok(out == digest(3 * ROUND), "the client's whole stream is byte-exact across the takeover", diag)
    tap.ok(after["rewritten-output"] > before["rewritten-output"] and
           after["rewritten-input"] > before["rewritten-input"] and after["nfq-packets"] > 0,
           "the proxy kept rewriting the flow through NFQUEUE (%d out, %d in)" %
           (after["rewritten-output"] - before["rewritten-output"],
            after["rewritten-input"] - before["rewritten-input"]), diag)
    tap.ok(after["nfq-verdict-errors"] == 0, "no verdict errors", diag)

    # 4. New connections reach the secondary guest too.
    fresh = topo.spawn("c", sys.executable, PEER, "converse", "10.77.0.2", "7010", str(ROUND), "1",
                       stdin=subprocess.PIPE)
    try:
        out = fresh.communicate("go\n", timeout=30)[0].split("\n")
    except subprocess.TimeoutExpired:
        out = ["timeout"]
    tap.ok(len(out) >= 2 and out[1].strip() == digest(ROUND), "a new connection after takeover", "\n".join(out))

    # 5. Re-protection, as colod does it: the taken-over secondary's flows
    # are read, it stops, and a primary colo-proxy carries them on.
    flows = sctl.execute("query-rewriter")
    mine = [f for f in flows["flows"] if f["sport"] == 7011 and f["src"] == "10.77.0.2"]
    tap.ok(len(mine) == 1 and (mine[0]["offset"] or mine[0].get("ts-offset")),
           "query-rewriter lists the long-lived connection with its offsets", json.dumps(flows, indent=1))
    sctl.close()
    os.killpg(secondary.pid, signal.SIGTERM)
    tap.ok(secondary.wait(timeout=10) == 0 and forward_rules(topo, "sh") == [],
           "the secondary stops cleanly and removes its rules")
    reprotect(tap, topo, flows, carried, carried_lines)


def converse_round(client, timeout=40):
    """One round of a converse client: the line it prints."""
    return read_line(client, timeout) if converse_go(client) else "client gone"


def reprotect(tap, topo, flows, carried, lines):
    """The survivor's new primary colo-proxy, started with @flows: the
    connection @carried (which did @lines so far) goes on through it."""
    n = len(flows["flows"])
    path, sock = os.path.join(topo.tmp, "carried.json"), os.path.join(topo.tmp, "p2.sock")
    with open(path, "w") as f:
        json.dump(flows, f)
    primary = topo.spawn("sh", PROXY, "-r", "primary", "-i", "sgh", "-q", "7", "-L", "127.0.0.1:7701", "-c", sock,
                         "--carry-flows", path, "-d", log="reprotected.log")
    ctl = ProxyCtl(sock)
    tap.ok(ctl.execute("query-rewriter") == flows, "the new primary proxy carries exactly those flows")
    rules = forward_rules(topo, "sh")
    tap.ok(len(rules) == 2 * n + 1 and all("--queue-num 32775" in r for r in rules[:-1]) and
           "--queue-num 7 " in rules[-1] + " " and "-s " not in rules[-1],
           "one rule per carried flow and direction to queue 7 + 32768, ahead of the main rule",
           "\n".join(rules))

    # Unprotected (no checkpoint yet): released at once, rewritten.
    lines.append(converse_round(carried))
    # Protected: a new secondary proxy links up (its "guest" a bare veth
    # end, no copy of this one: nothing matches), a colod stand-in
    # checkpoints every 20 ms, so the guest's output waits in the engine
    # for each commit and leaves rewritten. What the client sends is
    # captured as it arrives (client numbering), as the guest gets it and
    # as the new secondary gets it mirrored: those two must agree.
    topo.ip("sh", "link", "add", "sxh", "type", "veth", "peer", "name", "sxg")
    for dev in ("sxh", "sxg"):
        topo.ip("sh", "link", "set", dev, "up")
    sock2 = os.path.join(topo.tmp, "s2.sock")
    secondary = topo.spawn("sh", PROXY, "-r", "secondary", "-i", "sxh", "-q", "8", "-C", "127.0.0.1:7701",
                           "-c", sock2, "-d", log="new-secondary.log")
    if not wait_for(lambda: ctl.execute("query-status")["peer-link"]):
        raise RuntimeError("the new secondary proxy did not link up")
    caps = {where: topo.spawn(ns, sys.executable, PEER, "acks", dev, "7011", stdin=subprocess.PIPE)
            for where, ns, dev in (("client", "sh", "sc"), ("guest", "sg", "sg0"), ("mirror", "sh", "sxg"))}
    if not all(wait_ready(p) for p in caps.values()):
        raise RuntimeError("a capture did not start")
    st0 = ctl.execute("query-stats")
    ctl.execute("checkpoint-begin")
    line, deadline = None if converse_go(carried) else "client gone", time.monotonic() + 40
    while line is None and time.monotonic() < deadline:
        line = read_line(carried, 0.02)
        ctl.execute("checkpoint-begin")
        ctl.execute("checkpoint-commit")
    lines.append(line)
    st1 = ctl.execute("query-stats")
    acks = {}
    for p in caps.values():     # all three stop together
        p.stdin.close()
    for where, p in caps.items():
        acks[where] = set(int(a) for a in (read_line(p, 10) or "").split())
    diag = json.dumps({"before": st0, "after": st1, "lines": lines}, indent=1)
    tap.ok(lines[1:] == ["round %d %d" % (i, ROUND) for i in (2, 3, 4)],
           "after re-protection the carried connection keeps working, unprotected and compared", diag)
    tap.ok(st1["held"] > st0["held"] and st1["rewritten-output"] > st0["rewritten-output"] and
           st1["rewritten-input"] > st0["rewritten-input"] and st1["nfq-verdict-errors"] == 0,
           "its output was held, then released rewritten; its input rewritten (%d out, %d in)" %
           (st1["rewritten-output"], st1["rewritten-input"]), diag)
    offset = [f for f in flows["flows"] if f["sport"] == 7011][0]["offset"]
    diag = json.dumps({k: sorted(v)[:20] for k, v in acks.items()}, indent=1)
    # In client numbering the mirror's acks would all be the client's. Not
    # "none of them": the two guests' ISNs differ by a few thousand here
    # (one boot secret, namespaces), so a guest-numbered ack can equal
    # one the client saw (CI once failed so, offset -1890).
    # The captures stop a moment apart: the mirror's acks past the guest's
    # last (sequence order) came after the guest's capture ended.
    lo = min(acks["guest"], default=0)
    top = max(((a - lo) % 2**32 for a in acks["guest"]), default=0)
    mirror = {a for a in acks["mirror"] if (a - lo) % 2**32 <= top}
    tap.ok(mirror and mirror <= acks["guest"] and (offset == 0 or not mirror <= acks["client"]),
           "the new secondary gets the client's input mirrored in guest numbering (%d acks, offset %d)" %
           (len(acks["mirror"]), offset), diag)

    # The client knows the carried flows shifted, the new secondary's
    # guest numbers them raw: a takeover by it must go on shifting them,
    # so the primary sent them over the link (FRAME_CARRY).
    sctl2 = ProxyCtl(sock2)
    got = sctl2.execute("query-stats")
    tap.ok(got["carried-from-primary"] == n and got["carry-refused"] == 0 and
           sctl2.execute("query-rewriter") == {"flows": []},
           "the new secondary holds the primary's %d carried flows aside (rewriting none of them yet)" % n,
           json.dumps(got, indent=1))
    sctl2.execute("failover")
    tap.ok(sctl2.execute("query-rewriter") == flows,
           "its takeover rewrites them on (query-rewriter lists them for the next re-protection)",
           json.dumps(sctl2.execute("query-rewriter"), indent=1))
    sctl2.close()
    topo.kill(secondary)
    # The new secondary dies before it ever synchronised: primary alone.
    ctl.execute("failover")
    rules = forward_rules(topo, "sh")
    tap.ok(len(rules) == 2 * n and all("--queue-num 32775" in r for r in rules),
           "failover alone keeps only the carried flows' rules", "\n".join(rules))
    lines.append(converse_round(carried))
    try:
        carried.stdin.close()
        carried.wait(timeout=20)
        out = carried.stdout.read().strip()
    except subprocess.TimeoutExpired:
        out = "timeout"
    diag = json.dumps({"lines": lines, "out": out, "stats": ctl.execute("query-stats")}, indent=1)
    tap.ok(lines[4:] == ["round 5 %d" % ROUND] and out == digest(5 * ROUND),
           "the carried connection works after the failover alone, its whole stream byte-exact", diag)
    ctl.close()
    os.killpg(primary.pid, signal.SIGTERM)
    tap.ok(primary.wait(timeout=10) == 0 and forward_rules(topo, "sh") == [],
           "the new primary stops cleanly and removes the carried flows' rules")


if __name__ == "__main__":
    sys.exit(tap_main(run, lan=True))
