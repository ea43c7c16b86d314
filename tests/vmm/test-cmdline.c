/* colo-vmm's QEMU-style command line. */
#include "config.h"

#include <glib.h>
#include <string.h>

#include "cmdline.h"

static bool parse(VmmOptions *o, GError **error, ...)
{
    GPtrArray *argv = g_ptr_array_new();
    va_list ap;
    const char *a;

    g_ptr_array_add(argv, (char *)"colo-vmm");
    va_start(ap, error);
    while ((a = va_arg(ap, const char *))) {
        g_ptr_array_add(argv, (char *)a);
    }
    va_end(ap);
    bool ok = vmm_options_parse(o, (int)argv->len, (char **)argv->pdata, error);
    g_ptr_array_free(argv, TRUE);
    return ok;
}

static void test_full(void)
{
    VmmOptions o;
    g_autoptr(GError) error = NULL;

    g_assert_true(parse(&o, &error, "-m", "64M", "-smp", "2", "-kernel", "k", "-initrd", "i",
                        "-append", "a=b c", "-mem-path", "/dev/hugepages", "-mem-share", "-S", "-name", "guest=vm1,debug-threads=on",
                        "-serial", "file:/tmp/x", "-qmp", "unix:/tmp/q.sock,server=on,wait=off,group=kvm",
                        "-daemonize", "-pidfile", "/tmp/p", "-D", "/tmp/log", "--enable-kvm",
                        "-accel", "kvm", "-cpu", "host", "-colo-proxy", "/run/colo/proxy.sock",
                        "-global", "migration.x-allowed-peer=10.0.0.2", "-global", "migration.tls-creds=tls0",
                        "-global", "migration.tls-hostname=node1", NULL));
    g_assert_no_error(error);
    g_assert_cmpstr(o.colo_proxy, ==, "/run/colo/proxy.sock");
    g_assert_cmpuint(o.ram_size, ==, 64 << 20);
    g_assert_cmpuint(o.ncpus, ==, 2);
    g_assert_cmpstr(o.kernel, ==, "k");
    g_assert_cmpstr(o.initrd, ==, "i");
    g_assert_cmpstr(o.append, ==, "a=b c");
    g_assert_cmpstr(o.mem_path, ==, "/dev/hugepages");
    g_assert_true(o.mem_share);
    g_assert_true(o.start_paused);
    g_assert_cmpstr(o.name, ==, "vm1");
    g_assert_cmpstr(o.serial, ==, "file:/tmp/x");
    g_assert_cmpstr(o.qmp, ==, "/tmp/q.sock");
    g_assert_cmpstr(o.qmp_group, ==, "kvm");
    g_assert_cmpstr(o.allowed_peer, ==, "10.0.0.2");
    g_assert_cmpstr(o.tls_creds, ==, "tls0");
    g_assert_cmpstr(o.tls_hostname, ==, "node1");
    g_assert_true(o.daemonize);
    g_assert_cmpstr(o.pidfile, ==, "/tmp/p");
    g_assert_cmpstr(o.logfile, ==, "/tmp/log");
    vmm_options_clear(&o);
}

static void test_defaults(void)
{
    VmmOptions o;

    g_assert_true(parse(&o, NULL, "-kernel", "k", "-smp", "cpus=3,sockets=3", "-m", "size=1G", NULL));
    g_assert_cmpuint(o.ncpus, ==, 3);
    g_assert_cmpuint(o.ram_size, ==, 1ULL << 30);
    g_assert_false(o.mem_share);
    g_assert_false(o.start_paused);
    g_assert_null(o.serial);
    vmm_options_clear(&o);
    g_assert_true(parse(&o, NULL, "-kernel", "k", NULL));
    g_assert_cmpuint(o.ram_size, ==, 128 << 20);       /* QEMU's default */
    g_assert_cmpuint(o.ncpus, ==, 1);
    g_assert_cmpuint(o.mem_slots, ==, 0);
    g_assert_cmpuint(o.maxmem, ==, 0);
    vmm_options_clear(&o);
}

