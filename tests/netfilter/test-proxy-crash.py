#!/usr/bin/env python3
"""colo-proxy's control socket under a client that never reads, and a proxy
that dies: the guest must never stay cut off.

  c (client) --- ph (primary host: colo-proxy, NFQUEUE) --- pg (primary guest)

1. A control client pipelines hundreds of query-status, checkpoint-commit
   and checkpoint-begin and never reads, while the guest sends UDP with
   max_queue_size 1 (so each checkpoint-begin raises CHECKPOINT_REQUEST in
   the middle of the client's own command): the primary colo-proxy must
   survive it and serve the next client.
2. A burst of clients connecting at once is accepted (listen backlog).
3. The proxy killed with SIGKILL: the guest's UDP reaches the client again
   (its NFQUEUE rule has --queue-bypass), and `colo-proxy --cleanup` with
   the same interface arguments removes the rule it left.
4. SIGHUP ends the proxy cleanly, rules removed.
5. --daemonize and --pidfile.

Needs root, ip and iptables (Debian: iproute2, iptables). Prints TAP."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_topo import PROXY, forward_rules, tap_main, wait_for  # noqa: E402
from proxyctl import ProxyCtl  # noqa: E402

# The guest sends a datagram every 0.1 ms to the client's port 9000: one
# is waiting at every checkpoint-begin.
SENDER = """
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
while True:
    s.sendto(b"x" * 64, ("10.78.0.2", 9000))
    time.sleep(0.0001)
"""
# Prints "got" once a datagram arrives within 5 s, else "none".
RECEIVER = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9000))
s.settimeout(5)
try:
    s.recv(100)
    print("got")
except socket.timeout:
    print("none")
"""


def guest_reaches_client(topo):
    r = topo.exe("c", sys.executable, "-c", RECEIVER, timeout=15)
    return r.stdout.strip() == "got"


