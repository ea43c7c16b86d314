#!/usr/bin/env python3
"""Tests of testguest.py, the host-side status page reader and workload
checker, on synthetic guest memory laid out the way the guest lays it out.
Prints TAP."""

import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testguest as tg  # noqa: E402
import tap  # noqa: E402  (tests/lib, on PYTHONPATH)

AREA_GPA = 0x1000000


def status_page(cpus, area_pages, flags=tg.FLAG_READY | tg.FLAG_WORKLOAD, cmdline=b"interval=1 dirty_pages=8",
                dimms=()):
    page = bytearray(tg.PAGE_SIZE)
    struct.pack_into(tg._STATUS_FMT, page, 0, tg.STATUS_MAGIC, tg.STATUS_VERSION, 42, sum(c[2] for c in cpus),
                     len(cpus), len(cpus), 100, 1, 8, 100, AREA_GPA, area_pages, 64 << 20, 0, flags,
                     10 ** 9, 0, 0, 0, 0)
    for i, (first, pages, writes) in enumerate(cpus):
        struct.pack_into(tg._CPU_FMT, page, 0x100 + 64 * i, i, 1, 1000 + i, first, pages, writes, 0)
    page[tg.STATUS_CMDLINE_OFF:tg.STATUS_CMDLINE_OFF + len(cmdline)] = cmdline
    if dimms:
        struct.pack_into(tg._HOTPLUG_FMT, page, 0xB8, len(dimms), len(dimms) + 1, 2, 1, sum(d[3] for d in dimms))
    for i, (slot, gpa, pages, writes) in enumerate(dimms):
        struct.pack_into(tg._DIMM_FMT, page, tg.STATUS_DIMM_OFF + 32 * i, slot, tg.DIMM_HOTPLUG, gpa, pages, writes)
    return bytes(page)


