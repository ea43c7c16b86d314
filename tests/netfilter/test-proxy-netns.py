#!/usr/bin/env python3
"""colo-proxy in network namespaces: two 'guest' namespaces run identical
deterministic servers with the same IP and MAC, each behind a 'host'
namespace running colo-proxy (primary and secondary), plus a client.

  c (client) --- ph (primary host: colo-proxy, NFQUEUE) --- pg (primary guest)
                  |  peer link
                 sh (secondary host: colo-proxy)        --- sg (secondary guest)

Needs root, ip and iptables (Debian: iproute2, iptables). Prints TAP."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_topo import PEER, PROXY, forward_rules, no_checkpoint, sh, tap_main, wait_for, wait_ready, watched  # noqa: E402,E501
from proxyctl import ProxyCtl  # noqa: E402

STREAM = 4 * 1024 * 1024
# 40 MB of frames from the secondary guest, more than any capture buffer.
FLOOD = """
import socket
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("sg0", 0))
frame = b"\\xff" * 6 + bytes.fromhex("525400770002") + b"\\x88\\xb5" + bytes(1486)
for _ in range(27000):
    s.send(frame)
"""


def run(tap, topo):
    topo.setup()
    psock, ssock = os.path.join(topo.tmp, "p.sock"), os.path.join(topo.tmp, "s.sock")
    proxies = {
        "p": topo.spawn("ph", PROXY, "-r", "primary", "-i", "pgh", "-q", "7", "-L", "10.79.0.1:7700",
                        "-c", psock, "-d", log="primary.log"),
        "s": topo.spawn("sh", PROXY, "-r", "secondary", "-i", "sgh", "-q", "7", "-C", "10.79.0.1:7700",
                        "-c", ssock, "-d", log="secondary.log"),
    }
    pctl, sctl = ProxyCtl(psock), ProxyCtl(ssock)
    tap.ok(wait_for(lambda: pctl.execute("query-status")["peer-link"]) is not None, "the proxies link up")
    # COLO begins: a primary proxy compares (and holds) from its first
    # checkpoint-begin; before it the guest is unprotected and passes.
    pctl.execute("checkpoint-begin")
    rules = forward_rules(topo, "ph")
    tap.ok(len(rules) == 1 and "NFQUEUE" in rules[0] and "--queue-bypass" in rules[0],
           "primary installed its NFQUEUE rule, with --queue-bypass", "\n".join(rules))
    rules = forward_rules(topo, "sh")
    tap.ok(len(rules) == 1 and "DROP" in rules[0], "secondary keeps its guest off the wire", "\n".join(rules))

    servers = [topo.spawn("pg", sys.executable, PEER, "serve", "7000"),
               topo.spawn("sg", sys.executable, PEER, "serve", "7000")]
    for s in servers:
        if not wait_ready(s):
            raise RuntimeError("server did not start")
    expect = sh(sys.executable, PEER, "digest", str(STREAM)).stdout.strip()

    # 1. A client stream of several MiB, compared all the way.
    t0 = time.monotonic()
    got = watched(topo, pctl, "c", sys.executable, PEER, "fetch", "10.77.0.2", "7000", str(STREAM), timeout=45)
    elapsed = time.monotonic() - t0
    tap.ok(got.stdout.strip() == expect, "client stream of %d MiB arrives intact (%.1f s)" % (STREAM >> 20, elapsed),
           got.stdout + got.stderr)
    pst, sst = pctl.execute("query-stats"), sctl.execute("query-stats")
    diag = json.dumps({"primary": pst, "secondary": sst}, indent=1)
    tap.ok(pst["checkpoint-requests"] == 0 and not any(pst["mismatches"].values()),
           "identical servers: zero mismatches, zero checkpoint requests", diag)
    tap.ok(sst["offsets-learned"] >= 1 and sst["rewritten-output"] > 0 and sst["rewritten-input"] > 0,
           "the secondary learned a sequence offset from a real Linux handshake", diag)
    tap.ok(pst["released"] == pst["compared"] and pst["passthrough"] == 0 and pst["compared"] > 10,
           "every released packet was compared (%d)" % pst["compared"], diag)
    lat, mlat = pst["verdict-latency-us"], pst["matched-verdict-latency-us"]
    tap.ok(lat["count"] == sum(c for _, c in lat["buckets"]) and 0 < lat["count"] <= pst["released"] and
           0 <= mlat["count"] <= lat["count"],
           "verdict latency counted for released packets (%d, %d matched on arrival, max %d us)" %
           (lat["count"], mlat["count"], lat["max"]), diag)

    # 2. A connection the guests open: the rewriter learns from the server's SYN-ACK.
    sink = topo.spawn("c", sys.executable, PEER, "sink", "7001")
    if not wait_ready(sink):
        raise RuntimeError("sink did not start")
    pushers = [topo.spawn(g, sys.executable, PEER, "push", "10.78.0.2", "7001", str(1 << 20)) for g in ("pg", "sg")]
    try:
        out, _ = sink.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        out = "timeout"
    expect1m = sh(sys.executable, PEER, "digest", str(1 << 20)).stdout.strip()
    no_checkpoint(topo, pctl)
    pst, sst = pctl.execute("query-stats"), sctl.execute("query-stats")
    diag = json.dumps({"primary": pst, "secondary": sst}, indent=1)
    tap.ok(out.strip() == expect1m, "a guest-opened connection carries 1 MiB intact", out)
    tap.ok(sst["offsets-learned"] >= 2 and pst["checkpoint-requests"] == 0 and not any(pst["mismatches"].values()),
           "guest-opened connection: offset learned, zero mismatches", diag)
    for p in pushers:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    tap.ok(pst["released"] == pst["compared"], "still nothing released uncompared", diag)

    # 3. A secondary that answers differently: a checkpoint request, and the
    # client gets the primary's bytes only once the coordinator commits.
    # A timeout long enough that the mismatch, not a slow secondary on a
    # loaded machine, is what asks first.
    pctl.execute("set-parameters", {"compare_timeout": 2000, "expired_scan_cycle": 100})
    servers.append(topo.spawn("pg", sys.executable, PEER, "serve", "7002"))
    servers.append(topo.spawn("sg", sys.executable, PEER, "serve", "7002", "1"))
    for s in servers[2:]:
        if not wait_ready(s):
            raise RuntimeError("server did not start")
    size = 256 * 1024
    pctl.events.clear()
    client = topo.spawn("c", sys.executable, PEER, "fetch", "10.77.0.2", "7002", str(size))
    ev = pctl.wait_event("CHECKPOINT_REQUEST", timeout=10)
    mism = pctl.execute("query-stats")["mismatches"]
    tap.ok(ev is not None and mism["payload"] >= 1,
           "a server that answers differently causes a checkpoint request (%s)" % (ev or {}).get("data"),
           json.dumps(mism))
    held = pctl.execute("query-stats")["queue-depth"]
    tap.ok(held > 0 and client.poll() is None, "the differing output is held (%d packets)" % held)
    commits = 0
    deadline = time.monotonic() + 30
    while client.poll() is None and time.monotonic() < deadline:
        if pctl.wait_event("CHECKPOINT_REQUEST", timeout=0.2) or commits == 0:
            # The guests cannot really be synchronised: the secondary
            # advances its epoch but keeps its offsets.
            pctl.execute("checkpoint-begin")
            sctl.execute("checkpoint-commit", {"keep-offsets": True})
            pctl.execute("checkpoint-commit")
            commits += 1
    out = client.communicate(timeout=5)[0] if client.poll() is not None else "timeout"
    expect256 = sh(sys.executable, PEER, "digest", str(size)).stdout.strip()
    tap.ok(out.strip() == expect256, "after %d checkpoint(s) the client has the primary's bytes" % commits, out)
    st, sst = pctl.execute("query-status"), sctl.execute("query-status")
    tap.ok(st["epoch"] == commits and sst["epoch"] == commits,
           "each commit advanced both epochs (%d, %d)" % (st["epoch"], sst["epoch"]))
    pst = pctl.execute("query-stats")
    tap.ok(pst["secondary-stale"] == 0, "no stale secondary frames with both sides committing",
           json.dumps(pst))

    # 4. Frames the kernel dropped on a capture socket are counted: with the
    # secondary proxy stopped, its guest floods more than the socket's
    # buffer holds (raw frames of an unused EtherType, no stack answers).
    before = sctl.execute("query-stats")["capture-drops"]
    os.killpg(proxies["s"].pid, signal.SIGSTOP)
    try:
        topo.exe("sg", sys.executable, "-c", FLOOD, timeout=60)
    finally:
        os.killpg(proxies["s"].pid, signal.SIGCONT)
    after = sctl.execute("query-stats")["capture-drops"]
    tap.ok(after > before, "frames lost on the secondary's capture socket are counted (%d)" % (after - before))

    # 5. Failover: the primary alone releases everything and passes traffic.
    os.killpg(proxies["s"].pid, signal.SIGTERM)
    proxies["s"].wait(timeout=10)
    tap.ok(forward_rules(topo, "sh") == [], "the secondary removed its rule on exit")
    pctl.execute("failover")
    tap.ok(forward_rules(topo, "ph") == [], "failover removed the primary's NFQUEUE rule")
    got = topo.exe("c", sys.executable, PEER, "fetch", "10.77.0.2", "7000", str(1 << 20), check=False, timeout=30)
    tap.ok(got.stdout.strip() == expect1m, "after failover the primary serves alone", got.stdout + got.stderr)
    pctl.close()
    sctl.close()
    os.killpg(proxies["p"].pid, signal.SIGTERM)
    tap.ok(proxies["p"].wait(timeout=10) == 0, "the primary stops cleanly on SIGTERM")


if __name__ == "__main__":
    sys.exit(tap_main(run))
