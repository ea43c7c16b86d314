#!/usr/bin/env python3
"""The OCF agent ha/colo (ocf:colo:colo) action by action, run on node1 of
the two-node corosync cluster (tests/lib/cluster.py) the way
pacemaker-execd runs it, against the real colod, coloctl and colo-vmm
with the test guest; no pacemaker (tests/ha/test-pacemaker.py has it).
node2's corosync runs, its colod does not: node1 stands alone in managed
mode. colod absent, running, promoted, hung (SIGSTOP) and failed (killed,
its colo-vmm left running); then ocf-tester on the agent. First the
promotion score alone, no cluster: a monitor against stand-ins for
coloctl (a status), crmadmin (the DC) and crm_attribute (what it was
given).
COLO_OCF_AGENT, COLO_COLOD and COLO_COLOCTL test installed ones."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET

import cluster
import colo_ha as ha
import tap

the = {}
N = "node1"


def get():
    if "c" not in the:
        ha.require()
        the["dir"] = tempfile.mkdtemp(prefix="colo-ocf-test-")
        c = cluster.Cluster.create(os.path.join(the["dir"], "run"), token=1000, qdevice_timeout=3000)
        the["c"] = c
        c.start_corosync()
        ha.write_conf(c, N)
    return the["c"]


def with_logs(fn):
    def wrapped():
        try:
            fn()
        except AssertionError as e:
            c = the.get("c")
            raise AssertionError("%s\n--- colod.log\n%s" % (e, ha.colod_log(c, N) if c else "")) from None
    wrapped.__name__ = fn.__name__
    return wrapped


def expect(action, want, **kw):
    c = get()
    rc, out = ha.agent(c, N, action, **kw)
    assert rc == want, "%s returned %d, not %d:\n%s" % (action, rc, want, out)
    return out


def vmm_pids():
    return get().pids(N, "colo-vmm")


def colod_pids():
    return get().pids(N, "colod")


def proxy_pids():
    return get().pids(N, "colo-proxy")


# ---- the promotion score against stand-ins ------------------------------

# crmadmin -D -q's answers: the DC's name, a controller that refuses (its
# exit code when pacemaker is down) and one that never answers.
CRMADMIN = {
    "node1": "echo node1",
    "node2": "echo node2",
    "fail": "echo 'error: Could not connect to controller: Connection refused' >&2; exit 102",
    "hang": "exec sleep 60",
}


def status_json(state, role, gen, peer_present=True, peer_role=None, peer_gen=None):
    """`coloctl --json status`'s members the score reads."""
    return json.dumps({"vm": ha.VM, "state": state, "role": role, "generation": gen, "managed": True,
                       "running": state.startswith("primary"),
                       "peer": {"present": peer_present, "role": peer_role, "generation": peer_gen}})


def score_run(status, crmadmin="node1", on_node="node1", hook=None):
    """The agent's recurring monitor (as the state hook with @hook: its
    state) on a node named @on_node (None: crm_node says node1) with
    coloctl printing @status and crmadmin answering as CRMADMIN[@crmadmin].
    Returns (exit code, the score set or "deleted", crmadmin's runs,
    seconds taken)."""
    if not os.path.exists(os.path.join(ha.OCF_ROOT, "lib", "heartbeat", "ocf-shellfuncs")):
        tap.skip("not installed: ocf-shellfuncs (Debian: resource-agents)")
    d = tempfile.mkdtemp(prefix="colo-ocf-score-")
    try:
        def tool(name, body):
            path = os.path.join(d, name)
            with open(path, "w") as f:
                f.write("#!/bin/sh\n" + body + "\n")
            os.chmod(path, 0o755)
            return path
        with open(os.path.join(d, "status.json"), "w") as f:
            f.write(status)
        with open(os.path.join(d, "web1.conf"), "w") as f:
            f.write("[vm]\nname=%s\n" % ha.VM)
        coloctl = tool("coloctl", "cat %s/status.json" % d)
        tool("crmadmin", "echo \"$*\" >>%s/crmadmin.log\n%s" % (d, CRMADMIN[crmadmin]))
        tool("crm_node", "echo node1")
        tool("crm_attribute", "echo \"$*\" >>%s/crm_attribute.log" % d)
        env = dict(os.environ, PATH=d + ":" + os.environ.get("PATH", "/usr/bin:/bin"), HA_SBIN_DIR=d,
                   HA_RSCTMP=d, OCF_ROOT=ha.OCF_ROOT, OCF_RESOURCE_INSTANCE=ha.VM,
                   OCF_RESKEY_crm_feature_set="3.16.2", OCF_RESKEY_config=os.path.join(d, "web1.conf"),
                   OCF_RESKEY_colod="true", OCF_RESKEY_coloctl=coloctl,
                   OCF_RESKEY_CRM_meta_promotable="true", OCF_RESKEY_CRM_meta_interval="11000",
                   OCF_RESKEY_CRM_meta_timeout="30000")
        env.pop("OCF_RESKEY_CRM_meta_on_node", None)
        if on_node:
            env["OCF_RESKEY_CRM_meta_on_node"] = on_node
        argv = [ha.AGENT, "monitor"]
        if hook:
            env["COLO_HOOK"] = "state-change"
            argv = [ha.AGENT, ha.VM, hook, "test"]
        t = time.monotonic()
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        took = time.monotonic() - t

        def lines(name):
            try:
                with open(os.path.join(d, name)) as f:
                    return f.read().splitlines()
            except FileNotFoundError:
                return []
        attr = lines("crm_attribute.log")
        assert len(attr) == 1, (attr, p.stdout + p.stderr)
        words = attr[0].split()
        score = "deleted" if "-D" in words else words[words.index("-v") + 1]
        return p.returncode, score, lines("crmadmin.log"), took
    finally:
        shutil.rmtree(d, ignore_errors=True)


