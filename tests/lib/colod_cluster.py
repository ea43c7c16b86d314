"""colod's test cluster (tests/colod/): tests/lib/cluster.py's two nodes
with corosync and qnetd, each with the VM web1's file (colo.conf(5)) and a
state file, colod driving colo-vmm with the bundled test guest.

    the = {}
    c = colod_cluster.get(the, {"node1": ("primary", 5), "node2": ("secondary", 4)})
    colod_cluster.start(c, "node1")
    ...
    colod_cluster.teardown(the)
"""
import json
import os
import re
import shutil
import tempfile

import cluster
import colo_vmm
import tap
from qmp import QMPClient

BUILD = os.path.abspath(os.environ.get("COLO_BUILDDIR", "."))
COLOD = os.path.join(BUILD, "colod", "colod")
VMM = os.path.join(BUILD, "vmm", "colo-vmm")
GUEST = os.path.join(BUILD, "tests", "guest", "colo-testguest")
PROXY = os.path.join(BUILD, "netfilter", "colo-proxy")
COLOCTL = os.path.join(BUILD, "coloctl", "coloctl")

CONF = """[vm]
name=web1
vmm-binary={vmm}
vmm-args=-m 64M -kernel {guest}
state-dir={state}
[cluster]
peer-name={peer}
peer-node-id={peer_id}
[replication]
address={addr}
peer-address={peer_addr}
[proxy]
guest-interface=tap-web1
proxy-binary={proxy}
[timeouts]
peer-wait-ms=5000
"""


def require(*binaries):
    """Skip (capability reasons) without root, the cluster's tools or
    /dev/kvm; a binary of ours not built is a failure."""
    cluster.require()
    for f in (COLOD, VMM, GUEST, PROXY) + binaries:
        if not os.path.exists(f):
            raise AssertionError("no %s (build first)" % f)
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        tap.skip("no /dev/kvm")


def get(the, seeds, token=1000, qdevice_timeout=3000, conf=CONF, more=None):
    """The cluster in @the (built at the first call) with corosync up;
    @seeds: node -> (role, generation) of its state file; @token and
    @qdevice_timeout: corosync's, in ms. colod's file is @conf formatted
    with vmm, guest, proxy, state, peer, peer_id, addr, peer_addr and what
    @more(c, node) returns. Without @more each node gets an idle tap
    tap-web1 for colo-proxy (the guest has no network device)."""
    if "c" not in the:
        cluster.require()
        the["dir"] = tempfile.mkdtemp(prefix="colod-cluster-test-")
        c = cluster.Cluster.create(os.path.join(the["dir"], "run"), token=token, qdevice_timeout=qdevice_timeout)
        the["c"] = c
        c.start_corosync()
        for i, n in enumerate(cluster.NODES):
            if more is None:
                c.ip(n, "tuntap", "add", "dev", "tap-web1", "mode", "tap")
                c.ip(n, "link", "set", "tap-web1", "up")
            state = c.hostdir(n, "colo-web1")
            os.makedirs(state, exist_ok=True)
            with open(os.path.join(state, "state"), "w") as f:
                f.write("[colod-state]\nversion=1\nrole=%s\ngeneration=%d\n" % seeds[n])
            peer = cluster.NODES[1 - i]
            with open(c.hostdir(n, "web1.conf"), "w") as f:
                f.write(conf.format(vmm=VMM, guest=GUEST, proxy=PROXY, state=state, peer=peer, peer_id=2 - i,
                                    addr=cluster.REPL[n], peer_addr=cluster.REPL[peer], **(more(c, n) if more else {})))
    return the["c"]


def coloctl(c, node, *args, timeout=20):
    """coloctl on @node: (exit status, stdout, stderr)."""
    r = c.run(node, COLOCTL, *args, check=False, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def wait_state(c, node, state, timeout=90):
    """Until @node's colod says @state; its status. On timeout the error
    leads with where the node is and colod's reason for it (a CI summary
    shows only a failure's first line)."""
    last = {}

    def reached():
        code, out, err = coloctl(c, node, "--json", "status", timeout=30)
        if code == 2:  # colod just started: no socket yet
            return False
        assert code == 0, "coloctl --json status on %s: exit %d: %s" % (node, code, err)
        last.clear()
        last.update(json.loads(out))
        return last["state"] == state
    try:
        tap.wait_until(reached, timeout, "%s in %s" % (node, state), interval=0.3)
    except AssertionError:
        if not last:
            raise AssertionError("%s never answered coloctl status in %.0f s" % (node, timeout)) from None
        raise AssertionError("%s is %s (generation %s), not %s, after %.0f s: %s (last status: %s)" % (
            node, last["state"], last["generation"], state, timeout, last.get("reason"), json.dumps(last))) from None
    return last


def rundir(c, node, *name):
    """/run/colo/web1 of @node (its /run is a directory of the test's)."""
    return c.hostdir(node, "fs", "run", "colo", "web1", *name)


class Guest(colo_vmm.Vmm):
    """The test guest's checks (colo_vmm.Vmm's: status, heartbeat,
    workload_problems) on the colo-vmm colod runs on @node: its QMP socket,
    guest memory saved under the node's /run."""

    def __init__(self, c, node):
        self.c, self.node = c, node
        self.qmp = QMPClient(rundir(c, node, "vmm.qmp"), timeout=10)

    def read_guest(self, gpa, size):
        name = "pmem-%x.bin" % gpa
        self.qmp.cmd("pmemsave", val=gpa, size=size, filename="/run/colo/web1/" + name)
        with open(rundir(self.c, self.node, name), "rb") as f:
            data = f.read()
        os.unlink(rundir(self.c, self.node, name))
        return data

    def close(self):
        self.qmp.close()


def start(c, node, *args):
    c.spawn(node, "colod", COLOD, "--config", c.hostdir(node, "web1.conf"), *args)


def transitions(c, node):
    """Every state change in @node's colod log ("a -> b: why"), oldest
    first, each cut to 160 characters."""
    out = []
    try:
        with open(c.hostdir(node, "colod.log"), errors="replace") as f:
            for line in f:
                m = re.search(r"\b([a-z-]+ -> [a-z-]+: .*)$", line)
                if m:
                    out.append(m.group(1)[:160])
    except OSError:
        pass
    return out


def history(c):
    """Each node's colod state changes, for a failure's first lines: why
    a node is where it is, before the logs' tails."""
    text = ""
    for n in cluster.NODES:
        text += "=== %s's colod, state changes:\n" % n
        text += "".join("  %s\n" % t for t in transitions(c, n)) or "  (none)\n"
    return text


def with_logs(the):
    """Decorator: a failed check shows each node's state changes, then
    the tails of every host's logs."""
    def mark(fn):
        def wrapped():
            try:
                fn()
            except AssertionError as e:
                more = history(the["c"]) + the["c"].logs(40) if "c" in the else ""
                raise AssertionError("%s\n%s" % (e, more)) from None
        wrapped.__name__ = fn.__name__
        return wrapped
    return mark


def teardown(the):
    if "c" in the:
        the["c"].down()
    if "dir" in the:
        shutil.rmtree(the["dir"], ignore_errors=True)
