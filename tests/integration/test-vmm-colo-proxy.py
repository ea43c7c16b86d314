"""colo-vmm driving its local colo-proxy's control socket (-colo-proxy),
against a stand-in proxy that records the commands, answers them like
colo-proxy (docs/colo-proxy.md) and sends CHECKPOINT_REQUEST events on
demand: the commands of each checkpoint and of failover, on both sides;
the proxy's reasons counted as checkpoint triggers; a proxy that hangs or
closes its socket never freezes the guest nor delays x-colo-lost-heartbeat;
a missing proxy refuses COLO. The real proxies, with traffic, are
test-colo-network.py. Needs /dev/kvm only."""
import json
import os
import socket
import threading
import time

from colo_vmm import Vmm, free_port, lost_heartbeat, require_kvm, wait_until
import tap

GUEST = "interval=0 dirty_pages=16 dirty_ms=50 area=4M"
BANNER = "colo-testguest ready"


class FakeProxy:
    """A colo-proxy control socket. @mode: "answer", "hang" (read, never
    reply) or "close" (close the connection on the next command)."""

    def __init__(self, path, role):
        self.path, self.role = path, role
        self.mode = "answer"
        self.epoch = 0
        self.commands = []
        self.arguments = []         # each command's, or None
        self.times = []             # time.monotonic() of each command's arrival
        self.conn = None
        self.lock = threading.Lock()
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(4)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            greeting = {"QMP": {"version": {"qemu": {"micro": 0, "minor": 1, "major": 0}, "package": "colo-proxy"},
                                "capabilities": []},
                        "colo-proxy": {"version": "fake", "role": self.role}}
            conn.sendall(json.dumps(greeting).encode() + b"\r\n")
            with self.lock:
                self.conn = conn
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn):
        buf = b""
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                req = json.loads(line)
                name = req["execute"]
                if name == "qmp_capabilities":
                    conn.sendall(json.dumps({"return": {}, "id": req.get("id")}).encode() + b"\r\n")
                    continue
                with self.lock:
                    self.commands.append(name)
                    self.arguments.append(req.get("arguments"))
                    self.times.append(time.monotonic())
                    mode = self.mode
                if mode == "hang":
                    continue
                if mode == "close":
                    conn.close()
                    return
                if name == "checkpoint-commit":
                    self.epoch += 1
                ret = {"failed-over": True} if name == "failover" else {"held": 0, "released": 0, "epoch": self.epoch}
                conn.sendall(json.dumps({"return": ret, "id": req.get("id")}).encode() + b"\n")

    def emit(self, reason, epoch=None):
        ev = {"event": "CHECKPOINT_REQUEST", "data": {"reason": reason, "epoch": self.epoch if epoch is None else epoch}}
        with self.lock:
            self.conn.sendall(json.dumps(ev).encode() + b"\n")

    def seen(self):
        with self.lock:
            return list(self.commands)

    def first(self, name):
        """When @name first arrived (time.monotonic()), or None."""
        with self.lock:
            return next((t for c, t in zip(self.commands, self.times) if c == name), None)

    def close(self):
        self.srv.close()
        with self.lock:
            if self.conn:
                self.conn.close()

    def die(self):
        """As a killed proxy: the connection ends now (shut down first: a
        close alone would wait for the reading thread)."""
        with self.lock:
            if self.conn:
                self.conn.shutdown(socket.SHUT_RDWR)
        self.close()