def score_of(status, **kw):
    return score_run(status, **kw)[1]


FRESH = status_json("idle", "none", 0, peer_role="none", peer_gen=0)
EQUAL = status_json("idle", "secondary", 5, peer_role="secondary", peer_gen=5)
EQUAL_ALONE = status_json("idle", "secondary", 5, peer_present=False)
NEWER = status_json("idle", "secondary", 6, peer_role="secondary", peer_gen=5)
OLDER = status_json("idle", "secondary", 4, peer_role="secondary", peer_gen=5)
PRIMARY = status_json("primary-protected", "primary", 6, peer_role="secondary", peer_gen=6)
REPLICA = status_json("secondary-protected", "secondary", 6, peer_role="primary", peer_gen=6)
SYNCING = status_json("secondary-syncing", "none", 0, peer_role="primary", peer_gen=6)


@tap.timeout(120)
def test_score_dc_bonus():
    """Where pacemaker's choice is free (a fresh pair, equal copies) the
    DC's score is one more, so the primary lands with the DC (a failover
    that kills the DC is the fast kind: docs/performance.md, issue 13)."""
    for status, plain in ((FRESH, 1), (EQUAL, 300), (EQUAL_ALONE, 300)):
        rc, score, runs, _ = score_run(status)
        assert rc == ha.SUCCESS and score == str(plain + 1), (status, rc, score)
        assert runs == ["-D -q -t 2s"], runs
        assert score_of(status, crmadmin="node2") == str(plain), status
    # The node's name from crm_node where pacemaker passed none.
    assert score_of(FRESH, on_node=None) == "2"
    assert score_of(FRESH, on_node=None, crmadmin="node2") == "1"
    # The state hook computes the same.
    assert score_of(FRESH, hook="idle") == "2"


@tap.timeout(120)
def test_score_dc_bonus_never_decides():
    """No bonus against a generation difference (it could not reverse one,
    and a changing score churns the CIB), nor on the primary's and the
    replica's 1000 (the DC moves at a failover, and a score changed during
    the promote aborts its transition): not even a crmadmin run there."""
    for status, want in ((NEWER, "800"), (OLDER, "100"), (PRIMARY, "1000"), (REPLICA, "1000"),
                         (SYNCING, "deleted")):
        for dc in ("node1", "node2"):
            rc, score, runs, _ = score_run(status, crmadmin=dc)
            assert score == want and runs == [], (status, dc, score, runs)
            assert rc == (ha.RUNNING_PROMOTED if status == PRIMARY else ha.SUCCESS), (status, rc)


@tap.timeout(120)
def test_score_dc_unknown():
    """A controller that refuses or hangs: no bonus, and the monitor is
    held up by 2 s at most."""
    for dc in ("fail", "hang"):
        for status, plain in ((FRESH, "1"), (EQUAL, "300")):
            rc, score, runs, took = score_run(status, crmadmin=dc)
            assert rc == ha.SUCCESS and score == plain and len(runs) == 1, (dc, status, rc, score, runs)
            assert took < 10, (dc, took)
            if dc == "hang":
                assert took >= 2, took


@tap.timeout(120)
def test_meta_data():
    rc, out = ha.agent(get(), N, "meta-data")
    assert rc == 0, out
    root = ET.fromstring(out)
    assert root.get("name") == "colo"
    names = {p.get("name"): p for p in root.iter("parameter")}
    assert set(names) == {"config", "colod", "coloctl", "socket", "logfile", "ctl_timeout", "stop_wait"}, names
    assert names["config"].get("required") == "1"
    for p in names.values():
        assert p.find("longdesc").text.strip() and p.find("content") is not None, ET.tostring(p)
    actions = {a.get("name") for a in root.iter("action")}
    assert actions >= {"start", "stop", "monitor", "promote", "demote", "notify", "validate-all", "meta-data"}
    roles = {a.get("role") for a in root.iter("action") if a.get("name") == "monitor"}
    assert roles == {"Promoted", "Unpromoted"}, roles


