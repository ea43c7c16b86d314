#!/usr/bin/env python3
"""Host-side reader of the colo-testguest status page and checker of its
memory workload (stdlib only).

Given guest memory (a QMP `pmemsave` dump), it finds the status page at
STATUS_GPA, decodes it, and verifies every page of the workload area
against the guest's own record: each CPU writes its slice round-robin, so
from `writes` the generation every page must hold follows (see
docs/test-guest.md and tests/guest/pattern.h, which this mirrors). Hot-added
DIMMs (status version 3) are verified the same way from their own records;
their memory lies above 4 GiB, so it comes in separate dumps.

Use as a module:
    mem = testguest.Memory.from_file("ram.bin")           # dump of GPA 0..
    st = testguest.read_status(mem)
    problems = testguest.verify_area(mem, st)             # [] when all is well
    for gpa, size in testguest.dimm_spans(st):            # hot-added DIMMs
        mem.add(gpa, pmemsave(gpa, size))
    problems += testguest.verify_dimms(mem, st)
or from the shell:
    testguest.py ram.bin [--base GPA] [--dimm GPA=FILE ...]
        (exit 0: ok, 1: problems, 2: no status page)
"""

import argparse
import struct
import sys

STATUS_GPA = 0x9000
STATUS_MAGIC = 0x53475443
STATUS_VERSION = 3          # 1 and 2 are read too (no network fields, no DIMMs)
STATUS_MAX_CPUS = 32
STATUS_MAX_DIMMS = 16
STATUS_DIMM_OFF = 0x900
STATUS_CMDLINE_OFF = 0xC00
PAGE_SIZE = 4096
PATTERN_MAGIC = 0x50475443
PATTERN_TRAILER_OFF = PAGE_SIZE - 8

FLAG_READY = 0x1
FLAG_WORKLOAD = 0x2
FLAG_POWEROFF = 0x4
FLAG_CRASHED = 0x8
FLAG_MEMHP = 0x10           # memory hotplug controller found (version 3)
DIMM_BOOT = 0x1             # DIMM present at boot
DIMM_HOTPLUG = 0x2          # DIMM announced by an insert event

_M64 = (1 << 64) - 1

# Fixed part of the status page, offsets 0x00-0x6f (see status.h).
_STATUS_FMT = "<IIQQIIIIIIQQQIIQQIIQ"
_STATUS_FIELDS = ("magic", "version", "heartbeat", "pages_dirtied", "cpus_up", "cpus_found", "hz",
                  "interval", "dirty_pages", "dirty_ms", "area_gpa", "area_pages", "ram_bytes",
                  "poweroff_after", "flags", "lapic_hz", "tsc_hz", "crash_vector", "crash_cpu", "crash_rip")
_CPU_FMT = "<IIQQQQQ16x"
_CPU_FIELDS = ("apic_id", "online", "ticks", "slice_first", "slice_pages", "writes", "busy_tsc")
# Version 2: network and disk, offsets 0x70-0xb7.
_NET_FMT = "<QQQQQQQIIQ"
_NET_FIELDS = ("net_rx_frames", "net_tx_frames", "net_rx_dropped", "net_busy_tsc", "tcp_accepted", "tcp_retrans",
               "disk_blocks", "net_ip", "net_flags", "net_tx_dropped")
NET_UP = 0x1
NET_DISK = 0x2
# Version 3: hot-added DIMMs, counters at 0xb8-0xcf, records at 0x900.
_HOTPLUG_FMT = "<IIIIQ"
_HOTPLUG_FIELDS = ("dimm_count", "dimms_seen", "hotplug_scis", "dimms_ignored", "dimm_writes")
_DIMM_FMT = "<IIQQQ"
_DIMM_FIELDS = ("slot", "flags", "gpa", "pages", "writes")
assert struct.calcsize(_STATUS_FMT) == 0x70 and struct.calcsize(_CPU_FMT) == 64
assert struct.calcsize(_NET_FMT) == 0x48 and struct.calcsize(_HOTPLUG_FMT) == 0x18
assert struct.calcsize(_DIMM_FMT) == 32


