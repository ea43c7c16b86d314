"""The reliability matrix (issue 14, items 2-4): every fault at every point
of a protected VM's life, N rounds each, on the two-node cluster
(tests/lib/cluster.py) with colod driving the guest and the client's
observer (tests/lib/cluster_client.py) checking every byte.

    m = Matrix(c, vm, seed=1234, token=1000)    # vm: the harness API module
    result = m.round("kill-host:primary", "idle", 0)
    write_report(path, results, seed, token, command)

A fault is KIND or KIND:SIDE (SIDE: primary or secondary, whichever node
holds that role when the round starts); a point is reached by watching
state (colod's status, colo-vmm's QMP events and query-migrate), never by
a blind sleep, and the fault lands after a random delay inside the point,
drawn from the round's own random generator (seed, fault, point, round):
a cell is replayable alone. After each round: heal, restart_node for a
node whose corosync or colod is gone, wait_protected; a cluster that does
not get there is rebuilt (start_cluster).
"""
import json
import os
import random
import re
import statistics
import threading
import time

import cluster
import cluster_client
import tap
from qmp import QMPClient

PROCS = ("colo-vmm", "colo-proxy", "colod", "corosync")
SIDES = ("primary", "secondary")
FAULTS = tuple("sigkill-%s:%s" % (p, s) for p in PROCS for s in SIDES) + (
    "kill-host:primary", "kill-host:secondary", "stop-host:primary", "stop-host:secondary",
    "drop-repl", "reject-repl", "partition", "flap-client", "disk-full:secondary")
POINTS = ("idle", "transfer", "load", "initial-sync", "snapshot-protect", "re-protect")
# The VM protected when the fault comes (the others are a protect's).
PROTECTED_POINTS = ("idle", "transfer", "load")
# Held this many token timeouts before heal (stop-host: "longer than the
# token"; the links: long enough for corosync and colod to act on them).
HOLD_TOKENS = 4
RECOVER_ROUNDS = 10         # the client's rounds that prove it goes on
GOING_ROUNDS = 3            # before a round: the client's rounds that show it is not still recovering
SLOW_MS = 5000              # a stall this long keeps the round's logs too


def split(fault):
    kind, _, side = fault.partition(":")
    return kind, side or None


class Cell(Exception):
    """A round that could not run as asked (not run, with why)."""


