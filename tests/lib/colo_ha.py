"""What tests/ha/ share: the OCF agent (ha/colo, or COLO_OCF_AGENT for an
installed one), the built colod, coloctl, colo-vmm (or COLO_COLOD,
COLO_COLOCTL, COLO_VMM: installed ones) and test guest, a VM
file per node of a tests/lib/cluster.py cluster, running the agent's
actions on a node the way pacemaker-execd does, and colod's status."""
import json
import os
import shutil

import cluster
import tap

SRC = os.path.abspath(os.environ.get("COLO_SRCDIR", "."))
BUILD = os.path.abspath(os.environ.get("COLO_BUILDDIR", "."))
AGENT = os.environ.get("COLO_OCF_AGENT", os.path.join(SRC, "ha", "colo"))
COLOD = os.environ.get("COLO_COLOD", os.path.join(BUILD, "colod", "colod"))
COLOCTL = os.environ.get("COLO_COLOCTL", os.path.join(BUILD, "coloctl", "coloctl"))
VMM = os.environ.get("COLO_VMM", os.path.join(BUILD, "vmm", "colo-vmm"))
GUEST = os.path.join(BUILD, "tests", "guest", "colo-testguest")
PROXY = os.path.join(BUILD, "netfilter", "colo-proxy")
VM = "web1"
OCF_ROOT = "/usr/lib/ocf"
# OCF return codes
SUCCESS, ERR_GENERIC, ERR_INSTALLED, ERR_CONFIGURED, NOT_RUNNING, RUNNING_PROMOTED, FAILED_PROMOTED = 0, 1, 5, 6, 7, 8, 9

CONF = """[vm]
name={vm}
vmm-binary={vmm}
vmm-args=-m 64M -kernel {guest}
state-dir={state}
[cluster]
peer-name={peer}
peer-node-id={peer_id}
managed={managed}
[replication]
address={addr}
peer-address={peer_addr}
[proxy]
guest-interface=tap-{vm}
proxy-binary={proxy}
[timeouts]
peer-wait-ms=5000
"""


def require():
    """Skips (capability reasons) where the agent cannot run a VM here; a
    missing build product is a failure."""
    cluster.require()
    if not os.path.exists(os.path.join(OCF_ROOT, "lib", "heartbeat", "ocf-shellfuncs")):
        tap.skip("not installed: ocf-shellfuncs (Debian: resource-agents)")
    for f in (AGENT, COLOD, COLOCTL, VMM, GUEST, PROXY):
        if not os.path.exists(f):
            raise AssertionError("no %s (build first)" % f)
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        tap.skip("no /dev/kvm")


# The VM's file and colod's log: in the node's own /run (cluster.PRIVATE),
# so the same path names each node's file, as /etc/colo/VM.conf would.
CONF_DIR = "/run/colo-test"
CONF_PATH = CONF_DIR + "/" + VM + ".conf"
LOG_PATH = CONF_DIR + "/colod.log"


def write_conf(c, node, managed=True):
    """@node's CONF_PATH and an empty state dir (a fresh node)."""
    i = cluster.NODES.index(node)
    peer = cluster.NODES[1 - i]
    state = c.hostdir(node, "colo-" + VM)
    os.makedirs(state, exist_ok=True)
    os.makedirs(c._fs(node, CONF_DIR), exist_ok=True)
    path = c._fs(node, CONF_PATH)
    # colod drives colo-proxy on the guest's tap (the guest has no network
    # device: an idle tap).
    if c.run(node, "ip", "link", "show", "tap-" + VM, check=False).returncode != 0:
        c.ip(node, "tuntap", "add", "dev", "tap-" + VM, "mode", "tap")
        c.ip(node, "link", "set", "tap-" + VM, "up")
    with open(path, "w") as f:
        f.write(CONF.format(vm=VM, vmm=VMM, guest=GUEST, proxy=PROXY, state=state, peer=peer, peer_id=2 - i,
                            addr=cluster.REPL[node], peer_addr=cluster.REPL[peer],
                            managed="true" if managed else "false"))
    return path


def params(c, node, **extra):
    """The agent's parameters for @node's VM (as OCF_RESKEY_ names)."""
    p = {"config": CONF_PATH, "colod": COLOD, "coloctl": COLOCTL, "logfile": LOG_PATH, "ctl_timeout": "2000"}
    p.update(extra)
    return p


def agent(c, node, action, meta=None, timeout=150, **extra):
    """Runs the agent's @action on @node as pacemaker-execd would (OCF_
    environment; @meta: CRM_meta_ keys). Returns (exit code, output)."""
    env = ["OCF_ROOT=" + OCF_ROOT, "OCF_RESOURCE_INSTANCE=" + VM, "OCF_RESKEY_crm_feature_set=3.16.2"]
    env += ["OCF_RESKEY_%s=%s" % kv for kv in params(c, node, **extra).items()]
    env += ["OCF_RESKEY_CRM_meta_%s=%s" % kv for kv in (meta or {"timeout": "60000"}).items()]
    p = c.run(node, "env", *env, AGENT, action, check=False, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def status(c, node):
    """`coloctl --json status` on @node, parsed; None if colod does not
    answer."""
    p = c.run(node, COLOCTL, "--vm", VM, "--json", "--timeout", "2000", "status", check=False, timeout=10)
    if p.returncode != 0:
        return None
    return json.loads(p.stdout)


def state(c, node):
    s = status(c, node)
    return s and s["state"]


def colod_log(c, node, lines=60):
    try:
        with open(c._fs(node, LOG_PATH), errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no colod.log on %s)\n" % node


def has_tool(name):
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is not None
