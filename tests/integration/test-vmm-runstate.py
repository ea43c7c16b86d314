"""The run state around a migration: nothing runs a guest on both sides.

`cont` on a destination waits for the load to end (QEMU's autostart), `stop`
there keeps it paused; `cont` on a source whose migration is finishing (the
final precopy pass, postcopy, postcopy-paused) is refused with QEMU's
"Migration is not finalized yet"; commands that change RAM or devices are
refused while a migration loads or saves them."""
import time

from colo_vmm import Vmm, free_port, require_kvm, wait_migration_end, wait_until
from qmp import QMPError
import tap

GUEST = "interval=0 dirty_pages=32 dirty_ms=20 area=8M"
BANNER = "colo-testguest ready"


def refused(vm, command, expect, **args):
    try:
        vm.qmp.cmd(command, **args)
    except QMPError as e:
        assert expect in e.desc, (command, e.desc)
        return
    raise AssertionError("%s was accepted in state %s" % (command, vm.qmp.cmd("query-status")["status"]))


wait_migrated = wait_migration_end


def migrate_at_full_speed(src, uri):
    src.qmp.cmd("migrate-set-parameters", args={"max-bandwidth": 0})
    src.qmp.cmd("migrate", uri=uri)
    assert wait_migrated(src)["status"] == "completed"


def assert_stands_still(vm, seconds=0.5):
    """The guest's heartbeat (100 Hz while it runs) does not move: its vCPUs
    are stopped. Watching for an absence takes a while by nature."""
    hb = vm.heartbeat()
    time.sleep(seconds)
    assert vm.heartbeat() == hb, "the guest runs: heartbeat %d -> %d" % (hb, vm.heartbeat())


def assert_runs_verified(vm):
    hb = vm.heartbeat()
    wait_until(lambda: vm.heartbeat() > hb, 30, "the heartbeat on the destination")
    vm.qmp.cmd("stop")
    assert vm.workload_problems() == []


def test_cont_on_deferred_destination_waits_for_the_load():
    """Before: cont booted a fresh guest and migrate-incoming was refused."""
    require_kvm()
    uri = "tcp:127.0.0.1:%d" % free_port()
    src = Vmm(mem="64M", append=GUEST).start()
    dst = Vmm(mem="64M", append=GUEST, extra=["-incoming", "defer"]).start()
    try:
        src.wait_serial(BANNER, 60)
        dst.qmp.cmd("cont")
        assert dst.qmp.cmd("query-status")["status"] == "inmigrate"
        dst.qmp.cmd("migrate-incoming", uri=uri)
        migrate_at_full_speed(src, uri)
        wait_until(lambda: dst.qmp.cmd("query-status")["status"] == "running", 30, "the destination to run")
        # The guest that runs is the migrated one: it never booted here.
        assert BANNER not in dst.serial(), dst.serial()
        assert_runs_verified(dst)
    finally:
        src.close()
        dst.close()


def slow_pair():
    """A source whose workload has written its whole 8 MiB area, so that
    the pages to send take seconds on a slow link, and a destination."""
    uri = "tcp:127.0.0.1:%d" % free_port()
    src = Vmm(mem="64M", append=GUEST).start()
    dst = Vmm(mem="64M", append=GUEST, extra=["-incoming", uri]).start()
    src.wait_serial(BANNER, 60)
    wait_until(lambda: src.status()["pages_dirtied"] >= 2048, 60, "the workload to fill its area")
    return src, dst, uri


def test_cont_on_destination_during_precopy_is_deferred():
    """Before: the destination ran on half-loaded RAM and the migration failed."""
    require_kvm()
    src, dst, uri = slow_pair()
    try:
        src.qmp.cmd("migrate-set-parameters", args={"max-bandwidth": 2 << 20})
        src.qmp.cmd("migrate", uri=uri)
        wait_until(lambda: dst.qmp.cmd("query-migrate").get("status") == "active", 30,
                   "the destination to load")
        dst.qmp.cmd("cont")
        assert dst.qmp.cmd("query-status")["status"] == "inmigrate"
        # Nothing that changes guest RAM or devices while it loads.
        refused(dst, "system_reset", "incoming migration")
        refused(dst, "system_powerdown", "incoming migration")
        refused(dst, "migrate", "incoming migration", uri="tcp:127.0.0.1:1")
        src.qmp.cmd("migrate-set-parameters", args={"max-bandwidth": 0})
        assert wait_migrated(src)["status"] == "completed"
        assert src.qmp.cmd("query-status")["status"] == "postmigrate"
        wait_until(lambda: dst.qmp.cmd("query-status")["status"] == "running", 30, "the destination to run")
        assert_runs_verified(dst)
    finally:
        src.close()
        dst.close()