def guest_memory(cpus, area_pages):
    """Status page plus an area written exactly as the guest would."""
    area = bytearray(area_pages * tg.PAGE_SIZE)
    for first, pages, writes in cpus:
        for w in range(writes):
            p = first + w % pages
            area[p * tg.PAGE_SIZE:(p + 1) * tg.PAGE_SIZE] = tg.pattern_page(p, w // pages + 1)
    mem = tg.Memory()
    mem.add(tg.STATUS_GPA, status_page(cpus, area_pages))
    mem.add(AREA_GPA, area)
    return mem, area


CPUS = [(0, 5, 23), (5, 4, 9)]      # two CPUs: slices 0-4 and 5-8


def test_status_decoded():
    mem, _ = guest_memory(CPUS, 9)
    st = tg.read_status(mem)
    assert st["heartbeat"] == 42 and st["cpus_up"] == 2 and st["area_pages"] == 9
    assert st["pages_dirtied"] == 32 and st["cmdline"] == "interval=1 dirty_pages=8"
    assert st["cpus"][1]["slice_first"] == 5 and st["cpus"][1]["writes"] == 9
    assert "cpu 1: apic 1" in tg.describe(st)
    assert st["net_flags"] == 0 and "net:" not in tg.describe(st)


def test_network_fields_decoded():
    mem, _ = guest_memory(CPUS, 9)
    page = bytearray(mem.read(tg.STATUS_GPA, tg.PAGE_SIZE))
    struct.pack_into(tg._NET_FMT, page, 0x70, 100, 90, 1, 12345, 3, 2, 2048, 0x0a00020f,
                     tg.NET_UP | tg.NET_DISK, 4)
    st = tg.read_status(tg.Memory.from_bytes(bytes(page), tg.STATUS_GPA))
    assert (st["net_rx_frames"], st["net_tx_frames"], st["net_tx_dropped"], st["disk_blocks"]) == (100, 90, 4, 2048)
    assert "net: ip=10.0.2.15 rx=100 tx=90" in tg.describe(st), tg.describe(st)
    # Version 1 pages have no network fields: read as zeros.
    struct.pack_into("<I", page, 4, 1)
    st = tg.read_status(tg.Memory.from_bytes(bytes(page), tg.STATUS_GPA))
    assert st["net_rx_frames"] == 0 and st["net_flags"] == 0


def test_consistent_area_passes():
    mem, _ = guest_memory(CPUS, 9)
    assert tg.verify_area(mem) == [], tg.verify_area(mem)


def test_stale_page_detected():
    mem, area = guest_memory(CPUS, 9)
    # Page 1 rolled back to its previous generation (a lost dirty page).
    area[1 * tg.PAGE_SIZE:2 * tg.PAGE_SIZE] = tg.pattern_page(1, 4)
    mem = tg.Memory()
    mem.add(tg.STATUS_GPA, status_page(CPUS, 9))
    mem.add(AREA_GPA, area)
    problems = tg.verify_area(mem)
    assert len(problems) == 1 and "page 1 " in problems[0] and "stale" in problems[0], problems


def test_lost_and_torn_pages_detected():
    mem, area = guest_memory(CPUS, 9)
    area[6 * tg.PAGE_SIZE:7 * tg.PAGE_SIZE] = bytes(tg.PAGE_SIZE)             # never arrived
    area[2 * tg.PAGE_SIZE + tg.PATTERN_TRAILER_OFF] ^= 0xFF                    # torn
    mem = tg.Memory()
    mem.add(tg.STATUS_GPA, status_page(CPUS, 9))
    mem.add(AREA_GPA, area)
    problems = tg.verify_area(mem)
    assert len(problems) == 2, problems
    assert "page 2 " in problems[0] and "torn" in problems[0]
    assert "page 6 " in problems[1] and "lost" in problems[1]


def test_in_flight_page_tolerated():
    # CPU 0 was paused inside its 24th write: page 23 % 5 = 3 already holds
    # generation 5 (header only), the record still says 23 writes.
    mem, area = guest_memory(CPUS, 9)
    struct.pack_into("<Q", area, 3 * tg.PAGE_SIZE + 8, 5)
    mem = tg.Memory()
    mem.add(tg.STATUS_GPA, status_page(CPUS, 9))
    mem.add(AREA_GPA, area)
    assert tg.verify_area(mem) == []
    # Any other page that far ahead is an error.
    struct.pack_into("<Q", area, 4 * tg.PAGE_SIZE + 8, 6)
    mem = tg.Memory()
    mem.add(tg.STATUS_GPA, status_page(CPUS, 9))
    mem.add(AREA_GPA, area)
    assert len(tg.verify_area(mem)) == 1


def test_no_status_page():
    mem = tg.Memory.from_bytes(bytes(0x10000))
    try:
        tg.read_status(mem)
    except tg.StatusError as e:
        assert "no status page" in str(e)
    else:
        raise AssertionError("missing status page not reported")


def test_check_matches_c():
    # Pinned in test-pattern.c as well: both sides compute the same value.
    assert tg.pattern_check(0, 1) == 0xE220A8397B1DCDAF
    assert tg.pattern_check(0x100005, 3) == 0xE681C31924A5CD4C     # a DIMM page: index = frame number


def test_cli_on_full_dump(tmpdir="/tmp"):
    mem, area = guest_memory(CPUS, 9)
    dump = bytearray(AREA_GPA + len(area))
    dump[tg.STATUS_GPA:tg.STATUS_GPA + tg.PAGE_SIZE] = status_page(CPUS, 9)
    dump[AREA_GPA:] = area
    path = os.path.join(os.environ.get("TMPDIR", tmpdir), "testguest-dump-%d.bin" % os.getpid())
    with open(path, "wb") as f:
        f.write(dump)
    try:
        devnull = open(os.devnull, "w")
        old, sys.stdout = sys.stdout, devnull
        try:
            rc_ok = tg.main([path])
            dump[AREA_GPA + 8] ^= 1
            with open(path, "wb") as f:
                f.write(dump)
            rc_bad = tg.main([path])
        finally:
            sys.stdout = old
            devnull.close()
    finally:
        os.unlink(path)
    assert rc_ok == 0 and rc_bad == 1, (rc_ok, rc_bad)


DIMMS = [(0, 0x100000000, 6, 15), (2, 0x100800000, 512, 3)]   # slot, gpa, pages, writes


def dimm_memory(dimms=DIMMS, spans_only=True):
    """Status page plus DIMMs written as the guest writes them (page index
    = frame number); only dimm_span() of each unless @spans_only is off."""
    mem = tg.Memory()
    mem.add(tg.STATUS_GPA, status_page(CPUS, 9, dimms=dimms))
    st = tg.read_status(mem)
    contents = []
    for (slot, gpa, pages, writes), d in zip(dimms, st["dimms"]):
        data = bytearray(pages * tg.PAGE_SIZE)
        for w in range(writes):
            o = w % pages
            data[o * tg.PAGE_SIZE:(o + 1) * tg.PAGE_SIZE] = tg.pattern_page((gpa >> 12) + o, w // pages + 1)
        contents.append(data)
    return st, contents


def add_dimms(st, contents):
    mem = tg.Memory()
    mem.add(tg.STATUS_GPA, status_page(CPUS, 9, dimms=DIMMS))
    for (gpa, size), data in zip(tg.dimm_spans(st), contents):
        mem.add(gpa, bytes(data[:size]))
    return mem


def test_dimm_records_decoded():
    st, _ = dimm_memory()
    assert st["version"] == 3 and st["dimm_count"] == 2 and st["dimms_seen"] == 3, st
    assert st["dimms_ignored"] == 1 and st["hotplug_scis"] == 2 and st["dimm_writes"] == 18, st
    assert st["dimms"][1] == {"slot": 2, "flags": tg.DIMM_HOTPLUG, "gpa": 0x100800000, "pages": 512, "writes": 3}
    # A DIMM fully written is read whole; one barely started only up to its in-flight page.
    assert tg.dimm_spans(st) == [(0x100000000, 6 * tg.PAGE_SIZE), (0x100800000, 4 * tg.PAGE_SIZE)]
    assert "dimm slot 2 (hotplug): gpa 0x100800000 pages=512 writes=3" in tg.describe(st), tg.describe(st)
    # Pages before version 3 have no DIMMs, whatever lies there.
    page = bytearray(status_page(CPUS, 9, dimms=DIMMS))
    struct.pack_into("<I", page, 4, 2)
    st = tg.read_status(tg.Memory.from_bytes(bytes(page), tg.STATUS_GPA))
    assert st["dimms"] == [] and st["dimm_count"] == 0 and "dimm" not in tg.describe(st)


def test_consistent_dimms_pass():
    st, contents = dimm_memory()
    assert tg.verify_dimms(add_dimms(st, contents), st) == []
    # No DIMMs: nothing to read, nothing wrong.
    mem, _ = guest_memory(CPUS, 9)
    assert tg.verify_dimms(mem) == [] and tg.dimm_spans(tg.read_status(mem)) == []


def test_dimm_problems_detected():
    st, contents = dimm_memory()
    # DIMM 0: page 2 lost its last write (gen 2 instead of 3); page 4 holds
    # the page of DIMM 1's address (a DIMM placed elsewhere); DIMM 1: page 1 torn.
    contents[0][2 * tg.PAGE_SIZE:3 * tg.PAGE_SIZE] = tg.pattern_page((0x100000000 >> 12) + 2, 2)
    contents[0][4 * tg.PAGE_SIZE:5 * tg.PAGE_SIZE] = tg.pattern_page(0x100800000 >> 12, 3)
    contents[1][tg.PAGE_SIZE + 16] ^= 1
    problems = tg.verify_dimms(add_dimms(st, contents), st)
    assert len(problems) == 3, problems
    assert "dimm slot 0 (gpa 0x100000000) page 2 " in problems[0] and "stale" in problems[0], problems
    assert "page 4 " in problems[1] and "header names page" in problems[1], problems
    assert "dimm slot 2" in problems[2] and "torn" in problems[2], problems


def test_dimm_in_flight_page_tolerated():
    st, contents = dimm_memory()
    # DIMM 0 paused inside its 16th write: page 15 % 6 = 3 holds gen 3's header.
    struct.pack_into("<Q", contents[0], 3 * tg.PAGE_SIZE + 8, 3)
    assert tg.verify_dimms(add_dimms(st, contents), st) == []
    # DIMM 1 paused inside its 4th write: page 3 has the header of gen 1 only.
    struct.pack_into("<IIQ", contents[1], 3 * tg.PAGE_SIZE, tg.PATTERN_MAGIC, (0x100800000 >> 12) + 3, 1)
    assert tg.verify_dimms(add_dimms(st, contents), st) == []
    struct.pack_into("<Q", contents[0], 4 * tg.PAGE_SIZE + 8, 4)
    assert len(tg.verify_dimms(add_dimms(st, contents), st)) == 1


def test_dimm_missing_from_dump():
    st, contents = dimm_memory()
    mem = add_dimms(st, contents[:1])
    problems = tg.verify_dimms(mem, st)
    assert len(problems) == 1 and "dimm slot 2" in problems[0] and "not in the dump" in problems[0], problems
    mem.add(AREA_GPA, guest_memory(CPUS, 9)[1])
    assert tg.verify_all(mem, st) == problems


def test_cli_with_dimm_dumps(tmpdir="/tmp"):
    st, contents = dimm_memory()
    dump = bytearray(AREA_GPA + 9 * tg.PAGE_SIZE)
    dump[tg.STATUS_GPA:tg.STATUS_GPA + tg.PAGE_SIZE] = status_page(CPUS, 9, dimms=DIMMS)
    dump[AREA_GPA:] = guest_memory(CPUS, 9)[1]
    tmp = os.environ.get("TMPDIR", tmpdir)
    paths = [os.path.join(tmp, "testguest-%s-%d.bin" % (n, os.getpid())) for n in ("ram", "d0", "d1")]
    for path, data in zip(paths, [dump] + contents):
        with open(path, "wb") as f:
            f.write(data)
    dimm_args = ["--dimm", "0x100000000=" + paths[1], "--dimm", "%d=%s" % (0x100800000, paths[2])]
    devnull = open(os.devnull, "w")
    old, sys.stdout = sys.stdout, devnull
    try:
        rc_ok = tg.main([paths[0]] + dimm_args)
        rc_missing = tg.main([paths[0]] + dimm_args[:2])
        with open(paths[2], "r+b") as f:
            f.seek(8)
            f.write(b"\x09")
        rc_bad = tg.main([paths[0]] + dimm_args)
    finally:
        sys.stdout = old
        devnull.close()
        for path in paths:
            os.unlink(path)
    assert (rc_ok, rc_missing, rc_bad) == (0, 1, 1), (rc_ok, rc_missing, rc_bad)


if __name__ == "__main__":
    tap.run(globals())