class StatusError(Exception):
    """No valid status page where it should be."""


class Memory:
    """Guest-physical memory from one or more dumps."""

    def __init__(self):
        self._chunks = []       # (gpa, bytes)

    @classmethod
    def from_bytes(cls, data, base=0):
        m = cls()
        m.add(base, data)
        return m

    @classmethod
    def from_file(cls, path, base=0):
        with open(path, "rb") as f:
            return cls.from_bytes(f.read(), base)

    def add(self, gpa, data):
        self._chunks.append((gpa, bytes(data)))

    def read(self, gpa, length):
        for base, data in self._chunks:
            if base <= gpa and gpa + length <= base + len(data):
                return data[gpa - base:gpa - base + length]
        raise ValueError("guest memory 0x%x+0x%x is not in the dump" % (gpa, length))


def read_status(mem, gpa=STATUS_GPA):
    """Decodes the status page: a dict of its fields, 'cpus' a list of the
    first cpus_up CPU records, 'dimms' a list of the first dimm_count DIMM
    records (empty before version 3), 'cmdline' a str."""
    raw = mem.read(gpa, PAGE_SIZE)
    st = dict(zip(_STATUS_FIELDS, struct.unpack_from(_STATUS_FMT, raw, 0)))
    if st["magic"] != STATUS_MAGIC:
        raise StatusError("no status page at 0x%x (magic 0x%08x)" % (gpa, st["magic"]))
    if not 1 <= st["version"] <= STATUS_VERSION:
        raise StatusError("status page version %d, this checker knows 1-%d" % (st["version"], STATUS_VERSION))
    net = struct.unpack_from(_NET_FMT, raw, 0x70) if st["version"] >= 2 else (0,) * len(_NET_FIELDS)
    st.update(zip(_NET_FIELDS, net))
    hp = struct.unpack_from(_HOTPLUG_FMT, raw, 0xB8) if st["version"] >= 3 else (0,) * len(_HOTPLUG_FIELDS)
    st.update(zip(_HOTPLUG_FIELDS, hp))
    st["dimms"] = [dict(zip(_DIMM_FIELDS, struct.unpack_from(_DIMM_FMT, raw, STATUS_DIMM_OFF + 32 * i)))
                   for i in range(min(st["dimm_count"], STATUS_MAX_DIMMS))]
    n = min(st["cpus_up"], STATUS_MAX_CPUS)
    st["cpus"] = [dict(zip(_CPU_FIELDS, struct.unpack_from(_CPU_FMT, raw, 0x100 + 64 * i))) for i in range(n)]
    cmd = raw[STATUS_CMDLINE_OFF:]
    st["cmdline"] = cmd[:cmd.index(b"\0") if b"\0" in cmd else len(cmd)].decode("ascii", "replace")
    return st


def pattern_check(page, gen):
    """Mirror of pattern_check() in pattern.c (splitmix64 finaliser)."""
    z = ((gen * 0x9E3779B97F4A7C15) & _M64) ^ page
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def pattern_page(page, gen, filler=b"\0"):
    """The bytes one workload write leaves in a page that held @filler."""
    check = pattern_check(page, gen)
    body = bytearray(filler * PAGE_SIZE)
    struct.pack_into("<IIQQ", body, 0, PATTERN_MAGIC, page, gen, check)
    struct.pack_into("<Q", body, PATTERN_TRAILER_OFF, ~check & _M64)
    return bytes(body)


def expected_gen(writes, slice_pages, offset):
    """Generation page @offset of a slice must hold after @writes writes."""
    if not slice_pages or offset >= slice_pages:
        return 0
    return writes // slice_pages + (1 if offset < writes % slice_pages else 0)


