#!/usr/bin/env python3
"""Tests of the test harness (tests/lib/tap.py): small test files run as
automake runs them (through build-aux/tap-driver.sh, with the flags of
tests/Makefile.am), and what it counts."""
import os
import subprocess
import sys
import textwrap
import time

import tap

LIB = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("COLO_SRCDIR", os.path.join(LIB, "..", ".."))
DRIVER = os.path.join(SRCDIR, "build-aux", "tap-driver.sh")


def harness(body, ci=False):
    """Run a test file with @body through tap-driver.sh: (exit status of
    the driver, the TAP output, the driver's per-result list)."""
    with tap.tempdir("colo-tap-test-") as d:
        script = os.path.join(d, "t.py")
        with open(script, "w") as f:
            f.write("import sys, time\nimport tap\n" + textwrap.dedent(body))
        env = dict(os.environ, PYTHONPATH=LIB, AM_TAP_AWK="awk")
        env.pop("TAP_ONLY", None)
        env.pop("CI", None)
        if ci:
            env["CI"] = "true"
        log, trs = os.path.join(d, "t.log"), os.path.join(d, "t.trs")
        r = subprocess.run(["sh", DRIVER, "--test-name", "t.py", "--log-file", log, "--trs-file", trs,
                            "--color-tests", "no", "--ignore-exit", "--enable-hard-errors", "yes", "--expect-failure", "no",
                            "--", sys.executable, script], env=env, capture_output=True, text=True, timeout=60)
        with open(log) as f:
            out = f.read()
        with open(trs) as f:
            results = [line.split(": ", 1)[1].strip() for line in f if line.startswith(":test-result:")]
    return r.returncode, out, results


def test_failed_test_counted_as_failed():
    rc, out, results = harness("""
        def test_good(): pass
        def test_bad(): assert 1 + 1 == 3, "arithmetic"
        def test_after(): pass
        tap.run(globals())
    """)
    assert results == ["PASS", "FAIL", "PASS"], (results, out)
    assert "AssertionError: arithmetic" in out, out
    # The result line itself names the cause, for summaries that keep only those.
    assert "not ok 2 - test_bad # AssertionError: arithmetic\n" in out, out


def test_capability_skip_is_a_skip_also_in_ci():
    for ci in (False, True):
        rc, out, results = harness("""
            def test_kvm(): tap.skip("no /dev/kvm on this machine")
            tap.run(globals())
        """, ci=ci)
        assert results == ["SKIP"], (ci, results, out)
        assert "# SKIP no /dev/kvm on this machine" in out, out


def test_other_skip_fails_in_ci():
    body = """
        def test_lazy(): tap.skip("colo-vmm is not built")
        tap.run(globals())
    """
    rc, out, results = harness(body)
    assert results == ["SKIP"], (results, out)
    rc, out, results = harness(body, ci=True)
    assert results == ["FAIL"], (results, out)
    assert "names no missing capability" in out and "colo-vmm is not built" in out, out


def test_skip_all_in_ci():
    rc, out, results = harness("""tap.skip_all("not root: needs network namespaces")""", ci=True)
    assert results == ["SKIP"], (results, out)
    rc, out, results = harness("""tap.skip_all("cannot build the namespaces")""", ci=True)
    assert results == ["FAIL"], (results, out)


def test_raise_is_a_failure_with_output():
    rc, out, results = harness("""
        def test_raises():
            print("set-up said: bridge exists")
            raise RuntimeError("set-up broke")
        def test_next(): pass
        tap.run(globals())
    """)
    assert results == ["FAIL", "PASS"], (results, out)
    assert "# set-up said: bridge exists" in out and "RuntimeError: set-up broke" in out, out


def test_timeout_is_a_failure_with_output():
    t0 = time.monotonic()
    rc, out, results = harness("""
        @tap.timeout(0.5)
        def test_hangs():
            print("waiting for the guest")
            time.sleep(60)
        def test_next(): pass
        tap.run(globals())
    """)
    assert time.monotonic() - t0 < 30
    assert results == ["FAIL", "PASS"], (results, out)
    assert "# waiting for the guest" in out and "deadline of 0.5 s" in out, out


def test_script_checks_and_exceptions():
    rc, out, results = harness("""
        def run():
            tap.ok(True, "first")
            tap.ok(False, "second", diag="the stats were: 3")
            raise OSError("namespace set-up failed: File exists")
        sys.exit(tap.main(run))
    """)
    assert results == ["PASS", "FAIL", "FAIL"], (results, out)
    assert "# the stats were: 3" in out and "namespace set-up failed: File exists" in out, out


def test_script_deadline():
    rc, out, results = harness("""
        def run():
            tap.ok(True, "first")
            time.sleep(60)
        sys.exit(tap.main(run, deadline=0.5))
    """)
    assert results == ["PASS", "FAIL"], (results, out)
    assert "TestTimeout" in out, out


def skips(*args):
    return subprocess.run([sys.executable, os.path.join(LIB, "skips.py"), *args], capture_output=True, text=True,
                          check=True, timeout=60).stdout


def test_skip_listing():
    """./quickstart's listing (tests/lib/skips.py) from logs as tap-driver.sh
    writes them: every skip once, grouped by reason, the others counted."""
    with tap.tempdir("colo-skips-") as d:
        os.makedirs(os.path.join(d, "tests", "vmm"))
        for name, body in (("a", "1..2\nok 1 - test_x # SKIP not root: needs namespaces\n"
                                  "ok 2 - test_y # SKIP colo-vmm is not built\n"),
                           ("b", "1..0 # SKIP not root: needs namespaces\n"),
                           ("c", "1..1\nok 1 - test_z\n")):
            script = os.path.join(d, name + ".py")
            with open(script, "w") as f:
                f.write("print(%r, end='')\n" % body)
            base = os.path.join(d, "tests", "vmm", name)
            subprocess.run(["sh", DRIVER, "--test-name", "vmm/%s.py" % name, "--log-file", base + ".log",
                            "--trs-file", base + ".trs", "--", sys.executable, script],
                           env=dict(os.environ, AM_TAP_AWK="awk"), capture_output=True, timeout=60)
        # A log without its .trs is from an older run: not counted.
        with open(os.path.join(d, "tests", "old.log"), "w") as f:
            f.write("SKIP: old.py 1 - test_old # SKIP stale\n")
        listing = os.path.join(d, "list")
        with open(listing, "w") as f:
            f.write(skips("collect", "normal", d))
        report = skips("report", listing)
        assert skips("bad", listing).strip() == "1", report
    lines = report.splitlines()
    assert lines[0] == "skipped, by reason:", report
    i = lines.index("  not root: needs namespaces")
    assert sorted(lines[i + 1:i + 3]) == ["      normal: vmm/a.py 1 - test_x", "      normal: vmm/b.py"], report
    assert "  colo-vmm is not built   <- names no missing capability (see tests/lib/skip-reasons)" in lines, report
    assert "stale" not in report and "test_z" not in report, report


def test_wait_until():
    t0 = time.monotonic()
    assert tap.wait_until(lambda: time.monotonic() - t0 > 0.1 and "done", 5, "a while") == "done"
    try:
        tap.wait_until(lambda: False, 0.2, "the impossible")
    except AssertionError as e:
        assert "the impossible" in str(e), e
    else:
        raise AssertionError("wait_until returned without its condition")
    assert tap.wait_for(lambda: 0, timeout=0.1) is None


if __name__ == "__main__":
    tap.run(globals())
