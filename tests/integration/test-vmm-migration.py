"""Live migration between two colo-vmm on this machine: a running guest
moves and goes on, a paused one arrives identical, cancel and a broken link
leave the source running, and a malformed stream is refused cleanly."""
import hashlib
import os
import random
import shutil
import socket
import tempfile
import time

from colo_vmm import Vmm, free_port, require_kvm, wait_migration_end, wait_until
from qmp import QMPClient, QMPError
import tap

GUEST = "interval=0 dirty_pages=32 dirty_ms=20 area=8M"


def pair(uri=None, mem="64M", smp=2, append=GUEST, extra=()):
    uri = uri or "tcp:127.0.0.1:%d" % free_port()
    src = Vmm(smp=smp, mem=mem, append=append, extra=extra).start()
    dst = Vmm(smp=smp, mem=mem, append=append, extra=list(extra) + ["-incoming", uri]).start()
    for vm in (src, dst):
        vm.qmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "events", "state": True}])
    return src, dst, uri


wait_done = wait_migration_end


def ram_digest(vm, size):
    return hashlib.sha256(vm.read_guest(0, size)).hexdigest()


def enable_multifd(src, dst, channels):
    for vm in (src, dst):
        vm.qmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "multifd", "state": True}])
    src.qmp.cmd("migrate-set-parameters", args={"multifd-channels": channels})


def precopy_running_guest_moves(channels):
    require_kvm()
    src, dst, uri = pair()
    try:
        src.wait_serial("colo-testguest ready", 60)
        assert dst.qmp.cmd("query-status")["status"] == "inmigrate"
        if channels:
            enable_multifd(src, dst, channels)
        src.qmp.cmd("migrate-set-parameters", args={"max-bandwidth": 0, "downtime-limit": 300})
        src.qmp.cmd("migrate", uri=uri)
        q = wait_done(src)
        assert q["status"] == "completed", q
        assert q["ram"]["total"] == 64 << 20 and q["ram"]["normal"] > 0, q
        assert q["ram"]["duplicate"] > 0 and q["ram"]["dirty-sync-count"] >= 2, q
        assert "downtime" in q, q
        assert src.qmp.cmd("query-status")["status"] == "postmigrate"
        ev = dst.qmp.wait_event("MIGRATION", 30)
        while ev["data"]["status"] != "completed":
            ev = dst.qmp.wait_event("MIGRATION", 30)
        wait_until(lambda: dst.qmp.cmd("query-status")["status"] == "running", 10, "the destination to run")
        # The guest carries on from where it was: heartbeat and workload go on.
        start = dst.status()
        assert start["cpus_up"] == 2
        wait_until(lambda: dst.status()["pages_dirtied"] > start["pages_dirtied"], 30,
                   "the workload on the destination")
        hb = dst.heartbeat()
        wait_until(lambda: dst.heartbeat() > hb, 30, "the heartbeat on the destination")
        # No page of the workload is stale, lost or torn.
        dst.qmp.cmd("stop")
        assert dst.workload_problems() == []
    finally:
        src.close()
        dst.close()


def test_precopy_running_guest_moves():
    precopy_running_guest_moves(0)


def test_multifd_running_guest_moves():
    precopy_running_guest_moves(3)


# Postcopy's guest goes round a small area fast (256 pages in 160 ms of
# guest time), near the top of its 128 MiB: the background stream (below)
# goes up from where precopy stopped, and reaches that area seconds after
# the switch, so the guest touches pages there that have not arrived even
# on a loaded machine. With 8 MiB from 16 MiB, one run in many completed
# with no demand fault at all (the stream had passed before the guest
# came back to its area).
POSTCOPY_GUEST = "interval=0 dirty_pages=32 dirty_ms=20 area=1M area_base=%d" % (120 << 20)


def postcopy_pair(mem="128M", extra=(), append=GUEST):
    src, dst, uri = pair(mem=mem, extra=extra, append=append)
    for vm in (src, dst):
        vm.qmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "postcopy-ram", "state": True}])
    return src, dst, uri