def verify_page(data, page, expected, in_flight=False):
    """None if the page is right, else what is wrong (like pattern_verify)."""
    if expected == 0 and not in_flight:
        return None
    magic, idx, gen, check = struct.unpack_from("<IIQQ", data, 0)
    if magic != PATTERN_MAGIC:
        return None if expected == 0 else "no pattern header (page lost?)"
    if idx != page:
        return "header names page %d" % idx
    if gen < expected:
        return "stale: generation %d, recorded %d" % (gen, expected)
    if gen > expected + (1 if in_flight else 0):
        return "generation %d newer than recorded %d" % (gen, expected)
    if in_flight:
        return None
    (trailer,) = struct.unpack_from("<Q", data, PATTERN_TRAILER_OFF)
    if check != pattern_check(page, gen) or trailer != (~check & _M64):
        return "check value or trailer wrong (torn or corrupt page)"
    return None


def verify_area(mem, st=None, max_problems=20):
    """Checks every page of the workload area against the status page.
    Returns a list of problem strings, empty when the area is consistent.
    Take the dump with the guest stopped: a running guest moves on while
    the dump is written."""
    if st is None:
        st = read_status(mem)
    problems = []
    base = st["area_gpa"]
    for i, cpu in enumerate(st["cpus"]):
        first, pages, writes = cpu["slice_first"], cpu["slice_pages"], cpu["writes"]
        if first + pages > st["area_pages"]:
            problems.append("cpu %d: slice %d+%d outside the area of %d pages" % (i, first, pages, st["area_pages"]))
            continue
        if not pages:
            continue
        data = mem.read(base + first * PAGE_SIZE, pages * PAGE_SIZE)
        cursor = writes % pages
        for off in range(pages):
            page = first + off
            why = verify_page(data[off * PAGE_SIZE:(off + 1) * PAGE_SIZE], page,
                              expected_gen(writes, pages, off), in_flight=(off == cursor))
            if why:
                problems.append("page %d (gpa 0x%x, cpu %d): %s" % (page, base + page * PAGE_SIZE, i, why))
                if len(problems) >= max_problems:
                    problems.append("... stopping after %d problems" % max_problems)
                    return problems
    return problems


def dimm_span(dimm):
    """(gpa, size) of the part of a DIMM the checker reads: all of it once
    every page was written, else the pages written so far plus the one in
    flight (the others hold nothing to check)."""
    pages = min(dimm["pages"], dimm["writes"] + 1)
    return dimm["gpa"], pages * PAGE_SIZE


def dimm_spans(st):
    """dimm_span() of every DIMM in the status page, in record order."""
    return [dimm_span(d) for d in st["dimms"]]


