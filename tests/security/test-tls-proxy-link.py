#!/usr/bin/env python3
"""colo-proxy --tls-creds: the link between the two proxies over TLS with
X.509 certificates (issue 11, "Security"; colo-proxy(8), docs/operations.md
"TLS"). The namespace topology and the UDP exchange of link_forge.py: the
primary guest answers at once, the secondary 4 s later, so the primary
holds its answer until the secondary's output arrives over the link.

1. Both proxies with certificates of one CA: the link comes up over TLS
   (the primary logs the secondary's certificate) and carries the compare
   traffic: the held answer leaves when the secondary's copy arrives, and
   the primary compared it.
2. A stranger (a plaintext client) sends a forged frame to the primary's
   link port meanwhile: refused by TLS, counted (link-tls-refused),
   logged; the real link stays up and the forgery releases nothing.
3. A secondary whose certificate another CA (of the same name) signed:
   the primary refuses it and logs why, the secondary logs the refusal
   too, and the link stays down.

Needs root, ip, iptables and certtool. Prints TAP."""
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "netfilter"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from link_forge import SECONDARY_DELAY, exchange, start_guests, start_primary, start_secondary  # noqa: E402
from netns_topo import tap_main, wait_for  # noqa: E402
from proxyctl import ProxyCtl  # noqa: E402
from tls_certs import CA, require_certtool  # noqa: E402


def log(topo, name):
    with open(os.path.join(topo.tmp, name), errors="replace") as f:
        return f.read()


def run(tap, topo):
    require_certtool()
    ca, impostor = CA(), CA("colo test CA")
    # The secondary connects to the primary's 10.79.0.1: the server certificate names it.
    good = ca.pki(ips=("10.79.0.1",), dns=())
    bad = impostor.pki(trust=ca, ips=("10.79.0.1",), dns=())
    try:
        run_tls(tap, topo, good, bad)
    finally:
        for x in (ca, impostor):
            x.close()
        for d in (good, bad):
            shutil.rmtree(d, ignore_errors=True)


def run_tls(tap, topo, good, bad):
    topo.setup()
    psock, ssock = os.path.join(topo.tmp, "p.sock"), os.path.join(topo.tmp, "s.sock")
    start_guests(topo)

    # 1 and 2.
    # No --peer: the stranger reaches TLS.
    start_primary(topo, psock, "--tls-creds", good)
    secondary = start_secondary(topo, ssock, "--tls-creds", good)
    pctl = ProxyCtl(psock)
    tap.ok(wait_for(lambda: pctl.execute("query-status")["peer-link"], timeout=10) is not None,
           "the proxies link up over TLS")
    tap.ok("link up (TLS, peer CN=node2)" in log(topo, "primary.log"), "the primary logs the secondary's certificate",
           log(topo, "primary.log")[-2000:])
    before = pctl.execute("query-stats")
    pctl.events.clear()
    took = exchange(topo, pctl, "held-over-tls")
    after = pctl.execute("query-stats")
    tap.ok(took >= SECONDARY_DELAY - 0.5,
           "the held answer left on the secondary's output, carried by the TLS link (%.2f s, secondary answers "
           "after %.1f s)" % (took, SECONDARY_DELAY))
    tap.ok(after["compared"] > before["compared"] and after["secondary-packets"] > before["secondary-packets"],
           "the primary compared the secondary's packet from the link", "before %r after %r" % (before, after))
    tap.ok(after["link-tls-refused"] == before["link-tls-refused"] + 1 and after["link-refused"] == before["link-refused"],
           "the plaintext stranger was refused by TLS and counted",
           "before %d after %d" % (before["link-tls-refused"], after["link-tls-refused"]))
    downs = [e for e in pctl.events if e.get("event") == "PEER_LINK" and not e["data"]["up"]]
    tap.ok(pctl.execute("query-status")["peer-link"] and not downs,
           "the link to the real secondary stayed up", repr(list(pctl.events)))
    tap.ok("link: TLS refused 10.78.0.2: TLS: the client does not speak TLS" in log(topo, "primary.log"),
           "the refusal is logged with its reason", log(topo, "primary.log")[-2000:])

    # 3. A secondary with a certificate from another CA.
    topo.kill(secondary)
    tap.ok(wait_for(lambda: not pctl.execute("query-status")["peer-link"], timeout=10) is not None,
           "the link goes down with the secondary")
    start_secondary(topo, ssock, "--tls-creds", bad, log="secondary-bad.log")
    want_p = "link: TLS refused 10.79.0.2: TLS: the client's certificate is refused"
    want_s = "link: TLS refused 10.79.0.1:7700: TLS: the server refused the handshake"
    tap.ok(wait_for(lambda: want_p in log(topo, "primary.log"), timeout=10) is not None,
           "the primary refuses and logs the other CA's certificate", log(topo, "primary.log")[-2000:])
    tap.ok(wait_for(lambda: want_s in log(topo, "secondary-bad.log"), timeout=10) is not None,
           "the secondary logs the refusal", log(topo, "secondary-bad.log")[-2000:])
    time.sleep(1.5)     # a few reconnects
    tap.ok(not pctl.execute("query-status")["peer-link"], "the link stays down")
    tap.ok(log(topo, "secondary-bad.log").count("warning: " + want_s) == 1,
           "the secondary's retries log the refusal once (then at debug level)",
           log(topo, "secondary-bad.log")[-2000:])


sys.exit(tap_main(run))
