#include "config.h"

#include "cmdline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "memory.h"
#include "migration/transport.h"

#define CMDLINE_ERROR G_OPTION_ERROR
#define CMDLINE_BAD   G_OPTION_ERROR_BAD_VALUE

typedef bool (*OptionFunc)(VmmOptions *opts, const char *arg, GError **error);

typedef struct VmmOption {
    const char *name;
    bool has_arg;
    OptionFunc fn;
    const char *help;
} VmmOption;

static bool opt_string(char **slot, const char *arg)
{
    g_free(*slot);
    *slot = g_strdup(arg);
    return true;
}

/* "-m 64M", "-m size=64M" (QEMU accepts both), with ",slots=N,maxmem=SIZE"
 * for RAM hot-add. */
static bool opt_memory(VmmOptions *o, const char *arg, GError **error)
{
    g_auto(GStrv) parts = g_strsplit(arg, ",", -1);

    o->maxmem = 0;
    o->mem_slots = 0;
    for (unsigned i = 0; parts[i]; i++) {
        const char *p = parts[i];
        if (g_str_has_prefix(p, "slots=")) {
            char *end;
            errno = 0;
            unsigned long n = strtoul(p + 6, &end, 10);
            if (errno || end == p + 6 || *end || n > 256) {
                g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-m: '%s' is not a slot count", p);
                return false;
            }
            o->mem_slots = (unsigned)n;
        } else if (g_str_has_prefix(p, "maxmem=")) {
            if (!guest_memory_parse_size(p + 7, &o->maxmem, error)) {
                g_prefix_error(error, "-m: maxmem: ");
                return false;
            }
        } else if (i == 0 || g_str_has_prefix(p, "size=")) {
            const char *size = g_str_has_prefix(p, "size=") ? p + 5 : p;
            if (!guest_memory_parse_size(size, &o->ram_size, error)) {
                g_prefix_error(error, "-m: ");
                return false;
            }
        } else {
            g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-m: unknown parameter '%s'", p);
            return false;
        }
    }
    if (o->ram_size < 2 * 1024 * 1024) {
        g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-m: %s is too small (at least 2M)", arg);
        return false;
    }
    return true;
}

/* -object memory-backend-* and tls-creds-x509: checked when the VM exists
 * (dimm-commands.c, migration/mig-tls.c). */
static bool opt_object(VmmOptions *o, const char *arg, GError **error)
{
    g_ptr_array_add(o->mem_objects, g_strdup(arg));
    return true;
}

/* "-smp 2", "-smp cpus=2"; other topology keys are accepted if they agree. */
static bool opt_smp(VmmOptions *o, const char *arg, GError **error)
{
    g_auto(GStrv) parts = g_strsplit(arg, ",", -1);

    if (!parts[0]) {
        g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-smp: needs a CPU count");
        return false;
    }
    for (unsigned i = 0; parts[i]; i++) {
        const char *p = parts[i];
        const char *value = p;
        if (g_str_has_prefix(p, "cpus=")) {
            value = p + 5;
        } else if (g_str_has_prefix(p, "maxcpus=") || g_str_has_prefix(p, "sockets=") ||
                   g_str_has_prefix(p, "cores=") || g_str_has_prefix(p, "threads=")) {
            continue;
        } else if (i > 0) {
            g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-smp: unknown parameter '%s'", p);
            return false;
        }
        char *end;
        errno = 0;
        unsigned long n = strtoul(value, &end, 10);
        if (errno || end == value || *end || n < 1 || n > VMM_MAX_CPUS) {
            g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD,
                        "-smp: '%s' is not a CPU count between 1 and %d", value, VMM_MAX_CPUS);
            return false;
        }
        o->ncpus = (unsigned)n;
    }
    return true;
}

