#!/usr/bin/env python3
"""colo-proxy's user-space L2 path (--uplink) in network namespaces: the
primary proxy is the only thing between the primary guest's interface and
the host, so the guest's ARP is held and compared like everything else.

  c --- ph: pu1 (10.77.0.1, the guest's gateway) === pu0 -- colo-proxy -- pgh --- pg
            pu0 and pgh are ports of a bridge that is down: the kernel
            ignores their frames, the proxy's packet sockets still see them.
        sh: colo-proxy --forward-all (the secondary guest's ARP too)  --- sg

Needs root, ip and iptables (Debian: iproute2, iptables). Prints TAP."""
import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_topo import GUEST_MAC, PEER, PROXY, forward_rules, sh, tap_main, wait_for, wait_ready, watched  # noqa: E402,E501
from proxyctl import ProxyCtl  # noqa: E402

OTHER_MAC = "52:54:00:77:00:99"


def neighbour(topo):
    """ph's neighbour entry for the guest: (MAC or None, state)."""
    out = topo.exe("ph", "ip", "neigh", "show", "10.77.0.2", "dev", "pu1").stdout.split()
    mac = out[out.index("lladdr") + 1] if "lladdr" in out else None
    return mac, (out[-1] if out else "NONE")


def run(tap, topo):
    topo.setup()
    topo.use_l2_path()
    psock, ssock = os.path.join(topo.tmp, "p.sock"), os.path.join(topo.tmp, "s.sock")
    primary = topo.spawn("ph", PROXY, "-r", "primary", "-i", "pgh", "--uplink", "pu0", "-L", "10.79.0.1:7700",
                         "-c", psock, "-t", "10000", "-d", log="primary.log")
    secondary = topo.spawn("sh", PROXY, "-r", "secondary", "-i", "sgh", "-q", "7", "--forward-all",
                           "-C", "10.79.0.1:7700", "-c", ssock, "-d", log="secondary.log")
    pctl, sctl = ProxyCtl(psock), ProxyCtl(ssock)
    tap.ok(wait_for(lambda: pctl.execute("query-status")["peer-link"]) is not None, "the proxies link up")
    # COLO begins: a primary proxy compares (and holds) from its first
    # checkpoint-begin; before it the guest is unprotected and passes.
    pctl.execute("checkpoint-begin")
    tap.ok(forward_rules(topo, "ph") == [], "the L2 path needs no iptables rule on the primary")
    for g in ("pg", "sg"):
        if not wait_ready(topo.spawn(g, sys.executable, PEER, "serve", "7000")):
            raise RuntimeError("server did not start")

    # 1. Everything the guest says, ARP included, passes the engine.
    size = 1 << 20
    got = watched(topo, pctl, "c", sys.executable, PEER, "fetch", "10.77.0.2", "7000", str(size), timeout=45)
    expect = sh(sys.executable, PEER, "digest", str(size)).stdout.strip()
    tap.ok(got.stdout.strip() == expect, "a 1 MiB stream through the L2 path arrives intact", got.stdout + got.stderr)
    # The guest's last frames (its ACK of the client's FIN) may still wait
    # for their secondary twins on a loaded machine: judge once nothing is held.
    wait_for(lambda: pctl.execute("query-stats")["queue-depth"] == 0, timeout=10)
    pst = pctl.execute("query-stats")
    diag = json.dumps(pst, indent=1)
    tap.ok(pst["held"] == pst["released"] == pst["compared"] and pst["passthrough"] == 0 and
           pst["compared"] > 10 and not any(pst["mismatches"].values()) and pst["checkpoint-requests"] == 0,
           "every frame the guest sent was compared (%d)" % pst["compared"], diag)
    mac, state = neighbour(topo)
    tap.ok(mac == GUEST_MAC, "the host learned the guest's MAC from a compared ARP reply (%s %s)" % (mac, state))

    # 2. A secondary that answers ARP differently: the primary's reply is
    # held, a checkpoint is requested, the host does not learn the MAC
    # until the commit releases it. A checkpoint first, as a coordinator
    # would take after any request: the engine asks once per epoch, so a
    # request still pending from step 1 would hide this one.
    pctl.execute("checkpoint-begin")
    sctl.execute("checkpoint-commit", {"keep-offsets": True})
    pctl.execute("checkpoint-commit")
    before = pctl.execute("query-stats")["mismatches"]
    topo.ip("sg", "link", "set", "sg0", "address", OTHER_MAC)
    topo.ip("ph", "neigh", "flush", "dev", "pu1")
    pctl.events.clear()
    topo.exe("ph", sys.executable, "-c",
             "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('10.77.0.2', 9))")
    ev = pctl.wait_event("CHECKPOINT_REQUEST", timeout=10)
    mism = pctl.execute("query-stats")["mismatches"]
    mac, state = neighbour(topo)
    reason = (ev or {}).get("data", {}).get("reason")
    tap.ok(reason in ("payload", "flags") and mism[reason] > before[reason],
           "an ARP reply that differs causes a checkpoint request (%s)" % (ev or {}).get("data"),
           json.dumps({"before": before, "after": mism}))
    tap.ok(mac is None, "the differing ARP reply is held: the host has no MAC yet (%s)" % state)
    pctl.execute("checkpoint-begin")
    sctl.execute("checkpoint-commit", {"keep-offsets": True})
    released = pctl.execute("checkpoint-commit")["released"]
    tap.ok(released >= 1 and wait_for(lambda: neighbour(topo)[0] == GUEST_MAC, timeout=5),
           "the commit releases the primary's ARP reply (%d frames)" % released, repr(neighbour(topo)))

    # 3. Failover: the primary alone keeps carrying frames, uncompared.
    sctl.close()
    os.killpg(secondary.pid, signal.SIGTERM)
    tap.ok(secondary.wait(timeout=10) == 0, "the secondary stops cleanly")
    pctl.execute("failover")
    topo.ip("ph", "neigh", "flush", "dev", "pu1")
    got = topo.exe("c", sys.executable, PEER, "fetch", "10.77.0.2", "7000", str(size), check=False, timeout=45)
    tap.ok(got.stdout.strip() == expect, "after failover the L2 path carries traffic alone (ARP too)",
           got.stdout + got.stderr)
    pctl.close()
    os.killpg(primary.pid, signal.SIGTERM)
    tap.ok(primary.wait(timeout=10) == 0, "the primary stops cleanly")


if __name__ == "__main__":
    sys.exit(tap_main(run))