def test_stop_on_destination_keeps_it_paused():
    require_kvm()
    src, dst, uri = slow_pair()
    try:
        dst.qmp.cmd("stop")
        migrate_at_full_speed(src, uri)
        wait_until(lambda: dst.qmp.cmd("query-migrate").get("status") == "completed", 30,
                   "the destination to complete")
        wait_until(lambda: dst.qmp.cmd("query-status")["status"] == "paused", 30, "the destination to pause")
        assert_stands_still(dst)
        dst.qmp.cmd("cont")
        assert_runs_verified(dst)
    finally:
        src.close()
        dst.close()


def test_cont_on_source_in_finish_migrate_is_refused():
    """Before: accepted; the source then reported postmigrate with its vCPUs
    running while the destination ran the same guest."""
    require_kvm()
    src, dst, uri = slow_pair()
    try:
        # A slow link and a generous downtime limit: the final pass sends
        # seconds' worth of dirty pages, with the source in finish-migrate.
        src.qmp.cmd("migrate-set-parameters", args={"max-bandwidth": 4 << 20, "downtime-limit": 20000})
        src.qmp.cmd("migrate", uri=uri)
        tries = 0
        while True:
            status = src.qmp.cmd("query-status")["status"]
            if status == "finish-migrate":
                refused(src, "cont", "Migration is not finalized yet")
                refused(src, "system_reset", "Migration is not finalized yet")
                tries += 1
            if status == "postmigrate" or src.qmp.cmd("query-migrate")["status"] != "active" and tries:
                break
            assert status in ("running", "finish-migrate"), status
            time.sleep(0.01)
        assert tries, "the final phase was never seen"
        assert wait_migrated(src)["status"] == "completed"
        assert src.qmp.cmd("query-status")["status"] == "postmigrate"
        assert_stands_still(src)
        wait_until(lambda: dst.qmp.cmd("query-status")["status"] == "running", 30, "the destination to run")
        assert_runs_verified(dst)
    finally:
        src.close()
        dst.close()


def test_paused_source_ends_postmigrate():
    """A paused source goes through finish-migrate too and ends postmigrate
    (before: it stayed "paused", and a cont in its final pass ran it)."""
    require_kvm()
    src, dst, uri = slow_pair()
    try:
        src.qmp.cmd("stop")
        migrate_at_full_speed(src, uri)
        assert src.qmp.cmd("query-status")["status"] == "postmigrate"
        assert_stands_still(src)
        wait_until(lambda: dst.qmp.cmd("query-status")["status"] == "paused", 30, "the destination to pause")
    finally:
        src.close()
        dst.close()


def test_cont_on_source_in_postcopy_is_refused():
    """Before: cont on a postcopy-paused source ran the stale source while the
    destination held newer pages."""
    require_kvm()
    src, dst, uri = slow_pair()
    try:
        for vm in (src, dst):
            vm.qmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "postcopy-ram", "state": True}])
        src.qmp.cmd("migrate-set-parameters", args={"max-bandwidth": 4 << 20,
                                                     "max-postcopy-bandwidth": 256 << 10})
        src.qmp.cmd("migrate", uri=uri)
        wait_until(lambda: src.qmp.cmd("query-migrate")["status"] == "active", 30, "precopy to start")
        src.qmp.cmd("migrate-start-postcopy")
        wait_until(lambda: src.qmp.cmd("query-migrate")["status"] == "postcopy-active", 30,
                   "postcopy on the source")
        refused(src, "cont", "Migration is not finalized yet")
        dst.proc.kill()     # the link breaks with the destination
        wait_until(lambda: src.qmp.cmd("query-migrate")["status"] == "postcopy-paused", 30,
                   "the source to notice")
        assert src.qmp.cmd("query-status")["status"] == "finish-migrate"
        refused(src, "cont", "Migration is not finalized yet")
        assert_stands_still(src)
    finally:
        src.close()
        dst.close()


tap.run(globals())
