"""The test harness of colo's Python tests: TAP output, skips that name a
missing capability, per-test deadlines, temp dirs and waiting on conditions.

Tests as functions (most files):

    import tap
    def test_something(): ...      # fails on any exception
    tap.run(globals())             # every test_* function, in file order

A script that checks as it goes (the namespace tests, one topology):

    def run():
        tap.ok(cond, "what holds", diag="shown when it does not")
    sys.exit(tap.main(run))

skip("not root: ...") ends a test as skipped; skip_all() skips a whole file.
A skip's reason must start with a missing capability of the machine
(tests/lib/skip-reasons); under CI=true any other reason is a failure. A
test that raises, or runs past its deadline (@tap.timeout(seconds), else
TAP_TIMEOUT or 900 s), fails with its output shown as TAP comments.
TAP_ONLY=test_name runs just that test (by hand).
"""
import contextlib
import inspect
import io
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback

DEFAULT_TIMEOUT = float(os.environ.get("TAP_TIMEOUT", 900))
_REASONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "skip-reasons")


class Skip(Exception):
    pass


class TestTimeout(Exception):
    pass


def capabilities():
    """The patterns a skip reason must start with (tests/lib/skip-reasons)."""
    with open(_REASONS) as f:
        return [line.rstrip("\n") for line in f if line.strip() and not line.startswith("#")]


def is_capability(reason):
    return any(re.match(p, reason) for p in capabilities())


def skip(reason):
    """End the running test as skipped: @reason starts with the missing
    capability ("no /dev/kvm", "not root: ...", "not installed: TOOL ...")."""
    raise Skip(reason)


def timeout(seconds):
    """Decorator: this test's deadline, when the default is not enough."""
    def mark(fn):
        fn.tap_timeout = seconds
        return fn
    return mark


def in_ci():
    return os.environ.get("CI") == "true"


def _comment(text):
    for line in text.splitlines():
        print(line if line.startswith("#") else "# " + line, flush=True)


@contextlib.contextmanager
def _deadline(seconds, what):
    """Raises TestTimeout in the main thread once @seconds have passed."""
    def expired(signum, frame):
        raise TestTimeout("%s still running after its deadline of %g s" % (what, seconds))
    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class _Counter:
    n = 0
    failed = 0


_tap = _Counter()


def _result(good, name, directive=""):
    _tap.n += 1
    if not good:
        _tap.failed += 1
    print("%s %d - %s%s" % ("ok" if good else "not ok", _tap.n, name, directive), flush=True)


def _skip_result(name, reason):
    """A skip, or under CI=true a failure if @reason names no capability."""
    if is_capability(reason) or not in_ci():
        _result(True, name, " # SKIP " + reason)
        return
    _result(False, name)
    _comment("skipped for a reason that names no missing capability (CI=true, see tests/lib/skip-reasons): "
             + reason)


def ok(cond, name, diag=None):
    """One check of a script run by main(): a TAP line; @diag (text) is
    shown when @cond is false. Returns @cond."""
    if not cond and diag:
        _comment(diag)
    _result(bool(cond), name)
    return cond


def skip_all(reason):
    """Skip the whole file (before any check ran)."""
    if is_capability(reason) or not in_ci():
        print("1..0 # SKIP " + reason, flush=True)
        sys.exit(0)
    _skip_result("the whole file", reason)
    print("1..%d" % _tap.n, flush=True)
    sys.exit(1)


def _one_line(e, limit=200):
    """@e as 'Type: first line of its message', at most @limit characters."""
    msg = str(e).strip().splitlines()
    text = type(e).__name__ + (": " + msg[0] if msg else "")
    return text if len(text) <= limit else text[:limit - 3] + "..."


def run(namespace, only=None):
    """Run every test_* function of @namespace (a module's globals()) in
    source order; print TAP; exit 1 if any failed."""
    tests = [(name, fn) for name, fn in namespace.items()
             if name.startswith("test_") and callable(fn)]
    tests.sort(key=lambda t: inspect.getsourcelines(t[1])[1])
    only = only or os.environ.get("TAP_ONLY")
    if only:
        tests = [t for t in tests if t[0] == only]
    print("1..%d" % len(tests), flush=True)
    for name, fn in tests:
        out = io.StringIO()
        outcome, detail, why = True, "", ""
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                with _deadline(getattr(fn, "tap_timeout", DEFAULT_TIMEOUT), name):
                    fn()
        except Skip as s:
            outcome = s
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 - a failure (SystemExit too) is reported, not raised
            outcome, detail = False, traceback.format_exc()
            why = _one_line(e)
        if isinstance(outcome, Skip):
            _skip_result(name, str(outcome))
        else:
            # A failure names its cause on its own line too, so that a
            # summary that keeps only the result lines still explains it.
            _result(outcome, name, "" if outcome else " # " + why)
        _comment(out.getvalue() + detail)
    sys.exit(1 if _tap.failed else 0)


def main(fn, deadline=None):
    """Run @fn(), a script of ok() checks, under a deadline; an exception
    or the deadline is one more failed check with the traceback. Prints
    the plan last; returns the exit status."""
    try:
        with _deadline(deadline or DEFAULT_TIMEOUT, "the test"):
            fn()
    except Skip as s:
        if _tap.n:
            _skip_result("the rest", str(s))
        else:
            skip_all(str(s))
    except Exception as e:  # noqa: BLE001 - a broken set-up fails loudly
        _result(False, "test run: " + _one_line(e))
        _comment(traceback.format_exc())
    print("1..%d" % _tap.n, flush=True)
    return 1 if _tap.failed else 0


def failed():
    """How many checks failed so far (for a script's clean-up)."""
    return _tap.failed


@contextlib.contextmanager
def tempdir(prefix="colo-test-"):
    """A private directory, removed afterwards, also when the test fails."""
    path = tempfile.mkdtemp(prefix=prefix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def wait_until(predicate, timeout, what, interval=0.05):
    """Poll @predicate until it returns something true (returned) or
    @timeout seconds pass (AssertionError naming @what)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def wait_for(predicate, timeout=10.0, interval=0.05):
    """Like wait_until, but None after @timeout instead of raising."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value or None
        time.sleep(interval)
