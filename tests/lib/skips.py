#!/usr/bin/env python3
"""The skips of a test run, for ./quickstart check:

    skips.py collect VARIANT BUILDDIR >>LIST   every skip of that build's tests
    skips.py report LIST                       grouped by reason, for people
    skips.py bad LIST                          how many name no missing capability

collect reads the per-test logs automake's TAP driver wrote (a .log next to
each .trs): "SKIP: test N desc # SKIP reason", or "SKIP: test - reason" for
a whole file. LIST has one "reason<TAB>variant: test desc" a line. A reason
must start with a missing capability of the machine (tests/lib/skip-reasons,
as tap.py checks); under CI=true ./quickstart counts the others as failed.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tap import is_capability  # noqa: E402


def parse(line):
    """(reason, what) of a "SKIP: " line of a test log, without the prefix."""
    if " # SKIP" in line:
        what, why = line.split(" # SKIP", 1)
    elif " - " in line:
        what, why = line.split(" - ", 1)
    else:
        what, why = line, ""
    return why.strip() or "(no reason given)", what.strip()


def collect(variant, builddir):
    for top, _, files in sorted(os.walk(builddir)):
        for f in sorted(files):
            if not f.endswith(".trs"):
                continue
            try:
                with open(os.path.join(top, f[:-4] + ".log"), errors="replace") as log:
                    lines = [line.rstrip("\n")[6:] for line in log if line.startswith("SKIP: ")]
            except OSError:
                continue
            for line in lines:
                reason, what = parse(line)
                print("%s\t%s: %s" % (reason.replace("\t", " "), variant, what))


def read(path):
    with open(path) as f:
        return [line.rstrip("\n").split("\t", 1) for line in f if "\t" in line]


def report(path):
    groups = {}
    for reason, what in read(path):
        groups.setdefault(reason, []).append(what)
    if not groups:
        return
    print("skipped, by reason:")
    for reason in sorted(groups):
        flag = "" if is_capability(reason) else "   <- names no missing capability (see tests/lib/skip-reasons)"
        print("  %s%s" % (reason, flag))
        for what in groups[reason]:
            print("      " + what)


def bad(path):
    print(sum(1 for reason, _ in read(path) if not is_capability(reason)))


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "collect" and len(sys.argv) == 4:
        collect(sys.argv[2], sys.argv[3])
    elif cmd in ("report", "bad") and len(sys.argv) == 3:
        (report if cmd == "report" else bad)(sys.argv[2])
    else:
        sys.exit(__doc__)
