#!/usr/bin/env python3
"""The short reliability matrix (issue 14 item 4; the long one is
tests/cluster/run-matrix, docs/reliability.md): one round each of a few
key faults on the two-node cluster with colod protecting the test guest
and the client's observer checking every byte, on one cluster. Each fails
on a broken connection, a wrong byte, a lost acknowledged write, a split
brain, a client left stalled or a cluster not protected again. The seed is
printed; COLO_MATRIX_SEED replays it. Needs root, corosync, /dev/kvm and
/dev/net/tun."""
import os
import random
import shutil
import tempfile

import cluster
import cluster_matrix
import cluster_vm
import tap

SEED = int(os.environ.get("COLO_MATRIX_SEED") or random.SystemRandom().randrange(1, 1 << 31))
TOKEN = 1000
# (fault, point): a host lost, a VMM crash inside a checkpoint, a proxy
# crash, the nodes cut apart, the secondary's disk full, the primary's
# colod killed during an initial sync (before colo-vmm's commit the VM
# runs on, after it the secondary takes over), the secondary's during a
# snapshot protect (a cancel that came as colo-vmm entered COLO left the
# VM unprotected for good in about 1 round of 4).
CELLS = (("kill-host:primary", "idle"), ("sigkill-colo-vmm:primary", "transfer"),
         ("sigkill-colo-proxy:secondary", "idle"), ("partition", "idle"), ("disk-full:secondary", "idle"),
         ("sigkill-colod:primary", "initial-sync"), ("sigkill-colod:secondary", "snapshot-protect"))
vm = cluster_vm    # the harness API
the = {}


def matrix():
    if "m" not in the:
        cluster.require()
        vm.require()
        the["dir"] = tempfile.mkdtemp(prefix="colo-matrix-test-")
        c = cluster.Cluster.create(os.path.join(the["dir"], "run"), token=TOKEN, qdevice_timeout=TOKEN)
        the["c"] = c
        c.start_corosync()
        vm.start(c)
        vm.start_observer(c)
        print("# seed %d (COLO_MATRIX_SEED=%d replays it)" % (SEED, SEED))
        the["m"] = cluster_matrix.Matrix(c, vm, SEED, TOKEN, log=print)
    return the["m"]


def cell(fault, point):
    @tap.timeout(110)
    def test():
        m = matrix()
        try:
            r = m.round(fault, point, 0)
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, m.c.logs(30))) from None
        print("%s at %s: stall %s ms, failover %s, hit %s" % (fault, point, r["stall_ms"], r["failover"],
                                                                   r["hit"]))
        assert r["ran"], r
        bad = {k: r[k] for k in ("broken", "wrong", "lost", "split_brain") if r[k]}
        assert r["recovered"] and not bad and not r["note"].strip(), (r, m.c.logs(30))
    test.__name__ = "test_%s_at_%s" % (fault.replace("-", "_").replace(":", "_"), point.replace("-", "_"))
    return test


for _f, _p in CELLS:
    _t = cell(_f, _p)
    globals()[_t.__name__] = _t


def teardown():
    if "c" in the:
        the["c"].down()
    if "dir" in the:
        shutil.rmtree(the["dir"], ignore_errors=True)


cluster.run_tests(globals(), teardown)