class Pair:
    """A primary and a secondary colo-vmm in COLO, each with a FakeProxy."""

    def __init__(self, tmp, delay=60000):
        self.pproxy = FakeProxy(os.path.join(tmp, "p.sock"), "primary")
        self.sproxy = FakeProxy(os.path.join(tmp, "s.sock"), "secondary")
        uri = "tcp:127.0.0.1:%d" % free_port()
        self.pri = Vmm(smp=1, mem="64M", append=GUEST, extra=["-colo-proxy", self.pproxy.path])
        self.sec = Vmm(smp=1, mem="64M", append=GUEST, extra=["-incoming", uri, "-colo-proxy", self.sproxy.path])
        try:
            self.start(uri, delay)
        except BaseException:
            self.close()
            raise

    def start(self, uri, delay):
        self.pri.start()
        self.sec.start()
        self.pri.wait_serial(BANNER, 60)
        for vm in (self.pri, self.sec):
            vm.qmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "x-colo", "state": True}])
        self.pri.qmp.cmd("migrate-set-parameters", args={"x-checkpoint-delay": delay, "max-bandwidth": 0})
        self.pri.qmp.cmd("migrate", uri=uri)
        for vm in (self.pri, self.sec):
            wait_until(lambda: vm.qmp.cmd("query-migrate").get("status") == "colo", 60, "COLO")

    def close(self):
        for x in (self.pri, self.sec, self.pproxy, self.sproxy):
            x.close()


def status(vm):
    return vm.qmp.cmd("query-colo-status")


def reasons(vm):
    return status(vm)["checkpoints"]["reasons"]


def test_checkpoints_drive_both_proxies():
    """The initial sync and every checkpoint: begin then commit on the
    primary's proxy, commit on the secondary's; the proxy's reasons count
    under mismatch, stale and queue-full; a request from an epoch already
    committed is ignored."""
    require_kvm()
    with tap.tempdir("cpx-") as tmp:
        p = Pair(tmp)
        try:
            wait_until(lambda: p.pproxy.seen() == ["checkpoint-begin", "checkpoint-commit"], 10,
                       "the initial sync committed on the primary's proxy")
            wait_until(lambda: p.sproxy.seen() == ["checkpoint-commit"], 10,
                       "the initial sync committed on the secondary's proxy")
            st = status(p.pri)
            assert st["proxy"]["connected"] and st["proxy"]["epoch"] == 1, st
            expect = {"periodic": 0, "request": 0, "mismatch": 0, "stale": 0, "queue-full": 0}
            for reason, trigger in (("payload", "mismatch"), ("flags", "mismatch"), ("timeout", "stale"),
                                    ("queue-full", "queue-full"), ("table-full", "queue-full"),
                                    ("history", "mismatch"), ("overflow", "queue-full")):
                n = status(p.pri)["checkpoints"]["count"]
                p.pproxy.emit(reason)
                wait_until(lambda: status(p.pri)["checkpoints"]["count"] == n + 1, 10, "a checkpoint for " + reason)
                expect[trigger] += 1
                assert reasons(p.pri) == expect, (reason, reasons(p.pri), expect)
            p.pri.qmp.cmd("x-colo-checkpoint")
            expect["request"] += 1
            wait_until(lambda: reasons(p.pri) == expect, 10, "the QMP request counted")
            n = 1 + sum(expect.values())
            assert p.pproxy.seen() == ["checkpoint-begin", "checkpoint-commit"] * n, p.pproxy.seen()
            wait_until(lambda: p.sproxy.seen() == ["checkpoint-commit"] * n, 5, "a commit per checkpoint")
            # Answered already: the epoch it names was committed.
            p.pproxy.emit("payload", epoch=p.pproxy.epoch - 1)
            wait_until(lambda: status(p.pri)["proxy"]["requests-ignored"] == 1, 5, "the old request ignored")
            time.sleep(0.3)
            assert status(p.pri)["checkpoints"]["count"] == n - 1, status(p.pri)
            assert status(p.pri)["proxy"]["requests"] == 7, status(p.pri)

            # Failover of the primary: its proxy passes traffic.
            p.sec.proc.kill()
            p.pri.qmp.cmd("x-colo-lost-heartbeat")
            assert p.pri.qmp.wait_event("COLO_EXIT", 10)["data"] == {"mode": "primary", "reason": "request"}
            assert p.pproxy.seen()[-1] == "failover", p.pproxy.seen()
            assert status(p.pri)["proxy"] == dict(st["proxy"], connected=False, epoch=n, requests=7,
                                                  **{"requests-ignored": 1, "failed-over": True}), status(p.pri)
        finally:
            p.close()