def postcopy_running_guest_moves(extra=()):
    require_kvm()
    src, dst, uri = postcopy_pair(extra=extra, append=POSTCOPY_GUEST)
    try:
        src.wait_serial("colo-testguest ready", 60)
        # Slow precopy and a slow background stream, so the running guest
        # touches pages that have not arrived yet.
        src.qmp.cmd("migrate-set-parameters", args={"max-bandwidth": 4 << 20,
                                                     "max-postcopy-bandwidth": 128 << 10})
        src.qmp.cmd("migrate", uri=uri)
        wait_until(lambda: src.qmp.cmd("query-migrate")["status"] == "active", 30, "precopy to start")
        src.qmp.cmd("migrate-start-postcopy")
        ev = dst.qmp.wait_event("MIGRATION", 30)
        while ev["data"]["status"] != "postcopy-active":
            ev = dst.qmp.wait_event("MIGRATION", 30)
        q = wait_done(src)
        assert q["status"] == "completed", q
        assert src.qmp.cmd("query-status")["status"] == "postmigrate"
        wait_until(lambda: dst.qmp.cmd("query-migrate").get("status") == "completed", 30,
                   "the destination to complete")
        hb = dst.heartbeat()
        wait_until(lambda: dst.heartbeat() > hb, 30, "the heartbeat on the destination")
        dq = dst.qmp.cmd("query-migrate")
        faults = dq.get("x-postcopy-faults", {"count": 0})
        # The running workload touched pages that had not arrived yet.
        print("# demand faults %d, postcopy requests %d" % (faults["count"], q["ram"]["postcopy-requests"]))
        assert faults["count"] > 0 and q["ram"]["postcopy-requests"] > 0, (q, dq)
        dst.qmp.cmd("stop")
        assert dst.workload_problems() == []
    finally:
        src.close()
        dst.close()


def test_postcopy_running_guest_moves():
    """Default RAM: anonymous memory (huge pages where the host allows)."""
    postcopy_running_guest_moves()


def test_postcopy_running_guest_moves_memfd():
    """-mem-share: RAM in a memfd (discards punch holes, shmem faults)."""
    postcopy_running_guest_moves(["-mem-share"])


def test_postcopy_link_cut_pauses_both():
    require_kvm()
    src, dst, uri = postcopy_pair(mem="256M")
    try:
        src.wait_serial("colo-testguest ready", 60)
        src.qmp.cmd("migrate-set-parameters", args={"max-bandwidth": 4 << 20,
                                                     "max-postcopy-bandwidth": 4 << 20})
        src.qmp.cmd("migrate", uri=uri)
        wait_until(lambda: src.qmp.cmd("query-migrate")["status"] == "active", 30, "precopy to start")
        src.qmp.cmd("migrate-start-postcopy")
        wait_until(lambda: dst.qmp.cmd("query-migrate").get("status") == "postcopy-active", 30,
                   "postcopy on the destination")
        src.proc.kill()     # the source host dies in the middle of postcopy
        wait_until(lambda: dst.qmp.cmd("query-migrate").get("status") == "postcopy-paused", 30,
                   "the destination to notice")
        # It stays up, blocked rather than running on missing memory.
        time.sleep(1)
        assert dst.proc.poll() is None
        assert dst.qmp.cmd("query-status")["status"] == "running"
    finally:
        src.close()
        dst.close()


def test_postcopy_needs_capability():
    require_kvm()
    with Vmm(mem="32M", append="interval=0") as vm:
        try:
            vm.qmp.cmd("migrate-start-postcopy")
        except QMPError as e:
            assert "postcopy" in e.desc.lower(), e.desc
        else:
            raise AssertionError("migrate-start-postcopy without the capability succeeded")


def migrate_paused(src, dst, uri):
    """Stops @src and migrates it to @dst at full speed; both complete."""
    src.qmp.cmd("stop")
    src.qmp.cmd("migrate-set-parameters", args={"max-bandwidth": 0})
    src.qmp.cmd("migrate", uri=uri)
    assert wait_done(src)["status"] == "completed"
    wait_until(lambda: dst.qmp.cmd("query-migrate").get("status") == "completed", 30,
               "the destination to complete")


def paused_source_arrives_identical(channels):
    require_kvm()
    src, dst, uri = pair(uri=None, mem="32M")
    try:
        src.wait_serial("colo-testguest ready", 60)
        if channels:
            enable_multifd(src, dst, channels)
        migrate_paused(src, dst, uri)
        # As QEMU: a paused source gives a paused destination (once it
        # has settled its run state after the stream).
        st = wait_until(lambda: (lambda s: s if s != "inmigrate" else None)(dst.qmp.cmd("query-status")["status"]),
                        30, "the destination to leave inmigrate")
        assert st == "paused", st
        assert not [e for e in dst.qmp.events if e.get("event") == "RESUME"], dst.qmp.events
        assert ram_digest(src, 32 << 20) == ram_digest(dst, 32 << 20)
        dst.qmp.cmd("cont")
        hb = dst.heartbeat()
        wait_until(lambda: dst.heartbeat() > hb, 30, "the heartbeat after cont")
    finally:
        src.close()
        dst.close()


