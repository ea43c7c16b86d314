"""COLO between two colo-vmm on loopback with the test guest and its memory
workload: enter COLO, checkpoint periodically and on request, fail over to
either side (the other killed, frozen or cut off), refusals."""
import hashlib
import os
import random
import re
import signal
import subprocess
import time

from colo_vmm import Vmm, free_port, lost_heartbeat, require_kvm, wait_until
from qmp import QMPError
import netns
import tap

GUEST = "interval=0 dirty_pages=32 dirty_ms=20 area=8M"
BANNER = "colo-testguest ready"
MEM = "64M"


def set_colo(vm, state=True):
    vm.qmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "x-colo", "state": state},
                                                        {"capability": "events", "state": True}])


def protect(pri, delay, mem=MEM, wrap=(), port=None, multifd=0):
    """A fresh secondary for @pri, in COLO with it once this returns; with
    @multifd channels for the pages if not 0."""
    uri = "tcp:127.0.0.1:%d" % (port or free_port())
    sec = Vmm(smp=2, mem=mem, append=GUEST, extra=["-incoming", uri], wrap=wrap).start()
    try:
        for vm in (pri, sec):
            set_colo(vm)
            if multifd:
                vm.qmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "multifd", "state": True}])
                vm.qmp.cmd("migrate-set-parameters", args={"multifd-channels": multifd})
        pri.qmp.cmd("migrate-set-parameters", args={"x-checkpoint-delay": delay, "max-bandwidth": 0})
        pri.qmp.cmd("migrate", uri=uri)
        for vm in (pri, sec):
            wait_until(lambda: vm.qmp.cmd("query-migrate").get("status") == "colo", 60, "COLO")
        assert pri.qmp.cmd("query-colo-status")["mode"] == "primary"
        assert sec.qmp.cmd("query-colo-status")["mode"] == "secondary"
        for vm in (pri, sec):
            assert vm.qmp.cmd("query-status")["status"] == "running"
    except BaseException:
        sec.close()
        raise
    return sec


def colo_pair(delay=200, mem=MEM, multifd=0):
    """A primary and a secondary in COLO, checkpointing every @delay ms."""
    pri = Vmm(smp=2, mem=mem, append=GUEST).start()
    try:
        pri.wait_serial(BANNER, 60)
        return pri, protect(pri, delay, mem, multifd=multifd)
    except BaseException:
        pri.close()
        raise


def checkpoints(vm):
    return vm.qmp.cmd("query-colo-status")["checkpoints"]["count"]


def wait_checkpoints(vm, n, timeout=60):
    start = checkpoints(vm)
    wait_until(lambda: checkpoints(vm) >= start + n, timeout, "%d more checkpoints" % n)


def ram_digest(vm):
    return hashlib.sha256(vm.read_guest(0, 64 << 20)).hexdigest()


def assert_takes_over(vm, mode):
    """@vm left COLO on request and its guest runs on, its memory verified."""
    ev = vm.qmp.wait_event("COLO_EXIT", 10)
    assert ev["data"] == {"mode": mode, "reason": "request"}, ev
    st = vm.qmp.cmd("query-colo-status")
    assert (st["mode"], st["last-mode"], st["reason"]) == ("none", mode, "request"), st
    wait_until(lambda: vm.qmp.cmd("query-migrate").get("status") == "completed", 10, "migration completed")
    assert vm.qmp.cmd("query-status")["status"] == "running"
    hb = vm.heartbeat()
    wait_until(lambda: vm.heartbeat() > hb, 30, "the heartbeat after failover")
    vm.qmp.cmd("stop")
    assert vm.workload_problems() == []


def bytes_sent_per_connection(port):
    """{local port: bytes acked} of this host's TCP connections to @port (ss -ti)."""
    out = subprocess.run(["ss", "-Htin", "state", "established", "dport", "= :%d" % port],
                         capture_output=True, text=True, check=True).stdout
    sent = {}
    for conn in re.split(r"\n(?=\S)", out.strip()):
        local = re.search(r":(\d+)\s+\S+:%d\b" % port, conn)
        acked = re.search(r"bytes_acked:(\d+)", conn)
        if local:
            sent[int(local.group(1))] = int(acked.group(1)) if acked else 0
    return sent


def test_checkpoints_carry_the_primary_state():
    """With the secondary's own guest stopped, a checkpoint of a stopped
    primary leaves the secondary's RAM equal to the primary's, byte for byte."""
    checkpoints_carry_the_primary_state()


