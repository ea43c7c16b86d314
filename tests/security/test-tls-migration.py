#!/usr/bin/env python3
"""TLS on colo-vmm's migration stream (issue 11, "Security"; docs/operations.md,
"TLS"): -object tls-creds-x509 and the tls-creds / tls-hostname migration
parameters, as in QEMU.

- A paused guest migrates over TLS with multifd channels and arrives
  identical; a running one moves and its workload verifies; a COLO pair
  checkpoints over TLS and the secondary's memory equals the primary's.
- Refused, logged on both sides, and the listener stays for the real
  source: a client whose certificate another CA signed, a server whose
  certificate another CA signed, a server certificate for another name, a
  plaintext source (no fallback either way).
- Wrong set-up is refused up front: a missing file, an unknown id, the
  wrong endpoint, tls-authz.

Needs KVM and certtool (gnutls-bin). Prints TAP."""
import hashlib
import os
import shutil
import socket

from colo_vmm import Vmm, free_port, require_kvm, wait_migration_end, wait_until
from qmp import QMPError
from tls_certs import CA, require_certtool
import tap

GUEST = "interval=0 dirty_pages=32 dirty_ms=20 area=8M"
BANNER = "colo-testguest ready"


def tls_args(pki, endpoint, verify="on"):
    return ["-object", "tls-creds-x509,id=tls0,dir=%s,endpoint=%s,verify-peer=%s" % (pki, endpoint, verify)]


def destination(pki, mem="32M", uri=None, smp=1):
    uri = uri or "tcp:127.0.0.1:%d" % free_port()
    # tls-creds from the command line, as colod sets it (the source sets it through QMP).
    tls = tls_args(pki, "server") + ["-global", "migration.tls-creds=tls0"] if pki else []
    dst = Vmm(smp=smp, mem=mem, append=GUEST, extra=["-incoming", uri] + tls)
    dst.start()
    dst.qmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "events", "state": True}])
    return dst, uri


def source(pki, mem="32M", hostname=None):
    src = Vmm(smp=1, mem=mem, append=GUEST, extra=tls_args(pki, "client") if pki else []).start()
    args = {"max-bandwidth": 0}
    if pki:
        args["tls-creds"] = "tls0"
    if hostname:
        args["tls-hostname"] = hostname
    src.qmp.cmd("migrate-set-parameters", args=args)
    return src


def qmp_refused(vm, cmd, args, text):
    try:
        vm.qmp.cmd(cmd, args=args)
    except QMPError as e:
        assert text in e.desc, e.desc
    else:
        raise AssertionError("%s %r accepted" % (cmd, args))


def log(vm):
    with open(vm.log_path, errors="replace") as f:
        return f.read()


def ram_digest(vm, size):
    return hashlib.sha256(vm.read_guest(0, size)).hexdigest()


def multifd(vms, channels):
    for vm in vms:
        vm.qmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "multifd", "state": True}])
        vm.qmp.cmd("migrate-set-parameters", args={"multifd-channels": channels})


def migrate_paused(src, dst, uri):
    src.wait_serial(BANNER, 60)
    src.qmp.cmd("stop")
    src.qmp.cmd("migrate", uri=uri)
    q = wait_migration_end(src)
    assert q["status"] == "completed", q
    wait_until(lambda: dst.qmp.cmd("query-migrate").get("status") == "completed", 30,
               "the destination to complete")
    assert ram_digest(src, 32 << 20) == ram_digest(dst, 32 << 20)


def refused(src, uri, dst, src_text, dst_text):
    """@src's migration to @dst fails with @src_text (or one of a tuple of
    them); @dst logs @dst_text and waits on."""
    src.qmp.cmd("migrate", uri=uri)
    q = wait_migration_end(src, 60)
    texts = src_text if isinstance(src_text, tuple) else (src_text,)
    assert q["status"] == "failed" and any(t in q.get("error-desc", "") for t in texts), q
    print("# the source says: " + q["error-desc"])
    try:
        wait_until(lambda: dst_text in log(dst), 20, "the destination's log: " + dst_text)
    except AssertionError:
        raise AssertionError("no '%s' in the destination's log:\n%s" % (dst_text, log(dst)[-3000:]))
    assert dst.qmp.cmd("query-status")["status"] == "inmigrate"
    assert src.qmp.cmd("query-status")["status"] == "running"