def test_paused_source_arrives_identical():
    paused_source_arrives_identical(0)


def test_multifd_paused_source_arrives_identical():
    paused_source_arrives_identical(2)


def test_unix_socket_removed():
    """The -incoming unix:PATH socket file goes when its listener closes:
    after the migration, on quit, and after migrate-incoming (QEMU does so)."""
    require_kvm()
    d = tempfile.mkdtemp(prefix="colo-mig-sock-")
    try:
        path = os.path.join(d, "mig.sock")
        src, dst, uri = pair(uri="unix:" + path, mem="32M")
        try:
            assert os.path.exists(path)
            migrate_paused(src, dst, uri)
            wait_until(lambda: not os.path.exists(path), 10, "the socket file to go")
            assert dst.proc.poll() is None
        finally:
            src.close()
            dst.close()
        for extra in (["-incoming", "unix:" + path], ["-incoming", "defer"]):
            with Vmm(mem="32M", append="interval=0", extra=extra) as vm:
                if "defer" in extra:
                    vm.qmp.cmd("migrate-incoming", uri="unix:" + path)
                assert os.path.exists(path), extra
                vm.qmp.cmd("quit")
                assert vm.wait_exit(30) == 0
            assert not os.path.exists(path), extra
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_ports_out_of_range_refused():
    require_kvm()
    # migrate-incoming on a VM waiting for one, migrate on a running VM.
    for extra, name in ((["-incoming", "defer"], "migrate-incoming"), ([], "migrate")):
        with Vmm(mem="32M", append="interval=0", extra=extra) as vm:
            for port in ("99999", "65536", "0", "4294967297"):
                uri = "tcp:127.0.0.1:" + port
                try:
                    vm.qmp.cmd(name, uri=uri)
                except QMPError as e:
                    assert e.cls == "GenericError", e
                    assert "port %s is out of range (1 to 65535)" % port in e.desc, (name, e.desc)
                else:
                    raise AssertionError("%s %s succeeded" % (name, uri))
            assert vm.qmp.cmd("query-migrate") == {}
            if extra:
                # A good port still works after those.
                vm.qmp.cmd(name, uri="tcp:127.0.0.1:%d" % free_port())


def test_cancel_leaves_source_running():
    require_kvm()
    src, dst, uri = pair(mem="256M")
    try:
        src.wait_serial("colo-testguest ready", 60)
        # Slow enough that the cancel lands mid-stream: the idle guest's
        # RAM is some 1.6 MB on the wire (zero pages are a few bytes each,
        # and reading untouched anonymous memory costs nothing), so at
        # 512 KiB/s about 3 s.
        src.qmp.cmd("migrate-set-parameters", args={"max-bandwidth": 512 << 10})
        src.qmp.cmd("migrate", uri=uri)
        wait_until(lambda: src.qmp.cmd("query-migrate")["ram"]["transferred"] > 256 << 10, 30,
                   "some RAM to be sent")
        src.qmp.cmd("migrate_cancel")
        q = wait_done(src)
        assert q["status"] == "cancelled", q
        assert src.qmp.cmd("query-status")["status"] == "running"
        hb = src.heartbeat()
        wait_until(lambda: src.heartbeat() > hb, 30, "the source heartbeat after cancel")
        # The destination lost its stream: it ends, with an error, exit code 1.
        assert dst.wait_exit(30) == 1
        assert "incoming migration failed" in open(dst.log_path).read()
    finally:
        src.close()
        dst.close()


def sole_copy_migration(src, uri, marker):
    """migrate with x-sole-copy-file from a QMP connection of its own: the
    migration belongs to that client (docs/qmp.md)."""
    with open(marker, "w") as f:
        f.write("the VM runs only here\n")
    owner = QMPClient(src.qmp_path)
    owner.cmd("migrate", uri=uri, **{"x-sole-copy-file": marker})
    return owner