def test_checkpoints_over_multifd_channels():
    """The same with the checkpoints' pages on three multifd channels; the
    pages do travel on several connections."""
    checkpoints_carry_the_primary_state(multifd=3)


def checkpoints_carry_the_primary_state(multifd=0):
    require_kvm()
    pri, sec = colo_pair(multifd=multifd)
    try:
        if multifd:
            port = int(sec.argv[sec.argv.index("-incoming") + 1].rsplit(":", 1)[1])
            before = bytes_sent_per_connection(port)
            assert len(before) == 1 + multifd, before
            wait_checkpoints(pri, 5)
            after = bytes_sent_per_connection(port)
            grew = [after.get(p, 0) - b for p, b in before.items()]
            # The dirty pages of five checkpoints, a few MiB: most of them
            # on channels other than the main one (which carries the device state).
            print("# bytes per connection grew", sorted(grew))
            assert sum(1 for g in grew if g > 64 << 10) >= 2, (before, after)
        wait_checkpoints(pri, 3)
        sec.qmp.cmd("stop")     # the secondary's guest now changes only through checkpoints
        wait_checkpoints(pri, 2)
        pri.qmp.cmd("stop")
        pri.qmp.cmd("x-colo-checkpoint")
        wait_checkpoints(pri, 1)
        assert ram_digest(pri) == ram_digest(sec)
        st = pri.qmp.cmd("query-colo-status")["checkpoints"]
        assert st["reasons"]["request"] >= 1 and st["reasons"]["periodic"] >= 3, st
        assert st["pause-us"]["max"] >= st["pause-us"]["p99"] >= st["pause-us"]["p50"] > 0, st
        assert checkpoints(sec) >= st["count"] - 1, (checkpoints(sec), st)
        ev = pri.qmp.wait_event("COLO_CHECKPOINT", 10)
        assert ev["data"]["reason"] in ("periodic", "request") and ev["data"]["pause-us"] > 0, ev
        pri.qmp.cmd("cont")
        sec.qmp.cmd("cont")
        wait_checkpoints(pri, 2)
    finally:
        pri.close()
        sec.close()


def rss_kib(vm):
    with open("/proc/%d/smaps_rollup" % vm.proc.pid) as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Rss:"))


def test_secondary_ram_populated():
    """Once COLO runs, the secondary faults its guest's whole RAM in (in the
    background) rather than inside the checkpoints' commits; checkpoints
    go on meanwhile."""
    require_kvm()
    pri, sec = colo_pair()
    try:
        wait_until(lambda: "the guest's RAM is populated (64 MiB" in open(sec.log_path).read(), 30,
                   "the secondary's RAM populated")
        rss = rss_kib(sec)
        print("# RSS: secondary %d KiB, primary %d KiB" % (rss, rss_kib(pri)))
        assert rss >= 64 << 10, rss
        wait_checkpoints(pri, 3)
    finally:
        pri.close()
        sec.close()


def failover_after_checkpoints(primary_dies, multifd=0):
    require_kvm()
    pri, sec = colo_pair(multifd=multifd)
    victim, survivor, mode = (pri, sec, "secondary") if primary_dies else (sec, pri, "primary")
    try:
        wait_checkpoints(pri, 5)
        victim.proc.kill()
        survivor.qmp.cmd("x-colo-lost-heartbeat")
        assert_takes_over(survivor, mode)
    finally:
        pri.close()
        sec.close()


def test_secondary_takes_over_when_primary_dies():
    failover_after_checkpoints(primary_dies=True)


def test_primary_runs_on_when_secondary_dies():
    failover_after_checkpoints(primary_dies=False)


def test_failover_both_ways_over_multifd():
    failover_after_checkpoints(primary_dies=True, multifd=2)
    failover_after_checkpoints(primary_dies=False, multifd=2)


def test_failover_at_random_points():
    """Failover at random moments (inside a checkpoint's transfer or load,
    or between checkpoints), 20 times on each side: the survivor's guest
    runs on with its memory consistent, and is protected again by a fresh
    secondary for the next round (re-protect). Replay with COLO_TEST_SEED."""
    require_kvm()
    seed = int(os.environ.get("COLO_TEST_SEED", random.randrange(1 << 30)))
    print("# seed %d" % seed, flush=True)
    rng = random.Random(seed)
    victims = ["primary", "secondary"] * 20
    rng.shuffle(victims)
    pri, sec = colo_pair(delay=rng.choice([20, 50, 200]), mem="32M")
    try:
        for victim in victims:
            wait_checkpoints(pri, rng.randrange(1, 3))
            time.sleep(rng.uniform(0, 0.25))    # a random point of the checkpoint cycle
            dead, survivor, mode = (pri, sec, "secondary") if victim == "primary" else (sec, pri, "primary")
            dead.proc.kill()
            survivor.qmp.cmd("x-colo-lost-heartbeat")
            assert_takes_over(survivor, mode)
            survivor.qmp.cmd("cont")
            dead.close()
            pri, sec = survivor, None
            sec = protect(pri, rng.choice([20, 50, 200]), mem="32M")
    finally:
        pri.close()
        if sec:
            sec.close()