static bool opt_kernel(VmmOptions *o, const char *a, GError **e) { return opt_string(&o->kernel, a); }
static bool opt_initrd(VmmOptions *o, const char *a, GError **e) { return opt_string(&o->initrd, a); }
static bool opt_append(VmmOptions *o, const char *a, GError **e) { return opt_string(&o->append, a); }
static bool opt_mem_path(VmmOptions *o, const char *a, GError **e) { return opt_string(&o->mem_path, a); }
static bool opt_serial(VmmOptions *o, const char *a, GError **e) { return opt_string(&o->serial, a); }
static bool opt_pidfile(VmmOptions *o, const char *a, GError **e) { return opt_string(&o->pidfile, a); }
/* Checked now, so a bad URI stops colo-vmm before anything starts. */
static bool opt_incoming(VmmOptions *o, const char *a, GError **e)
{
    if (strcmp(a, "defer") != 0 && !transport_check_uri(a, e)) {
        g_prefix_error(e, "-incoming: ");
        return false;
    }
    return opt_string(&o->incoming, a);
}
/* QEMU sets migration parameters on its command line as properties of
 * the migration object: -global migration.NAME=VALUE. colo-vmm knows its
 * own x-allowed-peer and QEMU's tls-creds and tls-hostname (checked when
 * the VM is set up). */
static bool opt_global(VmmOptions *o, const char *a, GError **e)
{
    static const struct {
        const char *key;
        size_t offset;
    } keys[] = {
        { "migration.x-allowed-peer=", offsetof(VmmOptions, allowed_peer) },
        { "migration.tls-creds=", offsetof(VmmOptions, tls_creds) },
        { "migration.tls-hostname=", offsetof(VmmOptions, tls_hostname) },
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(keys); i++) {
        if (g_str_has_prefix(a, keys[i].key)) {
            return opt_string((char **)((char *)o + keys[i].offset), a + strlen(keys[i].key));
        }
    }
    g_set_error(e, CMDLINE_ERROR, CMDLINE_BAD,
                "-global: '%s' is not supported (only migration.x-allowed-peer, tls-creds, tls-hostname)", a);
    return false;
}
static bool opt_logfile(VmmOptions *o, const char *a, GError **e) { return opt_string(&o->logfile, a); }
static bool opt_colo_proxy(VmmOptions *o, const char *a, GError **e)
{
    struct sockaddr_un sun;

    if (!*a || strlen(a) >= sizeof(sun.sun_path)) {
        g_set_error(e, CMDLINE_ERROR, CMDLINE_BAD, "-colo-proxy: '%s' is no unix socket path (1 to %zu bytes)", a,
                    sizeof(sun.sun_path) - 1);
        return false;
    }
    return opt_string(&o->colo_proxy, a);
}
static bool opt_paused(VmmOptions *o, const char *a, GError **e) { return o->start_paused = true; }
static bool opt_mem_share(VmmOptions *o, const char *a, GError **e) { return o->mem_share = true; }
static bool opt_daemonize(VmmOptions *o, const char *a, GError **e) { return o->daemonize = true; }
static bool opt_debug(VmmOptions *o, const char *a, GError **e) { return o->debug = true; }
static bool opt_help(VmmOptions *o, const char *a, GError **e) { return o->help = true; }
static bool opt_version(VmmOptions *o, const char *a, GError **e) { return o->version = true; }

/* "-name NAME" or "-name guest=NAME[,...]" */
static bool opt_name(VmmOptions *o, const char *arg, GError **error)
{
    g_auto(GStrv) parts = g_strsplit(arg, ",", 2);
    const char *name = !parts[0] ? "" : g_str_has_prefix(parts[0], "guest=") ? parts[0] + 6 : parts[0];

    if (!*name) {
        g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-name: empty name");
        return false;
    }
    return opt_string(&o->name, name);
}

static bool opt_qmp(VmmOptions *o, const char *arg, GError **error)
{
    char *path, *group;

    if (!vmm_parse_qmp_spec(arg, &path, &group, error)) {
        g_prefix_error(error, "-qmp: ");
        return false;
    }
    g_free(o->qmp);
    g_free(o->qmp_group);
    o->qmp = path;
    o->qmp_group = group;
    return true;
}

/* QEMU options that mean what colo-vmm does anyway. */
static bool opt_accel(VmmOptions *o, const char *arg, GError **error)
{
    if (strcmp(arg, "kvm") != 0 && !g_str_has_prefix(arg, "kvm,")) {
        g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-accel: colo-vmm only runs with kvm, not '%s'", arg);
        return false;
    }
    return true;
}

