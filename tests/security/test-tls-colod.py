#!/usr/bin/env python3
"""COLO under colod with [tls] dir (issue 11, "Security"; colo.conf(5),
docs/operations.md "TLS"): the harness's two nodes on real corosync with
the test guest (tests/lib/cluster_vm.py: colod on both, the LAN gateway
following the primary, the client's observer), its VM file with

    [tls]
    dir=PKI

One CA's certificates (certtool, tests/lib/tls_certs.py); the server
certificate carries both nodes' replication addresses. colod starts
colo-vmm with both tls-creds-x509 endpoints and colo-proxy with
--tls-creds: node1 protects the VM onto node2 over TLS (node2's colo-vmm
logs the TLS peer), the proxies link up over TLS, and the client's
replies are compared (they leave node1 only once node2's matched), no
byte wrong. Needs root, corosync, iptables, arping, certtool, /dev/kvm
and /dev/net/tun."""
import os
import shutil
import sys
import tempfile

import cluster
import cluster_client
import cluster_vm
import tap
from tls_certs import CA, require_certtool

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "netfilter"))
from proxyctl import ProxyCtl  # noqa: E402

the = {}


def log(c, node):
    """The node's log: colod, colo-vmm and colo-proxy write into it."""
    return c.log(node, "colod", 100000)


def proxy_stats(c, node):
    ctl = ProxyCtl(cluster_vm.rundir(c, node, "proxy.sock"))
    try:
        return ctl.execute("query-stats")
    finally:
        ctl.sock.close()


def rounds(c):
    return (cluster_client.read(cluster_vm.observer_path(c)) or {}).get("rounds", 0)


def teardown():
    if "c" in the:
        the["c"].down()
    if "ca" in the:
        the["ca"].close()
    for d in ("pki", "tmp"):
        if d in the:
            shutil.rmtree(the[d], ignore_errors=True)


@tap.timeout(300)
def test_colo_over_tls():
    cluster.require()
    cluster_vm.require()
    require_certtool()
    the["ca"] = CA()
    the["pki"] = the["ca"].pki(server_cn="node", client_cn="node", ips=tuple(cluster.REPL[n] for n in cluster.NODES),
                               dns=())
    cluster_vm.CONF += "[tls]\ndir=%s\n" % the["pki"]
    the["tmp"] = tempfile.mkdtemp(prefix="colo-tls-colod-")
    c = the["c"] = cluster.Cluster.create(os.path.join(the["tmp"], "run"), token=1000, qdevice_timeout=1000)
    try:
        c.start_corosync()
        cluster_vm.start(c)
        # The replication stream and the proxy link are TLS, with the peer's certificate.
        assert "incoming migration: TLS with %s (CN=node)" % cluster.REPL["node1"] in log(c, "node2"), \
            log(c, "node2")[-3000:]
        for n in cluster.NODES:
            tap.wait_until(lambda: "link up (TLS, peer CN=node)" in log(c, n), 20, "%s's proxy TLS link" % n)
        # Compare traffic over the TLS link: the client's replies wait for node2's.
        cluster_vm.start_observer(c)
        before = proxy_stats(c, "node1")
        start_rounds = rounds(c)
        tap.wait_until(lambda: rounds(c) >= start_rounds + 5, 60, "the client's rounds through the guest",
                       interval=0.2)
        after = proxy_stats(c, "node1")
        assert after["compared"] > before["compared"], (before, after)
        obs = cluster_client.read(cluster_vm.observer_path(c))
        assert obs.get("wrong_bytes", 0) == 0 and obs.get("udp_wrong", 0) == 0 and obs.get("broken", 0) == 0, obs
        assert cluster_vm.serving(c) == ["node1"]
    except AssertionError as e:
        raise AssertionError("%s\n%s" % (e, c.logs(60))) from None


if __name__ == "__main__":
    cluster.run_tests(globals(), teardown)
