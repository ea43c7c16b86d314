#!/usr/bin/env python3
"""The client host's workload and observer (issue 14, part 3; a start):
two TCP connections to the test guest kept open, an echo connection
(ECHO bytes a round, each byte checked) and a byte stream (STREAM bytes a
round, checked against the stream's pattern), a round every ROUND
seconds. What the client sees goes to a JSON file, rewritten at least
twice a second and at the end:

    rounds, echo_bytes, stream_bytes     what went through, checked
    udp_sent, udp_answered               a UDP echo request a round, on one socket
    udp_lost, udp_late                   requests without an answer after 2 s; answers
                                         that came later
    udp_duplicate, udp_wrong             an answer twice (two hosts answering?), an
                                         answer to no request or with other bytes
    disk                                 the guest has a disk (its disk service answers)
    disk_writes, disk_reads              a write a round through the guest's disk service
                                         (acknowledged after the guest's flush), each
                                         round a block written half a lap ago read back
    disk_unanswered                      writes or reads without an answer (tried
                                         0.2 s apart for 30 s) or refused
    writes_lost, lost                    read-backs older than the write acknowledged
                                         for that block, and the last 10 of them
    wrong_bytes                          bytes that differed from what was due
    broken, breaks                       connections that closed or reset (each
                                         reopened after 0.5 s), the last 100 with what
                                         happened
    longest_stall_ms, p50_ms             a round's time, sending to all checked; for the
                                         first round after a broken connection, from the
                                         start of the round that broke (the whole outage)
    stalls                               the last 200 rounds of 200 ms or more, each
                                         {at: wall clock its outage began, ms, broken,
                                         steps: ms each step of the round took (disk_write,
                                         disk_read, echo, stream), so a stall names what
                                         the client waited for}
    round_started                        wall clock when the round in flight began
                                         (null between rounds): a stall going on
    last_round                           wall clock of the last completed round

Run on the client host (Cluster.spawn does it):

    python3 cluster_client.py GUEST_IP OUT.json

SIGTERM ends it after a last write.
"""
import json
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "guest"))
import guestnet  # noqa: E402

ROUND = 0.1
ECHO = 512
STREAM = 2048
BLOCKS = 64                 # disk blocks written round robin
STREAM_TOTAL = 1 << 30      # the most the stream service takes; 14 h of rounds
DISK_PATIENCE = 30          # s a disk request is tried before it counts as unanswered
STALL_MS = 200              # rounds this long are listed in "stalls"