class Pki:
    def __init__(self):
        require_kvm()
        require_certtool()
        self.ca = CA()
        self.dir = self.ca.pki()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.ca.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def test_paused_guest_arrives_identical_over_tls_with_multifd():
    with Pki() as pki:
        dst, uri = destination(pki.dir)
        src = source(pki.dir)
        try:
            p = src.qmp.cmd("query-migrate-parameters")
            assert (p["tls-creds"], p["tls-hostname"], p["tls-authz"]) == ("tls0", "", ""), p
            multifd((src, dst), 2)
            migrate_paused(src, dst, uri)
            # Every connection (main stream, two multifd channels) was TLS with the client's certificate.
            assert log(dst).count("TLS with 127.0.0.1 (CN=node2)") == 3, log(dst)
            assert "TLS with CN=node1" in log(src), log(src)
        finally:
            src.close()
            dst.close()


def test_running_guest_moves_over_tls():
    with Pki() as pki:
        dst, uri = destination(pki.dir, mem="64M")
        src = source(pki.dir, mem="64M")
        try:
            src.wait_serial(BANNER, 60)
            src.qmp.cmd("migrate", uri=uri)
            q = wait_migration_end(src)
            assert q["status"] == "completed" and q["ram"]["dirty-sync-count"] >= 2, q
            wait_until(lambda: dst.qmp.cmd("query-status")["status"] == "running", 30, "the destination to run")
            hb = dst.heartbeat()
            wait_until(lambda: dst.heartbeat() > hb, 30, "the heartbeat on the destination")
            dst.qmp.cmd("stop")
            assert dst.workload_problems() == []
        finally:
            src.close()
            dst.close()


def test_postcopy_over_tls():
    """Postcopy's page channel is TLS too: a running guest that touches
    pages not yet sent gets them on demand, and its workload verifies."""
    with Pki() as pki:
        dst, uri = destination(pki.dir, mem="128M")
        src = source(pki.dir, mem="128M")
        try:
            for vm in (src, dst):
                vm.qmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "postcopy-ram", "state": True}])
            src.qmp.cmd("migrate-set-parameters", args={"max-bandwidth": 4 << 20, "max-postcopy-bandwidth": 512 << 10})
            src.wait_serial(BANNER, 60)
            src.qmp.cmd("migrate", uri=uri)
            wait_until(lambda: src.qmp.cmd("query-migrate")["status"] == "active", 30, "precopy to start")
            src.qmp.cmd("migrate-start-postcopy")
            q = wait_migration_end(src)
            assert q["status"] == "completed" and q["ram"]["postcopy-requests"] > 0, q
            wait_until(lambda: dst.qmp.cmd("query-migrate").get("status") == "completed", 30,
                       "the destination to complete")
            # Main stream and the postcopy channel.
            assert log(dst).count("TLS with 127.0.0.1 (CN=node2)") == 2, log(dst)
            hb = dst.heartbeat()
            wait_until(lambda: dst.heartbeat() > hb, 30, "the heartbeat on the destination")
            dst.qmp.cmd("stop")
            assert dst.workload_problems() == []
        finally:
            src.close()
            dst.close()


