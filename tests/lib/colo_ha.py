"""What tests/ha/ share: the OCF agent (ha/colo, or COLO_OCF_AGENT for an
installed one), the built colod, coloctl, colo-vmm (or COLO_COLOD,
COLO_COLOCTL, COLO_VMM: installed ones) and test guest, a VM
file per node of a tests/lib/cluster.py cluster, running the agent's
actions on a node the way pacemaker-execd does, and colod's status.

With net=True the guest has the network of tests/lib/cluster_vm.py
(virtio-net on tap0, its gateway the tap, a disk) and network() sets up
the nodes' side: the client reaches the guest through the LAN gateway
address, which no node holds; pacemaker's floating IP resource
(ocf:heartbeat:IPaddr2, FLOATING_IP) puts it on the promoted node."""
import json
import os
import shutil

import cluster
import cluster_vm
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

# The guest's network device, serial log and disk (the vmm-args line goes
# on): its address and gateway as cluster_vm's.
NET_ARGS = """ -serial file:{vmdir}/serial.log -append "ip={ip}/24 gw={gw} interval=0" \
 -netdev tap,id=n0,ifname={tap},script=no,downscript=no -device virtio-net-pci,netdev=n0,mac={mac} \
 -drive file={vmdir}/disk.img,if=virtio,format=raw
"""
# IPaddr2's parameters for the LAN gateway address on each node's LAN port.
FLOATING_IP = "ip=%s cidr_netmask=24 nic=lan0" % cluster.LAN_GW
# Each node's LAN port its own MAC: the client learns the one holding the
# address from IPaddr2's gratuitous ARP, as on a real LAN.
LAN_MACS = {"node1": "52:54:00:82:01:01", "node2": "52:54:00:82:01:02"}


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

IPADDR2 = OCF_ROOT + "/resource.d/heartbeat/IPaddr2"
# docs/operations.md's crm recipe, the test's paths and addresses in it:
# the promotable clone and the floating IP with the promoted instance, in
# one transaction (a primitive committed alone starts before its clone or
# its constraints exist).
CLONE, IP = "web1-clone", "web1-ip"
CRM = [
    "crm configure <<'EOF'\n"
    "primitive web1 ocf:colo:colo params config=%s colod=%s coloctl=%s logfile=%s "
    "op start timeout=60s op stop timeout=60s op promote timeout=120s "
    "op demote timeout=60s op monitor interval=10s role=Promoted timeout=30s "
    "op monitor interval=11s role=Unpromoted timeout=30s\n" % (CONF_PATH, COLOD, COLOCTL, LOG_PATH) +
    "clone %s web1 meta promotable=true promoted-max=1 promoted-node-max=1 clone-max=2 "
    "clone-node-max=1 notify=true\n" % CLONE +
    "primitive %s ocf:heartbeat:IPaddr2 params %s op monitor interval=10s timeout=20s\n" % (IP, FLOATING_IP) +
    "colocation %s-with-primary inf: %s %s:Promoted\n" % (IP, IP, CLONE) +
    "order %s-after-promote Mandatory: %s:promote %s:start\n" % (IP, CLONE, IP) +
    "commit\n"
    "EOF",
]


def ocf_dir(path):
    """A resource.d for tests/lib/pacemaker.py (ocf_dir=): the agent under
    test as ocf:colo:colo and the installed IPaddr2."""
    for provider, agent, src in (("colo", "colo", AGENT), ("heartbeat", "IPaddr2", IPADDR2)):
        os.makedirs(os.path.join(path, provider))
        shutil.copy(src, os.path.join(path, provider, agent))
    return path


def start_floating_ip(c, node):
    """IPaddr2's start on @node with FLOATING_IP's parameters, by hand
    (where no pacemaker runs it)."""
    env = ["OCF_ROOT=" + OCF_ROOT, "OCF_RESOURCE_INSTANCE=" + IP]
    env += ["OCF_RESKEY_" + kv for kv in FLOATING_IP.split()]
    c.run(node, "env", *env, IPADDR2, "start", timeout=60)


def network(c):
    """The guest's tap on each node (cluster_vm's addresses, forwarding,
    the count of the guest's packets sent to the LAN for
    cluster_vm.serving()), both LAN ports up without the gateway's
    address, the client's route to the guest through it."""
    for host in cluster.NODES:
        c.ip(host, "tuntap", "add", "dev", cluster_vm.TAP, "mode", "tap", "vnet_hdr")
        c.ip(host, "link", "set", cluster_vm.TAP, "address", cluster_vm.GW_MAC)
        c.ip(host, "addr", "add", cluster_vm.GW_IP + "/24", "dev", cluster_vm.TAP)
        c.ip(host, "link", "set", cluster_vm.TAP, "up")
        c.run(host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        c.run(host, "iptables", "-t", "mangle", "-N", "colo-served")
        c.run(host, "iptables", "-t", "mangle", "-A", "POSTROUTING", "-o", "lan0", "-j", "colo-served")
        c.run(host, "iptables", "-t", "mangle", "-A", "colo-served", "-s", cluster_vm.GUEST_IP)
        c.ip(host, "link", "set", "lan0", "address", LAN_MACS[host])
    c.ip("client", "route", "add", "10.81.0.0/24", "via", cluster.LAN_GW)


def has_floating_ip(c, node):
    """Whether @node's LAN port holds the LAN gateway's address."""
    out = c.run(node, "ip", "-o", "-4", "addr", "show", "dev", "lan0", timeout=10).stdout
    return (" %s/" % cluster.LAN_GW) in out


def write_conf(c, node, managed=True, net=False):
    """@node's CONF_PATH and an empty state dir (a fresh node); with @net
    the guest's network device on cluster_vm.TAP (network() made it) and
    an empty disk (protect copies it)."""
    i = cluster.NODES.index(node)
    peer = cluster.NODES[1 - i]
    state = c.hostdir(node, "colo-" + VM)
    os.makedirs(state, exist_ok=True)
    os.makedirs(c._fs(node, CONF_DIR), exist_ok=True)
    path = c._fs(node, CONF_PATH)
    conf = CONF
    if net:
        vmdir = cluster_vm.vmdir(c, node)
        os.makedirs(vmdir, exist_ok=True)
        with open(os.path.join(vmdir, "disk.img"), "wb") as f:
            f.truncate(cluster_vm.DISK_SIZE)
        conf = conf.replace("-kernel {guest}\n", "-kernel {guest}" + NET_ARGS.format(
            vmdir=vmdir, ip=cluster_vm.GUEST_IP, gw=cluster_vm.GW_IP, tap=cluster_vm.TAP, mac=cluster_vm.GUEST_MAC))
        conf = conf.replace("guest-interface=tap-{vm}", "guest-interface=" + cluster_vm.TAP)
    elif c.run(node, "ip", "link", "show", "tap-" + VM, check=False).returncode != 0:
        # colod drives colo-proxy on the guest's tap (the guest has no
        # network device: an idle tap).
        c.ip(node, "tuntap", "add", "dev", "tap-" + VM, "mode", "tap")
        c.ip(node, "link", "set", "tap-" + VM, "up")
    with open(path, "w") as f:
        f.write(conf.format(vm=VM, vmm=VMM, guest=GUEST, proxy=PROXY, state=state, peer=peer, peer_id=2 - i,
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
