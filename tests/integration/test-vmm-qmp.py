"""colo-vmm's QMP under bad input: every malformed request gets an error
reply in QEMU's classes and the connection, the other clients and the VM
carry on."""
import collections
import os

from colo_vmm import Vmm, require_kvm
from qmp import QMPClient, QMPError
import tap


def expect_error(q, cls, name, **args):
    try:
        q.cmd(name, **args)
    except QMPError as e:
        assert e.cls == cls, (name, args, e.cls, e.desc)
        return e.desc
    raise AssertionError("%s %r succeeded" % (name, args))


def test_bad_requests_keep_connection():
    require_kvm()
    with Vmm(append="interval=0") as vm:
        q = vm.qmp
        expect_error(q, "CommandNotFound", "no-such-command")
        assert "is unexpected" in expect_error(q, "GenericError", "stop", force=True)
        assert "'val'" in expect_error(q, "GenericError", "pmemsave", size=4096, filename="/tmp/x")
        assert "'size'" in expect_error(q, "GenericError", "pmemsave", val=0, size="big",
                                        filename="/tmp/x")
        out = os.path.join(vm.dir, "oob.bin")
        assert "not guest RAM" in expect_error(q, "GenericError", "pmemsave", val=64 << 20,
                                               size=4096, filename=out)
        assert not os.path.exists(out)
        expect_error(q, "GenericError", "pmemsave", val=0, size=4096,
                     filename="/nonexistent/dir/file")
        # Raw garbage on the wire, then a good command on the same connection.
        q.send_raw(b'{"execute": }\n')
        assert "error" in q.recv()
        q.send_raw(b'[1, 2, 3]\n')
        assert "error" in q.recv()
        q.send_raw(b'{"arguments": {}}\n')
        assert "error" in q.recv()
        assert q.cmd("query-status")["status"] == "running"
        vm.wait_serial("colo-testguest ready", 60)


def test_duplicate_keys_refused_and_ids_exact():
    require_kvm()
    with Vmm(append="interval=0") as vm:
        q = vm.qmp
        # json-glib keeps the last key: this would run "stop".
        q.send_raw(b'{"execute":"query-status","execute":"stop"}\n')
        r = q.recv()
        assert r["error"]["class"] == "GenericError", r
        assert r["error"]["desc"] == "JSON parse error, duplicate key 'execute'", r
        q.send_raw(b'{"execute":"stop","arguments":{},"arguments":{}, "id": 1}\n')
        assert "duplicate key 'arguments'" in q.recv()["error"]["desc"]
        assert q.cmd("query-status")["status"] == "running"
        assert q.events == collections.deque(), q.events
        # Ids beyond 64 bits come back as sent (Python's ints are exact).
        for big in (123456789012345678901234567890, -(1 << 64) - 1, (1 << 63)):
            q.send_raw(('{"execute": "query-name", "id": %d}\n' % big).encode())
            r = q.recv()
            assert r["id"] == big and "return" in r, (big, r)


def test_two_clients_get_events():
    require_kvm()
    with Vmm(append="interval=0") as vm:
        other = QMPClient(vm.qmp_path)
        try:
            vm.qmp.cmd("stop")
            for q in (vm.qmp, other):
                ev = q.wait_event("STOP", 10)
                assert ev["timestamp"]["seconds"] > 0
            other.cmd("cont")
            for q in (vm.qmp, other):
                q.wait_event("RESUME", 10)
            names = {c["name"] for c in vm.qmp.cmd("query-commands")}
            for needed in ("qmp_capabilities", "query-status", "stop", "cont", "quit",
                           "system_powerdown", "system_reset", "query-version",
                           "query-commands", "query-cpus-fast", "pmemsave"):
                assert needed in names, needed
            v = vm.qmp.cmd("query-version")
            assert v["package"].startswith("colo-vmm"), v
        finally:
            other.close()


def test_pmemsave_matches_guest_ram():
    require_kvm()
    with Vmm(append="interval=0") as vm:
        vm.wait_serial("colo-testguest ready", 60)
        vm.qmp.cmd("stop")
        a = vm.read_guest(0x100000, 1 << 20)
        b = vm.read_guest(0x100000, 1 << 20)
        assert a == b and len(a) == 1 << 20
        # The kernel was loaded at 1 MiB: its ELF-loaded code is there.
        assert a != bytes(len(a))


tap.run(globals())
