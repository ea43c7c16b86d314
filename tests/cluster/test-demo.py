#!/usr/bin/env python3
"""scripts/demo.py, README's first command (./quickstart demo), as a
newcomer runs it: it ends with status 0, says what it showed (the
takeover, how long the guest was out of reach, the bytes checked, none
wrong, none broken, node1 back as the secondary), within two minutes,
and leaves no namespace behind."""
import os
import re
import subprocess
import sys
import time

import cluster
import cluster_vm
import tap

SRCDIR = os.environ.get("COLO_SRCDIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEMO = os.path.join(SRCDIR, "scripts", "demo.py")


@tap.timeout(200)
def test_demo():
    cluster.require()
    cluster_vm.require()
    start = time.monotonic()
    p = subprocess.Popen([sys.executable, DEMO, os.environ.get("COLO_BUILDDIR", ".")], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        p.terminate()       # the demo tears down on SIGTERM
        out, _ = p.communicate(timeout=30)
        raise AssertionError("the demo took more than 3 minutes:\n" + out) from None
    took = time.monotonic() - start
    print("# the demo took %.0f s" % took)
    assert p.returncode == 0, "exit %d:\n%s" % (p.returncode, out)
    for text in ("VM web1 on node 1: primary-protected", "VM web1 on node 2: secondary-protected",
                 "VM web1 on node 2: primary-alone", "VM web1 on node 1: secondary-protected",
                 "node2's colod runs the guest as the primary", "the LAN gateway 10.82.0.1 is on node2 now",
                 "namespaces, processes and files gone"):
        assert text in out, "%r not in the demo's output:\n%s" % (text, out)
    m = re.search(r"with (\d+) bytes\s+checked, 0 wrong, 0 broken\. colod took over ([\d.]+) s after the power "
                  r"loss; the guest was out of\s+reach for ([\d.]+) s", out)
    assert m and int(m.group(1)) > 0, out
    print("# %s bytes checked; colod took over after %s s; the guest out of reach %s s" % m.groups())
    assert took < 120, "the demo took %.0f s, more than two minutes" % took
    left = [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
            if n.startswith("colodemo%d-" % p.pid)]
    assert not left, left


tap.run(globals())
