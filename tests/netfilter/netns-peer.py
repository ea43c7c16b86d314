#!/usr/bin/env python3
"""Deterministic endpoints for the colo-proxy namespace tests.

  serve PORT [VARIANT]   answer "SIZE\\n" with SIZE pattern bytes (VARIANT 1 flips one)
  fetch HOST PORT SIZE [nohash]
                         ask for SIZE bytes, print "LEN SHA256" (nohash: "LEN -",
                         for the benchmark, whose client must not be the bottleneck)
  sink PORT              accept one connection, print "LEN SHA256" of what came
  push HOST PORT SIZE    send SIZE pattern bytes from port 45000 (the two
                         guests are not replicas, so their ephemeral ports would differ)
  chat PORT              per connection: each line "N\n" gets the next N bytes of
                         one continuous pattern stream (a long-lived connection)
  converse HOST PORT N ROUNDS
                         one connection, ROUNDS requests of N bytes; before each
                         round waits for a line on stdin, after it prints
                         "round I"; at the end prints "LEN SHA256" of everything
  acks IFACE PORT        the acknowledgement numbers of the IPv4 TCP frames to PORT
                         that arrive on IFACE, from "ready" until stdin closes:
                         one line, sorted, space-separated
  uecho PORT [DELAY_US]  UDP echo server (answers DELAY_US late)
  uping HOST PORT COUNT  COUNT UDP round trips, print "p50_us p99_us"
COLO_PEER_CC (environment) sets the servers' TCP congestion control (the benchmark's --cc).
Every socket operation has a timeout (each send and receive call, not a
whole transfer): a stalled test fails instead of hanging."""
import hashlib
import os
import select
import socket
import sys
import time

TIMEOUT = 30
BLOCK = bytes((i * 7) % 251 for i in range(251 * 64))


def pattern(size, variant=0):
    data = bytearray((BLOCK * (size // len(BLOCK) + 1))[:size])
    if variant and size > 1000:
        data[1000] ^= 0xff
    return bytes(data)


def send_all(c, data):
    """socket.sendall, but the socket's timeout bounds each send, not the
    whole: sendall's bounds all of it, so a slow but moving multi-MiB
    stream (a loaded machine, a proxy holding packets) would give up."""
    view = memoryview(data)
    while view:
        view = view[c.send(view):]


def send_pattern(c, size, variant=0):
    """pattern(size, variant) in chunks: a GiB stream needs no GiB in memory,
    and the first bytes leave at once."""
    chunk = memoryview(BLOCK * 256)   # whole blocks: every chunk starts the pattern anew
    sent = 0
    while sent < size:
        n = min(len(chunk), size - sent)
        if sent == 0 and variant:
            send_all(c, pattern(n, variant))
        else:
            send_all(c, chunk[:n])
        sent += n


def listener(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(8)
    s.settimeout(TIMEOUT * 4)
    print("ready", flush=True)
    return s


def read_all(c, digest=True):
    h, n = hashlib.sha256(), 0
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    while True:
        k = c.recv_into(buf)
        if not k:
            return n, h.hexdigest() if digest else "-"
        if digest:
            h.update(view[:k])
        n += k


def main():
    mode = sys.argv[1]
    if mode == "serve":
        s = listener(int(sys.argv[2]))
        variant = int(sys.argv[3]) if len(sys.argv) > 3 else 0
        while True:
            c, _ = s.accept()
            c.settimeout(TIMEOUT)
            line = b""
            while not line.endswith(b"\n"):
                d = c.recv(64)
                if not d:
                    break
                line += d
            if line.endswith(b"\n"):
                if os.environ.get("COLO_PEER_CC"):   # the benchmark's --cc
                    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, os.environ["COLO_PEER_CC"].encode())
                send_pattern(c, int(line), variant)
            c.close()
    elif mode == "fetch":
        c = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=TIMEOUT)
        c.sendall(b"%d\n" % int(sys.argv[4]))
        n, digest = read_all(c, digest=len(sys.argv) < 6 or sys.argv[5] != "nohash")
        print(n, digest)
    elif mode == "sink":
        s = listener(int(sys.argv[2]))
        c, _ = s.accept()
        c.settimeout(TIMEOUT)
        n, digest = read_all(c)
        print(n, digest, flush=True)
    elif mode == "push":
        c = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=TIMEOUT,
                                     source_address=("0.0.0.0", 45000))
        send_all(c, pattern(int(sys.argv[4])))
        c.shutdown(socket.SHUT_WR)
        c.recv(1)
        c.close()
    elif mode == "chat":
        s = listener(int(sys.argv[2]))
        while True:
            c, _ = s.accept()
            c.settimeout(TIMEOUT * 4)
            f, sent = c.makefile("rb"), 0
            for line in f:
                n = int(line)
                # The stream continues where the last answer ended.
                start = sent % len(BLOCK)
                send_all(c, (BLOCK * ((start + n) // len(BLOCK) + 1))[start:start + n])
                sent += n
            c.close()
    elif mode == "converse":
        c = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=TIMEOUT)
        n, rounds = int(sys.argv[4]), int(sys.argv[5])
        h, total = hashlib.sha256(), 0
        for i in range(rounds):
            if not sys.stdin.readline():
                break
            c.sendall(b"%d\n" % n)
            got = 0
            while got < n:
                d = c.recv(min(1 << 16, n - got))
                if not d:
                    break
                h.update(d)
                got += len(d)
            total += got
            print("round %d %d" % (i + 1, got), flush=True)
        c.close()
        print(total, h.hexdigest(), flush=True)
    elif mode == "acks":
        r = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))   # ETH_P_ALL
        r.bind((sys.argv[2], 0))
        port, acks = int(sys.argv[3]), set()
        print("ready", flush=True)
        while True:
            ready = select.select([r, sys.stdin], [], [])[0]
            if sys.stdin in ready and not sys.stdin.readline():
                r.setblocking(False)    # what already arrived counts too
                ready = [r]
            if r in ready:
                try:
                    f, addr = r.recvfrom(65536)
                except BlockingIOError:
                    break
                ihl = (f[14] & 15) * 4 if len(f) > 34 else 0
                if addr[2] != socket.PACKET_OUTGOING and f[12:14] == b"\x08\x00" and f[23] == 6 and \
                        len(f) >= 14 + ihl + 20 and int.from_bytes(f[14 + ihl + 2:14 + ihl + 4], "big") == port:
                    acks.add(int.from_bytes(f[14 + ihl + 8:14 + ihl + 12], "big"))
        print(" ".join(str(a) for a in sorted(acks)), flush=True)
    elif mode == "uecho":
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("0.0.0.0", int(sys.argv[2])))
        delay = int(sys.argv[3]) / 1e6 if len(sys.argv) > 3 else 0
        print("ready", flush=True)
        while True:
            d, a = u.recvfrom(2048)
            if delay:
                time.sleep(delay)
            u.sendto(d, a)
    elif mode == "uping":
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(5)
        rtts = []
        for i in range(int(sys.argv[4])):
            t0 = time.perf_counter()
            u.sendto(b"%08d" % i, (sys.argv[2], int(sys.argv[3])))
            while u.recv(64) != b"%08d" % i:
                pass
            rtts.append((time.perf_counter() - t0) * 1e6)
        rtts.sort()
        print("%.0f %.0f" % (rtts[len(rtts) // 2], rtts[len(rtts) * 99 // 100]))
    elif mode == "digest":
        data = pattern(int(sys.argv[2]))
        print(len(data), hashlib.sha256(data).hexdigest())


if __name__ == "__main__":
    main()
