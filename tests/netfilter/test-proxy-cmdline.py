"""colo-proxy's command line without a network: --version prints the
package's version (what packaging/check looks for in the installed one),
a bad command line exits 1 with the usage hint."""
import os
import re
import subprocess

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


tap.run(globals())
