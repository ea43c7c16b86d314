"""colo-proxy's command line without a network: --version prints the
package's version (what packaging/check looks for in the installed one),
a bad command line exits 1 with the usage hint."""
import os
import re
import subprocess
import tempfile

import tap

BUILDDIR = os.environ.get("COLO_BUILDDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
PROXY = os.path.join(BUILDDIR, "netfilter", "colo-proxy")


def run(*args):
    return subprocess.run([PROXY, *args], capture_output=True, text=True, timeout=30)


def package_version():
    with open(os.path.join(BUILDDIR, "config.h")) as f:
        return re.search(r'#define PACKAGE_VERSION "([^"]+)"', f.read()).group(1)


def test_version():
    for flag in ("--version", "-V"):
        r = run(flag)
        assert r.returncode == 0 and r.stdout == "colo-proxy %s\n" % package_version(), r


def test_version_wins_over_a_missing_role():
    # Packaging checks run it without any other option: --version alone is enough.
    r = run("--version", "--guest-iface", "x")
    assert r.returncode == 0 and r.stdout.startswith("colo-proxy "), r


def test_bad_usage_exits_1():
    r = run()
    assert r.returncode == 1 and "need --role" in r.stderr and r.stdout == "", r
    r = run("--no-such-option")
    assert r.returncode == 1 and "Unknown option" in r.stderr, r


def carry(text, *extra):
    """colo-proxy with --carry-flows of a file holding @text."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        f.write(text)
        f.flush()
        return run("-r", "primary", "-i", "nosuch0", "-L", "127.0.0.1:1", "--carry-flows", f.name, *extra)


FLOW = '{"src": "10.0.0.2", "sport": 80, "dst": "10.0.0.9", "dport": %d, "offset": 1}'


def test_bad_carry_flows_exit_1():
    # Each refused before anything is set up, with what is wrong.
    for text, why in (("{", "carried flows:"), ("[]", 'only a "flows" array'),
                      ('{"flows": [{"src": "10.0.0.256", "sport": 80, "dst": "10.0.0.9", "dport": 1, "offset": 1}]}',
                       "src must be an IPv4 or IPv6 address"),
                      ('{"flows": [%s]}' % ", ".join(FLOW % (i + 1) for i in range(1025)), "1025 flows, at most 1024"),
                      ('{"flows": [%s, %s]}' % (FLOW % 1, FLOW % 1), "given twice")):
        r = carry(text)
        assert r.returncode == 1 and why in r.stderr and "--carry-flows" in r.stderr, (text[:80], r)
    r = run("-r", "primary", "-i", "nosuch0", "-L", "127.0.0.1:1", "--carry-flows", "/nonexistent/flows.json")
    assert r.returncode == 1 and "/nonexistent/flows.json" in r.stderr, r
    good = '{"flows": [%s]}' % (FLOW % 1)
    r = carry(good, "-q", "32768")
    assert r.returncode == 1 and "below 32768" in r.stderr, r
    with tempfile.NamedTemporaryFile("w") as f:
        f.write(good)
        f.flush()
        r = run("-r", "secondary", "-i", "nosuch0", "-C", "127.0.0.1:1", "--carry-flows", f.name)
    assert r.returncode == 1 and "--role primary" in r.stderr, r


tap.run(globals())
