#!/usr/bin/env python3
"""ocf:colo:colo on a real two-node pacemaker (tests/lib/pacemaker.py:
corosync with qnetd's vote and pacemakerd per node, in network and mount
namespaces; fencing off, the test kills nodes itself), the agent
configured with crm as docs/operations.md shows. A fresh pair: pacemaker
promotes one node, colod protects the VM onto the other (COLO on both).
Killing the promoted node (every process in its namespace) makes
pacemaker promote the other, whose guest runs on (its colo-vmm answers
QMP with the guest running); the node coming back is started unpromoted
and becomes the secondary again. The time from the kill to the guest
running alone on the survivor is printed (docs/performance.md)."""
import os
import shutil
import tempfile
import time

import cluster
import colo_ha as ha
import pacemaker
import tap
from qmp import QMPClient

the = {}
CLONE = "web1-clone"


def get():
    if "c" not in the:
        ha.require()
        pacemaker.require()
        if not ha.has_tool("crm"):
            tap.skip("not installed: crm (Debian: crmsh)")
        the["dir"] = tempfile.mkdtemp(prefix="colo-pcmk-test-")
        ocf = os.path.join(the["dir"], "ocf")
        os.makedirs(os.path.join(ocf, "colo"))
        shutil.copy(ha.AGENT, os.path.join(ocf, "colo", "colo"))
        c = pacemaker.PacemakerCluster.create(os.path.join(the["dir"], "run"), ocf_dir=ocf, token=1000,
                                              qdevice_timeout=3000)
        the["c"] = c
        c.start_corosync()
        c.start_pacemaker()
        for n in cluster.NODES:
            ha.write_conf(c, n)
    return the["c"]


def with_logs(fn):
    def wrapped():
        try:
            fn()
        except AssertionError as e:
            c = the.get("c")
            diag = ""
            if c:
                for n in cluster.NODES:
                    diag += "--- %s colod.log\n%s--- %s failures\n%s\n--- %s pacemaker.log\n%s" % (
                        n, ha.colod_log(c, n, 40), n, c.failures(n), n, c.pacemaker_log(n, 40))
            raise AssertionError("%s\n%s" % (e, diag)) from None
    wrapped.__name__ = fn.__name__
    return wrapped


def roles(c, host):
    return c.roles(host, "web1") or {}


def wait_roles(c, host, want, timeout):
    tap.wait_until(lambda: roles(c, host) == want, timeout, "crm_mon on %s to show %s" % (host, want), interval=1)


def wait_states(c, want, timeout):
    """Until colod on each node of @want is in that state."""
    tap.wait_until(lambda: all(ha.state(c, n) == s for n, s in want.items()), timeout,
                   "colod states %s" % want, interval=0.5)


def guest_running(c, node):
    """Whether @node's colo-vmm answers QMP with the guest running."""
    try:
        q = QMPClient(c._fs(node, "/run/colo/%s/vmm.qmp" % ha.VM), timeout=3)
        try:
            return q.cmd("query-status").get("running") is True
        finally:
            q.close()
    except Exception:
        return False


@tap.timeout(600)
@with_logs
def test_promoted_and_protected():
    c = get()
    cmds = [
        "crm configure primitive web1 ocf:colo:colo params config=%s colod=%s coloctl=%s logfile=%s "
        "op start timeout=60s op stop timeout=60s op promote timeout=120s "
        "op demote timeout=60s op monitor interval=10s role=Promoted timeout=30s "
        "op monitor interval=11s role=Unpromoted timeout=30s" % (ha.CONF_PATH, ha.COLOD, ha.COLOCTL, ha.LOG_PATH),
        "crm configure clone %s web1 meta promotable=true promoted-max=1 promoted-node-max=1 clone-max=2 "
        "clone-node-max=1 notify=true" % CLONE,
    ]
    for cmd in cmds:
        p = c.run("node1", "sh", "-c", cmd, check=False, timeout=60)
        assert p.returncode == 0, "%s:\n%s%s" % (cmd, p.stdout, p.stderr)
    tap.wait_until(lambda: sorted(roles(c, "node1").values()) == ["Promoted", "Unpromoted"], 240,
                   "pacemaker to promote one instance", interval=1)
    r = roles(c, "node1")
    the["primary"] = [n for n, role in r.items() if role == "Promoted"][0]
    the["secondary"] = [n for n, role in r.items() if role == "Unpromoted"][0]
    wait_states(c, {the["primary"]: "primary-protected", the["secondary"]: "secondary-protected"}, 240)
    assert guest_running(c, the["primary"]), "the guest does not run on " + the["primary"]


@tap.timeout(400)
@with_logs
def test_kill_promoted_node():
    c = get()
    p, s = the["primary"], the["secondary"]
    t0 = time.monotonic()
    c.fault("kill-host", p)
    tap.wait_until(lambda: ha.state(c, s) == "primary-alone" and guest_running(c, s), 120,
                   "the survivor %s to run the guest alone" % s, interval=0.1)
    took = time.monotonic() - t0
    print("# kill of the promoted node to the guest running alone on %s: %.2f s" % (s, took), flush=True)
    wait_roles(c, s, {s: "Promoted"}, 60)
    st = ha.status(c, s)
    assert st["managed"] is True and st["running"] is True, st


@tap.timeout(400)
@with_logs
def test_node_comes_back_as_secondary():
    c = get()
    p, s = the["primary"], the["secondary"]
    c.heal()
    c.restart_node(p)
    wait_roles(c, s, {s: "Promoted", p: "Unpromoted"}, 240)
    wait_states(c, {s: "primary-protected", p: "secondary-protected"}, 240)
    assert guest_running(c, s), "the guest does not run on " + s


def teardown():
    c = the.get("c")
    if c:
        c.down()
    if "dir" in the:
        shutil.rmtree(the["dir"], ignore_errors=True)


cluster.run_tests(globals(), teardown)