class Observer:
    def __init__(self, ip, out):
        self.ip, self.out = ip, out
        self.stop = False
        self.st = {"guest": ip, "rounds": 0, "echo_bytes": 0, "stream_bytes": 0, "wrong_bytes": 0,
                   "broken": 0, "breaks": [], "longest_stall_ms": 0, "p50_ms": 0, "round_started": None,
                   "last_round": None, "connected": False,
                   "udp_sent": 0, "udp_answered": 0, "udp_lost": 0, "udp_late": 0, "udp_duplicate": 0,
                   "udp_wrong": 0, "stalls": []}
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.setblocking(False)
        self.udp_pending = {}       # seq: monotonic time sent
        self.udp_done = set()       # answered, or given up (then also in udp_gone)
        self.udp_gone = set()
        self.st.update(disk=False, disk_writes=0, disk_reads=0, disk_unanswered=0, writes_lost=0, lost=[])
        self.guest = guestnet.Guest(ip, timeout=1.0)    # 5 tries, 0.2 s apart
        self.acked = {}             # block: the last seq acknowledged there
        self.sent = {}              # block: seqs sent there, not older than the acknowledged one
        self.lat = []
        self.round_start = None     # monotonic, for the round's time
        self.step_start = None      # monotonic, when the round's current step began
        self.steps = {}             # step: ms, this round's
        self.outage = None          # (monotonic, wall clock) a broken round began
        self.written = 0
        self.echo = self.stream = None
        self.offset = 0

    def write(self, force=False):
        now = time.monotonic()
        if not force and now - self.written < 0.5:
            return
        self.written = now
        if self.lat:
            self.st["p50_ms"] = round(sorted(self.lat)[len(self.lat) // 2] * 1000, 1)
        tmp = self.out + ".new"
        with open(tmp, "w") as f:
            json.dump(self.st, f)
        os.rename(tmp, self.out)

    def connect(self):
        while not self.stop:
            try:
                self.echo = socket.create_connection((self.ip, guestnet.PORT_ECHO), timeout=2)
                self.stream = socket.create_connection((self.ip, guestnet.PORT_STREAM), timeout=2)
                for s in (self.echo, self.stream):
                    s.settimeout(0.2)
                self.stream.sendall(b"%d\n" % STREAM_TOTAL)
                self.offset = 0
                self.st["connected"] = True
                return
            except OSError:
                self.close()
                self.write()
                time.sleep(0.5)

    def close(self):
        for s in (self.echo, self.stream):
            if s:
                s.close()
        self.echo = self.stream = None
        self.st["connected"] = False

    def recv_exactly(self, sock, n, what):
        """@n bytes from @sock, however long it takes (a stall is what we
        measure); ConnectionError when it closes or resets."""
        buf = b""
        while len(buf) < n:
            if self.stop:
                raise InterruptedError
            try:
                chunk = sock.recv(n - len(buf))
            except socket.timeout:
                self.write()
                continue
            if not chunk:
                raise ConnectionError("%s: closed by the other end" % what)
            buf += chunk
        return buf

    @staticmethod
    def udp_payload(seq):
        return b"colo-observer %08d " % seq + bytes(seq % 251 for _ in range(64))

    def udp_send(self):
        seq = self.st["udp_sent"]
        try:
            self.udp.sendto(self.udp_payload(seq), (self.ip, guestnet.PORT_ECHO))
        except OSError:
            pass                    # no route or buffer room: lost, counted below
        self.udp_pending[seq] = time.monotonic()
        self.st["udp_sent"] += 1

    def udp_receive(self):
        while True:
            try:
                data = self.udp.recv(2048)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:         # an ICMP error reported on the socket
                continue
            try:
                seq = int(data[14:22])
            except ValueError:
                seq = -1
            if seq in self.udp_pending and data == self.udp_payload(seq):
                del self.udp_pending[seq]
                self.udp_done.add(seq)
                self.st["udp_answered"] += 1
            elif seq in self.udp_gone and data == self.udp_payload(seq):
                self.udp_gone.discard(seq)
                self.st["udp_late"] += 1
            elif seq in self.udp_done and data == self.udp_payload(seq):
                self.st["udp_duplicate"] += 1
            else:
                self.st["udp_wrong"] += 1
        now = time.monotonic()
        for seq, sent in list(self.udp_pending.items()):
            if now - sent > 2:
                del self.udp_pending[seq]
                self.udp_done.add(seq)
                self.udp_gone.add(seq)
                self.st["udp_lost"] += 1
        if len(self.udp_done) > 4000:       # what is this old will not come back
            oldest = self.st["udp_sent"] - 2000
            self.udp_done = {q for q in self.udp_done if q > oldest}
            self.udp_gone = {q for q in self.udp_gone if q > oldest}

    def patient(self, op, *args):
        """@op(*args) tried again (the same request: a write of the same
        seq is idempotent) until it is answered or DISK_PATIENCE s pass;
        tries 0.2 s apart, so a stall is measured, not a retry timer."""
        deadline = time.monotonic() + DISK_PATIENCE
        while True:
            try:
                return op(*args)
            except OSError:
                if self.stop or time.monotonic() > deadline:
                    raise
                self.write()

    def disk_round(self, n):
        """Write block n % BLOCKS, then read back the block written half a
        lap ago: it must hold its last acknowledged seq, or a later one
        that was sent."""
        block, seq = n % BLOCKS, n + 1
        self.sent.setdefault(block, set()).add(seq)
        try:
            self.patient(self.guest.disk_write, block, seq)
        except (OSError, guestnet.DiskError):
            self.st["disk_unanswered"] += 1
            return
        finally:
            self.step("disk_write")
        self.st["disk_writes"] += 1
        self.acked[block] = seq
        self.sent[block] = {q for q in self.sent[block] if q >= seq}
        check = (n + BLOCKS // 2) % BLOCKS
        try:
            have = self.patient(self.guest.disk_read, check)
        except (OSError, guestnet.DiskError):
            self.st["disk_unanswered"] += 1
            return
        finally:
            self.step("disk_read")
        self.st["disk_reads"] += 1
        last = self.acked.get(check, 0)
        if (have or 0) < last or (have is not None and have not in self.sent.get(check, ())):
            self.st["writes_lost"] += 1
            self.st["lost"] = self.st["lost"][-9:] + [{"block": check, "acknowledged": last, "read": have}]

    def step(self, name):
        now = time.monotonic()
        self.steps[name] = int((now - self.step_start) * 1000)
        self.step_start = now

    def round(self):
        n = self.st["rounds"]
        self.round_start = self.step_start = time.monotonic()
        self.steps = {}
        self.st["round_started"] = time.time()
        self.udp_send()
        if self.st["disk"]:
            self.disk_round(n)
        data = bytes((n * 31 + i) % 251 for i in range(ECHO))
        self.echo.sendall(data)
        back = self.recv_exactly(self.echo, ECHO, "echo")
        self.step("echo")
        want = guestnet.stream_bytes(self.offset, STREAM)
        got = self.recv_exactly(self.stream, STREAM, "stream")
        self.step("stream")
        took = time.monotonic() - self.round_start
        # What the client saw: since the broken round began, reconnecting
        # included (the run-matrix's stall at failover).
        began = self.outage or (self.round_start, self.st["round_started"])
        seen = time.monotonic() - began[0]
        if seen >= STALL_MS / 1000:
            self.st["stalls"] = self.st["stalls"][-199:] + [{"at": began[1], "ms": int(seen * 1000),
                                                             "broken": self.outage is not None,
                                                             "steps": self.steps}]
        self.outage = None
        self.round_start = self.st["round_started"] = None
        wrong = sum(a != b for a, b in zip(back, data)) + sum(a != b for a, b in zip(got, want))
        self.st["wrong_bytes"] += wrong
        self.offset += STREAM
        self.st["rounds"] += 1
        self.st["echo_bytes"] += ECHO
        self.st["stream_bytes"] += STREAM
        self.st["longest_stall_ms"] = max(self.st["longest_stall_ms"], int(seen * 1000))
        self.lat = (self.lat + [took])[-1000:]
        self.st["last_round"] = time.time()
        self.udp_receive()
        self.write()
        time.sleep(max(0.0, ROUND - took))

    def run(self):
        try:
            self.guest.disk_info()
            self.st["disk"] = True
        except (OSError, guestnet.DiskError):
            pass
        self.connect()
        while not self.stop:
            try:
                self.round()
            except InterruptedError:
                break
            except OSError as e:        # ConnectionError, a reset, ...
                self.st["broken"] += 1
                self.st["breaks"] = self.st["breaks"][-99:] + [{"at": time.time(), "round": self.st["rounds"],
                                                                "error": str(e)}]
                if self.outage is None and self.round_start is not None:
                    self.outage = (self.round_start, self.st["round_started"])
                self.round_start = self.st["round_started"] = None
                self.close()
                self.write(force=True)
                time.sleep(0.5)
                self.connect()
        self.close()
        self.write(force=True)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: cluster_client.py GUEST_IP OUT.json")
    obs = Observer(sys.argv[1], sys.argv[2])

    def stop(*_):
        obs.stop = True
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    obs.write(force=True)
    obs.run()


def read(path):
    """The observer's last JSON, or None before its first write."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


if __name__ == "__main__":
    main()
