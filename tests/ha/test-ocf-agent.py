#!/usr/bin/env python3
"""The OCF agent ha/colo (ocf:colo:colo) action by action, run on node1 of
the two-node corosync cluster (tests/lib/cluster.py) the way
pacemaker-execd runs it, against the real colod, coloctl and colo-vmm
with the test guest; no pacemaker (tests/ha/test-pacemaker.py has it).
node2's corosync runs, its colod does not: node1 stands alone in managed
mode. colod absent, running, promoted, hung (SIGSTOP) and failed (killed,
its colo-vmm left running); then ocf-tester on the agent.
COLO_OCF_AGENT, COLO_COLOD and COLO_COLOCTL test installed ones."""
import os
import shutil
import signal
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