def verify_dimms(mem, st=None, max_problems=20):
    """Checks the pages of every hot-added DIMM against its record, as
    verify_area() does for the CPUs' slices: the boot CPU writes a DIMM
    round-robin from its first page, and a page's header names its frame
    number (gpa / 4096). @mem must hold dimm_span() of each DIMM (a
    missing one is a problem). [] when all is well; stop the guest first."""
    if st is None:
        st = read_status(mem)
    problems = []
    for d in st["dimms"]:
        gpa, pages, writes = d["gpa"], d["pages"], d["writes"]
        name = "dimm slot %d (gpa 0x%x)" % (d["slot"], gpa)
        if not pages or gpa % PAGE_SIZE or (gpa >> 12) + pages > 1 << 32:
            problems.append("%s: bad record: %d pages" % (name, pages))
            continue
        span = dimm_span(d)[1]
        try:
            data = mem.read(gpa, span)
        except ValueError:
            problems.append("%s: its first %d bytes are not in the dump" % (name, span))
            continue
        cursor = writes % pages
        for off in range(span // PAGE_SIZE):
            why = verify_page(data[off * PAGE_SIZE:(off + 1) * PAGE_SIZE], (gpa >> 12) + off,
                              expected_gen(writes, pages, off), in_flight=(off == cursor))
            if why:
                problems.append("%s page %d (gpa 0x%x): %s" % (name, off, gpa + off * PAGE_SIZE, why))
                if len(problems) >= max_problems:
                    problems.append("... stopping after %d problems" % max_problems)
                    return problems
    return problems


def verify_all(mem, st=None, max_problems=20):
    """verify_area() and verify_dimms() together."""
    if st is None:
        st = read_status(mem)
    return verify_area(mem, st, max_problems) + verify_dimms(mem, st, max_problems)


def describe(st):
    flags = [n for b, n in ((FLAG_READY, "ready"), (FLAG_WORKLOAD, "workload"), (FLAG_POWEROFF, "poweroff"),
                            (FLAG_CRASHED, "CRASHED"), (FLAG_MEMHP, "memhp")) if st["flags"] & b]
    lines = ["heartbeat=%d pages_dirtied=%d cpus=%d/%d flags=%s" % (
        st["heartbeat"], st["pages_dirtied"], st["cpus_up"], st["cpus_found"], ",".join(flags) or "-"),
        "area=%d pages at 0x%x dirty_pages=%d dirty_ms=%d hz=%d cmdline=%r" % (
        st["area_pages"], st["area_gpa"], st["dirty_pages"], st["dirty_ms"], st["hz"], st["cmdline"])]
    if st["net_flags"]:
        ip = st["net_ip"]
        lines.append("net: ip=%d.%d.%d.%d%s rx=%d tx=%d rx_dropped=%d tx_dropped=%d tcp_accepted=%d "
                     "tcp_retrans=%d disk_blocks=%d" % (
                         ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255,
                         "" if st["net_flags"] & NET_UP else " (NIC not driven)", st["net_rx_frames"],
                         st["net_tx_frames"], st["net_rx_dropped"], st["net_tx_dropped"], st["tcp_accepted"],
                         st["tcp_retrans"], st["disk_blocks"]))
    if st["flags"] & FLAG_CRASHED:
        lines.append("crash: vector %d on cpu %d at rip 0x%x" % (st["crash_vector"], st["crash_cpu"], st["crash_rip"]))
    for i, c in enumerate(st["cpus"]):
        lines.append("cpu %d: apic %d online=%d ticks=%d slice=%d+%d writes=%d" % (
            i, c["apic_id"], c["online"], c["ticks"], c["slice_first"], c["slice_pages"], c["writes"]))
    if st["dimms_seen"] or st["hotplug_scis"]:
        lines.append("dimms: added=%d seen=%d ignored=%d hotplug_scis=%d writes=%d" % (
            st["dimm_count"], st["dimms_seen"], st["dimms_ignored"], st["hotplug_scis"], st["dimm_writes"]))
    for d in st["dimms"]:
        how = "boot" if d["flags"] & DIMM_BOOT else "hotplug" if d["flags"] & DIMM_HOTPLUG else "?"
        lines.append("dimm slot %d (%s): gpa 0x%x pages=%d writes=%d" % (
            d["slot"], how, d["gpa"], d["pages"], d["writes"]))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Check a colo-testguest memory dump (QMP pmemsave).")
    ap.add_argument("dump", help="guest memory dump")
    ap.add_argument("--base", type=lambda s: int(s, 0), default=0, help="guest-physical address of its first byte")
    ap.add_argument("--dimm", action="append", default=[], metavar="GPA=FILE",
                    help="dump of guest memory from GPA (a hot-added DIMM, or its first part); repeatable")
    args = ap.parse_args(argv)
    mem = Memory.from_file(args.dump, args.base)
    for spec in args.dimm:
        gpa, sep, path = spec.partition("=")
        try:
            if not sep or not path:
                raise ValueError(spec)
            with open(path, "rb") as f:
                mem.add(int(gpa, 0), f.read())
        except (ValueError, OSError) as e:
            print("testguest: --dimm %s: %s" % (spec, e), file=sys.stderr)
            return 2
    try:
        st = read_status(mem)
    except (StatusError, ValueError) as e:
        print("testguest: %s" % e, file=sys.stderr)
        return 2
    print(describe(st))
    problems = verify_area(mem, st)
    dimm_problems = verify_dimms(mem, st)
    for p in problems + dimm_problems:
        print("testguest: %s" % p)
    print("testguest: area %s" % ("CORRUPT" if problems else "ok"))
    if st["dimms"]:
        print("testguest: dimms %s" % ("CORRUPT or missing" if dimm_problems else "ok"))
    return 1 if problems or dimm_problems else 0


if __name__ == "__main__":
    sys.exit(main())