def test_sole_copy_owner_gone_cancels():
    """The client that started a sole-copy migration goes away (colod
    killed) before the destination holds a whole copy: the migration is
    cancelled, the file stays, the guest runs on here."""
    require_kvm()
    src, dst, uri = pair(mem="256M")
    marker = os.path.join(src.dir, "sole-copy")
    try:
        src.wait_serial("colo-testguest ready", 60)
        src.qmp.cmd("migrate-set-parameters", args={"max-bandwidth": 512 << 10})     # as above
        owner = sole_copy_migration(src, uri, marker)
        wait_until(lambda: src.qmp.cmd("query-migrate")["ram"]["transferred"] > 256 << 10, 30,
                   "some RAM to be sent")
        owner.close()
        q = wait_done(src)
        assert q["status"] == "cancelled", q
        assert os.path.exists(marker)
        assert src.qmp.cmd("query-status")["status"] == "running"
        hb = src.heartbeat()
        wait_until(lambda: src.heartbeat() > hb, 30, "the source heartbeat after the cancel")
        assert "QMP client that started it is gone" in open(src.log_path).read()
        assert dst.wait_exit(30) == 1
    finally:
        src.close()
        dst.close()


def test_sole_copy_file_removed_at_commit():
    """With its client there to the end, the migration completes and the
    file is gone (the destination may hold a whole copy); the client's
    leaving afterwards changes nothing."""
    require_kvm()
    for paused in (False, True):
        src, dst, uri = pair()
        marker = os.path.join(src.dir, "sole-copy")
        try:
            src.wait_serial("colo-testguest ready", 60)
            if paused:
                src.qmp.cmd("stop")
            owner = sole_copy_migration(src, uri, marker)
            q = wait_done(src)
            assert q["status"] == "completed", q
            assert not os.path.exists(marker)
            owner.close()
            time.sleep(0.2)
            assert src.qmp.cmd("query-migrate")["status"] == "completed"
            assert src.qmp.cmd("query-status")["status"] == "postmigrate"
            wait_until(lambda: dst.qmp.cmd("query-status")["status"] in ("running", "paused"), 30,
                       "the destination to load")
        finally:
            src.close()
            dst.close()


def test_sole_copy_file_bad_input():
    require_kvm()
    vm = Vmm(mem="32M").start()
    try:
        uri = "tcp:127.0.0.1:%d" % free_port()
        for value, words in (("relative/sole-copy", "absolute path"), (5, "x-sole-copy-file")):
            try:
                vm.qmp.cmd("migrate", uri=uri, **{"x-sole-copy-file": value})
            except QMPError as e:
                assert words in e.desc, e.desc
            else:
                raise AssertionError("x-sole-copy-file %r accepted" % (value,))
        assert vm.qmp.cmd("query-migrate") == {}
        assert vm.qmp.cmd("query-status")["status"] == "running"
    finally:
        vm.close()


def test_link_cut_leaves_source_running():
    require_kvm()
    rng = random.Random(os.getpid())
    for attempt in range(4):
        src, dst, uri = pair(mem="128M")
        try:
            src.wait_serial("colo-testguest ready", 60)
            if attempt % 2:
                enable_multifd(src, dst, 2)
            src.qmp.cmd("migrate-set-parameters", args={"max-bandwidth": 32 << 20})
            src.qmp.cmd("migrate", uri=uri)
            time.sleep(rng.uniform(0.05, 2.0))
            dst.proc.kill()         # the link dies with the destination
            q = wait_done(src)
            assert q["status"] in ("failed", "completed"), q
            if q["status"] == "failed":
                assert q.get("error-desc"), q
            assert src.qmp.cmd("query-status")["status"] in ("running", "postmigrate")
            if q["status"] == "failed":
                assert src.qmp.cmd("query-status")["status"] == "running"
                hb = src.heartbeat()
                wait_until(lambda: src.heartbeat() > hb, 30, "the source heartbeat after the cut")
        finally:
            src.close()
            dst.close()