def test_sync_begins_at_the_stop():
    """The initial sync's checkpoint-begin reaches the primary's proxy when
    the primary stops its guest for the sync's last pass, before the
    secondary loads the copy (its proxy's first commit), not after: input
    that reaches the primary's guest from its stop on is not in the copy,
    and the proxy mirrors only once armed."""
    require_kvm()
    with tap.tempdir("cpx-") as tmp:
        p = Pair(tmp)
        try:
            wait_until(lambda: p.sproxy.first("checkpoint-commit") is not None, 10,
                       "the initial sync committed on the secondary's proxy")
            begin, loaded = p.pproxy.first("checkpoint-begin"), p.sproxy.first("checkpoint-commit")
            assert begin is not None and begin < loaded, (p.pproxy.seen(), begin, loaded)
            assert p.pproxy.seen()[:2] == ["checkpoint-begin", "checkpoint-commit"], p.pproxy.seen()
            # It says when the stop began (CLOCK_MONOTONIC, ns): the proxy
            # mirrors the input it read since (docs/colo-proxy.md, "Input
            # during the initial sync").
            with p.pproxy.lock:
                args = p.pproxy.arguments[0]
            since = (args or {}).get("input-since-ns")
            assert isinstance(since, int) and begin - 1.0 < since / 1e9 <= begin, (args, begin)
        finally:
            p.close()


def test_secondary_fails_over_its_proxy():
    require_kvm()
    with tap.tempdir("cpx-") as tmp:
        p = Pair(tmp, delay=100)
        try:
            wait_until(lambda: p.sproxy.seen().count("checkpoint-commit") >= 3, 30, "checkpoints")
            p.pri.proc.kill()
            p.sec.qmp.cmd("x-colo-lost-heartbeat")
            assert p.sec.qmp.wait_event("COLO_EXIT", 10)["data"] == {"mode": "secondary", "reason": "request"}
            assert p.sproxy.seen()[-1] == "failover" and p.sproxy.seen().count("failover") == 1, p.sproxy.seen()
            assert "checkpoint-begin" not in p.sproxy.seen()
            assert status(p.sec)["proxy"]["failed-over"] is True
            hb = p.sec.heartbeat()
            wait_until(lambda: p.sec.heartbeat() > hb, 30, "the guest runs on")
        finally:
            p.close()


def proxy_fails(mode, side):
    """The @side ("primary"/"secondary") proxy hangs or closes its socket
    during COLO: the next checkpoint fails within the call's bound, that
    side's guest runs on (x-broken), and failover answers at once even
    though the proxy never replies. (A secondary whose primary failed
    mid-checkpoint waits paused for failover, as with any failed primary.)"""
    require_kvm()
    with tap.tempdir("cpx-") as tmp:
        p = Pair(tmp, delay=100)
        try:
            wait_until(lambda: status(p.pri)["checkpoints"]["count"] >= 2, 30, "checkpoints")
            proxy, vm = (p.pproxy, p.pri) if side == "primary" else (p.sproxy, p.sec)
            with proxy.lock:
                proxy.mode = mode
            wait_until(lambda: status(vm)["x-broken"], 10, "COLO to break on the %s proxy" % mode)
            if side == "primary" and mode == "hang":
                # Not asked to hold: that would only wait out another
                # deadline before colod hears of the break.
                assert "hold" not in proxy.seen(), proxy.seen()
            hb = vm.heartbeat()
            wait_until(lambda: vm.heartbeat() > hb, 30, "the guest runs on")
            lost_heartbeat(vm)
            ev = vm.qmp.wait_event("COLO_EXIT", 10)
            assert ev["data"]["reason"] == "request", ev
            assert status(vm)["mode"] == "none"
        finally:
            p.close()


def test_primary_proxy_hangs():
    proxy_fails("hang", "primary")


def test_secondary_proxy_closes():
    proxy_fails("close", "secondary")


