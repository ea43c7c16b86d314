#!/usr/bin/env python3
"""What TLS costs a migration (not a test): colo-vmm with and without
tls-creds, one connection and multifd, for a few RAM sizes.

  COLO_BUILDDIR=/path/to/build bench/tls-bench.py [--runs N] [--sizes 256,1024] [--channels 2]

Needs /dev/kvm, certtool (gnutls-bin) and twice the largest size free in
--dir (default /dev/shm). The set-up is bench/migration-bench.py's (whose
migrate_once it uses): a paused VM whose RAM is a file of random bytes
(every page is sent, none is zero) migrates over 127.0.0.1 at full speed
(max-bandwidth 0) to a destination backed by a file of its own; the time
is from `migrate` to the destination's "completed" event. With TLS both
ends get -object tls-creds-x509 (certificates made by
tests/lib/tls_certs.py, ECDSA P-256, GnuTLS's NORMAL priority: TLS 1.3
with AES-GCM on a CPU with AES-NI) and tls-creds. Configurations run
interleaved (the order rotates each round); the first run of each checks
that the destination's RAM equals the source's. Prints median MiB/s and
the CPU seconds of both processes per GiB, then TLS's cost in percent."""
import argparse
import importlib.util
import os
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "lib"))
_spec = importlib.util.spec_from_file_location("migration_bench", os.path.join(HERE, "migration-bench.py"))
mb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mb)
from tls_certs import CA  # noqa: E402


def configurations(channels, pki):
    out = []
    for ch in (1, channels):
        for tls in (False, True):
            cfg = {"name": "%s, %s" % ("TLS" if tls else "plain", "1 channel" if ch == 1 else "multifd %d" % ch),
                   "vmm": "colo", "channels": ch, "tls": tls}
            if tls:
                obj = "tls-creds-x509,id=tls0,dir=%s,endpoint=%%s,verify-peer=on" % pki
                cfg.update(src_args=["-object", obj % "client"], dst_args=["-object", obj % "server"],
                           src_params={"tls-creds": "tls0"}, dst_params={"tls-creds": "tls0"})
            out.append(cfg)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", default="256,1024", help="MiB of guest RAM, comma-separated")
    ap.add_argument("--channels", type=int, default=2, help="multifd channels for the multifd rows")
    ap.add_argument("--dir", default=mb.DEFAULT_DIR)
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    args.build = os.environ.get("COLO_BUILDDIR", os.getcwd())
    args.max_bandwidth, args.downtime_limit, args.dst_ram = 0, 300, "file"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        sys.exit("no /dev/kvm")
    workdir = tempfile.mkdtemp(prefix="colo-tls-bench-", dir=args.dir)
    ca = CA()
    pki = ca.pki()
    try:
        mb.log("loopback TCP ceiling: %.2f GB/s (one connection)" % mb.loopback_ceiling())
        table = []
        for mib in [int(x) for x in args.sizes.split(",")]:
            args.mib = mib
            image = mb.make_images(workdir, mib)["random"]
            cfgs = configurations(args.channels, pki)
            res = {c["name"]: [] for c in cfgs}
            for r in range(args.runs):
                for i in range(len(cfgs)):
                    c = cfgs[(i + r) % len(cfgs)]
                    out = mb.migrate_once(c, image, args, workdir, verify=(r == 0))
                    res[c["name"]].append(out)
                    mb.log("  %4d MiB %-22s run %d: %.2f s" % (mib, c["name"], r + 1, out["wall"]))
            for f in os.listdir(workdir):
                if f.endswith(".img"):
                    os.unlink(os.path.join(workdir, f))
            for c in cfgs:
                runs = res[c["name"]]
                wall = statistics.median(x["wall"] for x in runs)
                cpu = statistics.median((x["cpu_src"] + x["cpu_dst"]) for x in runs) * 1024 / mib
                table.append((mib, c, wall, mib / wall, cpu))
        mb.log("")
        mb.log("| RAM | configuration | time (median of %d) | MiB/s | CPU s per GiB (both ends) |" % args.runs)
        mb.log("|---|---|---|---|---|")
        for mib, c, wall, rate, cpu in table:
            mb.log("| %d MiB | %s | %.2f s | %.0f | %.2f |" % (mib, c["name"], wall, rate, cpu))
        mb.log("")
        plain = {(m, c["channels"]): (rate, cpu) for m, c, _, rate, cpu in table if not c["tls"]}
        for mib, c, _, rate, cpu in table:
            if c["tls"]:
                p_rate, p_cpu = plain[(mib, c["channels"])]
                mb.log("TLS cost, %d MiB, %s: throughput %+.0f%%, CPU %+.0f%%" %
                       (mib, c["name"].split(", ")[1], (rate / p_rate - 1) * 100, (cpu / p_cpu - 1) * 100))
    finally:
        mb.kill_all()
        ca.close()
        shutil.rmtree(pki, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
