"""Minimal TAP producer for the Python integration tests.

    from tap import run, skip
    def test_something(): ...
    run(globals())          # runs every test_* function in file order

A test fails on any exception; skip("why") marks it skipped with the reason.
TAP_ONLY=test_name in the environment runs just that test.
"""
import inspect
import os
import sys
import traceback


class Skip(Exception):
    pass


def skip(reason):
    raise Skip(reason)


def run(namespace):
    tests = [(name, fn) for name, fn in namespace.items()
             if name.startswith("test_") and callable(fn)]
    tests.sort(key=lambda t: inspect.getsourcelines(t[1])[1])
    only = os.environ.get("TAP_ONLY")      # run one test by name, by hand
    if only:
        tests = [t for t in tests if t[0] == only]
    print("1..%d" % len(tests), flush=True)
    failed = 0
    for n, (name, fn) in enumerate(tests, 1):
        try:
            fn()
        except Skip as s:
            print("ok %d - %s # SKIP %s" % (n, name, s), flush=True)
        except Exception:  # noqa: BLE001 - any failure is reported, not raised
            failed += 1
            print("not ok %d - %s" % (n, name), flush=True)
            for line in traceback.format_exc().splitlines():
                print("# " + line, flush=True)
        else:
            print("ok %d - %s" % (n, name), flush=True)
    sys.exit(1 if failed else 0)
