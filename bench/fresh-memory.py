#!/usr/bin/env python3
"""What fresh memory costs on this host (not a test).

  bench/fresh-memory.py [--mib 1024] [--rounds 4] [--pause 5]

A migration's destination touches all of its guest RAM for the first time,
so the kernel's cost of handing out a fresh page bounds it (docs/performance.md,
"Destination memory"). This maps --mib MiB of anonymous memory with
transparent huge pages, as colo-vmm's and QEMU's guest RAM, faults it all in
(MADV_POPULATE_WRITE) and frees it: once right after the previous round
freed the same amount, once after --pause seconds.

Where the machine is itself a VM that gives freed memory back to its host
(free page reporting: /sys/module/page_reporting), memory the host took back
costs a host-side fault on its next first touch, many times the clearing a
fresh page costs otherwise; the printout shows both, and the reporting's
settings.
"""
import argparse
import mmap
import os
import time

MADV_POPULATE_WRITE = 23        # Linux 5.14
REPORTING = "/sys/module/page_reporting/parameters"


def populate(mib):
    # Private: a shared anonymous mapping is shmem, which gets no huge pages here.
    m = mmap.mmap(-1, mib << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        m.madvise(getattr(mmap, "MADV_HUGEPAGE", 14))
        t0 = time.monotonic()
        m.madvise(MADV_POPULATE_WRITE)
        took = time.monotonic() - t0
        return took, anon_huge_mib()
    finally:
        m.close()


def anon_huge_mib():
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("AnonHugePages:"):
                return int(line.split()[1]) >> 10
    return 0


def reporting():
    try:
        settings = {}
        for name in sorted(os.listdir(REPORTING)):
            with open(os.path.join(REPORTING, name)) as f:
                settings[name] = f.read().strip()
        return settings
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=1024, help="MiB to fault in each time (default 1024)")
    ap.add_argument("--rounds", type=int, default=4, help="rounds (default 4)")
    ap.add_argument("--pause", type=float, default=5, help="s before the paused fault-in (default 5)")
    args = ap.parse_args()

    rep = reporting()
    print("free page reporting: %s" % (", ".join("%s=%s" % kv for kv in rep.items()) if rep else "not present"))
    with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
        print("transparent huge pages: %s" % f.read().strip())
    gib = args.mib / 1024
    populate(args.mib)
    for r in range(1, args.rounds + 1):
        back, huge = populate(args.mib)
        time.sleep(args.pause)
        paused, huge2 = populate(args.mib)
        print("round %d: %.3f s/GiB right after a free, %.3f s/GiB after %.0f s (huge pages: %d and %d MiB of %d)" %
              (r, back / gib, paused / gib, args.pause, huge, huge2, args.mib))


if __name__ == "__main__":
    main()
