#!/usr/bin/env python3
"""Live-migration benchmark (not a test): colo-vmm against QEMU, side by side.

  COLO_BUILDDIR=/path/to/build bench/migration-bench.py [--runs N] [--mib M] [--dir D]

Needs /dev/kvm, about 4 GiB free in --dir (two images, a source copy and
the destination's file) and about 3 minutes with the defaults.

A paused VM whose RAM comes from a file (-mem-path for colo-vmm,
memory-backend-file,share=on for QEMU) migrates over 127.0.0.1 to a
destination with each VMM's default RAM (--dst-ram default: colo-vmm without
-mem-path, QEMU's memory-backend-ram, anonymous memory with huge pages where
the host allows), a memfd (--dst-ram memfd: colo-vmm -mem-share where the
build has it, QEMU memory-backend-memfd) or an empty file of its own
(--dst-ram file). Two images: random data,
and the same with every second 4 KiB page zero ("half-zero"). Both VMMs get
the same downtime-limit and max-bandwidth. Configurations run interleaved
(the order rotates each round); every run starts from a fresh copy of the
image, so the source RAM is exactly the file's (under -S no guest code runs).
The first run of each configuration also checks that the destination's RAM
equals the source's afterwards (its file; colo-vmm's anonymous memory or
memfd through /proc/PID/mem; QEMU's anonymous memory is not checked). Each
run prints the destination's AnonHugePages and RSS (/proc/PID/smaps_rollup)
at completion: how much of its RAM transparent huge pages back.

Time is measured from the `migrate` command to the destination's MIGRATION
"completed" event (its QMP timestamp): the moment the whole VM has arrived.
query-migrate's total-time (source side) and downtime are printed as well.

QEMU (qemu-system-x86_64 -accel tcg) is optional: "QEMU not installed:
skipped". Multi-channel (multifd) and postcopy run only where the VMM lists
the capability in query-migrate-capabilities; otherwise a "not available"
line says so. Postcopy (colo-vmm only: a QEMU guest would have to run under
TCG) boots the test guest with a workload in the upper half of RAM, switches
to postcopy at once and reads the destination's fault latencies
(x-postcopy-faults in query-migrate). The ratios are printed last."""
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "lib"))
from qmp import QMPClient, QMPError, QMPTimeout, QMPConnectionError  # noqa: E402

PAGE = 4096
CHUNK = 16 << 20
QEMU = "qemu-system-x86_64"
# tmpfs: no disk writeback of the 1 GiB files competing with the migration.
DEFAULT_DIR = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else "/tmp"

procs = []      # every VMM we started, killed at exit whatever happens


