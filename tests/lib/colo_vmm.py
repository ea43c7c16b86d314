"""The harness's VMM fixture: run colo-vmm with the bundled test guest and
watch it.

Every instance gets a private directory with the serial log, the QMP socket
and the VMM's own log; close() stops the VMM and removes the directory.
require_kvm() skips (with a capability reason) where KVM is missing; a
colo-vmm that is not built, or does not start, is a failure.
"""
import os
import re
import struct
import subprocess
import tempfile
import time
import shutil
import signal

import sys

from qmp import QMPClient
import tap

SRCDIR = os.environ.get("COLO_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRCDIR, "tests", "guest"))
import testguest  # noqa: E402  (the guest's own checker, tests/guest/testguest.py)

BUILDDIR = os.environ.get("COLO_BUILDDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
VMM = os.path.join(BUILDDIR, "vmm", "colo-vmm")
GUEST = os.path.join(BUILDDIR, "tests", "guest", "colo-testguest")

STATUS_GPA = 0x9000     # tests/guest/status.h, docs/test-guest.md
STATUS_MAGIC = 0x53475443


def require_kvm():
    if not os.path.exists("/dev/kvm"):
        tap.skip("no /dev/kvm on this machine")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        tap.skip("no access to /dev/kvm (run as root or in the kvm group)")
    for path in (VMM, GUEST):
        if not os.access(path, os.R_OK):
            raise AssertionError("not built: %s (a broken build, not a missing capability)" % path)


def free_port():
    """A TCP port on 127.0.0.1 nobody uses right now (for -incoming).

    Chosen below the kernel's ephemeral range: a port from that range
    (bind to port 0) can be handed to some connect() as its local port
    between this check and colo-vmm's bind, and CI saw -incoming fail
    with "Address already in use" that way."""
    import random
    import socket
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    low, high = 10000, max(ephemeral_low - 1, 10001)
    for _ in range(100):
        port = random.randint(low, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free TCP port in %d-%d on 127.0.0.1" % (low, high))


wait_until = tap.wait_until     # the harness's; here for the tests that import it from us


# x-colo-lost-heartbeat must answer at once, whatever its threads were
# blocked on; one that waited on the dead peer would not answer for seconds
# (the socket's timeouts) or at all. Here it takes a few ms; the bound is
# wide because a loaded CI machine can delay any reply by a scheduling
# slice or two, and a timed test must not fail on that. The time is printed.
LOST_HEARTBEAT_BOUND_S = 1.0


def lost_heartbeat(vm):
    """x-colo-lost-heartbeat on @vm, answered within LOST_HEARTBEAT_BOUND_S;
    returns how long it took (s)."""
    start = time.monotonic()
    vm.qmp.cmd("x-colo-lost-heartbeat")
    took = time.monotonic() - start
    print("# x-colo-lost-heartbeat answered in %.1f ms" % (took * 1e3), flush=True)
    assert took < LOST_HEARTBEAT_BOUND_S, "x-colo-lost-heartbeat took %.3f s" % took
    return took


def wait_migration_end(vm, timeout=120):
    """query-migrate once the migration of @vm completed, failed or was cancelled."""
    def done():
        q = vm.qmp.cmd("query-migrate")
        return q if q.get("status") in ("completed", "failed", "cancelled") else None
    return wait_until(done, timeout, "the migration to end", interval=0.05)


class Vmm:
    def __init__(self, smp=1, mem="64M", append="", extra=(), kernel=None, qmp=True, wrap=()):
        """@wrap: argv before colo-vmm's, e.g. Netns.argv(ns) to run it
        in a network namespace of the test's."""
        self.dir = tempfile.mkdtemp(prefix="colo-test-")
        self.serial_path = os.path.join(self.dir, "serial.log")
        self.qmp_path = os.path.join(self.dir, "qmp.sock")
        self.log_path = os.path.join(self.dir, "vmm.log")
        self.argv = list(wrap) + [VMM, "-m", mem, "-smp", str(smp), "-kernel", kernel or GUEST,
                     "-serial", "file:" + self.serial_path, "-D", self.log_path]
        if append:
            self.argv += ["-append", append]
        if qmp:
            self.argv += ["-qmp", "unix:%s,server=on,wait=off" % self.qmp_path]
        self.argv += list(extra)
        self.proc = None
        self.qmp = None

    def start(self, connect=True):
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if connect:
            wait_until(lambda: os.path.exists(self.qmp_path) or self.proc.poll() is not None,
                       20, "the QMP socket")
            if self.proc.poll() is not None:
                raise AssertionError("colo-vmm exited with %d: %s" % (self.proc.returncode, self.output()))
            self.qmp = QMPClient(self.qmp_path)
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def output(self):
        """stdout+stderr, once the process has ended."""
        if self.proc and self.proc.poll() is not None and self.proc.stdout:
            return self.proc.stdout.read().decode(errors="replace")
        return ""

    def serial(self):
        try:
            with open(self.serial_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_serial(self, pattern, timeout=60):
        rx = re.compile(pattern)

        def found():
            if self.proc.poll() is not None:
                raise AssertionError("colo-vmm exited (%d) before serial showed %r:\n%s\n%s" %
                                     (self.proc.returncode, pattern, self.serial(), self.output()))
            return rx.search(self.serial())
        return wait_until(found, timeout, "serial output %r (got: %r)" % (pattern, self.serial()[-300:]))

    def read_guest(self, gpa, size):
        path = os.path.join(self.dir, "pmem-%x.bin" % gpa)
        self.qmp.cmd("pmemsave", val=gpa, size=size, filename=path)
        with open(path, "rb") as f:
            data = f.read()
        os.unlink(path)
        return data

    def status(self):
        """The test guest's status page (tests/guest/status.h)."""
        page = self.read_guest(STATUS_GPA, 4096)
        magic, version, heartbeat, dirtied, cpus_up, cpus_found = struct.unpack_from("<IIQQII", page, 0)
        assert magic == STATUS_MAGIC, "no status page at 0x%x (magic 0x%08x)" % (STATUS_GPA, magic)
        return {"version": version, "heartbeat": heartbeat, "pages_dirtied": dirtied,
                "cpus_up": cpus_up, "cpus_found": cpus_found}

    def heartbeat(self):
        return self.status()["heartbeat"]

    def guest_status(self):
        """The whole status page decoded by testguest.read_status (a dict;
        'dimms' lists the hot-added DIMMs the guest uses)."""
        return testguest.read_status(testguest.Memory.from_bytes(self.read_guest(STATUS_GPA, 4096), STATUS_GPA))

    def dimm_problems(self, st=None):
        """Checks the pages of every DIMM the test guest added against its
        own record (testguest.verify_dimms); stop the guest first. Reads
        only the part of each DIMM written so far. [] when consistent, also
        for a guest without DIMMs. @st: a guest_status() read after the
        stop, if the caller has one."""
        if st is None:
            st = self.guest_status()
        mem = testguest.Memory()
        for gpa, size in testguest.dimm_spans(st):
            mem.add(gpa, self.read_guest(gpa, size))
        return testguest.verify_dimms(mem, st)

    def workload_problems(self, dimms=True):
        """Checks the test guest's workload area, and with @dimms its
        hot-added DIMMs, against its own record (testguest.verify_area,
        verify_dimms); stop the guest first. [] when consistent."""
        st = self.guest_status()
        end = st["area_gpa"] + st["area_pages"] * 4096
        mem = testguest.Memory.from_bytes(self.read_guest(0, end), 0)
        problems = testguest.verify_area(mem, st)
        if dimms:
            problems += self.dimm_problems(st)
        return problems

    def wait_exit(self, timeout=30):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            # Say where it stands: its log, and what each of its threads waits in.
            try:
                with open(self.log_path) as f:
                    log = f.read()[-3000:]
            except OSError:
                log = "(no log)"
            stacks = []
            task_dir = "/proc/%d/task" % self.proc.pid
            for tid in sorted(os.listdir(task_dir)) if os.path.isdir(task_dir) else []:
                try:
                    with open("%s/%s/comm" % (task_dir, tid)) as f:
                        comm = f.read().strip()
                    with open("%s/%s/wchan" % (task_dir, tid)) as f:
                        wchan = f.read().strip()
                except OSError:
                    continue
                stacks.append("%s %s: %s" % (tid, comm, wchan))
            raise AssertionError("colo-vmm still running after %d s; threads: %s\nlog:\n%s" %
                                 (timeout, "; ".join(stacks), log))

    def close(self):
        if self.qmp:
            self.qmp.close()
            self.qmp = None
        # A VMM that died on its own (a crash, a sanitizer report) leaves
        # its last words in the TAP log, so a CI failure explains itself.
        if self.proc and self.proc.poll() not in (None, 0, -signal.SIGTERM, -signal.SIGKILL):
            text = self.output()
            try:
                with open(self.log_path) as f:
                    text += f.read()[-4000:]
            except OSError:
                pass
            print("# colo-vmm exited with %d:" % self.proc.returncode)
            for line in text.splitlines()[-60:]:
                print("#   " + line)
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        if self.proc and self.proc.returncode == -signal.SIGKILL:
            # A killed colo-vmm cannot remove its libqb blackbox files.
            for part in ("header", "data"):
                try:
                    os.unlink("/dev/shm/qb-colo-vmm-%d-blackbox-%s" % (self.proc.pid, part))
                except OSError:
                    pass
        shutil.rmtree(self.dir, ignore_errors=True)