/* RAM hot-add: -m with slots and maxmem, -object and -device pc-dimm kept
 * in order for when the VM exists. */
static void test_memory_hotplug(void)
{
    VmmOptions o;
    g_autoptr(GError) error = NULL;

    g_assert_true(parse(&o, &error, "-kernel", "k", "-m", "size=256M,slots=4,maxmem=2G",
                        "-object", "memory-backend-ram,id=m0,size=64M",
                        "-device", "pc-dimm,id=d0,memdev=m0", NULL));
    g_assert_no_error(error);
    g_assert_cmpuint(o.ram_size, ==, 256 << 20);
    g_assert_cmpuint(o.mem_slots, ==, 4);
    g_assert_cmpuint(o.maxmem, ==, 2ULL << 30);
    g_assert_cmpuint(o.mem_objects->len, ==, 1);
    g_assert_cmpstr(o.mem_objects->pdata[0], ==, "memory-backend-ram,id=m0,size=64M");
    g_assert_cmpuint(o.dimms->len, ==, 1);
    g_assert_cmpstr(o.dimms->pdata[0], ==, "pc-dimm,id=d0,memdev=m0");
    vmm_options_clear(&o);
    g_assert_true(parse(&o, NULL, "-kernel", "k", "-m", "64M,maxmem=1G,slots=2", NULL));
    g_assert_cmpuint(o.ram_size, ==, 64 << 20);
    g_assert_cmpuint(o.mem_slots, ==, 2);
    vmm_options_clear(&o);
}

/* Every malformed command line is refused with a message naming the problem. */
static void test_bad(void)
{
    static const struct {
        const char *argv[6];
        const char *message;
    } cases[] = {
        { { "-kernel", "k", "-bogus" }, "-bogus: invalid option" },
        { { "-kernel", "k", "-m" }, "-m: requires an argument" },
        { { "-kernel", "k", "-m", "lots" }, "invalid size 'lots'" },
        { { "-kernel", "k", "-m", "1M" }, "too small" },
        { { "-kernel", "k", "-smp", "0" }, "-smp" },
        { { "-kernel", "k", "-smp", "999" }, "-smp" },
        { { "-kernel", "k", "-smp", "2x" }, "-smp" },
        { { "-kernel", "k", "-smp", "2,foo=1" }, "unknown parameter 'foo=1'" },
        { { "-m", "64M" }, "no -kernel" },
        { { "-kernel", "k", "stray" }, "unexpected argument 'stray'" },
        { { "-kernel", "k", "-qmp", "tcp:localhost:4444" }, "-qmp" },
        { { "-kernel", "k", "-qmp", "unix:/tmp/q" }, "server=on" },
        { { "-kernel", "k", "-daemonize", "-serial", "stdio" }, "-daemonize" },
        { { "-kernel", "k", "-accel", "tcg" }, "kvm" },
        { { "-kernel", "k", "-name", "" }, "empty name" },
        { { "-kernel", "k", "-smp", "" }, "-smp" },
        { { "-kernel", "k", "-qmp", "unix:" }, "needs a path" },
        { { "-kernel", "k", "-qmp", "unix:/tmp/q,server=on,group=" }, "unsupported parameter 'group='" },
        { { "-kernel", "k", "-global", "virtio-net-pci.mq=on" }, "only migration.x-allowed-peer, tls-creds, tls-hostname" },
        { { "-kernel", "k", "-m", "64M,slots=x" }, "not a slot count" },
        { { "-kernel", "k", "-m", "64M,slots=2,maxmem=big" }, "maxmem" },
        { { "-kernel", "k", "-m", "64M,nodes=2" }, "unknown parameter 'nodes=2'" },
        { { "-kernel", "k", "-incoming", "tcp:127.0.0.1:99999" },
          "-incoming: 'tcp:127.0.0.1:99999': port 99999 is out of range (1 to 65535)" },
        { { "-kernel", "k", "-incoming", "tcp:[::1]:0" }, "port 0 is out of range" },
        { { "-kernel", "k", "-incoming", "tcp:h:18446744073709551617" }, "out of range" },
        { { "-kernel", "k", "-incoming", "ftp:x" }, "-incoming: invalid migration URI" },
        { { "-kernel", "k", "-colo-proxy", "" }, "-colo-proxy: '' is no unix socket path" },
        { { "-kernel", "k", "-colo-proxy",
            "/run/colo/a-path-longer-than-a-unix-socket-address-can-hold-which-is-one-hundred-and-seven-bytes/proxy-1.sock" },
          "(1 to 107 bytes)" },
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
        VmmOptions o;
        g_autoptr(GError) error = NULL;
        const char *const *a = cases[i].argv;
        bool ok = parse(&o, &error, a[0], a[1], a[2], a[3], a[4], a[5], NULL);
        g_assert_false(ok);
        g_assert_nonnull(error);
        if (!strstr(error->message, cases[i].message)) {
            g_error("case %u: '%s' does not mention '%s'", i, error->message, cases[i].message);
        }
        vmm_options_clear(&o);
    }
}