def test_strangers_refused_and_logged():
    """Each wrong peer is refused with a reason on both sides; the listener
    stays, and the right source then migrates."""
    with Pki() as pki:
        rogue = CA("rogue CA")
        # Certificates signed by another CA of the same name as ours (the
        # client offers them; a CA of another name it would not even offer).
        impostor = CA("colo test CA")
        rogue_client = rogue.pki(trust=pki.ca)
        impostor_client = impostor.pki(trust=pki.ca)
        dst, uri = destination(pki.dir)
        try:
            for pki_dir, dst_text in [(impostor_client, "TLS: the client's certificate is refused"),
                                      (rogue_client, "TLS: the client sent no certificate")]:
                src = source(pki_dir)
                try:
                    src.wait_serial(BANNER, 60)
                    refused(src, uri, dst, "the server refused the handshake",
                            "refused a connection from 127.0.0.1: " + dst_text)
                finally:
                    src.close()
            assert "The certificate is NOT trusted" in log(dst), log(dst)
            # A plaintext source: the listener does not fall back.
            src = source(None)
            try:
                src.wait_serial(BANNER, 60)
                # The source learns it from a failed write or, when the small
                # stream fit in the socket buffers, from the return path.
                refused(src, uri, dst, ("migration", "the return path broke"), "the client does not speak TLS")
            finally:
                src.close()
            # Now the right one.
            src = source(pki.dir)
            try:
                migrate_paused(src, dst, uri)
            finally:
                src.close()
        finally:
            dst.close()
            for ca in (rogue, impostor):
                ca.close()
            for d in (rogue_client, impostor_client):
                shutil.rmtree(d, ignore_errors=True)


def test_client_checks_the_server():
    """A server certificate from another CA, or for another name: the
    source refuses it and says why; the destination logs the refusal."""
    with Pki() as pki:
        rogue = CA("rogue CA")
        rogue_server = rogue.pki(trust=pki.ca)
        try:
            dst, uri = destination(rogue_server)
            src = source(pki.dir)
            try:
                src.wait_serial(BANNER, 60)
                refused(src, uri, dst, "the server's certificate is refused", "refused a connection from 127.0.0.1")
                q = src.qmp.cmd("query-migrate")
                assert "issuer is unknown" in q["error-desc"], q
            finally:
                src.close()
                dst.close()
            # Our CA, but the certificate names another host than tls-hostname.
            dst, uri = destination(pki.dir)
            src = source(pki.dir, hostname="node9.example")
            try:
                src.wait_serial(BANNER, 60)
                refused(src, uri, dst, "does not match", "refused a connection from 127.0.0.1")
                # The certificate's own name is accepted.
                src.qmp.cmd("migrate-set-parameters", args={"tls-hostname": "localhost"})
                migrate_paused(src, dst, uri)
            finally:
                src.close()
                dst.close()
        finally:
            rogue.close()
            shutil.rmtree(rogue_server, ignore_errors=True)


def test_silent_listener_times_out():
    """A listener that accepts and never answers: the source's handshake
    gives up (10 s) with a reason, and its guest runs on."""
    with Pki() as pki:
        lsn = socket.socket()
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(1)
        src = source(pki.dir)
        try:
            src.wait_serial(BANNER, 60)
            src.qmp.cmd("migrate", uri="tcp:127.0.0.1:%d" % lsn.getsockname()[1])
            q = wait_migration_end(src, 40)
            assert q["status"] == "failed" and "did not complete the handshake in time" in q["error-desc"], q
            assert src.qmp.cmd("query-status")["status"] == "running"
        finally:
            src.close()
            lsn.close()


