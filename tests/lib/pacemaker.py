"""Pacemaker on the two-node test cluster (tests/lib/cluster.py): corosync
with qnetd's vote as there, and pacemakerd on each node, in the node's
network namespace and its own mount namespace: /var/lib/pacemaker, /run,
/dev/shm and /var/log/pacemaker are the node's directories under the run
dir (cluster.PRIVATE), and with an OCF directory given, the node's
/usr/lib/ocf/resource.d is that directory (so a test runs an agent from
the source tree, ocf:PROVIDER:TYPE, without installing it).

    c = PacemakerCluster.create(rundir, ocf_dir=dir_with_PROVIDER_TYPE)
    c.start_corosync()
    c.start_pacemaker()                   # both online, a DC elected
    c.cib("node1", "--create", "-o", "resources", "-X", xml)
    c.roles("node1")                      # {resource instance: (node, role)}
    c.down()

Fencing is off (stonith-enabled=false: the test kills nodes itself);
no-quorum-policy stays pacemaker's default (stop), as its documentation
recommends with a quorum device."""
import grp
import os
import pwd
import re
import shlex
import shutil
import xml.etree.ElementTree as ET

import cluster
import tap
from netns import SetupError

TOOLS = {"pacemakerd": "pacemaker", "crm_mon": "pacemaker-cli-utils", "cibadmin": "pacemaker-cli-utils",
         "crm_attribute": "pacemaker-cli-utils", "crm_resource": "pacemaker-cli-utils"}
OCF_DIR = "/usr/lib/ocf/resource.d"
PCMK_DIRS = ("cib", "pengine", "blackbox", "cores")


def require():
    """Skip (capability reasons) without root, corosync's tools or
    pacemaker."""
    cluster.require()
    for tool, package in TOOLS.items():
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
            tap.skip("not installed: %s (Debian: %s)" % (tool, package))
    for name in ("hacluster",):
        try:
            pwd.getpwnam(name)
        except KeyError:
            tap.skip("no user %s (Debian: pacemaker creates it)" % name)