static bool opt_cpu(VmmOptions *o, const char *arg, GError **error)
{
    if (strcmp(arg, "host") != 0) {
        g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD,
                    "-cpu: only 'host' is supported (the vCPU gets what KVM supports)");
        return false;
    }
    return true;
}

static bool opt_nothing(VmmOptions *o, const char *a, GError **e) { return true; }

/* ---- devices: -netdev, -device, -drive (QEMU's key=value lists) ---------- */

static void net_config_free(gpointer p)
{
    VirtioNetConfig *c = p;

    g_free(c->id);
    g_free(c->ifname);
    g_free(c);
}

static void blk_config_free(gpointer p)
{
    VirtioBlkConfig *c = p;

    if (!c) {
        return;     /* moved to drives by a -device */
    }
    g_free(c->file);
    g_free(c->id);
    g_free(c);
}

/* "key=value" -> value if @p has that key. */
static const char *kv(const char *p, const char *key)
{
    size_t n = strlen(key);

    return strncmp(p, key, n) == 0 && p[n] == '=' ? p + n + 1 : NULL;
}

static bool opt_on_off(const char *opt, const char *key, const char *v, bool *out, GError **error)
{
    if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes")) {
        *out = true;
    } else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no")) {
        *out = false;
    } else {
        g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "%s: %s must be on or off, not '%s'", opt, key, v);
        return false;
    }
    return true;
}

static bool parse_mac(const char *text, uint8_t mac[6])
{
    unsigned b[6];
    char end;

    if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &end) != 6) {
        return false;
    }
    for (unsigned i = 0; i < 6; i++) {
        mac[i] = (uint8_t)b[i];
    }
    return !(mac[0] & 1);   /* a multicast address cannot be a NIC's */
}

/* -netdev tap,id=ID,ifname=NAME[,script=no][,downscript=no]: colo-vmm
 * runs no scripts, so the tap is configured by whoever set it up. */
static bool opt_netdev(VmmOptions *o, const char *arg, GError **error)
{
    g_auto(GStrv) parts = g_strsplit(arg, ",", -1);
    g_autofree char *id = NULL, *ifname = NULL;

    if (!parts[0] || strcmp(parts[0], "tap") != 0) {
        g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-netdev: only 'tap' is supported, not '%s'",
                    parts[0] ? parts[0] : "");
        return false;
    }
    for (unsigned i = 1; parts[i]; i++) {
        const char *p = parts[i], *v;
        if ((v = kv(p, "id"))) {
            g_free(id);
            id = g_strdup(v);
        } else if ((v = kv(p, "ifname"))) {
            g_free(ifname);
            ifname = g_strdup(v);
        } else if ((v = kv(p, "script")) || (v = kv(p, "downscript"))) {
            if (strcmp(v, "no") != 0) {
                g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD,
                            "-netdev: colo-vmm runs no scripts; use script=no,downscript=no");
                return false;
            }
        } else if ((v = kv(p, "vhost"))) {
            bool on;
            if (!opt_on_off("-netdev", "vhost", v, &on, error)) {
                return false;
            }
            if (on) {
                g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-netdev: vhost is not supported");
                return false;
            }
        } else {
            g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-netdev: unknown parameter '%s'", p);
            return false;
        }
    }
    if (!id || !*id || !ifname || !*ifname) {
        g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-netdev tap: needs id=ID and ifname=NAME");
        return false;
    }
    if (strlen(ifname) >= 16) {
        g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-netdev: ifname '%s' is too long (15 at most)", ifname);
        return false;
    }
    for (unsigned i = 0; i < o->netdevs->len; i++) {
        if (!strcmp(((VirtioNetConfig *)o->netdevs->pdata[i])->id, id)) {
            g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-netdev: duplicate id '%s'", id);
            return false;
        }
    }
    VirtioNetConfig *c = g_new0(VirtioNetConfig, 1);
    c->id = g_steal_pointer(&id);
    c->ifname = g_steal_pointer(&ifname);
    g_ptr_array_add(o->netdevs, c);
    return true;
}

/* Parameters every -device takes: where QEMU would put it (we choose),
 * and the transport (modern only). */