@tap.timeout(120)
@with_logs
def test_absent():
    """No colod: monitor says not running, stop succeeds; bad settings
    are refused with the OCF codes for them."""
    expect("monitor", ha.NOT_RUNNING)
    expect("monitor", ha.NOT_RUNNING, meta={"interval": "0", "timeout": "20000"})   # a probe
    expect("stop", ha.SUCCESS)
    expect("demote", ha.NOT_RUNNING)
    expect("validate-all", ha.SUCCESS)
    out = expect("validate-all", ha.ERR_INSTALLED, config="/nonexistent/web1.conf")
    assert "cannot read /nonexistent/web1.conf" in out, out
    expect("validate-all", ha.ERR_INSTALLED, colod="/nonexistent/colod")
    with open(get()._fs(N, ha.CONF_DIR + "/noname.conf"), "w") as f:
        f.write("[vm]\n")
    expect("validate-all", ha.ERR_CONFIGURED, config=ha.CONF_DIR + "/noname.conf")
    expect("validate-all", ha.ERR_CONFIGURED, ctl_timeout="5s")
    out = expect("validate-all", ha.ERR_CONFIGURED, meta={"clone_max": "2", "timeout": "20000"})
    assert "promotable clone" in out, out
    # A probe on a node without the file: not running there.
    expect("monitor", ha.NOT_RUNNING, config="/nonexistent/web1.conf", meta={"interval": "0", "timeout": "20000"})
    expect("stop", ha.SUCCESS, config="/nonexistent/web1.conf")


@tap.timeout(240)
@with_logs
def test_start_promote_demote_stop():
    c = get()
    expect("start", ha.SUCCESS)
    assert len(colod_pids()) == 1, colod_pids()
    expect("monitor", ha.SUCCESS)
    s = ha.status(c, N)
    assert s["managed"] is True and s["state"] == "idle", s
    expect("start", ha.SUCCESS)            # again: nothing more
    assert len(colod_pids()) == 1, colod_pids()
    expect("promote", ha.SUCCESS)
    expect("monitor", ha.RUNNING_PROMOTED)
    s = ha.status(c, N)
    assert s["running"] is True and s["state"] in ("primary-alone", "protect-requested"), s
    assert len(vmm_pids()) == 1, vmm_pids()
    expect("promote", ha.SUCCESS)          # again
    expect("demote", ha.SUCCESS)
    expect("monitor", ha.SUCCESS)
    tap.wait_until(lambda: not vmm_pids(), 10, "colo-vmm to stop after demote")
    expect("demote", ha.SUCCESS)           # again
    expect("stop", ha.SUCCESS)
    assert not colod_pids(), colod_pids()
    expect("monitor", ha.NOT_RUNNING)
    expect("stop", ha.SUCCESS)             # again


@tap.timeout(240)
@with_logs
def test_hung_colod():
    """A stopped (hung) colod: monitor fails within ctl_timeout, stop
    kills colod and its colo-vmm."""
    expect("start", ha.SUCCESS)
    expect("promote", ha.SUCCESS)
    assert len(vmm_pids()) == 1
    get().fault("sigstop", N, "colod")
    t = time.monotonic()
    out = expect("monitor", ha.ERR_GENERIC)
    assert "hung" in out and time.monotonic() - t < 15, (out, time.monotonic() - t)
    t = time.monotonic()
    expect("stop", ha.SUCCESS, stop_wait="3")
    assert time.monotonic() - t < 20, time.monotonic() - t
    get().heal()
    tap.wait_until(lambda: not colod_pids() and not vmm_pids() and not proxy_pids(), 10,
                   "colod, colo-vmm and colo-proxy gone")
    expect("monitor", ha.NOT_RUNNING)


@tap.timeout(240)
@with_logs
def test_failed_colod():
    """colod killed while its VM runs: monitor fails (a colo-vmm without
    colod), stop kills the colo-vmm; start then works again."""
    expect("start", ha.SUCCESS)
    expect("promote", ha.SUCCESS)
    get().fault("sigkill", N, "colod")
    get().heal()
    tap.wait_until(lambda: not colod_pids(), 10, "colod to die")
    assert len(vmm_pids()) == 1, "colo-vmm died with colod: nothing to test"
    out = expect("monitor", ha.ERR_GENERIC)
    assert "colo-vmm" in out, out
    expect("stop", ha.SUCCESS)
    assert not vmm_pids() and not proxy_pids(), (vmm_pids(), proxy_pids())
    expect("monitor", ha.NOT_RUNNING)
    expect("start", ha.SUCCESS)
    expect("stop", ha.SUCCESS)


@tap.timeout(400)
@with_logs
def test_ocf_tester():
    if not ha.has_tool("ocf-tester"):
        tap.skip("not installed: ocf-tester (Debian: resource-agents)")
    c = get()
    args = []
    for k, v in ha.params(c, N).items():
        args += ["-o", "%s=%s" % (k, v)]
    p = c.run(N, "env", "OCF_ROOT=" + ha.OCF_ROOT, "ocf-tester", "-v", "-n", ha.VM, *args, ha.AGENT,
              check=False, timeout=380)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "passed all tests" in p.stdout, p.stdout
    assert not colod_pids() and not vmm_pids(), "ocf-tester left colod or colo-vmm running"


def teardown():
    c = the.get("c")
    if c:
        c.heal()
        ha.agent(c, N, "stop", stop_wait="2")
        c.down()
    if "dir" in the:
        shutil.rmtree(the["dir"], ignore_errors=True)


cluster.run_tests(globals(), teardown)