def lost_heartbeat_in_time(vm):
    lost_heartbeat(vm)


def test_failover_with_a_frozen_peer():
    """SIGSTOP: the peer's sockets stay open and silent; neither side may
    wait on them."""
    require_kvm()
    for frozen_primary in (True, False):
        pri, sec = colo_pair(delay=50)
        frozen, survivor, mode = (pri, sec, "secondary") if frozen_primary else (sec, pri, "primary")
        try:
            wait_checkpoints(pri, 2)
            os.kill(frozen.proc.pid, signal.SIGSTOP)
            time.sleep(0.3)     # let the survivor block on the silent peer mid-checkpoint
            lost_heartbeat_in_time(survivor)
            assert_takes_over(survivor, mode)
        finally:
            os.kill(frozen.proc.pid, signal.SIGCONT)
            pri.close()
            sec.close()


def test_failover_with_a_black_hole_link():
    """Packets between the two dropped, not refused (iptables DROP in a
    namespace of their own): both answer x-colo-lost-heartbeat in time,
    whatever their threads were blocked on, and run on."""
    require_kvm()
    netns.require(("ip", "iptables"), "a namespace with iptables rules")
    with netns.Netns("bh", prefix="colobh") as net:
        port = 47000 + os.getpid() % 1000
        pri = Vmm(smp=2, mem=MEM, append=GUEST, wrap=net.argv("bh")).start()
        sec = None
        try:
            pri.wait_serial(BANNER, 60)
            sec = protect(pri, 50, wrap=net.argv("bh"), port=port)
            wait_checkpoints(pri, 2)
            for direction in ("--dport", "--sport"):
                net.exe("bh", "iptables", "-I", "INPUT", "-p", "tcp", direction, str(port), "-j", "DROP")
            time.sleep(0.3)     # let both block on the silent link mid-checkpoint
            # quit ends a primary whose peer is a black hole, without waiting on it.
            pri.qmp.cmd("quit")
            assert pri.wait_exit(10) == 0
            lost_heartbeat_in_time(sec)
            assert_takes_over(sec, "secondary")
        finally:
            pri.close()
            if sec:
                sec.close()


def test_refusals():
    require_kvm()
    with Vmm(mem="32M", append="interval=0") as vm:
        try:
            vm.qmp.cmd("x-colo-lost-heartbeat")
        except QMPError as e:
            assert e.desc == "VM is not in COLO mode", e.desc
        else:
            raise AssertionError("x-colo-lost-heartbeat outside COLO accepted")
        vm.qmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "x-colo", "state": False}])
        try:
            vm.qmp.cmd("migrate-set-parameters", args={"x-checkpoint-delay": 0})
        except QMPError as e:
            assert "x-checkpoint-delay" in e.desc, e.desc
        else:
            raise AssertionError("x-checkpoint-delay 0 accepted")


def test_secondary_without_x_colo_refuses():
    """The source asks for COLO, the destination was not told: the stream is
    refused with a clear error and the source runs on."""
    require_kvm()
    uri = "tcp:127.0.0.1:%d" % free_port()
    pri = Vmm(mem=MEM, append=GUEST).start()
    sec = Vmm(mem=MEM, append=GUEST, extra=["-incoming", uri]).start()
    try:
        pri.wait_serial(BANNER, 60)
        set_colo(pri)
        pri.qmp.cmd("migrate", uri=uri)
        wait_until(lambda: pri.qmp.cmd("query-migrate").get("status") == "failed", 60, "the migration to fail")
        assert sec.wait_exit(30) == 1
        assert "x-colo" in sec.output(), sec.output()
        assert pri.qmp.cmd("query-status")["status"] == "running"
        assert pri.qmp.cmd("query-colo-status")["mode"] == "none"
    finally:
        pri.close()
        sec.close()


tap.run(globals())