/* -netdev/-device/-drive in QEMU's spelling, joined into device configs. */
static void test_devices(void)
{
    VmmOptions o;
    g_autoptr(GError) error = NULL;

    g_assert_true(parse(&o, &error, "-kernel", "k",
                        "-device", "virtio-net-pci,netdev=n1,mac=52:54:00:aa:bb:cc,id=nic1",
                        "-netdev", "tap,id=n1,ifname=tap-colo1,script=no,downscript=no",
                        "-netdev", "tap,id=n2,ifname=tap-colo2",
                        "-device", "virtio-net-pci,netdev=n2",
                        "-drive", "file=/tmp/disk.img,if=virtio,format=raw",
                        "-drive", "file=/tmp/ro.img,if=virtio,format=raw,readonly=on", NULL));
    g_assert_no_error(error);
    g_assert_cmpuint(o.nets->len, ==, 2);
    VirtioNetConfig *n = o.nets->pdata[0];
    g_assert_cmpstr(n->id, ==, "n1");
    g_assert_cmpstr(n->ifname, ==, "tap-colo1");
    static const uint8_t mac1[6] = { 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc };
    g_assert_cmpmem(n->mac, 6, mac1, 6);
    n = o.nets->pdata[1];
    g_assert_cmpstr(n->ifname, ==, "tap-colo2");
    static const uint8_t mac2[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x57 };   /* QEMU's default, second NIC */
    g_assert_cmpmem(n->mac, 6, mac2, 6);
    g_assert_cmpuint(o.drives->len, ==, 2);
    VirtioBlkConfig *d = o.drives->pdata[0];
    g_assert_cmpstr(d->file, ==, "/tmp/disk.img");
    g_assert_false(d->readonly);
    g_assert_true(((VirtioBlkConfig *)o.drives->pdata[1])->readonly);
    vmm_options_clear(&o);

    /* QEMU's other spelling: -drive if=none plus -device virtio-blk-pci,
     * with the transport options QEMU users pass. */
    g_assert_true(parse(&o, &error, "-kernel", "k",
                        "-device", "virtio-blk-pci,drive=d0,disable-legacy=on,id=blk0",
                        "-drive", "file=/tmp/a.img,if=none,id=d0,format=raw",
                        "-drive", "file=/tmp/b.img,if=virtio",
                        "-drive", "file=/tmp/unused.img,if=none,id=d9",
                        "-netdev", "tap,id=n0,ifname=t0",
                        "-device", "virtio-net-pci,netdev=n0,disable-legacy=on,disable-modern=off", NULL));
    g_assert_no_error(error);
    g_assert_cmpuint(o.drives->len, ==, 2);
    g_assert_cmpstr(((VirtioBlkConfig *)o.drives->pdata[0])->file, ==, "/tmp/b.img");
    g_assert_cmpstr(((VirtioBlkConfig *)o.drives->pdata[1])->file, ==, "/tmp/a.img");
    g_assert_cmpuint(o.nets->len, ==, 1);
    vmm_options_clear(&o);
}