static bool opt_device_common(const char *p, GError **error)
{
    const char *v;

    if (kv(p, "id") || kv(p, "bus") || kv(p, "addr")) {
        return true;
    }
    if ((v = kv(p, "disable-legacy")) || (v = kv(p, "disable-modern"))) {
        bool on, legacy = kv(p, "disable-legacy") != NULL;
        if (!opt_on_off("-device", legacy ? "disable-legacy" : "disable-modern", v, &on, error)) {
            return false;
        }
        if (on != legacy) {
            g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD,
                        "-device: only the modern virtio transport exists here (disable-legacy=on)");
            return false;
        }
        return true;
    }
    g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-device: unknown parameter '%s'", p);
    return false;
}

/* -device virtio-net-pci,netdev=ID[,mac=MAC]: the netdev may be given
 * before or after (joined when parsing ends). */
static bool opt_device_net(VmmOptions *o, char **parts, GError **error)
{
    VirtioNetConfig c = { 0 };
    bool has_mac = false;

    for (unsigned i = 1; parts[i]; i++) {
        const char *p = parts[i], *v;
        if ((v = kv(p, "netdev"))) {
            g_free(c.id);
            c.id = g_strdup(v);
        } else if ((v = kv(p, "mac"))) {
            if (!parse_mac(v, c.mac)) {
                g_free(c.id);
                g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-device: '%s' is not a unicast MAC address", v);
                return false;
            }
            has_mac = true;
        } else if (!opt_device_common(p, error)) {
            g_free(c.id);
            return false;
        }
    }
    if (!c.id) {
        g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-device virtio-net-pci: needs netdev=ID");
        return false;
    }
    if (!has_mac) {
        /* QEMU's default, one apart per NIC. */
        static const uint8_t base[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
        memcpy(c.mac, base, 6);
        c.mac[5] = (uint8_t)(c.mac[5] + o->nets->len);
    }
    g_ptr_array_add(o->nets, g_memdup2(&c, sizeof(c)));
    return true;
}

/* -device virtio-blk-pci,drive=ID: a -drive if=none,id=ID as a disk. */
static bool opt_device_blk(VmmOptions *o, char **parts, GError **error)
{
    const char *drive = NULL;

    for (unsigned i = 1; parts[i]; i++) {
        const char *p = parts[i], *v;
        if ((v = kv(p, "drive"))) {
            drive = v;
        } else if (!opt_device_common(p, error)) {
            return false;
        }
    }
    if (!drive || !*drive) {
        g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-device virtio-blk-pci: needs drive=ID");
        return false;
    }
    g_ptr_array_add(o->blk_refs, g_strdup(drive));
    return true;
}

static bool opt_device(VmmOptions *o, const char *arg, GError **error)
{
    g_auto(GStrv) parts = g_strsplit(arg, ",", -1);

    if (parts[0] && !strcmp(parts[0], "virtio-net-pci")) {
        return opt_device_net(o, parts, error);
    }
    if (parts[0] && !strcmp(parts[0], "virtio-blk-pci")) {
        return opt_device_blk(o, parts, error);
    }
    if (parts[0] && !strcmp(parts[0], "pc-dimm")) {
        g_ptr_array_add(o->dimms, g_strdup(arg));
        return true;
    }
    g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD,
                "-device: only virtio-net-pci, virtio-blk-pci and pc-dimm are supported, not '%s'",
                parts[0] ? parts[0] : "");
    return false;
}

