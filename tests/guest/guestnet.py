#!/usr/bin/env python3
"""Host-side client of the test guest's network services (stdlib only).

    import guestnet
    g = guestnet.Guest("10.0.2.15")
    g.ping()                          # round-trip times in seconds
    g.udp_echo(b"hi")                 # == b"hi"
    g.tcp_echo(data)                  # == data (TCP port 7)
    n, digest = g.stream(10 << 20)    # TCP port 19: digest == guestnet.stream_digest(10 << 20)
    g.disk_write(block, seq)          # UDP port 9000: replied after the guest's flush
    g.disk_read(block)                # the seq stored there, or None

The protocols are described in docs/test-guest.md; the guest side is
tests/guest/net.c, tcp.c and disksvc.c.

Command line: guestnet.py IP ping | udp TEXT | echo BYTES | stream BYTES |
disk-info | disk-write BLOCK SEQ | disk-read BLOCK
"""
import hashlib
import os
import socket
import struct
import sys
import threading
import time

PORT_ECHO = 7
PORT_STREAM = 19
PORT_DISK = 9000

STREAM_PERIOD = 65521
STREAM_SEED = 0x2545F491

DISK_MAGIC = 0x44475443
DISK_REC_MAGIC = 0x42475443
DISK_WRITE, DISK_READ, DISK_INFO = 1, 2, 3
DISK_OK, DISK_EMPTY, DISK_IOERR, DISK_BADREQ, DISK_BUSY, DISK_NODISK = range(6)
_DISK_REQ = struct.Struct("<IB3xIIQ")       # magic, op, tag, block, seq
_DISK_REPLY = struct.Struct("<IBBxxIIQ")    # magic, op, status, tag, block, value
_M32 = 0xFFFFFFFF
_M64 = (1 << 64) - 1

_table = None


def stream_table():
    """One period of the stream service's bytes (mirror of net.c)."""
    global _table
    if _table is None:
        x = STREAM_SEED
        out = bytearray()
        while len(out) < STREAM_PERIOD:
            x ^= (x << 13) & _M32
            x ^= x >> 17
            x ^= (x << 5) & _M32
            out += struct.pack("<I", x)
        _table = bytes(out[:STREAM_PERIOD])
    return _table


def stream_bytes(offset, length):
    """The stream's bytes [offset, offset + length)."""
    t = stream_table()
    out = bytearray()
    while len(out) < length:
        at = (offset + len(out)) % STREAM_PERIOD
        out += t[at:at + length - len(out)]
    return bytes(out)


def stream_digest(length):
    """SHA-256 of the first @length bytes of the stream."""
    t = stream_table()
    h = hashlib.sha256()
    full, rest = divmod(length, STREAM_PERIOD)
    for _ in range(full):
        h.update(t)
    h.update(t[:rest])
    return h.hexdigest()


def disk_check(block, seq):
    """Mirror of disksvc_check() (splitmix64)."""
    z = (seq ^ (block << 32)) & _M64
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


class DiskError(Exception):
    """The disk service answered with an error status."""


def _icmp_checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


