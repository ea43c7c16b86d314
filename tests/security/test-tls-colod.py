#!/usr/bin/env python3
"""COLO under colod with [tls] dir (issue 11, "Security"; colo.conf(5),
docs/operations.md "TLS"): two nodes on real corosync
(tests/lib/cluster.py), the test guest behind a tap on each node, the
client's observer talking to it (tests/lib/cluster_vm.py's network).

Each node has its own certificates from one CA (made with certtool; the
server certificate carries the node's replication address). colod
starts colo-vmm with both tls-creds-x509 endpoints and colo-proxy with
--tls-creds: node1 protects the VM onto node2 over TLS (node2's colo-vmm
logs the TLS peer), the proxies link up over TLS, and the client's
replies are compared (they leave node1 only once node2's matched).
Needs root, corosync, iptables, certtool, /dev/kvm and /dev/net/tun."""
import os
import shutil
import sys

# tests/lib's colod_cluster (the two-node colod harness), not this
# directory's (security's single node).
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
import cluster  # noqa: E402
import cluster_client  # noqa: E402
import cluster_vm  # noqa: E402
import colod_cluster  # noqa: E402
import tap  # noqa: E402
from tls_certs import CA, require_certtool  # noqa: E402
from proxyctl import ProxyCtl  # noqa: E402

the = {}

# colod_cluster's file with the guest on a tap (cluster_vm's network) and [tls].
CONF = colod_cluster.CONF.replace("vmm-args=-m 64M -kernel {guest}\n", """vmm-args=-m 64M -kernel {guest} \
 -serial file:{vmdir}/serial.log -append "ip={ip}/24 gw={gw} interval=0" \
 -netdev tap,id=n0,ifname={tap},script=no,downscript=no -device virtio-net-pci,netdev=n0,mac={mac}
""").replace("guest-interface=tap-web1\n", "guest-interface={tap}\n").replace("[timeouts]\n", """[tls]
dir={pki}
[timeouts]
""")
assert all(k in CONF for k in ("{mac}", "guest-interface={tap}", "dir={pki}")), "colod_cluster.CONF changed: " + CONF


def node_conf(c, node):
    os.makedirs(cluster_vm.vmdir(c, node), exist_ok=True)
    # This node's certificates: its server certificate names its replication address.
    pki = the["ca"].pki(server_cn=node, client_cn=node, ips=(cluster.REPL[node],), dns=())
    the.setdefault("pki", []).append(pki)
    return dict(vmdir=cluster_vm.vmdir(c, node), ip=cluster_vm.GUEST_IP, gw=cluster_vm.GW_IP, tap=cluster_vm.TAP,
                mac=cluster_vm.GUEST_MAC, pki=pki)


def log(c, node):
    """The node's log: colod, colo-vmm and colo-proxy write into it."""
    return c.log(node, "colod", 100000)


def proxy(c, node, command):
    ctl = ProxyCtl(colod_cluster.rundir(c, node, "proxy.sock"))
    try:
        return ctl.execute(command)
    finally:
        ctl.sock.close()


def rounds(c):
    return (cluster_client.read(cluster_vm.observer_path(c)) or {}).get("rounds", 0)


def teardown():
    colod_cluster.teardown(the)
    if "ca" in the:
        the["ca"].close()
    for d in the.get("pki", []):
        shutil.rmtree(d, ignore_errors=True)


@tap.timeout(300)
def test_colo_over_tls():
    colod_cluster.require()
    cluster_vm.require()
    require_certtool()
    the["ca"] = CA()
    c = colod_cluster.get(the, {"node1": ("primary", 5), "node2": ("secondary", 4)}, conf=CONF, more=node_conf)
    cluster_vm._network(c)
    try:
        for n in cluster.NODES:
            colod_cluster.start(c, n)
        tap.wait_until(lambda: "-> primary-protected" in log(c, "node1") and
                       "-> secondary-protected" in log(c, "node2"), 180, "COLO with node1 primary", interval=0.2)
        # The replication stream and the proxy link are TLS, with the peer's certificate.
        assert "incoming migration: TLS with %s (CN=node1)" % cluster.REPL["node1"] in log(c, "node2"), \
            log(c, "node2")[-3000:]
        tap.wait_until(lambda: "link up (TLS, peer CN=node2)" in log(c, "node1"), 20, "the proxies' TLS link")
        assert "link up (TLS, peer CN=node1)" in log(c, "node2")
        # Compare traffic over the TLS link: the client's replies wait for node2's.
        cluster_vm.start_observer(c)
        before = proxy(c, "node1", "query-stats")
        start_rounds = rounds(c)
        tap.wait_until(lambda: rounds(c) >= start_rounds + 5, 60, "the client's rounds through the guest",
                       interval=0.2)
        after = proxy(c, "node1", "query-stats")
        assert after["compared"] > before["compared"], (before, after)
        obs = cluster_client.read(cluster_vm.observer_path(c))
        assert obs.get("wrong_bytes", 0) == 0 and obs.get("udp_wrong", 0) == 0, obs
    except AssertionError as e:
        raise AssertionError("%s\n%s" % (e, c.logs(60))) from None


cluster.run_tests(globals(), teardown)
