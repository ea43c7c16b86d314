#!/usr/bin/env python3
"""netns-peer.py, the namespace tests' endpoints: a slow but moving
receiver does not make the sender give up."""
import importlib.util
import os
import socket
import threading
import time

import tap

_spec = importlib.util.spec_from_file_location(
    "netns_peer", os.path.join(os.path.dirname(os.path.abspath(__file__)), "netns-peer.py"))
peer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(peer)


def test_slow_receiver_within_per_send_timeout():
    """The socket timeout bounds each send, not the whole stream (as
    sendall's would: the serve of a multi-MiB fetch gave up)."""
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 << 10)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    # Each send waits at most one read (40 ms) for room: a timeout of 2 s
    # leaves room for a loaded machine; the whole stream takes ~5 s.
    a.settimeout(2.0)
    got = [0]

    def reader():
        while True:
            data = b.recv(64 << 10)
            if not data:
                return
            got[0] += len(data)
            time.sleep(0.04)
    t = threading.Thread(target=reader)
    t.start()
    t0 = time.monotonic()
    try:
        peer.send_pattern(a, 8 << 20)
    finally:
        a.close()
        t.join(30)
        b.close()
    assert got[0] == 8 << 20, got[0]
    assert time.monotonic() - t0 > 2.0, "the receiver was not slower than one timeout"


if __name__ == "__main__":
    tap.run(globals())