/* -drive file=PATH,if=virtio,format=raw[,readonly=on][,id=...][,cache=...] */
static bool opt_drive(VmmOptions *o, const char *arg, GError **error)
{
    g_auto(GStrv) parts = g_strsplit(arg, ",", -1);
    g_autofree char *file = NULL, *id = NULL;
    bool readonly = false, attached = true;

    for (unsigned i = 0; parts[i]; i++) {
        const char *p = parts[i], *v;
        if ((v = kv(p, "file"))) {
            g_free(file);
            file = g_strdup(v);
        } else if ((v = kv(p, "id"))) {
            g_free(id);
            id = g_strdup(v);
        } else if ((v = kv(p, "if"))) {
            if (strcmp(v, "virtio") != 0 && strcmp(v, "none") != 0) {
                g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD,
                            "-drive: only if=virtio (or if=none with -device virtio-blk-pci) is supported, not '%s'", v);
                return false;
            }
            attached = strcmp(v, "none") != 0;
        } else if ((v = kv(p, "format"))) {
            if (strcmp(v, "raw") != 0) {
                g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-drive: only format=raw is supported, not '%s'", v);
                return false;
            }
        } else if ((v = kv(p, "readonly"))) {
            if (!opt_on_off("-drive", "readonly", v, &readonly, error)) {
                return false;
            }
        } else if ((v = kv(p, "cache"))) {
            /* Always write-back with flush honoured; other modes would promise more or less. */
            if (strcmp(v, "writeback") != 0) {
                g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-drive: only cache=writeback is supported");
                return false;
            }
        } else if (!kv(p, "media")) {
            g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-drive: unknown parameter '%s'", p);
            return false;
        }
    }
    if (!file || !*file) {
        g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-drive: needs file=PATH");
        return false;
    }
    if (!attached && (!id || !*id)) {
        g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-drive if=none: needs id=ID for -device virtio-blk-pci");
        return false;
    }
    VirtioBlkConfig *c = g_new0(VirtioBlkConfig, 1);
    c->file = g_steal_pointer(&file);
    c->readonly = readonly;
    c->id = g_steal_pointer(&id);
    g_ptr_array_add(attached ? o->drives : o->blockdevs, c);
    return true;
}

/* Each -device virtio-blk-pci takes one -drive if=none, after the
 * if=virtio disks. */
static bool vmm_options_join_drives(VmmOptions *o, GError **error)
{
    for (unsigned i = 0; i < o->blk_refs->len; i++) {
        const char *ref = o->blk_refs->pdata[i];
        VirtioBlkConfig *d = NULL;
        for (unsigned j = 0; j < o->blockdevs->len && !d; j++) {
            VirtioBlkConfig *b = o->blockdevs->pdata[j];
            if (b && !strcmp(b->id, ref)) {
                d = b;
                o->blockdevs->pdata[j] = NULL;  /* moved; a second user finds nothing */
            }
        }
        if (!d) {
            g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD,
                        "-device virtio-blk-pci: no unused -drive if=none with id '%s'", ref);
            return false;
        }
        g_ptr_array_add(o->drives, d);
    }
    return true;
}

/* Each NIC names a tap given with -netdev, and no tap serves two NICs. */
static bool vmm_options_join_nets(VmmOptions *o, GError **error)
{
    g_autoptr(GHashTable) used = g_hash_table_new(g_str_hash, g_str_equal);

    for (unsigned i = 0; i < o->nets->len; i++) {
        VirtioNetConfig *nic = o->nets->pdata[i];
        const VirtioNetConfig *tap = NULL;
        for (unsigned j = 0; j < o->netdevs->len && !tap; j++) {
            if (!strcmp(((VirtioNetConfig *)o->netdevs->pdata[j])->id, nic->id)) {
                tap = o->netdevs->pdata[j];
            }
        }
        if (!tap) {
            g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-device: no -netdev with id '%s'", nic->id);
            return false;
        }
        if (!g_hash_table_add(used, tap->id)) {
            g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-device: netdev '%s' is used twice", nic->id);
            return false;
        }
        nic->ifname = g_strdup(tap->ifname);
    }
    return true;
}