def test_secondary_proxy_dies_between_checkpoints():
    """The secondary's colo-proxy dies (its socket closes) with no call in
    progress and no checkpoint due for a minute: the secondary leaves COLO
    at once and its primary hears of it at once, so colod can decide (before:
    the secondary failed at the next checkpoint's commit, and the primary
    then waited 10 s for its answer while its proxy held the guest's output)."""
    require_kvm()
    with tap.tempdir("cpx-") as tmp:
        p = Pair(tmp, delay=60000)
        try:
            t0 = time.monotonic()
            p.sproxy.die()
            wait_until(lambda: status(p.sec)["x-broken"], 5, "the secondary to leave COLO")
            wait_until(lambda: status(p.pri)["x-broken"], 5, "the primary to hear it")
            took = time.monotonic() - t0
            assert took < 5, took
            assert "colo-proxy closed its control socket" in open(p.sec.log_path).read()
            # Each side says so in an event, for colod to act at once.
            ev = p.sec.qmp.wait_event("COLO_BROKEN", 5)
            assert ev["data"]["mode"] == "secondary" and "colo-proxy" in ev["data"]["reason"], ev
            ev = p.pri.qmp.wait_event("COLO_BROKEN", 5)
            assert ev["data"]["mode"] == "primary" and "return path" in ev["data"]["reason"], ev
            # Before saying so the primary told its proxy to hold everything
            # (the secondary may have taken over), and failover then.
            seen = p.pproxy.seen()
            assert "hold" in seen and "failover" not in seen[seen.index("hold"):], seen
            # The primary's guest runs on; failover there ends COLO.
            hb = p.pri.heartbeat()
            wait_until(lambda: p.pri.heartbeat() > hb, 30, "the primary's guest runs on")
            lost_heartbeat(p.pri)
            ev = p.pri.qmp.wait_event("COLO_EXIT", 10)
            assert ev["data"]["reason"] == "request", ev
            assert "failover" in p.pproxy.seen()[p.pproxy.seen().index("hold"):], p.pproxy.seen()
        finally:
            p.close()


def refused(tmp, role, sec_proxy, owned):
    """A primary with a FakeProxy of @role and a secondary with
    -colo-proxy @sec_proxy (or none): COLO must not begin, the primary
    runs on outside COLO. The proxy, primary and secondary are appended
    to @owned as they are made (the caller closes them)."""
    uri = "tcp:127.0.0.1:%d" % free_port()
    proxy = FakeProxy(os.path.join(tmp, "p.sock"), role)
    sec_extra = ["-colo-proxy", sec_proxy] if sec_proxy else []
    pri = Vmm(mem="64M", append=GUEST, extra=["-colo-proxy", proxy.path])
    sec = Vmm(mem="64M", append=GUEST, extra=["-incoming", uri] + sec_extra)
    owned += [proxy, pri, sec]
    pri.start()
    sec.start()
    pri.wait_serial(BANNER, 60)
    for vm in (pri, sec):
        vm.qmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "x-colo", "state": True}])
    pri.qmp.cmd("migrate", uri=uri)
    wait_until(lambda: pri.qmp.cmd("query-migrate").get("status") == "failed", 60, "the migration to fail")
    assert pri.qmp.cmd("query-status")["status"] == "running"
    assert status(pri)["mode"] == "none"


def test_no_proxy_refuses_colo():
    """-colo-proxy names no socket on the secondary: it refuses COLO with
    the reason and exits; the primary runs on outside COLO, and its proxy,
    armed when the sync's last pass began, is failed over (it passes)."""
    require_kvm()
    with tap.tempdir("cpx-") as tmp:
        owned = []
        try:
            refused(tmp, "primary", os.path.join(tmp, "none.sock"), owned)
            proxy, sec = owned[0], owned[2]
            assert sec.wait_exit(30) == 1
            assert "colo-proxy" in open(sec.log_path).read()
            # Armed at the sync's stop, it passes the guest's traffic again.
            assert proxy.seen() == ["checkpoint-begin", "failover"], proxy.seen()
        finally:
            for x in owned:
                x.close()


def test_wrong_role_refused():
    """A primary pointed at a secondary's proxy does not begin COLO."""
    require_kvm()
    with tap.tempdir("cpx-") as tmp:
        owned = []
        try:
            refused(tmp, "secondary", None, owned)
            q = owned[1].qmp.cmd("query-migrate")
            assert "secondary proxy, not a primary" in q.get("error-desc", ""), q
        finally:
            for x in owned:
                x.close()


tap.run(globals())
