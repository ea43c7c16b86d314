#!/usr/bin/env python3
"""The quick-start demo: what colo is for, on this one machine. Two hosts
come up (network namespaces, corosync with a witness), colod protects the
bundled test guest with COLO, a client on the LAN streams from it with
every byte checked, the primary host loses power, the stream carries on
from the other host, and the old primary comes back as the new secondary;
then everything is torn down. About a minute; needs root and /dev/kvm.

usage: scripts/demo.py BUILDDIR
"""
import os
import shutil
import signal
import sys
import tempfile
import time

top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("COLO_BUILDDIR", sys.argv[1] if len(sys.argv) > 1 else os.path.join(top, "_build", "normal"))
os.environ.setdefault("COLO_SRCDIR", top)
sys.path.insert(0, os.path.join(top, "tests", "lib"))

import cluster  # noqa: E402
import cluster_client  # noqa: E402
import cluster_vm  # noqa: E402
import tap  # noqa: E402

T0 = time.monotonic()


def say(text):
    print("\n\033[1m==> %s\033[0m" % text, flush=True)


def note(text):
    print("    " + text, flush=True)


def elapsed(since):
    return time.monotonic() - since


def show_coloctl(c, node):
    r = c.run(node, cluster_vm.COLOCTL, "--vm", cluster_vm.VM, "status", check=False, timeout=10)
    note("$ coloctl status            (on %s)" % node)
    for line in (r.stdout or r.stderr).rstrip().splitlines():
        # The COLO counters and settings are for operators; the demo shows
        # who does what.
        if line.startswith(("COLO:", "Settings:")):
            break
        note("  " + line)


def observed(c):
    return cluster_client.read(cluster_vm.observer_path(c)) or {}


