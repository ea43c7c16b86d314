"""The security tests' colod: node1 of tests/lib/cluster.py's two-node
harness with corosync up, and a VM file for it (no VM is started: node1
waits for its peer's colod, which never comes)."""
import contextlib
import os
import shutil
import tempfile

import cluster

CONF = """[vm]
name=web1
vmm-args=-m 64M -kernel /nonexistent
state-dir={state}
{extra}
[cluster]
peer-name=node2
peer-node-id=2
[replication]
address=10.91.0.1
peer-address=10.91.0.2
[proxy]
guest-interface=tap-web1
"""


@contextlib.contextmanager
def running(tmp_mode=None):
    """(cluster, a temporary directory) with corosync quorate on both nodes;
    everything gone afterwards. @tmp_mode: the directory's mode."""
    cluster.require()
    tmp = tempfile.mkdtemp(prefix="colo-security-")
    if tmp_mode is not None:
        os.chmod(tmp, tmp_mode)
    c = None
    try:
        c = cluster.Cluster.create(os.path.join(tmp, "run"), token=1000, qdevice_timeout=3000)
        c.start_corosync()
        c.wait_quorate(cluster.NODES)
        yield c, tmp
    finally:
        if c:
            c.down()
        shutil.rmtree(tmp, ignore_errors=True)


def write_conf(c, name, extra=""):
    """node1's VM file @name, with @extra lines in [vm]; returns its path."""
    path = c.hostdir("node1", name)
    with open(path, "w") as f:
        f.write(CONF.format(state=c.hostdir("node1", "colo-web1"), extra=extra))
    return path