class PacemakerCluster(cluster.Cluster):
    @classmethod
    def create(cls, rundir, ocf_dir=None, **kw):
        c = super().create(rundir, **kw)
        c.state["ocf_dir"] = os.path.abspath(ocf_dir) if ocf_dir else None
        c.save()
        return c

    def host_argv(self, host, *cmd):
        argv = super().host_argv(host, *cmd)
        ocf = self.state.get("ocf_dir")
        if ocf and host in cluster.NODES:
            # argv is [ip netns exec NS sh -c SCRIPT sh CMD...]: one bind
            # more before the exec.
            argv[6] = "mount --bind %s %s && %s" % (ocf, OCF_DIR, argv[6])
        return argv

    def start_pacemaker(self, timeout=120):
        """pacemakerd on both nodes; returns once each sees both nodes
        online and a DC. Fencing off for the test."""
        uid, gid = pwd.getpwnam("hacluster").pw_uid, grp.getgrnam("haclient").gr_gid
        for n in cluster.NODES:
            for d in PCMK_DIRS:
                path = self._fs(n, "/var/lib/pacemaker/" + d)
                os.makedirs(path, exist_ok=True)
                os.chown(path, uid, gid)
                os.chmod(path, 0o750)
            # pacemaker's daemons (user hacluster) make their IPC files there.
            os.chmod(self._fs(n, "/dev/shm"), 0o1777)
            log = self._fs(n, "/var/log/pacemaker")
            os.chown(log, uid, gid)
            os.chmod(log, 0o770)
            self._spawn_pacemakerd(n)
        self._wait_online(timeout)
        self.run("node1", "crm_attribute", "--type", "crm_config", "--name", "stonith-enabled", "--update", "false")

    def _spawn_pacemakerd(self, n):
        # COLO_PCMK_DEBUG: pacemaker's PCMK_debug (e.g. pacemaker-controld),
        # its debug lines in pacemaker.log, for reading a run's timeline.
        debug = ["PCMK_debug=" + os.environ["COLO_PCMK_DEBUG"]] if os.environ.get("COLO_PCMK_DEBUG") else []
        self.spawn(n, "pacemakerd", "env", "PCMK_logfile=/var/log/pacemaker/pacemaker.log", *debug, "pacemakerd")

    def _wait_online(self, timeout):
        tap.wait_until(lambda: all(self._online(n) for n in cluster.NODES), timeout,
                       "pacemaker: both nodes online with a DC", interval=0.5)

    def fault(self, kind, host=None, name=None):
        """cluster.Cluster's faults; kill-host also takes the host's LAN
        port down: iptables stops IP, not ARP, and a host without power
        answers no ARP for a floating address it held."""
        super().fault(kind, host, name)
        if kind == "kill-host" and host in cluster.NODES:
            self.ip(host, "link", "set", "lan0", "down")

    def restart_node(self, n, keep=("colo-test",), timeout=180, pacemaker=True):
        """@n boots again after kill-host (heal() first): its /run and
        /dev/shm start empty (less @keep in /run), its LAN port up without
        the addresses it had (a floating IP), its disks (/var/lib/...) are
        as they were, no colo-proxy's iptables rules (a killed one's
        stay in the namespace, a reboot has none); corosync,
        corosync-qdevice and pacemakerd (unless not @pacemaker) start.
        Returns once both nodes are online again."""
        self.lan_reset(n)
        for tool in ("iptables", "ip6tables"):
            for rule in self.run(n, tool, "-S", "FORWARD").stdout.splitlines():
                if rule.startswith("-A ") and "colo-proxy-" in rule:
                    self.run(n, tool, "-D", *shlex.split(rule)[1:])
        for d, spare in (("/run", keep), ("/dev/shm", ())):
            top = self._fs(n, d)
            for e in os.listdir(top):
                if e not in spare:
                    p = os.path.join(top, e)
                    shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)
        os.makedirs(self._fs(n, "/run/corosync-qdevice"), exist_ok=True)
        self.spawn(n, "corosync", "corosync", "-f")
        tap.wait_until(lambda: self._ipc_ready(n), 60, "corosync to answer on " + n)
        self.spawn(n, "corosync-qdevice", "corosync-qdevice", "-f")
        self.wait_quorate(cluster.NODES, timeout=60, qdevice=True)
        if pacemaker:
            self._spawn_pacemakerd(n)
            self._wait_online(timeout)

    def mon(self, host):
        """`crm_mon -1 --output-as=xml` on @host, parsed (None when
        pacemaker does not answer)."""
        try:
            p = self.run(host, "crm_mon", "-1", "--output-as=xml", check=False, timeout=15)
        except Exception:
            return None
        if p.returncode != 0:
            return None
        try:
            return ET.fromstring(p.stdout)
        except ET.ParseError:
            return None

    def _online(self, host):
        if self.procs[(host, "pacemakerd")].poll() is not None:
            raise SetupError("pacemakerd on %s is not running:\n%s" % (host, self.log(host, "pacemakerd")))
        m = self.mon(host)
        if m is None:
            return False
        summary = m.find("summary/current_dc")
        online = {n.get("name") for n in m.iter("node") if n.get("online") == "true"}
        return summary is not None and summary.get("present") == "true" and online >= set(cluster.NODES)

    def cib(self, host, *args, timeout=30):
        return self.run(host, "cibadmin", *args, timeout=timeout)

    def roles(self, host, resource):
        """{node: role} of the instances of @resource (a clone's id) that
        are active, as @host's crm_mon sees them; None without an answer."""
        m = self.mon(host)
        if m is None:
            return None
        out = {}
        for r in m.iter("resource"):
            if r.get("id", "").split(":")[0] != resource or r.get("active") != "true":
                continue
            for node in r.findall("node"):
                out[node.get("name")] = r.get("role")
        return out

    def promotion_score(self, host, resource, node):
        """@node's promotion score for @resource (a clone's primitive) as
        @host's CIB has it, or None."""
        p = self.run(host, "crm_attribute", "--query", "--quiet", "--node", node, "--lifetime", "reboot",
                     "--name", "master-" + resource, check=False, timeout=15)
        return p.stdout.strip() or None if p.returncode == 0 else None

    def failures(self, host):
        """crm_mon's failed actions, as text, for diagnostics."""
        m = self.mon(host)
        if m is None:
            return "(no answer)"
        return "\n".join(ET.tostring(f, encoding="unicode") for f in m.iter("failure")) or "(none)"

    def transitions(self, host, after=0):
        """{(operation, resource): the transition that ran it} from
        @host's pacemaker.log, its lines after the first @after (the last
        of each); with log_lines() to mark a point."""
        out = {}
        for line in self._log_lines(host)[after:]:
            m = re.search(r"Requesting local execution of (\S+) operation for (\S+) on \S+ \| "
                          r"transition_key=\d+:(\d+):", line)
            if m:
                out[(m.group(1), m.group(2))] = int(m.group(3))
        return out

    def log_lines(self, host):
        return len(self._log_lines(host))

    def _log_lines(self, host):
        try:
            with open(self._fs(host, "/var/log/pacemaker/pacemaker.log"), errors="replace") as f:
                return f.readlines()
        except OSError:
            return []

    def pacemaker_log(self, host, lines=60):
        try:
            with open(self._fs(host, "/var/log/pacemaker/pacemaker.log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no pacemaker.log on %s)\n" % host


def config_summary(cib):
    """What a CIB's configuration says, without the ids tools choose:
    {primitives: {id: (class:provider:type, {param: value},
    {(op, interval, role, timeout)})}, clones: {id: (primitive, {meta:
    value})}, colocations: {(rsc, rsc-role, with-rsc, with-rsc-role,
    score)}, orders: {(first, first-action, then, then-action, kind)}};
    the roles by their current names (Master was Promoted's)."""
    def role(r):
        return {"Master": "Promoted", "Slave": "Unpromoted"}.get(r, r)

    def seconds(t):
        # "0", "0s", "10s", "10000ms": crm and pcs write them differently.
        if t is None:
            return None
        return float(t[:-2]) / 1000 if t.endswith("ms") else float(t.rstrip("s"))

    def nvpairs(el, tag):
        return {nv.get("name"): nv.get("value") for s in el.findall(tag) for nv in s.findall("nvpair")}

    conf = ET.fromstring(cib).find("configuration")
    out = {"primitives": {}, "clones": {}, "colocations": set(), "orders": set()}
    for p in conf.iter("primitive"):
        ops = {(o.get("name"), seconds(o.get("interval")), role(o.get("role")), seconds(o.get("timeout")))
               for o in p.findall("operations/op")}
        agent = "%s:%s:%s" % (p.get("class"), p.get("provider"), p.get("type"))
        out["primitives"][p.get("id")] = (agent, nvpairs(p, "instance_attributes"), ops)
    for cl in conf.iter("clone"):
        out["clones"][cl.get("id")] = (cl.find("primitive").get("id"), nvpairs(cl, "meta_attributes"))
    for co in conf.iter("rsc_colocation"):
        score = {"inf": "INFINITY", "+INFINITY": "INFINITY"}.get(co.get("score"), co.get("score"))
        out["colocations"].add((co.get("rsc"), role(co.get("rsc-role", "Started")), co.get("with-rsc"),
                                role(co.get("with-rsc-role", "Started")), score))
    for o in conf.iter("rsc_order"):
        out["orders"].add((o.get("first"), o.get("first-action", "start"), o.get("then"),
                           o.get("then-action", o.get("first-action", "start")), o.get("kind", "Mandatory")))
    return out