static const VmmOption vmm_options[] = {
    { "m", true, opt_memory, "-m SIZE[,slots=N,maxmem=SIZE]  guest RAM (64M, 1G; a plain number is MiB); slots and maxmem allow RAM hot-add" },
    { "object", true, opt_object, "-object memory-backend-ram|memfd|file,id=ID,size=SIZE[,mem-path=PATH]  memory for a pc-dimm\n"
      "  -object tls-creds-x509,id=ID,dir=DIR,endpoint=server|client[,verify-peer=on|off][,priority=P]\n"
      "                   TLS certificates for migration (migration parameter tls-creds=ID)" },
    { "smp", true, opt_smp, "-smp N           number of vCPUs (1-64)" },
    { "kernel", true, opt_kernel, "-kernel FILE     PVH ELF kernel or Linux bzImage" },
    { "initrd", true, opt_initrd, "-initrd FILE     initial ram disk (Linux)" },
    { "append", true, opt_append, "-append CMDLINE  kernel command line" },
    { "mem-path", true, opt_mem_path, "-mem-path PATH   back guest RAM with a file (or a file in this directory, e.g. hugetlbfs)" },
    { "mem-share", false, opt_mem_share, "-mem-share       back guest RAM with a memfd (shared memory) instead of anonymous memory" },
    { "S", false, opt_paused, "-S               do not start the vCPUs (QMP 'cont' starts them)" },
    { "name", true, opt_name, "-name NAME       name of the guest, for logs" },
    { "serial", true, opt_serial, "-serial DEV      COM1: stdio | file:PATH | unix:PATH,server=on,wait=off | none" },
    { "qmp", true, opt_qmp, "-qmp unix:PATH,server=on,wait=off[,group=GROUP]  QMP control socket (0600; 0660 for GROUP)" },
    { "incoming", true, opt_incoming, "-incoming URI     wait for a migration on tcp:HOST:PORT or unix:PATH (or 'defer')" },
    { "global", true, opt_global, "-global migration.x-allowed-peer=ADDR  accept an incoming migration only from ADDR\n"
      "  -global migration.tls-creds=ID | migration.tls-hostname=NAME  the migration parameters" },
    { "colo-proxy", true, opt_colo_proxy, "-colo-proxy PATH the local colo-proxy's control socket, used while in COLO" },
    { "daemonize", false, opt_daemonize, "-daemonize       run in the background once started" },
    { "pidfile", true, opt_pidfile, "-pidfile FILE    write the process id to FILE" },
    { "D", true, opt_logfile, "-D FILE          also log to FILE" },
    { "debug", false, opt_debug, "-debug           log at debug level" },
    { "enable-kvm", false, opt_nothing, "-enable-kvm      accepted for QEMU compatibility (always on)" },
    { "accel", true, opt_accel, "-accel kvm       accepted for QEMU compatibility" },
    { "cpu", true, opt_cpu, "-cpu host        accepted for QEMU compatibility" },
    { "nographic", false, opt_nothing, "-nographic       accepted for QEMU compatibility (there is no display)" },
    { "netdev", true, opt_netdev, "-netdev tap,id=ID,ifname=NAME,script=no,downscript=no  a tap (created if missing)" },
    { "device", true, opt_device, "-device virtio-net-pci,netdev=ID[,mac=MAC] | virtio-blk-pci,drive=ID | pc-dimm,id=ID,memdev=ID[,slot=N][,addr=A]" },
    { "drive", true, opt_drive, "-drive file=PATH,if=virtio|none,format=raw[,readonly=on][,id=ID]  a virtio disk" },
    { "version", false, opt_version, "-version         print the version and exit" },
    { "help", false, opt_help, "-h, -help        this help" },
    { "h", false, opt_help, NULL },
};

const char *vmm_options_usage(void)
{
    static char *usage;

    if (!usage) {
        GString *s = g_string_new("usage: colo-vmm -kernel FILE [options]\n\n");
        for (unsigned i = 0; i < G_N_ELEMENTS(vmm_options); i++) {
            if (vmm_options[i].help) {
                g_string_append_printf(s, "  %s\n", vmm_options[i].help);
            }
        }
        usage = g_string_free(s, FALSE);
    }
    return usage;
}

