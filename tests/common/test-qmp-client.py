#!/usr/bin/env python3
"""tests/lib/qmp.py against the real QMP server (tests/common/qmp-test-server). TAP."""

import os
import subprocess
import tempfile
import time

from qmp import QMPClient, QMPConnectionError, QMPError, QMPTimeout
import tap

BUILD = os.environ.get("COLO_BUILDDIR", ".")
SERVER = os.path.join(BUILD, "tests", "common", "qmp-test-server")

state = {}


def client():
    return state["vm"]


def test_connect_and_negotiate():
    state["vm"] = vm = QMPClient(state["path"], timeout=5)
    assert vm.greeting["QMP"]["version"]["qemu"] == {"micro": 3, "minor": 2, "major": 1}
    assert vm.greeting["QMP"]["capabilities"] == []


def test_cmd_returns_the_return_value():
    vm = client()
    assert vm.cmd("test-add", a=40, b=2) == {"sum": 42}
    assert vm.cmd("test-add", args={"a": 1}) == {"sum": 1}
    assert "test-add" in [c["name"] for c in vm.cmd("query-commands")]


def test_cmd_raises_qmperror_with_class_and_desc():
    vm = client()
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


def test_send_raw_recv_bad_input_connection_stays_usable():
    vm = client()
    vm.send_raw(b'{"execute": }\n')
    reply = vm.recv()
    assert reply["error"]["class"] == "GenericError", reply
    assert reply["error"]["desc"].startswith("JSON parse error, "), reply
    assert vm.cmd("test-add", a=5) == {"sum": 5}


def test_wait_event():
    vm = client()
    assert vm.cmd("test-emit") == {}
    ev = vm.wait_event("TEST_FROM_HANDLER", timeout=2)
    assert abs(ev["timestamp"]["seconds"] - time.time()) < 60, ev
    assert "data" not in ev, ev


def test_wait_event_times_out():
    vm = client()
    t0 = time.monotonic()
    try:
        vm.wait_event("NEVER", timeout=0.3)
    except QMPTimeout:
        assert time.monotonic() - t0 < 2
    else:
        raise AssertionError("no QMPTimeout")


def test_connect_retries_until_its_timeout():
    with tempfile.TemporaryDirectory() as d:
        t0 = time.monotonic()
        try:
            QMPClient(os.path.join(d, "absent.sock"), timeout=0.3)
        except QMPConnectionError:
            assert 0.25 < time.monotonic() - t0 < 3
        else:
            raise AssertionError("connected to nothing")


if __name__ == "__main__":
    proc = subprocess.Popen([SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    state["path"] = proc.stdout.readline().decode().strip()
    try:
        tap.run(globals())
    finally:
        if "vm" in state:
            state["vm"].close()
        proc.stdin.close()
        proc.wait(timeout=10)