class Matrix:
    def __init__(self, c, vm, seed, token, log=print, rebuild=None, diag=None, slow_ms=SLOW_MS):
        self.c, self.vm, self.seed, self.token = c, vm, seed, token
        self.diag = diag            # a directory for the logs of a round that went wrong
        self.slow_ms = slow_ms      # or stalled longer
        self.log = log
        self.rebuild = rebuild      # () -> a fresh cluster, after a round that left it broken
        self.checkpoint_s = None    # a forced checkpoint's time, measured
        self.protect_s = {}         # (re-protect, snapshot): a protect's time, measured

    # -- state -------------------------------------------------------------

    def observer(self):
        return cluster_client.read(self.vm.observer_path(self.c)) or {}

    def colod(self, node):
        try:
            return self.vm.coloctl(self.c, node, "status")
        except Exception:  # noqa: BLE001 - a dead, frozen or unreachable colod
            return None

    def state(self, node):
        st = self.colod(node)
        return st.get("state") if st else None

    def qmp(self, node):
        st = self.colod(node)
        name = st["vm"] if st else "web1"
        return QMPClient(self.c.hostdir(node, "fs", "run", "colo", name, "vmm.qmp"), timeout=5)

    def protected(self, timeout=180):
        """The primary once the VM is protected; None if it is not in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = self.vm.primary(self.c)
            if p:
                try:
                    self.vm.wait_protected(self.c, p, timeout=max(1, min(30, deadline - time.monotonic())))
                    return p
                except AssertionError:
                    pass
            time.sleep(0.5)
        return None

    # -- the points ----------------------------------------------------------

    def _calibrate(self, primary):
        """A forced checkpoint's duration (x-colo-checkpoint to the
        primary's COLO_CHECKPOINT event), the median of 3."""
        took = []
        with self.qmp(primary) as q:
            for _ in range(3):
                q.clear_events()
                t = time.monotonic()
                q.cmd("x-colo-checkpoint")
                q.wait_event("COLO_CHECKPOINT", 10)
                took.append(time.monotonic() - t)
        self.checkpoint_s = statistics.median(took)
        self.log("# a forced checkpoint takes %.1f ms (median of 3)" % (self.checkpoint_s * 1000))

    @staticmethod
    def _checkpoint(q):
        """A checkpoint forced and completed (colo-vmm's default period
        is 20 s: waiting for one could take that long)."""
        q.clear_events()
        q.cmd("x-colo-checkpoint")
        q.wait_event("COLO_CHECKPOINT", 10)
        q.clear_events()

    def _at_checkpoint(self, rng, primary, inject, half):
        """@inject() inside a forced checkpoint: in its first half (the
        transfer) or its second (the secondary's load). Whether it landed
        before the checkpoint completed is the round's "hit"."""
        if self.checkpoint_s is None:
            self._calibrate(primary)
        lo, hi = (0.0, 0.5) if half == 0 else (0.5, 1.0)
        delay = rng.uniform(lo, hi) * self.checkpoint_s
        with self.qmp(primary) as q:
            self._checkpoint(q)         # just after one: nothing in flight
            q.cmd("x-colo-checkpoint")
            time.sleep(delay)
            inject()
            try:
                q.wait_event("COLO_CHECKPOINT", 0)
                return False
            except Exception:  # noqa: BLE001 - no event yet (or colo-vmm gone): it hit
                return True

    def _at_sync(self, rng, primary, secondary, inject, failover, snapshot):
        """@inject() during a protect: the secondary's colo-vmm killed
        (initial sync: the same primary protects a new secondary) or the
        primary's (re-protect: the secondary fails over and protects the
        old primary's node), then once the new primary's colod says
        protecting, after a random delay inside such a protect's duration
        (measured once per kind). Returns whether colod had not yet logged
        the VM protected when the fault landed."""
        if snapshot:
            self._protect_mode(primary, "snapshot")
        victim = primary if failover else secondary
        new_primary = secondary if failover else primary
        kind = (failover, snapshot)
        if kind not in self.protect_s:
            # How long such a protect takes here, once: the delay is drawn
            # inside it.
            self.protect_s[kind] = self._protect(victim, new_primary)
            self.log("# a protect (%s) takes %.0f ms" % ("re-protect" if failover else "snapshot" if snapshot
                                                          else "initial sync", self.protect_s[kind] * 1000))
            primary = self.protected() or new_primary
            secondary = [x for x in cluster.NODES if x != primary][0]
            victim, new_primary = (primary, secondary) if failover else (secondary, primary)
        seen = self._protect(victim, new_primary, wait_done=False)
        time.sleep(rng.uniform(0, 0.9) * self.protect_s[kind])
        done = "protecting -> primary-protected" in self.colod_log_since(new_primary, seen)
        inject((new_primary, victim))
        return not done

    def _protect(self, victim, new_primary, wait_done=True):
        """colo-vmm on @victim killed; returns once @new_primary's colod
        logs that it protects (colod's log line, not coloctl status: a
        poll misses a protect shorter than itself), with @wait_done once
        it logs the VM protected, then how long that took (s); without,
        the log's offset from before the kill."""
        seen = self.colod_log_size(new_primary)
        self.c.fault("sigkill", victim, "colo-vmm")
        tap.wait_until(lambda: "-> protecting:" in self.colod_log_since(new_primary, seen), 120,
                       "%s's colod to protect again" % new_primary, interval=0.01)
        if not wait_done:
            return seen
        t = time.monotonic()
        tap.wait_until(lambda: "protecting -> primary-protected" in self.colod_log_since(new_primary, seen), 120,
                       "%s's colod to protect" % new_primary, interval=0.01)
        return time.monotonic() - t

    def colod_log_size(self, node):
        try:
            return os.path.getsize(self.c.hostdir(node, "colod.log"))
        except OSError:
            return 0

    def colod_log_since(self, node, offset):
        try:
            with open(self.c.hostdir(node, "colod.log"), "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _protect_mode(self, node, mode):
        for n in cluster.NODES:
            try:
                self.vm.coloctl(self.c, n, "set", "protect-mode", mode)
            except Exception as e:  # noqa: BLE001
                if n == node:
                    raise Cell("colod has no protect-mode %s (%s)" % (mode, str(e).strip()[-120:]))

    # -- the faults ----------------------------------------------------------

    def injector(self, fault, primary, secondary):
        """(inject(), hold: s until heal or None, victim node)."""
        kind, side = split(fault)
        node = {"primary": primary, "secondary": secondary}.get(side)
        hold = HOLD_TOKENS * self.token / 1000
        if kind.startswith("sigkill-"):
            return (lambda: self.c.fault("sigkill", node, kind[len("sigkill-"):])), None, node
        if kind in ("kill-host", "disk-full"):
            return (lambda: self.c.fault(kind, node)), (hold if kind == "disk-full" else None), node
        if kind == "stop-host":
            return (lambda: self.c.fault(kind, node)), hold, node
        if kind in ("drop-repl", "reject-repl", "partition"):
            return (lambda: self.c.fault(kind)), hold, None
        if kind == "flap-client":
            return (lambda: self.c.fault(kind)), 0, None
        raise Cell("unknown fault %s" % fault)

    # -- a round -------------------------------------------------------------

    def rng(self, fault, point, n):
        return random.Random("%d/%s/%s/%d" % (self.seed, fault, point, n))

    def round(self, fault, point, n):
        """One round of @fault at @point: a result dict (see write_report)."""
        res = {"fault": fault, "point": point, "round": n, "ran": False, "hit": None, "failover": False,
               "stall_ms": None, "recovered": False, "broken": 0, "wrong": 0, "lost": 0, "split_brain": 0,
               "note": ""}
        rng = self.rng(fault, point, n)
        primary = self.protected()
        if not primary:
            self._reset("not protected before the round")
            primary = self.protected()
            if not primary:
                res["note"] = "the cluster was not protected before the round"
                return res
        secondary = [x for x in cluster.NODES if x != primary][0]
        self.injector(fault, primary, secondary)        # an unknown fault: not run
        # The client going again first: a previous round's outage (a VM
        # lost by design, the client reconnecting) is not this round's.
        going = self.observer().get("rounds", 0)
        if not tap.wait_for(lambda: self.observer().get("rounds", 0) >= going + GOING_ROUNDS, timeout=60,
                            interval=0.1):
            res["note"] += " the client had not recovered from the round before;"
        began = time.time()
        before = self.observer()
        when = {}

        def fire(roles=(primary, secondary)):
            # The sides as they are at the point (re-protect swapped them).
            inject, when["hold"], when["victim"] = self.injector(fault, *roles)
            when["primary"] = roles[0]
            when["t"] = time.time()
            inject()
        watch = SplitBrainWatch(self.vm, self.c)
        try:
            if point == "idle":
                with self.qmp(primary) as q:
                    self._checkpoint(q)
                time.sleep(rng.uniform(0, 0.05))
                fire()
                res["hit"] = True
            elif point in ("transfer", "load"):
                res["hit"] = self._at_checkpoint(rng, primary, fire, 0 if point == "transfer" else 1)
            elif point in ("initial-sync", "snapshot-protect", "re-protect"):
                res["hit"] = self._at_sync(rng, primary, secondary, fire, point == "re-protect",
                                           point == "snapshot-protect")
            else:
                raise Cell("unknown point %s" % point)
        except Cell as e:
            res["note"] = "not run: %s" % e
            return res
        except Exception as e:  # noqa: BLE001 - the point not reached: said, and the cluster reset
            res["note"] = "point not reached: %s (colod: %s)" % (
                str(e)[:200], ", ".join("%s %s" % (x, self.state(x)) for x in cluster.NODES))
            self._settle(watch, res, before)
            return res
        res["ran"] = True
        self.log("# %s at %s round %d: injected%s" % (fault, point, n, "" if res["hit"] else " (after the point)"))
        watch.start()
        if when["hold"]:
            time.sleep(when["hold"])
        self.c.heal()
        # The client goes on: RECOVER_ROUNDS rounds after the fault.
        start_rounds = self.observer().get("rounds", 0)
        waiting = {}

        def went_on():
            if self.observer().get("rounds", 0) >= start_rounds + RECOVER_ROUNDS:
                return True
            # colod waiting for an administrator: nothing comes by itself.
            if time.monotonic() - waiting.setdefault("polled", time.monotonic()) > 2:
                waiting["polled"] = time.monotonic()
                waiting["admin"] = [x for x in cluster.NODES if self.state(x) == "wait-admin"]
                if waiting["admin"] and len(waiting.setdefault("seen", [])) >= 2:
                    return True
                waiting["seen"] = waiting["seen"] + [1] if waiting["admin"] else []
            return False
        tap.wait_for(went_on, timeout=60, interval=0.2)
        res["recovered"] = self.observer().get("rounds", 0) >= start_rounds + RECOVER_ROUNDS
        obs = self.observer()
        res["fault_at"] = when["t"]
        # From the round's start: the point's own set-up (a protect's
        # failover) counts, the round before does not.
        res["stalls"] = [s for s in obs.get("stalls", []) if s["at"] >= max(when["t"] - 30, began)]
        if obs.get("round_started") and not res["recovered"]:
            res["stalls"].append({"at": obs["round_started"], "ms": int((time.time() - obs["round_started"]) * 1000),
                                  "broken": False, "going-on": True})
        res["stall_ms"] = stall_of(res)
        # A failover: the node that was the secondary runs the VM now. (Not
        # "the primary is another node": a thawed old primary may still
        # call itself primary for a moment, and then there is no one.)
        former_secondary = cluster.NODES[1 - cluster.NODES.index(when["primary"])]
        res["failover"] = self.vm.runs_primary(self.c, former_secondary)
        self._settle(watch, res, before)
        if point == "snapshot-protect":
            try:
                self._protect_mode(self.vm.primary(self.c) or primary, "precopy")
            except Cell:
                pass
        return res

    def _save_logs(self, res):
        if not self.diag:
            return
        os.makedirs(self.diag, exist_ok=True)
        path = os.path.join(self.diag, "%s-%s-%d.log" % (res["fault"].replace(":", "-"), res["point"], res["round"]))
        # A round saved twice (before a rebuild, then after) keeps both.
        base, n = path, 1
        while os.path.exists(path) and ("logs: %s;" % path) in res["note"]:
            n += 1
            path = "%s.%d" % (base, n)
        with open(path, "w") as f:
            f.write("%s\n--- observer\n%s\n%s" % (json.dumps(res), json.dumps(self.observer()), self.c.logs(2000)))
        res["note"] += " logs: %s;" % path

    def _settle(self, watch, res, before):
        """Heal, bring back what is gone, wait for protection; count what
        the client saw from @before to now into @res."""
        if not res["recovered"]:
            self._save_logs(res)
        self.c.heal()
        admin = self._admin()
        if admin:
            res["note"] += " %s;" % admin
        for node in cluster.NODES:
            # A killed colod is started again by its colod-unit (as by
            # systemd), over whatever it left running: rebooting the node
            # instead would kill a VM the unit kept (its sole copy).
            if not self.c.pids(node, "corosync") or not (self.c.pids(node, "colod") or
                                                        self.c.pids(node, "colod-unit")):
                self.log("# restart_node %s" % node)
                self.vm.restart_node(self.c, node, wait=False)
        protected = self.protected(timeout=120)
        # The client's counts are read before a rebuild: the rebuilt
        # cluster's observer starts from zero.
        obs = self.observer()
        if not protected:
            res["note"] += " not protected again within 120 s;"
            self._save_logs(res)
            self._reset("not protected after the round")
        watch.stop()
        res["split_brain"] = watch.seen
        if watch.both:
            res["both_served"] = watch.both
        for key, field in (("broken", "broken"), ("wrong", "wrong_bytes"), ("lost", "writes_lost")):
            res[key] = obs.get(field, 0) - before.get(field, 0)
        res["udp_twice"] = obs.get("udp_duplicate", 0) - before.get("udp_duplicate", 0)
        if res["udp_twice"] > 0:
            res["split_brain"] += 1
        if res["recovered"] and (res["broken"] or res["wrong"] or res["lost"] or res["split_brain"] or
                                 (res["stall_ms"] or 0) > self.slow_ms):
            self._save_logs(res)

    def _admin(self):
        """What an administrator does when colod waits for one: `coloctl
        failover` on the node whose colod says to run it there (its VM
        died with no complete replica elsewhere: the guest boots again
        from its disk). Returns what was done, or ""."""
        for node in cluster.NODES:
            st = self.colod(node)
            if st and st.get("state") == "wait-admin" and "coloctl failover' to start it here" in st.get("reason", ""):
                self.log("# %s waits for an administrator (%s): coloctl failover there" % (node, st["reason"]))
                try:
                    self.vm.coloctl(self.c, node, "failover")
                except Exception as e:  # noqa: BLE001
                    return "%s in wait-admin; coloctl failover failed: %s" % (node, str(e)[:100])
                return "%s in wait-admin (its VM down, no complete replica): coloctl failover by hand" % node
        return ""

    def _reset(self, why):
        self.log("# rebuilding the cluster: %s" % why)
        if not self.rebuild:
            raise AssertionError(why)
        self.c = self.rebuild()


class SplitBrainWatch:
    """Both nodes' guest output reaching the LAN in the same interval
    (cluster_vm.serving, over and over): a split brain when it happens in
    2 intervals in a row (a failover's handing over is one)."""

    def __init__(self, vm, c, interval=1.0):
        self.vm, self.c, self.interval = vm, c, interval
        self.seen = 0
        # Every interval with both nodes' output: [start, end, {node:
        # packets}], for the round's log (when, and how much of each).
        self.both = []
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        both = 0
        while not self._stop.is_set():
            start = time.time()
            try:
                sent = self.vm.serving(self.c, interval=self.interval, counts=True)
            except Exception:  # noqa: BLE001 - a node's namespace busy or gone
                sent = {}
            both = both + 1 if len(sent) > 1 else 0
            if both:
                self.both.append([round(start, 3), round(time.time(), 3), sent])
            if both == 2:
                self.seen += 1

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(10)


def stall_of(res):
    """The longest of the client's stalls going on at the fault or begun
    after it (one that the point's own failover began and the fault
    prolonged counts whole), ms."""
    return max((s["ms"] for s in res["stalls"] if s["at"] + s["ms"] / 1000 >= res["fault_at"]), default=0)


# -- the report ----------------------------------------------------------------

def p50(values):
    return statistics.median(values) if values else None


def fmt_ms(v):
    return "-" if v is None else "%d" % round(v)


def summarize(results):
    """Per (fault, point): rounds, failovers, stall p50/max, sums."""
    cells = {}
    for r in results:
        if r["ran"] and "stalls" in r:
            r["stall_ms"] = stall_of(r)
        cells.setdefault((r["fault"], r["point"]), []).append(r)
    rows = []
    for (fault, point), rs in cells.items():
        ran = [r for r in rs if r["ran"]]
        stalls = [r["stall_ms"] for r in ran if r["stall_ms"] is not None]
        rows.append({"fault": fault, "point": point, "rounds": len(ran), "asked": len(rs),
                     "hit": sum(1 for r in ran if r["hit"]),
                     "failovers": sum(1 for r in ran if r["failover"]),
                     "p50": p50(stalls), "max": max(stalls, default=None),
                     "broken": sum(r["broken"] for r in rs), "wrong": sum(r["wrong"] for r in rs),
                     "lost": sum(r["lost"] for r in rs), "split": sum(r["split_brain"] for r in rs),
                     "unrecovered": sum(1 for r in ran if not r["recovered"]),
                     "unprotected": sum(1 for r in rs if "not protected again" in r["note"]),
                     # The logs' paths are the run's, not the report's.
                     "notes": sorted({re.sub(r" ?logs: [^;]*;", "", r["note"]).strip() for r in rs
                                      if re.sub(r" ?logs: [^;]*;", "", r["note"]).strip()})})
    return rows


def goal_ms(fault, token):
    """The stall goal of issue 14 for @fault, or None: host loss at most
    token + consensus (1.2 token, corosync's default) + 300 ms; a crash
    of colo-vmm or colo-proxy, which colod sees directly, under 300 ms."""
    kind, _ = split(fault)
    if kind in ("kill-host", "stop-host"):
        return int(token * 2.2 + 300)
    if kind in ("sigkill-colo-vmm", "sigkill-colo-proxy"):
        return 300
    return None


def write_report(path, results, seed, token, command, machine="", notes=""):
    rows = summarize(results)
    out = ["# Reliability: the fault matrix", "",
           "Written by `tests/cluster/run-matrix` (docs/testing.md); do not edit by hand.",
           "", "Command: `%s`  " % command,
           "Seed: %d (replay with `--seed %d`); corosync token %d ms (consensus %d ms).  " %
           (seed, seed, token, int(token * 1.2)),
           "Written %s.%s" % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), (" " + machine) if machine else ""),
           "",
           "Each round: the VM protected (colod on both nodes, the client's observer streaming, echoing,",
           "sending UDP and writing the guest's disk), the point reached by watching state, the fault after a",
           "random delay inside the point, heal, the client's rounds going on, then restart_node and",
           "wait_protected. *hit*: rounds whose fault landed inside the point (a checkpoint not yet complete,",
           "colod still protecting). Stall: the longest round of the client's going on at the fault or begun",
           "after it (reconnecting included). broken: TCP connections that broke; wrong: bytes that differed; lost:",
           "acknowledged disk writes read back older; split: both nodes' guest output on the LAN for 2 s",
           "in a row, or a UDP request answered twice. All but stalls must be 0.", "",
           "| fault | point | rounds | hit | failovers | stall p50 ms | stall max ms | broken | wrong bytes "
           "| writes lost | split brains | client not recovered | not protected again |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    bad = []
    for r in rows:
        out.append("| %s | %s | %d%s | %d | %d | %s | %s | %d | %d | %d | %d | %d | %d |" % (
            r["fault"], r["point"], r["rounds"], "" if r["asked"] == r["rounds"] else " of %d" % r["asked"], r["hit"],
            r["failovers"], fmt_ms(r["p50"]), fmt_ms(r["max"]), r["broken"], r["wrong"], r["lost"], r["split"],
            r["unrecovered"], r["unprotected"]))
        if r["broken"] or r["wrong"] or r["lost"] or r["split"] or r["unrecovered"] or r["unprotected"]:
            bad.append(r)
    out += ["", "## Client-visible stall per fault kind", "",
            "The goal, issue 14: host loss at most token + consensus + 300 ms = %d ms; a colo-vmm or colo-proxy "
            "crash colod sees directly under 300 ms. Those faults count every round (on the secondary's side, "
            "or a proxy's crash, there is no failover: the client should not notice), the others the rounds that "
            "failed over. The goal is for a protected VM (points %s); during a protect (%s) the secondary holds "
            "no complete replica until the initial sync commits: losing the primary then means waiting for it, "
            "or booting the VM again from its disk, and no goal applies (the second table)." %
            (int(token * 2.2 + 300), ", ".join(PROTECTED_POINTS),
             ", ".join(p for p in POINTS if p not in PROTECTED_POINTS)), ""]
    for title, points in (("Protected", PROTECTED_POINTS),
                          ("During a protect", tuple(p for p in POINTS if p not in PROTECTED_POINTS))):
        out += ["%s:" % title, "", "| fault | rounds | failovers | stall p50 ms | stall max ms | goal ms | met |",
                "|---|---|---|---|---|---|---|"]
        kinds = {}
        for r in results:
            if (r["ran"] and r["stall_ms"] is not None and r["point"] in points and
                    (r["failover"] or goal_ms(r["fault"], token) is not None)):
                kinds.setdefault(r["fault"], []).append(r)
        for fault in FAULTS:
            if fault in kinds:
                s = [r["stall_ms"] for r in kinds[fault]]
                g = goal_ms(fault, token) if points == PROTECTED_POINTS else None
                out.append("| %s | %d | %d | %s | %s | %s | %s |" % (
                    fault, len(s), sum(1 for r in kinds[fault] if r["failover"]), fmt_ms(p50(s)), fmt_ms(max(s)),
                    fmt_ms(g),
                    "-" if g is None else ("yes" if max(s) <= g else "no (p50 %s)" % ("yes" if p50(s) <= g else "no"))))
        out.append("")
    out.pop()
    cell_notes = [(r["fault"], r["point"], n) for r in rows for n in r["notes"]]
    if cell_notes:
        out += ["", "## Notes per cell", ""] + ["- %s at %s: %s" % n for n in cell_notes]
    if bad:
        out += ["", "## Failures", ""] + [
            "- %s at %s: %d broken, %d wrong bytes, %d writes lost, %d split brains, %d rounds the client did not "
            "recover in, %d not protected again" % (r["fault"], r["point"], r["broken"], r["wrong"], r["lost"],
                                                    r["split"], r["unrecovered"], r["unprotected"]) for r in bad]
    if notes:
        out += ["", "## Findings (written by hand, --notes)", "", notes.strip()]
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return bad


def save_results(path, results):
    with open(path, "w") as f:
        json.dump(results, f, indent=1)


def cells(faults, points):
    """Point by point (under --minutes every fault gets its turn at the
    first points)."""
    return [(f, p) for p in points for f in faults]


def check_names(faults, points):
    for f in faults:
        if f not in FAULTS:
            raise ValueError("unknown fault %s (one of %s)" % (f, ", ".join(FAULTS)))
    for p in points:
        if p not in POINTS:
            raise ValueError("unknown point %s (one of %s)" % (p, ", ".join(POINTS)))