def test_wrong_setup_refused():
    require_kvm()
    require_certtool()
    with Pki() as pki:
        # A missing file stops colo-vmm at start, naming it.
        empty = os.path.join(pki.dir, "empty")
        os.mkdir(empty)
        shutil.copy(os.path.join(pki.dir, "ca-cert.pem"), empty)
        vm = Vmm(mem="32M", extra=tls_args(empty, "server"))
        vm.start(connect=False)
        assert vm.proc.wait(30) != 0
        out = vm.output()
        assert "server-cert.pem is missing" in out, out
        vm = Vmm(mem="32M", extra=tls_args(pki.dir, "server") + ["-global", "migration.tls-creds=tls1"])
        vm.start(connect=False)
        assert vm.proc.wait(30) != 0
        out = vm.output()
        assert "No TLS credentials with id 'tls1'" in out, out
        with Vmm(mem="32M", append="interval=0", extra=tls_args(pki.dir, "server")) as vm:
            for args, text in [({"tls-creds": "nope"}, "No TLS credentials with id 'nope'"),
                               ({"tls-authz": "authz0"}, "tls-authz is not supported")]:
                qmp_refused(vm, "migrate-set-parameters", args, text)
            # A server endpoint cannot start an outgoing migration.
            vm.qmp.cmd("migrate-set-parameters", args={"tls-creds": "tls0"})
            qmp_refused(vm, "migrate", {"uri": "tcp:127.0.0.1:%d" % free_port()},
                        "Expecting TLS credentials with a client endpoint")
            vm.qmp.cmd("migrate-set-parameters", args={"tls-creds": ""})
            assert vm.qmp.cmd("query-migrate-parameters")["tls-creds"] == ""
            # QMP object-add / object-del, as with QEMU's -incoming defer.
            qmp_refused(vm, "object-add", {"qom-type": "tls-creds-x509", "id": "tls1", "dir": pki.dir,
                                           "endpoint": "both"}, "endpoint must be server or client")
            qmp_refused(vm, "object-add", {"qom-type": "tls-creds-x509", "id": "tls1", "dir": empty,
                                           "endpoint": "server"}, "server-cert.pem is missing")
            vm.qmp.cmd("object-add", args={"qom-type": "tls-creds-x509", "id": "tls1", "dir": pki.dir,
                                            "endpoint": "server", "verify-peer": True})
            vm.qmp.cmd("migrate-set-parameters", args={"tls-creds": "tls1"})
            qmp_refused(vm, "object-del", {"id": "tls1"}, "in use by tls-creds")
            vm.qmp.cmd("migrate-set-parameters", args={"tls-creds": ""})
            vm.qmp.cmd("object-del", id="tls1")
            qmp_refused(vm, "migrate-set-parameters", {"tls-creds": "tls1"}, "No TLS credentials with id 'tls1'")


def colo_checkpoints(vm):
    return vm.qmp.cmd("query-colo-status")["checkpoints"]["count"]


def wait_checkpoints(vm, n):
    start = colo_checkpoints(vm)
    wait_until(lambda: colo_checkpoints(vm) >= start + n, 60, "%d more checkpoints" % n)


def test_colo_checkpoints_over_tls():
    """COLO's checkpoint stream and return path over TLS: checkpoints go on
    and carry the primary's memory (as test-vmm-colo.py checks without TLS)."""
    with Pki() as pki:
        pri = Vmm(smp=2, mem="64M", append=GUEST, extra=tls_args(pki.dir, "client")).start()
        sec, uri = destination(pki.dir, mem="64M", smp=2)
        try:
            pri.wait_serial(BANNER, 60)
            for vm in (pri, sec):
                vm.qmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "x-colo", "state": True}])
            pri.qmp.cmd("migrate-set-parameters", args={"tls-creds": "tls0", "x-checkpoint-delay": 300,
                                                         "max-bandwidth": 0})
            pri.qmp.cmd("migrate", uri=uri)
            for vm in (pri, sec):
                wait_until(lambda: vm.qmp.cmd("query-migrate").get("status") == "colo", 60, "COLO")
            assert "incoming migration: TLS with 127.0.0.1 (CN=node2)" in log(sec), log(sec)
            wait_checkpoints(pri, 3)
            sec.qmp.cmd("stop")     # the secondary's guest now changes only through checkpoints
            wait_checkpoints(pri, 1)
            pri.qmp.cmd("stop")
            pri.qmp.cmd("x-colo-checkpoint")
            wait_checkpoints(pri, 1)
            assert ram_digest(pri, 64 << 20) == ram_digest(sec, 64 << 20)
        finally:
            pri.close()
            sec.close()


if __name__ == "__main__":
    tap.run(globals())