static void test_devices_bad(void)
{
    static const struct {
        const char *argv[6];
        const char *message;
    } cases[] = {
        { { "-netdev", "user,id=n" }, "only 'tap'" },
        { { "-netdev", "tap,id=n" }, "ifname" },
        { { "-netdev", "tap,ifname=t" }, "id=ID" },
        { { "-netdev", "tap,id=n,ifname=t,script=/etc/qemu-ifup" }, "script=no" },
        { { "-netdev", "tap,id=n,ifname=t,vhost=on" }, "vhost" },
        { { "-netdev", "tap,id=n,ifname=t,queues=4" }, "unknown parameter 'queues=4'" },
        { { "-netdev", "tap,id=n,ifname=much-too-long-name0" }, "too long" },
        { { "-netdev", "tap,id=n,ifname=t", "-netdev", "tap,id=n,ifname=u" }, "duplicate id" },
        { { "-device", "e1000,netdev=n" }, "only virtio-net-pci, virtio-blk-pci and pc-dimm" },
        { { "-device", "virtio-blk-pci" }, "drive=ID" },
        { { "-device", "virtio-blk-pci,drive=d" }, "no unused -drive if=none with id 'd'" },
        { { "-drive", "file=x,if=none,id=d", "-device", "virtio-blk-pci,drive=d", "-device", "virtio-blk-pci,drive=d" }, "no unused" },
        { { "-drive", "file=x,if=none" }, "needs id=ID" },
        { { "-drive", "file=x,if=none,id=d", "-device", "virtio-blk-pci,drive=d,disable-legacy=off" }, "modern" },
        { { "-drive", "file=x,if=none,id=d", "-device", "virtio-blk-pci,drive=d,serial=1" }, "unknown parameter 'serial=1'" },
        { { "-device", "virtio-net-pci" }, "netdev=ID" },
        { { "-device", "virtio-net-pci,netdev=n" }, "no -netdev with id 'n'" },
        { { "-netdev", "tap,id=n,ifname=t", "-device", "virtio-net-pci,netdev=n,mac=01:00:5e:00:00:01" }, "unicast" },
        { { "-netdev", "tap,id=n,ifname=t", "-device", "virtio-net-pci,netdev=n,mac=52:54" }, "MAC" },
        { { "-netdev", "tap,id=n,ifname=t", "-device", "virtio-net-pci,netdev=n", "-device", "virtio-net-pci,netdev=n" }, "used twice" },
        { { "-drive", "if=virtio,format=raw" }, "file=PATH" },
        { { "-drive", "file=d,if=ide" }, "if=virtio" },
        { { "-drive", "file=d,format=qcow2" }, "format=raw" },
        { { "-drive", "file=d,readonly=maybe" }, "on or off" },
        { { "-drive", "file=d,cache=unsafe" }, "cache=writeback" },
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
        VmmOptions o;
        g_autoptr(GError) error = NULL;
        const char *const *a = cases[i].argv;
        bool ok = parse(&o, &error, "-kernel", "k", a[0], a[1], a[2], a[3], a[4], a[5], NULL);
        g_assert_false(ok);
        g_assert_nonnull(error);
        if (!strstr(error->message, cases[i].message)) {
            g_error("case %u: '%s' does not mention '%s'", i, error->message, cases[i].message);
        }
        vmm_options_clear(&o);
    }
}

static void test_help(void)
{
    VmmOptions o;

    g_assert_true(parse(&o, NULL, "-help", NULL));
    g_assert_true(o.help);
    vmm_options_clear(&o);
    g_assert_nonnull(strstr(vmm_options_usage(), "-serial DEV"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cmdline/full", test_full);
    g_test_add_func("/cmdline/defaults", test_defaults);
    g_test_add_func("/cmdline/memory-hotplug", test_memory_hotplug);
    g_test_add_func("/cmdline/bad", test_bad);
    g_test_add_func("/cmdline/help", test_help);
    g_test_add_func("/cmdline/devices", test_devices);
    g_test_add_func("/cmdline/devices-bad", test_devices_bad);
    return g_test_run();
}
