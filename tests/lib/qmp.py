"""A small QMP client for colo's integration tests (Python 3, stdlib only).

Speaks QEMU's QMP over a unix socket, so it drives colo-vmm (and QEMU):

    from qmp import QMPClient, QMPError
    with QMPClient("/run/colo/vm.qmp", timeout=10) as vm:
        print(vm.cmd("query-status"))
        vm.cmd("migrate-set-parameters", args={"x-checkpoint-delay": 200})
        ev = vm.wait_event("STOP", timeout=5)

cmd() returns the value of the reply's "return" member and raises QMPError
for an error reply. Events that arrive meanwhile are queued for
wait_event(). send_raw() and recv() are for bad-input tests.
"""

import collections
import itertools
import json
import socket
import time

__all__ = ["QMPClient", "QMPError", "QMPTimeout", "QMPConnectionError"]


class QMPError(Exception):
    """An error reply: .cls is the error class, .desc its description."""

    def __init__(self, cls, desc, reply=None):
        super().__init__("%s: %s" % (cls, desc))
        self.cls = cls
        self.desc = desc
        self.reply = reply


class QMPTimeout(Exception):
    """Nothing (or not the expected message) arrived in time."""


class QMPConnectionError(Exception):
    """The connection could not be made, or the server closed it."""


class QMPClient:
    """One QMP connection. @path: unix socket; retried until @timeout
    seconds have passed (the server may still be starting). With
    @negotiate, the greeting is read and qmp_capabilities sent."""

    def __init__(self, path, timeout=10.0, negotiate=True):
        self.path = path
        self.timeout = timeout
        self.greeting = None
        self.events = collections.deque()
        self._replies = collections.deque()
        self._buf = b""
        self._ids = itertools.count(1)
        self._sock = self._connect(path, timeout)
        if negotiate:
            self.negotiate()

    @staticmethod
    def _connect(path, timeout):
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
                return sock
            except (FileNotFoundError, ConnectionRefusedError) as e:
                sock.close()
                if time.monotonic() >= deadline:
                    raise QMPConnectionError("cannot connect to %s: %s" % (path, e)) from e
                time.sleep(0.05)

    def negotiate(self):
        """Read the greeting and leave capabilities negotiation mode."""
        self.greeting = self._read_message(self.timeout)
        if "QMP" not in self.greeting:
            raise QMPConnectionError("no QMP greeting: %r" % (self.greeting,))
        self.cmd("qmp_capabilities")
        return self.greeting

    def close(self):
        if self._sock:
            self._sock.close()
            self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- raw access -------------------------------------------------------

    def send_raw(self, data):
        """Send bytes (or str) exactly as given."""
        if isinstance(data, str):
            data = data.encode()
        self._sock.sendall(data)

    def _read_message(self, timeout):
        """The next message of any kind, parsed."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise QMPTimeout("no message from %s within the timeout" % self.path)
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise QMPConnectionError("%s closed the connection" % self.path)
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line.decode())

    def _pump(self, timeout):
        """Read one message, queueing events and replies."""
        msg = self._read_message(timeout)
        (self.events if "event" in msg else self._replies).append(msg)

    def recv(self, timeout=None):
        """The next reply (success or error) as a dict; events are queued."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self._replies:
            self._pump(max(0.0, deadline - time.monotonic()))
        return self._replies.popleft()

    # --- commands and events ---------------------------------------------

    def execute(self, name, args=None, timeout=None):
        """Run command @name; return the whole reply dict (also for errors)."""
        req_id = "py-%d" % next(self._ids)
        req = {"execute": name, "id": req_id}
        if args:
            req["arguments"] = args
        self.send_raw(json.dumps(req) + "\n")
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            for i, reply in enumerate(self._replies):
                if reply.get("id") == req_id:
                    del self._replies[i]
                    return reply
            self._pump(max(0.0, deadline - time.monotonic()))

    def cmd(self, name, args=None, timeout=None, **kwargs):
        """Run command @name with @args (a dict, for names with dashes)
        and/or keyword arguments; return its "return" value, or raise
        QMPError."""
        merged = dict(args or {})
        merged.update(kwargs)
        reply = self.execute(name, merged, timeout)
        if "error" in reply:
            err = reply["error"]
            raise QMPError(err.get("class"), err.get("desc"), reply)
        return reply["return"]

    def wait_event(self, name=None, timeout=None):
        """Remove and return the first queued or arriving event called @name
        (any event if None); raise QMPTimeout if none comes in time."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            for i, ev in enumerate(self.events):
                if name is None or ev.get("event") == name:
                    del self.events[i]
                    return ev
            left = deadline - time.monotonic()
            if left <= 0:
                raise QMPTimeout("no event %s within the timeout" % (name or "at all"))
            try:
                self._pump(left)
            except QMPTimeout:
                raise QMPTimeout("no event %s within the timeout" % (name or "at all")) from None

    def clear_events(self):
        self.events.clear()