def show_client(c, seconds):
    """The client's counters once a second for @seconds."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(1)
        o = observed(c)
        note("client: %4d rounds, %8d bytes checked, %d wrong, %d connections broken" %
             (o.get("rounds", 0), o.get("echo_bytes", 0) + o.get("stream_bytes", 0), o.get("wrong_bytes", 0),
              o.get("broken", 0)))


def demo(c):
    say("1. Two hosts on this machine")
    note("node1 and node2 are the two hosts, each in network namespaces of its own; a witness host")
    note("(corosync-qnetd) breaks ties, a client host sits on the guests' LAN (a bridge).")
    note("Links: the LAN, corosync's ring, the replication link, each node to the witness.")
    t = time.monotonic()
    c.start_corosync()
    note("corosync runs on both nodes, quorate with the witness's vote (%.1f s)" % elapsed(t))

    say("2. colod on both hosts protects the test guest")
    note("node1 holds the newer copy of the VM: its colod starts the guest in colo-vmm and protects it")
    note("onto node2 (COLO: node2 runs a replica in lock-step; colo-proxy compares both guests' replies")
    note("before the client gets them). colod's role hook puts the LAN gateway on the primary.")
    t = time.monotonic()
    cluster_vm.start(c)
    note("protected after %.1f s" % elapsed(t))
    for n in cluster.NODES:
        show_coloctl(c, n)

    say("3. A client streams from the guest")
    note("The client host opens a TCP echo connection and a TCP byte stream to the guest (%s)," % cluster_vm.GUEST_IP)
    note("a round every 100 ms, and checks every byte; it also writes to the guest's disk and reads back.")
    cluster_vm.start_observer(c)
    show_client(c, 3)
    before = observed(c)

    say("4. node1, the primary, loses power")
    note("Every process on node1 is killed at once (colod, colo-vmm, colo-proxy, corosync) and its")
    note("network goes dead. Nobody tells node2: corosync notices the silence (token 1000 ms, consensus")
    note("1200 ms), node2's colod fails over to its replica, and its role hook moves the LAN gateway.")
    ping = cluster_vm.Pinger(c)
    time.sleep(1)
    killed = time.monotonic()
    c.fault("kill-host", "node1")
    tap.wait_until(lambda: cluster_vm.primary(c) == "node2", 60, "node2's colod to take over", interval=0.1)
    took_over = elapsed(killed)
    note("node2's colod runs the guest as the primary %.1f s after the power loss" % took_over)
    tap.wait_until(lambda: cluster.LAN_GW + "/" in c.ip("node2", "addr", "show", "lan0").stdout, 20,
                   "the LAN gateway on node2", interval=0.1)
    note("the LAN gateway %s is on node2 now, announced to the client (gratuitous ARP)" % cluster.LAN_GW)
    start_rounds = observed(c).get("rounds", 0)
    tap.wait_until(lambda: observed(c).get("rounds", 0) >= start_rounds + 20, 60, "the client's stream to go on",
                   interval=0.2)
    gap = ping.stop()

    say("5. The stream carries on from node2")
    after = observed(c)
    show_client(c, 2)
    after = observed(c)
    checked = after["echo_bytes"] + after["stream_bytes"] - before["echo_bytes"] - before["stream_bytes"]
    note("The guest was out of reach for %.2f s (ping every 50 ms from the client)." % gap)
    note("The client's longest stall: %.1f s (its disk requests are retried every 2 s)." %
         (after["longest_stall_ms"] / 1000))
    note("Since the power loss: %d more bytes checked, %d wrong, %d connections broken, %d acknowledged"
         % (checked, after["wrong_bytes"] - before["wrong_bytes"], after["broken"] - before["broken"],
            after.get("writes_lost", 0)))
    note("disk writes lost. Same TCP connections, same guest state: node2's replica was in lock-step.")
    show_coloctl(c, "node2")
    if after["wrong_bytes"] or after["broken"] or after.get("writes_lost"):
        raise AssertionError("the client saw wrong bytes, broken connections or lost writes: %s" % after)

    say("6. node1 comes back, as after a reboot")
    note("corosync and colod start again on node1; colod sees that node2 runs the guest at a newer")
    note("generation, so node1 becomes its secondary: the guest is protected again.")
    t = time.monotonic()
    cluster_vm.restart_node(c, "node1")
    note("protected again after %.1f s, node2 primary, node1 secondary" % elapsed(t))
    show_coloctl(c, "node1")
    show_client(c, 2)
    final = observed(c)
    return {"took_over": took_over, "gap": gap, "stall": final["longest_stall_ms"] / 1000,
            "bytes": final["echo_bytes"] + final["stream_bytes"], "wrong": final["wrong_bytes"],
            "broken": final["broken"]}


def main():
    if os.geteuid() != 0:
        sys.exit("demo: run as root (the hosts are network namespaces)")
    try:
        cluster.require()
        cluster_vm.require()
    except tap.Skip as e:
        sys.exit("demo: cannot run here: %s" % e)
    print("colo demo: a VM that survives the loss of its host, on this one machine (about a minute)")
    rundir = tempfile.mkdtemp(prefix="colo-demo-")
    c = None
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    try:
        c = cluster.Cluster.create(os.path.join(rundir, "run"), token=1000, qdevice_timeout=1000,
                                   prefix="colodemo%d-" % os.getpid())
        result = demo(c)
    except (AssertionError, cluster.SetupError) as e:
        print("\ndemo: failed: %s" % e, file=sys.stderr)
        if c:
            print(c.logs(15), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        say("7. Tearing everything down")
        if c:
            c.down()
        shutil.rmtree(rundir, ignore_errors=True)
        note("namespaces, processes and files gone")
    say("Done in %.0f s" % elapsed(T0))
    note("The primary host died; the client's connections went on from the other host with %d bytes" % result["bytes"])
    note("checked, %d wrong, %d broken. colod took over %.1f s after the power loss; the guest was out of"
         % (result["wrong"], result["broken"], result["took_over"]))
    note("reach for %.2f s. Try it by hand: tests/cluster/colo-cluster up (docs/testing.md)." % result["gap"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