def test_malformed_streams_are_refused():
    require_kvm()
    hello = b"COLO\x00\x00\x00\x01\x00\x00"       # magic, version, main channel 0
    cases = [
        b"",                                            # nothing at all
        b"GARBAGE!" * 8,                                # wrong magic
        b"COLO\x00\x00\x00\x09\x00\x00",                # unknown version
        b"COLO\x00\x00\x00\x01\x09\x00",                # unknown channel kind
        hello + b"\x7f",                                # unknown record
        hello + b"\x01" + (0).to_bytes(8, "big") + b"\x02\x00",   # page of no block
        hello + b"\x02\x03cpu" + (7).to_bytes(4, "big"),          # truncated device
        hello + b"\x05\x00\x00\x00\x01\x06pc.ram" + (32 << 20).to_bytes(8, "big") +
        b"\x01" + ((32 << 20) - 4096 | 0x40).to_bytes(8, "big") + b"\x06pc.ram\x00\x02",  # run past the end
        hello + b"\x04",                                # end without any device state
        hello + b"\x03\x00\x04\x00\x00",                  # postcopy listen without advise
        hello + b"\x03\x00\x03\x00\x10" + bytes(16) + b"\x03\x00\x04\x00\x00",   # listen, then cut
    ]
    refuse_streams([(data, "") for data in cases])


def test_malformed_packages_are_refused():
    """A packaged chunk (postcopy's device state) is held to the same rules,
    and to its own: a size limit, no package in a package, nothing after
    its end record."""
    require_kvm()
    hello = b"COLO\x00\x00\x00\x01\x00\x00"

    def package(body, size=None):
        size = len(body) if size is None else size
        return hello + b"\x03\x00\x07\x00\x04" + size.to_bytes(4, "big") + body

    refuse_streams([
        (package(b"", 65 << 20), "packaged chunk of"),
        (package(b"\x04", 4000), "ended"),
        (package(b"\x03\x00\x07\x00\x04" + bytes(4) + b"\x04"), "inside a packaged chunk"),
        (package(b"\x04zz"), "after its end record"),
        (package(b"\x7f\x04"), "unknown record type 0x7f"),
        (package(b"\x02\x03cpu" + (7).to_bytes(4, "big")), "packaged chunk ended"),
        (hello + b"\x03\x00\x07\x00\x03abc", "payload of 3 bytes"),
    ])


def refuse_streams(cases):
    """Each (stream, text): a destination fed the stream exits 1 and logs
    why (the text, if given)."""
    for data, text in cases:
        path = "/tmp/colo-mig-bad-%d.sock" % os.getpid()
        vm = Vmm(mem="32M", append="interval=0", extra=["-incoming", "unix:" + path]).start()
        try:
            wait_until(lambda: os.path.exists(path), 10, "the incoming socket")
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                assert vm.wait_exit(30) == 1, data
            log = open(vm.log_path).read()
            assert "incoming migration failed" in log and text in log, (data[:64], text, log)
        finally:
            vm.close()


def test_migration_commands_bad_input():
    require_kvm()
    with Vmm(mem="32M", append="interval=0") as vm:
        q = vm.qmp
        assert q.cmd("query-migrate") == {}
        for name, args, text in [
            ("migrate", {"uri": "ftp:nowhere"}, "invalid migration URI"),
            ("migrate", {}, "'uri'"),
            ("migrate-set-parameters", {"downtime-limit": -1}, "downtime-limit"),
            ("migrate-set-parameters", {"bogus": 1}, "bogus"),
            ("migrate-set-parameters", {"max-bandwidth": "fast"}, "max-bandwidth"),
            ("migrate-set-capabilities", {"capabilities": [{"capability": "nope", "state": True}]}, "nope"),
            ("migrate-incoming", {"uri": "tcp:127.0.0.1:1"}, "-incoming"),
        ]:
            try:
                q.cmd(name, args=args)
            except QMPError as e:
                assert e.cls == "GenericError" and text in e.desc, (name, e.desc)
            else:
                raise AssertionError("%s %r succeeded" % (name, args))
        q.cmd("migrate-set-parameters", args={"downtime-limit": 50, "max-bandwidth": 1 << 30})
        p = q.cmd("query-migrate-parameters")
        assert p["downtime-limit"] == 50 and p["max-bandwidth"] == 1 << 30, p
        caps = {c["capability"]: c["state"] for c in q.cmd("query-migrate-capabilities")}
        assert caps.get("events") is False, caps
        # Nobody listens there: the migration fails and the VM runs on.
        q.cmd("migrate", uri="tcp:127.0.0.1:%d" % free_port())
        res = wait_done(vm, 30)
        assert res["status"] == "failed" and "connect" in res["error-desc"], res
        assert q.cmd("query-status")["status"] == "running"


if __name__ == "__main__":
    tap.run(globals())
