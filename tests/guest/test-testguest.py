#!/usr/bin/env python3
"""Tests of testguest.py, the host-side status page reader and workload
checker, on synthetic guest memory laid out the way the guest lays it out.
Prints TAP."""

import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testguest as tg  # noqa: E402

AREA_GPA = 0x1000000


def status_page(cpus, area_pages, flags=tg.FLAG_READY | tg.FLAG_WORKLOAD, cmdline=b"interval=1 dirty_pages=8"):
    page = bytearray(tg.PAGE_SIZE)
    struct.pack_into(tg._STATUS_FMT, page, 0, tg.STATUS_MAGIC, tg.STATUS_VERSION, 42, sum(c[2] for c in cpus),
                     len(cpus), len(cpus), 100, 1, 8, 100, AREA_GPA, area_pages, 64 << 20, 0, flags,
                     10 ** 9, 0, 0, 0, 0)
    for i, (first, pages, writes) in enumerate(cpus):
        struct.pack_into(tg._CPU_FMT, page, 0x100 + 64 * i, i, 1, 1000 + i, first, pages, writes, 0)
    page[tg.STATUS_CMDLINE_OFF:tg.STATUS_CMDLINE_OFF + len(cmdline)] = cmdline
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


TESTS = [v for k, v in sorted(globals().items()) if k.startswith("test_")]

if __name__ == "__main__":
    print("1..%d" % len(TESTS))
    failed = 0
    for n, t in enumerate(TESTS, 1):
        try:
            t()
            print("ok %d - %s" % (n, t.__name__))
        except Exception as e:  # report every failure, keep going
            failed += 1
            print("not ok %d - %s: %r" % (n, t.__name__, e))
    sys.exit(1 if failed else 0)
