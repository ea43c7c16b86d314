#!/usr/bin/env python3
"""Small client for the colo-proxy control socket (QMP with colo-proxy's
commands; until colod exists).

    proxyctl.py SOCKET query-stats
    proxyctl.py SOCKET set-parameters '{"compare_timeout": 500}'
    proxyctl.py SOCKET --wait-event CHECKPOINT_REQUEST --timeout 10

Also imported by the namespace tests (class ProxyCtl)."""
import argparse
import json
import socket
import sys
import time


class ProxyCtl:
    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.timeout = timeout
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.events = []
        self.greeting = self._read()
        self.execute("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("colo-proxy closed the control socket")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command, arguments=None):
        msg = {"execute": command}
        if arguments is not None:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise RuntimeError("%s: %s" % (command, reply["error"]["desc"]))
            return reply["return"]

    def wait_event(self, name, timeout=10.0):
        """Return the first event called name (seen already or within timeout), or None."""
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events:
                if ev["event"] == name:
                    self.events.remove(ev)
                    return ev
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                msg = self._read()
            except socket.timeout:
                return None
            finally:
                self.sock.settimeout(self.timeout)   # a command's reply gets the whole timeout
            if "event" in msg:
                self.events.append(msg)

    def close(self):
        self.sock.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("socket")
    ap.add_argument("command", nargs="?")
    ap.add_argument("arguments", nargs="?", help="JSON object")
    ap.add_argument("--wait-event", metavar="NAME")
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    ctl = ProxyCtl(args.socket, args.timeout)
    if args.command:
        print(json.dumps(ctl.execute(args.command, json.loads(args.arguments) if args.arguments else None),
                         indent=2))
    if args.wait_event:
        ev = ctl.wait_event(args.wait_event, args.timeout)
        if ev is None:
            print("no %s within %.1f s" % (args.wait_event, args.timeout), file=sys.stderr)
            return 1
        print(json.dumps(ev))
    return 0


if __name__ == "__main__":
    sys.exit(main())