bool vmm_options_parse(VmmOptions *opts, int argc, char **argv, GError **error)
{
    memset(opts, 0, sizeof(*opts));
    opts->ram_size = 128ULL << 20;      /* QEMU's default */
    opts->ncpus = 1;
    opts->netdevs = g_ptr_array_new_with_free_func(net_config_free);
    opts->nets = g_ptr_array_new_with_free_func(net_config_free);
    opts->drives = g_ptr_array_new_with_free_func(blk_config_free);
    opts->blockdevs = g_ptr_array_new_with_free_func(blk_config_free);
    opts->blk_refs = g_ptr_array_new_with_free_func(g_free);
    opts->mem_objects = g_ptr_array_new_with_free_func(g_free);
    opts->dimms = g_ptr_array_new_with_free_func(g_free);

    for (int i = 1; i < argc; i++) {
        const char *word = argv[i];
        if (word[0] != '-' || word[1] == '\0') {
            g_set_error(error, CMDLINE_ERROR, G_OPTION_ERROR_UNKNOWN_OPTION,
                        "unexpected argument '%s' (options start with '-')", word);
            return false;
        }
        const char *name = word + (word[1] == '-' ? 2 : 1);   /* --opt works as -opt */
        const VmmOption *opt = NULL;
        for (unsigned j = 0; j < G_N_ELEMENTS(vmm_options); j++) {
            if (!strcmp(vmm_options[j].name, name)) {
                opt = &vmm_options[j];
                break;
            }
        }
        if (!opt) {
            g_set_error(error, CMDLINE_ERROR, G_OPTION_ERROR_UNKNOWN_OPTION,
                        "%s: invalid option", word);
            return false;
        }
        const char *arg = NULL;
        if (opt->has_arg) {
            if (i + 1 >= argc) {
                g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "%s: requires an argument", word);
                return false;
            }
            arg = argv[++i];
        }
        if (!opt->fn(opts, arg, error)) {
            return false;
        }
    }
    if (opts->help || opts->version) {
        return true;
    }
    if (!opts->kernel) {
        g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "no -kernel given (see -help)");
        return false;
    }
    if (!vmm_options_join_nets(opts, error) || !vmm_options_join_drives(opts, error)) {
        return false;
    }
    if (opts->daemonize && opts->serial && !strcmp(opts->serial, "stdio")) {
        g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD, "-serial stdio cannot be used with -daemonize");
        return false;
    }
    return true;
}

void vmm_options_clear(VmmOptions *opts)
{
    g_free(opts->kernel);
    g_free(opts->initrd);
    g_free(opts->append);
    g_free(opts->mem_path);
    g_free(opts->name);
    g_free(opts->serial);
    g_free(opts->qmp);
    g_free(opts->qmp_group);
    g_free(opts->incoming);
    g_free(opts->allowed_peer);
    g_free(opts->tls_creds);
    g_free(opts->tls_hostname);
    g_free(opts->colo_proxy);
    g_free(opts->pidfile);
    g_free(opts->logfile);
    if (opts->netdevs) {
        g_ptr_array_free(opts->netdevs, TRUE);
        g_ptr_array_free(opts->nets, TRUE);
        g_ptr_array_free(opts->drives, TRUE);
        g_ptr_array_free(opts->blockdevs, TRUE);
        g_ptr_array_free(opts->blk_refs, TRUE);
        g_ptr_array_free(opts->mem_objects, TRUE);
        g_ptr_array_free(opts->dimms, TRUE);
    }
    memset(opts, 0, sizeof(*opts));
}

bool vmm_parse_qmp_spec(const char *spec, char **path, char **group, GError **error)
{
    const char *grp = NULL;

    if (!g_str_has_prefix(spec, "unix:")) {
        g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD,
                    "'%s': only unix:PATH,server=on,wait=off is supported", spec);
        return false;
    }
    g_auto(GStrv) parts = g_strsplit(spec + 5, ",", -1);
    bool server = false;
    for (unsigned i = 1; parts[0] && parts[i]; i++) {
        const char *p = parts[i];
        if (!strcmp(p, "server") || !strcmp(p, "server=on")) {
            server = true;
        } else if (!strcmp(p, "nowait") || !strcmp(p, "wait=off")) {
            continue;
        } else if (g_str_has_prefix(p, "group=") && p[6]) {
            /* colo-vmm's own: QEMU has no way to open its QMP socket to a group. */
            grp = p + 6;
        } else {
            g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD,
                        "'%s': unsupported parameter '%s' (use server=on,wait=off[,group=GROUP])", spec, p);
            return false;
        }
    }
    if (!server || !parts[0] || !parts[0][0]) {
        g_set_error(error, CMDLINE_ERROR, CMDLINE_BAD,
                    "'%s': needs a path and server=on (unix:PATH,server=on,wait=off)", spec);
        return false;
    }
    *path = g_strdup(parts[0]);
    *group = g_strdup(grp);
    return true;
}