class Guest:
    def __init__(self, ip, timeout=10.0):
        self.ip = ip
        self.timeout = timeout
        self._tag = 0

    # ICMP ------------------------------------------------------------
    def ping(self, count=1, timeout=None, payload=b"colo-testguest ping"):
        """Sends @count echo requests one after the other; returns their
        round-trip times (seconds). Raises socket.timeout if one gets no
        reply. Needs root (raw socket) or ping_group_range (datagram)."""
        timeout = timeout or self.timeout
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
            raw = False
        except OSError:
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            raw = True
        ident = os.getpid() & 0xFFFF
        rtts = []
        with s:
            s.settimeout(timeout)
            for seq in range(count):
                hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
                pkt = hdr[:2] + struct.pack("!H", _icmp_checksum(hdr + payload)) + hdr[4:] + payload
                t0 = time.monotonic()
                s.sendto(pkt, (self.ip, 0))
                deadline = t0 + timeout
                while True:
                    s.settimeout(max(deadline - time.monotonic(), 0.001))
                    data, addr = s.recvfrom(4096)
                    if raw:
                        data = data[(data[0] & 0xF) * 4:]
                    if addr[0] != self.ip or len(data) < 8 or data[0] != 0:
                        continue
                    if struct.unpack("!H", data[6:8])[0] == seq and data[8:] == payload:
                        rtts.append(time.monotonic() - t0)
                        break
        return rtts

    # UDP echo ----------------------------------------------------------
    def udp_echo(self, data, retries=3):
        """@data back from UDP port 7 (retried: UDP may be lost)."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(self.timeout / retries)
            s.connect((self.ip, PORT_ECHO))
            for attempt in range(retries):
                s.send(data)
                try:
                    return s.recv(65536)
                except socket.timeout:
                    if attempt == retries - 1:
                        raise
        return None

    # TCP ---------------------------------------------------------------
    def connect(self, port):
        s = socket.create_connection((self.ip, port), timeout=self.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def tcp_echo(self, data, sock=None):
        """Sends @data to TCP port 7 while reading the echo; returns what
        came back before the guest closed (after our FIN)."""
        s = sock or self.connect(PORT_ECHO)
        got = bytearray()
        err = []

        def send():
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except OSError as e:
                err.append(e)

        t = threading.Thread(target=send, daemon=True)
        t.start()
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                got += b
        finally:
            t.join(self.timeout)
            s.close()
        if err:
            raise err[0]
        return bytes(got)

    def stream(self, length, sock=None):
        """Asks TCP port 19 for @length bytes; returns (bytes received,
        SHA-256 hex digest of them) once the guest closed the connection."""
        s = sock or self.connect(PORT_STREAM)
        h = hashlib.sha256()
        n = 0
        try:
            s.sendall(b"%d\n" % length)
            while True:
                b = s.recv(1 << 20)
                if not b:
                    break
                h.update(b)
                n += len(b)
        finally:
            s.close()
        return n, h.hexdigest()

    # Disk --------------------------------------------------------------
    def _disk(self, op, block=0, seq=0, retries=5):
        self._tag = (self._tag + 1) & _M32
        tag = self._tag
        req = _DISK_REQ.pack(DISK_MAGIC, op, tag, block, seq)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((self.ip, PORT_DISK))
            s.settimeout(self.timeout / retries)
            for attempt in range(retries):
                s.send(req)
                try:
                    while True:
                        data = s.recv(4096)
                        if len(data) < _DISK_REPLY.size:
                            continue
                        magic, rop, status, rtag, rblock, value = _DISK_REPLY.unpack_from(data)
                        if magic == DISK_MAGIC and rtag == tag and rop == op:
                            break
                except socket.timeout:
                    if attempt == retries - 1:
                        raise
                    continue
                if status == DISK_BUSY:
                    time.sleep(0.05)
                    continue
                return status, value
        raise DiskError("disk service busy")

    def disk_info(self):
        """Capacity of the guest's disk in 512-byte blocks."""
        status, value = self._disk(DISK_INFO)
        if status != DISK_OK:
            raise DiskError("disk info: status %d" % status)
        return value

    def disk_write(self, block, seq):
        """Writes @seq to @block; returns once the guest flushed it."""
        status, value = self._disk(DISK_WRITE, block, seq)
        if status != DISK_OK or value != seq:
            raise DiskError("disk write block %d: status %d" % (block, status))

    def disk_read(self, block):
        """The seq in @block, or None if it holds no record."""
        status, value = self._disk(DISK_READ, block)
        if status == DISK_EMPTY:
            return None
        if status != DISK_OK:
            raise DiskError("disk read block %d: status %d" % (block, status))
        return value


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    g = Guest(argv[1])
    cmd, args = argv[2], argv[3:]
    if cmd == "ping":
        print(" ".join("%.3f ms" % (r * 1000) for r in g.ping(count=int(args[0]) if args else 3)))
    elif cmd == "udp":
        print(g.udp_echo(" ".join(args).encode()).decode(errors="replace"))
    elif cmd == "echo":
        data = os.urandom(int(args[0]))
        t0 = time.monotonic()
        ok = g.tcp_echo(data) == data
        print("echo %d bytes %s in %.2f s" % (len(data), "ok" if ok else "MISMATCH", time.monotonic() - t0))
        return 0 if ok else 1
    elif cmd == "stream":
        n = int(args[0])
        t0 = time.monotonic()
        got, digest = g.stream(n)
        dt = time.monotonic() - t0
        ok = got == n and digest == stream_digest(n)
        print("stream %d bytes %s in %.2f s (%.0f KiB/s)" % (got, "ok" if ok else "MISMATCH", dt, got / 1024 / dt))
        return 0 if ok else 1
    elif cmd == "disk-info":
        print(g.disk_info())
    elif cmd == "disk-write":
        g.disk_write(int(args[0]), int(args[1]))
    elif cmd == "disk-read":
        print(g.disk_read(int(args[0])))
    else:
        print("unknown command %s" % cmd, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
