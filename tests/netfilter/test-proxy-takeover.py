#!/usr/bin/env python3
"""colo-proxy secondary takeover in network namespaces: a connection
established through both proxies keeps working, byte for byte, after the
primary host (its namespace, proxy and guest) is gone and the secondary
took over.

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
from netns_topo import PEER, PROXY, forward_rules, no_checkpoint, read_line, sh, tap_main, wait_for, wait_ready  # noqa: E402,E501
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
    psock, ssock = os.path.join(topo.tmp, "p.sock"), os.path.join(topo.tmp, "s.sock")
    bindir, calls = watch_tools(topo)
    topo.spawn("ph", PROXY, "-r", "primary", "-i", "pgh", "-q", "7", "-L", "10.79.0.1:7700",
               "-c", psock, "-d", log="primary.log")
    secondary = topo.spawn("sh", "env", "PATH=%s:%s" % (bindir, os.environ.get("PATH", "/usr/bin:/bin")),
                           PROXY, "-r", "secondary", "-i", "sgh", "-q", "7", "-C", "10.79.0.1:7700",
                           "-c", ssock, "-d", log="secondary.log")
    pctl, sctl = ProxyCtl(psock), ProxyCtl(ssock)
    if not wait_for(lambda: pctl.execute("query-status")["peer-link"]):
        raise RuntimeError("the proxies did not link up")
    # COLO begins: a primary proxy compares (and holds) from its first
    # checkpoint-begin; before it the guest is unprotected and passes.
    pctl.execute("checkpoint-begin")
    for g in ("pg", "sg"):
        if not wait_ready(topo.spawn(g, sys.executable, PEER, "chat", "7010")):
            raise RuntimeError("chat server did not start")

    # 1. One connection through both proxies, compared all the way.
    client = topo.spawn("c", sys.executable, PEER, "converse", "10.77.0.2", "7010", str(ROUND), "3",
                        stdin=subprocess.PIPE)
    client.stdin.write("go\n")
    client.stdin.flush()
    line = read_line(client, 30)
    no_checkpoint(topo, pctl)
    pst, sst = pctl.execute("query-stats"), sctl.execute("query-stats")
    diag = json.dumps({"primary": pst, "secondary": sst}, indent=1)
    tap.ok(line == "round 1 %d" % ROUND, "first %d KiB arrive through both proxies (%s)" % (ROUND >> 10, line))
    tap.ok(pst["released"] == pst["compared"] and not any(pst["mismatches"].values()),
           "before takeover every released packet was compared, zero mismatches", diag)
    tap.ok(sst["rewriter-flows"] >= 1 and sst["offsets-learned"] >= 1,
           "the secondary learned the connection's offset", diag)
    pctl.close()

    # 2. The primary host dies: proxy, guest and namespaces gone.
    topo.remove("pg")
    topo.remove("ph")
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
    tap.ok(sctl.execute("query-stats")["rewriter-flows"] >= 1, "the flow with an offset is kept")
    topo.take_over_lan()
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

    sctl.close()
    os.killpg(secondary.pid, signal.SIGTERM)
    tap.ok(secondary.wait(timeout=10) == 0 and forward_rules(topo, "sh") == [],
           "the secondary stops cleanly and removes its rules")


if __name__ == "__main__":
    sys.exit(tap_main(run, lan=True))
