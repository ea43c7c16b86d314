#!/usr/bin/env python3
"""tests/lib/qmp.py against the real QMP server (vmm/qmp-test-server). TAP."""

import os
import subprocess
import sys
import tempfile
import time

from qmp import QMPClient, QMPConnectionError, QMPError, QMPTimeout

BUILD = os.environ.get("COLO_BUILDDIR", ".")
SERVER = os.path.join(BUILD, "tests", "vmm", "qmp-test-server")

results = []


def check(name, fn):
    try:
        fn()
        results.append((True, name, ""))
    except Exception as e:  # report, keep going
        results.append((False, name, "%s: %s" % (type(e).__name__, e)))


def main():
    proc = subprocess.Popen([SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    path = proc.stdout.readline().decode().strip()
    vm = None
    try:
        def connect():
            nonlocal vm
            vm = QMPClient(path, timeout=5)
            assert vm.greeting["QMP"]["version"]["qemu"] == {"micro": 3, "minor": 2, "major": 1}
            assert vm.greeting["QMP"]["capabilities"] == []

        def cmd_return():
            assert vm.cmd("test-add", a=40, b=2) == {"sum": 42}
            assert vm.cmd("test-add", args={"a": 1}) == {"sum": 1}
            assert "test-add" in [c["name"] for c in vm.cmd("query-commands")]

        def cmd_error():
            try:
                vm.cmd("test-fail")
            except QMPError as e:
                assert (e.cls, e.desc) == ("DeviceNotFound", "Device 'nope' not found"), e
            else:
                raise AssertionError("no QMPError")
            try:
                vm.cmd("test-add", a="x")
            except QMPError as e:
                assert e.desc == "Invalid parameter type for 'a', expected: integer", e
            else:
                raise AssertionError("no QMPError")

        def raw_bad_input():
            vm.send_raw(b'{"execute": }\n')
            reply = vm.recv()
            assert reply["error"]["class"] == "GenericError", reply
            assert reply["error"]["desc"].startswith("JSON parse error, "), reply
            assert vm.cmd("test-add", a=5) == {"sum": 5}

        def events():
            assert vm.cmd("test-emit") == {}
            ev = vm.wait_event("TEST_FROM_HANDLER", timeout=2)
            assert abs(ev["timestamp"]["seconds"] - time.time()) < 60, ev
            assert "data" not in ev, ev

        def event_timeout():
            t0 = time.monotonic()
            try:
                vm.wait_event("NEVER", timeout=0.3)
            except QMPTimeout:
                assert time.monotonic() - t0 < 2
            else:
                raise AssertionError("no QMPTimeout")

        def connect_timeout():
            with tempfile.TemporaryDirectory() as d:
                t0 = time.monotonic()
                try:
                    QMPClient(os.path.join(d, "absent.sock"), timeout=0.3)
                except QMPConnectionError:
                    assert 0.25 < time.monotonic() - t0 < 3
                else:
                    raise AssertionError("connected to nothing")

        check("connect and negotiate", connect)
        check("cmd returns the return value", cmd_return)
        check("cmd raises QMPError with class and desc", cmd_error)
        check("send_raw/recv for bad input, connection stays usable", raw_bad_input)
        check("wait_event", events)
        check("wait_event times out", event_timeout)
        check("connect retries until its timeout", connect_timeout)
    finally:
        if vm:
            vm.close()
        proc.stdin.close()
        proc.wait(timeout=10)

    print("1..%d" % len(results))
    for i, (ok, name, why) in enumerate(results, 1):
        print("%s %d - %s%s" % ("ok" if ok else "not ok", i, name, (": " + why) if why else ""))
    return 0 if all(ok for ok, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