def flood_without_reading(path, rounds):
    """Connect, negotiate, then write @rounds x (checkpoint-commit, 8
    query-status, checkpoint-begin) and never read a reply."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)   # blocking: waits for room in the listen backlog
    s.settimeout(10)
    s.sendall(b'{"execute": "qmp_capabilities"}\n')
    # query-status between the commit and the begin: the guest's datagrams
    # of that time wait in the queue, and the begin's drain of them asks
    # for a checkpoint, an event in the middle of this client's command.
    batch = b"".join(b'{"execute": "checkpoint-commit"}\n' + b'{"execute": "query-status"}\n' * 8 +
                     b'{"execute": "checkpoint-begin"}\n' for i in range(rounds))
    # The proxy may stop reading us (backpressure) before it has all of it.
    s.settimeout(2)
    try:
        s.sendall(batch)
    except (socket.timeout, BrokenPipeError, ConnectionResetError):
        pass
    return s


def run(tap, topo):
    topo.setup()
    ctl_path = os.path.join(topo.tmp, "p.sock")
    args = ["-r", "primary", "-i", "pgh", "-q", "11"]
    proxy = topo.spawn("ph", PROXY, *args, "-L", "10.79.0.1:7711", "-c", ctl_path, "--max-queue-size", "1",
                       log="primary.log")
    ctl = ProxyCtl(ctl_path)
    # Held from the first checkpoint-begin (COLO begins) on.
    ctl.execute("checkpoint-begin")
    rules = forward_rules(topo, "ph")
    tap.ok(len(rules) == 1 and "NFQUEUE" in rules[0] and "--queue-bypass" in rules[0],
           "the primary's NFQUEUE rule has --queue-bypass", "\n".join(rules))
    sender = topo.spawn("pg", sys.executable, "-c", SENDER)
    tap.ok(wait_for(lambda: ctl.execute("query-stats")["held"] > 100), "the guest's datagrams reach the queue")

    # 1. The client that never reads.
    # Which send finds a client's socket full (a reply or the event) is up
    # to timing: several waves of clients.
    stuck = []
    try:
        for _ in range(10):
            for _ in range(16):
                stuck.append(flood_without_reading(ctl_path, 100))
            time.sleep(0.3)
    except OSError:
        pass   # the proxy is gone: checked below
    time.sleep(1)
    alive = proxy.poll() is None
    tap.ok(alive, "the primary colo-proxy survives clients that pipeline commands and never read",
           "exit status %s" % proxy.returncode)
    if alive:
        st = ProxyCtl(ctl_path).execute("query-status")
        tap.ok(st["role"] == "primary", "a new client is served meanwhile", json.dumps(st))
    for s in stuck:
        s.close()

    # 2. A burst of clients while the proxy cannot accept (stopped): the
    # listen backlog must hold them all (a unix socket's non-blocking
    # connect fails with EAGAIN when it is full).
    if alive:
        burst = []
        refused = 0
        os.kill(proxy.pid, signal.SIGSTOP)
        try:
            for _ in range(100):
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                c.setblocking(False)
                try:
                    c.connect(ctl_path)
                except OSError:
                    refused += 1
                burst.append(c)
        finally:
            os.kill(proxy.pid, signal.SIGCONT)
        tap.ok(refused == 0, "a burst of 100 clients connecting at once: none refused (%d)" % refused)
        last = burst[-1]
        last.settimeout(10)
        tap.ok(refused == 0 and last.recv(4096).startswith(b"{"), "the last of them is greeted")
        for c in burst:
            c.close()
    ctl.close()

    # 3. SIGKILL: nothing can clean up, yet the guest is not cut off.
    if proxy.poll() is None:
        os.killpg(proxy.pid, signal.SIGKILL)
    proxy.wait(10)
    tap.ok(len(forward_rules(topo, "ph")) == 1, "SIGKILL leaves the rule behind", "\n".join(forward_rules(topo, "ph")))
    tap.ok(guest_reaches_client(topo), "with the proxy dead the guest's UDP reaches the client (queue-bypass)")
    r = topo.exe("ph", PROXY, *args, "--cleanup", check=False)
    left = forward_rules(topo, "ph")
    tap.ok(r.returncode == 0 and not left, "colo-proxy --cleanup removes the stale rules",
           r.stderr + "\n".join(left))
    r = topo.exe("ph", PROXY, *args, "--cleanup", check=False)
    tap.ok(r.returncode == 0, "--cleanup with nothing left to remove succeeds", r.stderr)
    tap.ok(guest_reaches_client(topo), "after --cleanup the guest's UDP still reaches the client")
    topo.kill(sender)

    # 4. SIGHUP ends colo-proxy like SIGTERM: its rules go with it. The
    # new primary also removes what a secondary proxy on its interface,
    # killed with SIGKILL, left (its DROP would cut the guest off).
    topo.exe("ph", "iptables", "-w", "-A", "FORWARD", "-i", "pgh", "-j", "DROP", "-m", "comment",
             "--comment", "colo-proxy-s-pgh")
    proxy = topo.spawn("ph", PROXY, *args, "-L", "10.79.0.1:7711", "-c", ctl_path, log="primary2.log")
    ProxyCtl(ctl_path).close()
    rules = forward_rules(topo, "ph")
    tap.ok(len(rules) == 1 and "colo-proxy-s-pgh" not in rules[0],
           "a new colo-proxy installs its rule, a dead secondary's is gone", "\n".join(rules))
    proxy.send_signal(signal.SIGHUP)
    proxy.wait(10)
    tap.ok(proxy.returncode == 0 and not forward_rules(topo, "ph"), "SIGHUP: clean exit, rules removed",
           "exit %s" % proxy.returncode)

    # 5. --daemonize and --pidfile (common/daemon.c, as colo-vmm's): the
    # command returns once the proxy is ready.
    pidfile = os.path.join(topo.tmp, "proxy.pid")
    r = topo.exe("ph", PROXY, *args, "-L", "10.79.0.1:7711", "-c", ctl_path, "--daemonize", "--pidfile", pidfile,
                 check=False)
    pid = int(open(pidfile).read()) if r.returncode == 0 and os.path.exists(pidfile) else 0
    tap.ok(pid > 0 and os.path.exists(ctl_path) and len(forward_rules(topo, "ph")) == 1,
           "--daemonize returns once ready: pid file, control socket, rule", r.stderr)
    if pid:
        try:
            tap.ok(ProxyCtl(ctl_path).execute("query-status")["role"] == "primary", "the daemon serves its socket")
        finally:
            # Not in a process group of the topology's: end it here, whatever happened.
            os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not os.path.exists(pidfile), 10)
        tap.ok(not os.path.exists(pidfile) and not forward_rules(topo, "ph"),
               "SIGTERM: the daemon removes its pid file and rules")
    r = topo.exe("ph", PROXY, "-r", "primary", "-i", "nonesuch0", "-L", "10.79.0.1:7712", "--daemonize", check=False)
    tap.ok(r.returncode != 0, "--daemonize with a start-up failure exits non-zero (%d)" % r.returncode)


if __name__ == "__main__":
    sys.exit(tap_main(run))
