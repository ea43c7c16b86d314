"""The harness API (docs: /work INTERFACES, tests/lib/cluster_vm.py after
its port to colod) over colod, for run-matrix while cluster_vm.py still
drives the guest over QMP: colod on both nodes with colo-vmm and
colo-proxy under it (tests/colod/test-colod-proxy.py's set-up), the VM's
files and colod's state on each node's disk (Cluster.disk), and the LAN
gateway following the primary (follow_lan, in a thread: what the role
hook does once cluster_vm has it). run-matrix uses cluster_vm instead as
soon as it has wait_protected.
"""
import json
import os
import shutil
import threading
import time

import cluster
import cluster_vm
import colod_cluster
import tap

COLOCTL = os.path.join(colod_cluster.BUILD, "coloctl", "coloctl")
VM = "web1"

CONF = """[vm]
name=web1
vmm-binary={vmm}
vmm-args=-m 64M -smp 1 -kernel {guest} -serial file:{vmdir}/serial.log \
 -append "ip={ip}/24 gw={gw} interval=0" \
 -netdev tap,id=n0,ifname={tap},script=no,downscript=no -device virtio-net-pci,netdev=n0,mac={mac} \
 -drive file={vmdir}/disk.img,if=virtio,format=raw
state-dir={vmdir}/state
[cluster]
peer-name={peer}
peer-node-id={peer_id}
[replication]
address={addr}
peer-address={peer_addr}
proxy-port={proxy_port}
[proxy]
guest-interface={tap}
proxy-binary={proxy}
[timeouts]
peer-wait-ms=5000
protect-retry-ms=2000
restart-grace-ms=20000
"""

serving = cluster_vm.serving
start_observer = cluster_vm.start_observer
observer_path = cluster_vm.observer_path
require = cluster_vm.require
PRIMARY_STATES = ("primary-alone", "primary-protected", "protect-requested", "protecting", "primary-starting")


def _node_conf(c, node):
    os.makedirs(c.disk(node, "state"), exist_ok=True)
    with open(c.disk(node, "disk.img"), "wb") as f:
        f.truncate(cluster_vm.DISK_SIZE)
    return dict(vmdir=c.disk(node), ip=cluster_vm.GUEST_IP, gw=cluster_vm.GW_IP, tap=cluster_vm.TAP,
                mac=cluster_vm.GUEST_MAC, proxy_port=cluster_vm.PROXY_PORT)


def _state_file(c, node, role, generation):
    with open(c.disk(node, "state", "state"), "w") as f:
        f.write("[colod-state]\nversion=1\nrole=%s\ngeneration=%d\n" % (role, generation))


def start(c, timeout=240):
    """colod on both nodes (corosync already up), the guest started on
    node1 and protected onto node2."""
    colod_cluster.require(COLOCTL)
    for i, n in enumerate(cluster.NODES):
        more = _node_conf(c, n)
        _state_file(c, n, ("primary", "secondary")[i], 5 - i)
        peer = cluster.NODES[1 - i]
        with open(c.hostdir(n, "web1.conf"), "w") as f:
            f.write(CONF.format(vmm=colod_cluster.VMM, guest=colod_cluster.GUEST, proxy=colod_cluster.PROXY,
                                peer=peer, peer_id=2 - i, addr=cluster.REPL[n], peer_addr=cluster.REPL[peer], **more))
    cluster_vm._network(c)
    for n in cluster.NODES:
        colod_cluster.start(c, n)
    wait_protected(c, "node1", timeout)
    follow_lan(c)


def coloctl(c, node, *args):
    """coloctl --json ARGS on @node, parsed."""
    r = c.run(node, COLOCTL, "--json", *args, check=False, timeout=10)
    if r.returncode:
        raise RuntimeError("coloctl %s on %s: exit %d: %s" % (" ".join(args), node, r.returncode, r.stderr.strip()))
    return json.loads(r.stdout) if r.stdout.strip() else {}


def _colod(c, node):
    if not c.pids(node, "colod") or c.frozen(node, "colod"):
        return None
    try:
        return coloctl(c, node, "status")
    except Exception:  # noqa: BLE001 - not answering
        return None


def status(c, host):
    st = _colod(c, host)
    out = {"role": "unknown" if c.frozen(host, "colod") else "none", "running": False, "protected": False,
           "checkpoints": None, "served-packets": cluster_vm.served(c, host), "colod": st}
    if st:
        out.update(role=st["role"], running=st["running"],
                   protected=st["state"] in ("primary-protected", "secondary-protected"),
                   checkpoints=((st.get("colo") or {}).get("checkpoints") or {}).get("count"))
    return out


def primary(c):
    """The node whose colod says it runs the VM as primary (the first,
    if both do)."""
    for n in cluster.NODES:
        st = _colod(c, n)
        if st and st["state"] in PRIMARY_STATES and st["running"]:
            return n
    return None


def wait_protected(c, primary_node, timeout):
    other = [n for n in cluster.NODES if n != primary_node][0]

    def done():
        a, b = _colod(c, primary_node), _colod(c, other)
        return a and b and a["state"] == "primary-protected" and b["state"] == "secondary-protected"
    tap.wait_until(done, timeout, "COLO with %s primary" % primary_node, interval=0.3)


def restart_node(c, node):
    """@node rebooted: whatever is left on it killed, its faults' rules
    gone, then corosync, corosync-qdevice and colod again."""
    c._kill_all([node])
    c.run(node, "iptables", "-F", "colo-fault")
    # A reboot empties /run and /dev/shm (tmpfs).
    for d in ("/run", "/dev/shm"):
        path = c._fs(node, d)
        for f in os.listdir(path):
            if os.path.isdir(os.path.join(path, f)) and not os.path.islink(os.path.join(path, f)):
                shutil.rmtree(os.path.join(path, f))
            else:
                os.unlink(os.path.join(path, f))
    os.makedirs(c._fs(node, "/run/corosync-qdevice"), exist_ok=True)
    os.makedirs(c._fs(node, "/run/corosync-qnetd"), exist_ok=True)
    c.run(node, colod_cluster.PROXY, "--cleanup", "--guest-iface", cluster_vm.TAP, check=False)
    c.spawn(node, "corosync", "corosync", "-f")
    tap.wait_until(lambda: c._ipc_ready(node), 30, "corosync on " + node)
    c.spawn(node, "corosync-qdevice", "corosync-qdevice", "-f")
    colod_cluster.start(c, node)


_follow = {}


def follow_lan(c):
    """A thread that does what the role hook does: the LAN port of a node
    whose colod runs the VM as primary is up with the gateway's address,
    the others' down. A frozen or silent node's port is left as it is
    (its hook would not run either)."""
    if "thread" in _follow:
        _follow["c"] = c
        return
    _follow["c"] = c

    def run():
        up = {"node1": True, "node2": False}
        while not _follow.get("stop"):
            cc = _follow["c"]
            for n in cluster.NODES:
                try:
                    st = _colod(cc, n)
                    if st is None and cc.pids(n, "colod"):
                        continue
                    want = bool(st and st["state"] in PRIMARY_STATES and st["running"])
                    if want != up[n]:
                        if want:
                            cc.ip(n, "addr", "replace", cluster.LAN_GW + "/24", "dev", "lan0")
                        cc.ip(n, "link", "set", "lan0", "up" if want else "down")
                        up[n] = want
                except Exception:  # noqa: BLE001 - a cluster being torn down
                    pass
            time.sleep(0.1)
    _follow["thread"] = threading.Thread(target=run, daemon=True)
    _follow["thread"].start()