def log(msg):
    print(msg, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loopback_ceiling(nbytes=2 << 30):
    """GB/s one TCP connection carries over 127.0.0.1 (a sender thread, a receiver), for scale."""
    import threading
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(1)
    buf = bytes(4 << 20)

    def send():
        with socket.create_connection(lsn.getsockname()) as s:
            for _ in range(nbytes // len(buf)):
                s.sendall(buf)
    t = threading.Thread(target=send, daemon=True)
    t0 = time.monotonic()
    t.start()
    conn, _ = lsn.accept()
    rbuf = bytearray(4 << 20)
    got = 0
    with conn:
        while got < nbytes:
            n = conn.recv_into(rbuf)
            if not n:
                break
            got += n
    dt = time.monotonic() - t0
    t.join(10)
    lsn.close()
    return got / dt / 1e9


# --- images -----------------------------------------------------------------

def page_reporting_order():
    """The free page reporting order when this machine is itself a VM that
    gives freed memory back to its host (a virtio balloon with
    VIRTIO_BALLOON_F_REPORTING), else None. Memory the host took back costs
    a host-side fault when first touched again, and a destination touches
    all of its RAM fresh (docs/performance.md)."""
    import glob
    reporting = False
    for path in glob.glob("/sys/bus/virtio/drivers/virtio_balloon/virtio*/features"):
        with open(path) as f:
            bits = f.read().strip()
        reporting = reporting or (len(bits) > 5 and bits[5] == "1")
    if not reporting:
        return None
    try:
        with open("/sys/module/page_reporting/parameters/page_reporting_order") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def make_images(d, mib):
    """random.img and halfzero.img (same data, every second page zero)."""
    rnd, half = os.path.join(d, "random.img"), os.path.join(d, "halfzero.img")
    zero = bytes(PAGE)
    with open(rnd, "wb") as fr, open(half, "wb") as fh:
        left = mib << 20
        while left:
            buf = bytearray(os.urandom(min(CHUNK, left)))
            fr.write(buf)
            for off in range(0, len(buf), 2 * PAGE):
                buf[off:off + PAGE] = zero
            fh.write(buf)
            left -= len(buf)
    return {"random": rnd, "halfzero": half}


def files_equal(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(CHUNK), fb.read(CHUNK)
            if x != y:
                return False
            if not x:
                return True


# --- processes --------------------------------------------------------------

class Vmm:
    """One VMM process with its QMP connection and log file."""

    def __init__(self, argv, qmp_path, log_path, timeout, env=None):
        self.log_path = log_path
        self.logf = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=env)
        procs.append(self)
        deadline = time.monotonic() + timeout
        while not os.path.exists(qmp_path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("%s did not start (exit %s): %s" % (argv[0], self.proc.poll(), self.output()))
            time.sleep(0.01)
        try:
            self.qmp = QMPClient(qmp_path, timeout=timeout)
        except (QMPTimeout, QMPConnectionError) as e:
            raise RuntimeError("%s: no QMP: %s: %s" % (argv[0], e, self.output())) from e

    def output(self):
        self.logf.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")[-2000:]

    def cpu_seconds(self):
        """User plus system CPU time of the process so far (robust on a busy machine, unlike wall time)."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def cmd(self, name, **args):
        return self.qmp.cmd(name, args=args)

    def wait_status(self, statuses, timeout):
        """Wait for a MIGRATION event with a status in @statuses; the event."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("no MIGRATION event %s within %.0f s" % ("/".join(statuses), timeout))
            try:
                ev = self.qmp.wait_event("MIGRATION", timeout=left)
            except QMPTimeout:
                continue
            if ev["data"]["status"] in statuses:
                return ev

    def close(self):
        if self.proc.poll() is None:
            try:
                self.qmp.execute("quit", timeout=5)
            except Exception:   # noqa: BLE001 - it is going away either way
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.qmp.close()
        self.logf.close()
        if self in procs:
            procs.remove(self)


def kill_all():
    for v in list(procs):
        if v.proc.poll() is None:
            v.proc.kill()
            v.proc.wait()
        procs.remove(v)


def colo_has_mem_share(build):
    out = subprocess.run([os.path.join(build, "vmm", "colo-vmm"), "-help"], capture_output=True, text=True).stdout
    return "-mem-share" in out


def colo_argv(build, mib, mem, qmp, incoming=None, append=None, serial=None, share=False):
    """A paused VM, or with @append a running test guest printing to @serial.
    @mem None: the default RAM (@share: a memfd, -mem-share)."""
    argv = [os.path.join(build, "vmm", "colo-vmm"), "-m", "%dM" % mib,
            "-kernel", os.path.join(build, "tests", "guest", "colo-testguest"),
            "-serial", "file:" + serial if serial else "none",
            "-qmp", "unix:%s,server=on,wait=off" % qmp]
    argv += ["-append", append] if append else ["-S"]
    argv += ["-mem-path", mem] if mem else (["-mem-share"] if share else [])
    return argv + (["-incoming", incoming] if incoming else [])


def qemu_argv(mib, mem, qmp, incoming=None, share=False):
    # mem None: memory-backend-ram, QEMU's default RAM (anonymous, MADV_HUGEPAGE),
    # or with @share a memfd; the same id, "mem", so that the stream's RAM block matches.
    if mem is None:
        backend = "memory-backend-%s,id=mem,size=%dM%s" % ("memfd" if share else "ram", mib,
                                                          ",share=on" if share else "")
    else:
        backend = "memory-backend-file,id=mem,size=%dM,mem-path=%s,share=on" % (mib, mem)
    argv = [QEMU, "-accel", "tcg", "-machine", "pc,memory-backend=mem", "-m", "%dM" % mib,
            "-object", backend,
            "-S", "-nodefaults", "-display", "none", "-serial", "none", "-monitor", "none",
            "-qmp", "unix:%s,server=on,wait=off" % qmp]
    return argv + (["-incoming", incoming] if incoming else [])


def smaps_rollup(pid):
    """kB counters of /proc/PID/smaps_rollup."""
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def colo_ram_equals(pid, image):
    """colo-vmm's guest RAM (the one mapping it marks MADV_DONTDUMP and
    MADV_DONTFORK, smaps VmFlags dd and dc; a memfd before those builds)
    read through /proc/PID/mem equals @image."""
    ram, cur = [], None
    with open("/proc/%d/smaps" % pid) as smaps:
        for line in smaps:
            f = line.split()
            if f and "-" in f[0] and not f[0].endswith(":"):
                cur = f
            elif f and f[0] == "VmFlags:" and cur and ({"dd", "dc"} <= set(f[1:]) or cur[5:6] == ["/memfd:pc.ram"]):
                ram.append(cur)
    if len(ram) != 1:
        raise RuntimeError("cannot find colo-vmm's guest RAM in /proc/%d/smaps" % pid)
    start, end = (int(x, 16) for x in ram[0][0].split("-"))
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem, open(image, "rb") as f:
        mem.seek(start)
        left = end - start
        while left:
            x = mem.read(min(CHUNK, left))
            if not x or x != f.read(len(x)):
                return False
            left -= len(x)
        return not f.read(1)


def capabilities(vm):
    return {c["capability"] for c in vm.cmd("query-migrate-capabilities")}


# --- one migration ----------------------------------------------------------

def migrate_once(cfg, image, args, workdir, verify):
    """Migrate a paused VM backed by a copy of @image; a dict of results.
    @cfg may add "src_args"/"dst_args" (command line) and
    "src_params"/"dst_params" (migration parameters), as bench/tls-bench.py does."""
    d = tempfile.mkdtemp(prefix="run-", dir=workdir)
    src = dst = None
    try:
        src_mem, dst_mem = os.path.join(d, "src.ram"), os.path.join(d, "dst.ram")
        shutil.copyfile(image, src_mem)
        uri = "tcp:127.0.0.1:%d" % free_port()
        share = args.dst_ram == "memfd"
        colo_share = share and getattr(args, "mem_share", False)
        mk = (lambda mem, q, inc=None: colo_argv(args.build, args.mib, mem, q, inc, share=colo_share)) \
            if cfg["vmm"] == "colo" else (lambda mem, q, inc=None: qemu_argv(args.mib, mem, q, inc, share=share))
        caps = [{"capability": "events", "state": True}]
        params = {"max-bandwidth": args.max_bandwidth, "downtime-limit": args.downtime_limit}
        if cfg["channels"] > 1:
            caps.append({"capability": "multifd", "state": True})
            params["multifd-channels"] = cfg["channels"]
        # The destination listens only after its capabilities are set (multifd must be).
        dst = Vmm(mk(dst_mem if args.dst_ram == "file" else None, os.path.join(d, "dst.qmp"), "defer") +
                  cfg.get("dst_args", []), os.path.join(d, "dst.qmp"), os.path.join(d, "dst.log"), args.timeout)
        src = Vmm(mk(src_mem, os.path.join(d, "src.qmp")) + cfg.get("src_args", []), os.path.join(d, "src.qmp"),
                  os.path.join(d, "src.log"), args.timeout)
        params.update(cfg.get("src_params", {}))
        for vm in (src, dst):
            vm.cmd("migrate-set-capabilities", capabilities=caps)
        dst_params = {k: v for k, v in params.items() if k == "multifd-channels"}
        dst_params.update(cfg.get("dst_params", {}))
        if dst_params:
            dst.cmd("migrate-set-parameters", **dst_params)
        src.cmd("migrate-set-parameters", **params)
        dst.cmd("migrate-incoming", uri=uri)
        t0 = time.time()
        src.cmd("migrate", uri=uri)
        ev = dst.wait_status(("completed", "failed"), args.timeout)
        if ev["data"]["status"] != "completed":
            raise RuntimeError("destination: %s: %s" % (dst.cmd("query-migrate"), dst.output()))
        t_end = ev["timestamp"]["seconds"] + ev["timestamp"]["microseconds"] / 1e6
        src.wait_status(("completed", "failed"), args.timeout)
        q = src.cmd("query-migrate")
        if q.get("status") != "completed":
            raise RuntimeError("source: %s: %s" % (q, src.output()))
        cpu_src, cpu_dst = src.cpu_seconds(), dst.cpu_seconds()
        smaps = smaps_rollup(dst.proc.pid)
        if verify and args.dst_ram != "file" and cfg["vmm"] == "colo" and not colo_ram_equals(dst.proc.pid, src_mem):
            raise RuntimeError("%s: the destination's RAM differs from the source's" % cfg["name"])
        for vm in (src, dst):
            vm.close()
        if verify and args.dst_ram == "file" and not files_equal(src_mem, dst_mem):
            raise RuntimeError("%s: the destination's RAM differs from the source's" % cfg["name"])
        ram = q.get("ram", {})
        return {"wall": t_end - t0, "total": q.get("total-time", 0) / 1e3, "downtime": q.get("downtime", 0),
                "transferred": ram.get("transferred", 0), "normal": ram.get("normal", 0),
                "duplicate": ram.get("duplicate", 0), "cpu_src": cpu_src, "cpu_dst": cpu_dst,
                "anon_huge_kb": smaps.get("AnonHugePages", 0), "rss_kb": smaps.get("Rss", 0)}
    finally:
        for vm in (src, dst):
            if vm:
                vm.close()
        shutil.rmtree(d, ignore_errors=True)


def postcopy_once(image, args, workdir):
    """A running test guest writing pages it does not have yet, in postcopy
    with the background stream running; the destination's fault latencies."""
    d = tempfile.mkdtemp(prefix="postcopy-", dir=workdir)
    src = dst = None
    try:
        src_mem, dst_mem = os.path.join(d, "src.ram"), os.path.join(d, "dst.ram")
        shutil.copyfile(image, src_mem)
        uri = "tcp:127.0.0.1:%d" % free_port()
        # The workload covers the upper half of RAM: the background stream,
        # which goes up from page 0, reaches it last.
        half = args.mib // 2
        append = "interval=0 dirty_pages=%d dirty_ms=10 area_base=%dM area=%dM" % (
            args.postcopy_dirty_pages, half, half - 16)
        serial = os.path.join(d, "serial.log")
        dst = Vmm(colo_argv(args.build, args.mib, dst_mem if args.dst_ram == "file" else None,
                            os.path.join(d, "dst.qmp"), "defer", append,
                            share=args.dst_ram == "memfd" and args.mem_share),
                  os.path.join(d, "dst.qmp"), os.path.join(d, "dst.log"), args.timeout)
        src = Vmm(colo_argv(args.build, args.mib, src_mem, os.path.join(d, "src.qmp"), None, append, serial),
                  os.path.join(d, "src.qmp"), os.path.join(d, "src.log"), args.timeout)
        deadline = time.monotonic() + args.timeout
        while b"colo-testguest ready" not in open(serial, "rb").read():
            if time.monotonic() > deadline or src.proc.poll() is not None:
                raise RuntimeError("the test guest did not come up: %s" % src.output())
            time.sleep(0.05)
        caps = [{"capability": "events", "state": True}, {"capability": "postcopy-ram", "state": True}]
        for vm in (src, dst):
            vm.cmd("migrate-set-capabilities", capabilities=caps)
        src.cmd("migrate-set-parameters", **{"max-bandwidth": args.postcopy_precopy_bandwidth,
                                             "max-postcopy-bandwidth": args.postcopy_bandwidth,
                                             "downtime-limit": args.downtime_limit})
        dst.cmd("migrate-incoming", uri=uri)
        src.cmd("migrate", uri=uri)
        src.wait_status(("active",), args.timeout)
        src.cmd("migrate-start-postcopy")
        ev = dst.wait_status(("completed", "failed"), args.timeout)
        dq = dst.cmd("query-migrate")
        if ev["data"]["status"] != "completed":
            raise RuntimeError("postcopy destination: %s: %s" % (dq, dst.output()))
        src.wait_status(("completed", "failed"), args.timeout)
        q = src.cmd("query-migrate")
        f = dq.get("x-postcopy-faults", {})
        smaps = smaps_rollup(dst.proc.pid)
        return {"count": f.get("count", 0), "p50": f.get("latency-p50-us", 0), "p99": f.get("latency-p99-us", 0),
                "max": f.get("latency-max-us", 0), "blocktime": dq.get("postcopy-blocktime", 0),
                "requests": q.get("ram", {}).get("postcopy-requests", 0), "total": q.get("total-time", 0) / 1e3,
                "anon_huge_kb": smaps.get("AnonHugePages", 0), "rss_kb": smaps.get("Rss", 0)}
    finally:
        for vm in (src, dst):
            if vm:
                vm.close()
        shutil.rmtree(d, ignore_errors=True)


def postcopy_report(images, args, workdir):
    res = []
    for i in range(args.postcopy_runs):
        r = postcopy_once(images["random"], args, workdir)
        res.append(r)
        log("  postcopy run %d: %d faults, p50 %d us, p99 %d us, max %d us, blocktime %d ms, %d page requests,"
            " total-time %.2f s, destination AnonHugePages %d of %d MiB RSS"
            % (i + 1, r["count"], r["p50"], r["p99"], r["max"], r["blocktime"], r["requests"],
               r["total"], r["anon_huge_kb"] >> 10, r["rss_kb"] >> 10))
    res = [r for r in res if r["count"]]
    if not res:
        log("colo postcopy: no demand faults happened (guest too slow, or the stream too fast): no latency")
        return None
    return (statistics.median(r["p50"] for r in res), statistics.median(r["p99"] for r in res),
            max(r["max"] for r in res), sum(r["count"] for r in res))


# --- the benchmark ----------------------------------------------------------

def check_build(args):
    """Exit unless colo-vmm is built in --build and /dev/kvm is usable."""
    if not os.access(os.path.join(args.build, "vmm", "colo-vmm"), os.X_OK):
        sys.exit("no vmm/colo-vmm in %s: set COLO_BUILDDIR or --build" % args.build)
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        sys.exit("colo-vmm needs /dev/kvm (read/write)")


def probe(vmm, args, workdir):
    """The migration capabilities a VMM offers (started once, without RAM file)."""
    d = tempfile.mkdtemp(prefix="probe-", dir=workdir)
    vm = None
    try:
        mem = os.path.join(d, "probe.ram")
        q = os.path.join(d, "probe.qmp")
        argv = colo_argv(args.build, args.mib, mem, q) if vmm == "colo" else qemu_argv(args.mib, mem, q)
        vm = Vmm(argv, q, os.path.join(d, "probe.log"), args.timeout)
        return capabilities(vm)
    finally:
        if vm:
            vm.close()
        shutil.rmtree(d, ignore_errors=True)


def configurations(args, workdir):
    cfgs = []
    vmms = ["colo"]
    colo_caps = probe("colo", args, workdir)
    if args.no_qemu:
        log("QEMU: left out (--no-qemu)")
    elif not shutil.which(QEMU):
        log("QEMU not installed: skipped")
    else:
        vmms.append("qemu")
        qemu_caps = probe("qemu", args, workdir)
        ver = subprocess.run([QEMU, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
        log("QEMU: " + ver)
    for vmm in vmms:
        caps = colo_caps if vmm == "colo" else qemu_caps
        images = ("random", "halfzero") if args.image == "both" else (args.image,)
        for img in images:
            cfgs.append({"name": "%s single %s" % (vmm, img), "vmm": vmm, "image": img, "channels": 1})
        if args.channels > 1:
            if "multifd" in caps:
                for img in images:
                    cfgs.append({"name": "%s multifd-%d %s" % (vmm, args.channels, img), "vmm": vmm,
                                 "image": img, "channels": args.channels})
            else:
                log("%s: multi-channel migration not available (no multifd capability): skipped" % vmm)
        if vmm == "colo" and "postcopy-ram" not in caps:
            log("colo: postcopy not available (no postcopy-ram capability): fault latency not measured")
            args.postcopy_runs = 0
    return cfgs


def fmt_row(name, res, gib):
    wall = statistics.median(r["wall"] for r in res)
    total = statistics.median(r["total"] for r in res)
    down = statistics.median(r["downtime"] for r in res)
    xfer = statistics.median(r["transferred"] for r in res)
    cpu_src = statistics.median(r["cpu_src"] for r in res)
    cpu_dst = statistics.median(r["cpu_dst"] for r in res)
    spread = "%.3f-%.3f" % (min(r["wall"] for r in res), max(r["wall"] for r in res))
    return ("%-26s %6.3f s/GiB %5.2f GiB/s wire %5.2f GB/s | min-max %s s, total-time %.3f s, downtime %3.0f ms,"
            " %4d MB sent, CPU s/GiB source %.2f destination %.2f" %
            (name, wall / gib, gib / wall, xfer / wall / 1e9, spread, total, down, xfer / 1e6,
             cpu_src / gib, cpu_dst / gib))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="interleaved runs per configuration (default 5)")
    ap.add_argument("--mib", type=int, default=1024, help="guest RAM in MiB (default 1024)")
    ap.add_argument("--channels", type=int, default=2, help="multifd channels (default 2; 1: single only)")
    ap.add_argument("--max-bandwidth", type=int, default=64 << 30,
                    help="bytes/s, for both VMMs (default 64 GiB/s: no limit in effect)")
    ap.add_argument("--downtime-limit", type=int, default=300, help="ms, for both VMMs (default 300)")
    ap.add_argument("--postcopy-runs", type=int, default=3, help="postcopy runs (colo-vmm only; default 3)")
    ap.add_argument("--postcopy-only", action="store_true", help="only the postcopy runs")
    ap.add_argument("--postcopy-bandwidth", type=int, default=0,
                    help="max-postcopy-bandwidth of the background stream, bytes/s (default 0: unlimited)")
    ap.add_argument("--postcopy-precopy-bandwidth", type=int, default=32 << 20,
                    help="max-bandwidth before the switch to postcopy, bytes/s (default 32 MiB/s)")
    ap.add_argument("--postcopy-dirty-pages", type=int, default=256,
                    help="pages the running guest writes per 10 ms in postcopy (default 256)")
    ap.add_argument("--dst-ram", choices=("default", "file", "memfd"), default="default",
                    help="destination RAM: each VMM's default (colo-vmm without -mem-path, QEMU"
                         " memory-backend-ram; the default), a fresh empty file in --dir, or a memfd"
                         " (colo-vmm -mem-share where the build has it, else its default)")
    ap.add_argument("--dir", default=DEFAULT_DIR,
                    help="where the RAM files go (default /dev/shm, a tmpfs like guest RAM's memfd; else /tmp)")
    ap.add_argument("--no-qemu", action="store_true", help="colo-vmm only")
    ap.add_argument("--image", choices=("both", "random", "halfzero"), default="both",
                    help="which image to migrate (default both; one alone for profiling)")
    ap.add_argument("--timeout", type=float, default=120, help="bound on every wait, s (default 120)")
    ap.add_argument("--build", default=os.environ.get("COLO_BUILDDIR", os.getcwd()),
                    help="build directory (default $COLO_BUILDDIR, else the current directory)")
    args = ap.parse_args()
    check_build(args)
    args.mem_share = colo_has_mem_share(args.build)

    free = shutil.disk_usage(args.dir).free >> 20
    if free < 4 * args.mib + 256:
        sys.exit("%s has %d MiB free; the benchmark needs %d (try --dir)" % (args.dir, free, 4 * args.mib + 256))
    # A signal ends the run through the finally below, so nothing is left behind.
    # (SIGINT too: a shell starting us in the background would have it ignored.)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(1))
    workdir = tempfile.mkdtemp(prefix="colo-migbench-", dir=args.dir)
    try:
        t_start = time.monotonic()
        log("guest RAM %d MiB, destination RAM: %s, files in %s, max-bandwidth %d B/s, downtime-limit %d ms, %d runs, load %s" %
            (args.mib, args.dst_ram, args.dir, args.max_bandwidth, args.downtime_limit, args.runs,
             " ".join("%.2f" % x for x in os.getloadavg())))
        order = page_reporting_order()
        if order is not None:
            log("this machine gives freed memory back to its host (free page reporting, blocks of %d KiB): a run "
                "whose destination gets such memory is slower, whichever the VMM; its destination CPU per GiB "
                "shows it (bench/fresh-memory.py measures the cost)" % (4 << order))
        cfgs = configurations(args, workdir)
        log("loopback TCP, one connection: %.2f GB/s" % loopback_ceiling())
        images = make_images(workdir, args.mib)
        results = {c["name"]: [] for c in cfgs}
        for i in range(0 if args.postcopy_only else args.runs):
            k = i % len(cfgs)
            for cfg in cfgs[k:] + cfgs[:k]:
                r = migrate_once(cfg, images[cfg["image"]], args, workdir, verify=(i == 0))
                results[cfg["name"]].append(r)
                log("  run %d %-26s %.3f s (total-time %.3f s, downtime %d ms, CPU source %.2f s destination %.2f s,"
                    " destination AnonHugePages %d of %d MiB RSS)" %
                    (i + 1, cfg["name"], r["wall"], r["total"], r["downtime"], r["cpu_src"], r["cpu_dst"],
                     r["anon_huge_kb"] >> 10, r["rss_kb"] >> 10))
        postcopy = postcopy_report(images, args, workdir) if args.postcopy_runs else None
        gib = args.mib / 1024
        log("")
        log("medians of %d runs, time from migrate to the destination's completion; %.0f s in all, load %s" %
            (args.runs, time.monotonic() - t_start, " ".join("%.2f" % x for x in os.getloadavg())))
        for c in cfgs if not args.postcopy_only else []:
            log(fmt_row(c["name"], results[c["name"]], gib))
        if postcopy:
            log("colo postcopy demand faults, background stream at %s: p50 %d us, p99 %d us (medians of %d runs),"
                " max %d us, %d faults" % ("%d B/s" % args.postcopy_bandwidth if args.postcopy_bandwidth else
                                            "full speed", postcopy[0], postcopy[1], args.postcopy_runs, postcopy[2],
                                            postcopy[3]))
        med = {n: statistics.median(r["wall"] for r in res) for n, res in results.items() if res}
        log("")
        for vmm in ("colo", "qemu"):
            for ch in ["single"] + (["multifd-%d" % args.channels] if args.channels > 1 else []):
                a, b = "%s %s random" % (vmm, ch), "%s %s halfzero" % (vmm, ch)
                if a in med and b in med:
                    log("%s %s: half-zero image %.2fx faster than random" % (vmm, ch, med[a] / med[b]))
        for img in ("random", "halfzero"):
            a, b = "colo single %s" % img, "qemu single %s" % img
            if a in med and b in med:
                log("single channel, %s: colo-vmm %.2fx QEMU's speed" % (img, med[b] / med[a]))
            a, b = "colo multifd-%d %s" % (args.channels, img), "qemu multifd-%d %s" % (args.channels, img)
            if a in med and b in med:
                log("%d channels, %s: colo-vmm %.2fx QEMU's speed" % (args.channels, img, med[b] / med[a]))
    except QMPError as e:
        sys.exit("QMP error: %s" % e)
    finally:
        kill_all()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
