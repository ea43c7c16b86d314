/* Linux bzImage loading, checked field by field against the x86 boot
 * protocol (Documentation/arch/x86/boot.rst) on synthetic images. */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include "boot-images.h"
#include "boot/boot.h"

#define ZERO_PAGE 0x7000

typedef struct Fixture {
    GuestMemory *mem;
    GBytes *initrd;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    f->mem = test_mem_new(64);
    uint8_t *rd = g_malloc(300000);
    for (size_t i = 0; i < 300000; i++) {
        rd[i] = (uint8_t)(i ^ (i >> 8));
    }
    f->initrd = g_bytes_new_take(rd, 300000);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    guest_memory_free(f->mem);
    g_bytes_unref(f->initrd);
}

static bool load(Fixture *f, const TestBzOpts *o, const char *cmdline, bool initrd,
                 BootEntry *entry, GError **error)
{
    g_autoptr(GBytes) k = test_bz_build(o);
    gsize klen, rlen;
    const uint8_t *kp = g_bytes_get_data(k, &klen);
    const uint8_t *rp = g_bytes_get_data(f->initrd, &rlen);
    BootImages img = {
        .kernel = kp, .kernel_size = klen,
        .initrd = initrd ? rp : NULL, .initrd_size = initrd ? rlen : 0,
        .cmdline = cmdline, .ncpus = 2,
    };
    return boot_load_images(f->mem, &img, entry, error);
}

static uint8_t *zp(Fixture *f)
{
    uint8_t *p = guest_memory_ptr(f->mem, ZERO_PAGE, 4096);
    g_assert_nonnull(p);
    return p;
}

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return GUINT16_FROM_LE(v); }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return GUINT32_FROM_LE(v); }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return GUINT64_FROM_LE(v); }

static void test_load_full(Fixture *f, gconstpointer data)
{
    TestBzOpts o = test_bz_defaults();
    const char *cmdline = "console=ttyS0 root=/dev/vda rw";
    BootEntry e;
    GError *error = NULL;

    g_assert_true(load(f, &o, cmdline, true, &e, &error));
    g_assert_no_error(error);

    /* The protected-mode kernel at pref_address, entered at +0x200. */
    g_assert_cmpint(e.mode, ==, BOOT_MODE_LINUX64);
    g_assert_cmphex(e.kernel_start, ==, 0x1000000);
    g_assert_cmphex(e.entry, ==, 0x1000200);
    g_assert_cmphex(e.params, ==, ZERO_PAGE);
    g_assert_cmphex(e.kernel_end, ==, 0x1000000 + o.init_size);
    g_assert_cmphex(e.page_tables, !=, 0);
    const uint8_t *k = guest_memory_ptr(f->mem, 0x1000000, o.payload_size);
    for (size_t i = 0; i < o.payload_size; i++) {
        if (k[i] != test_payload_byte(i)) {
            g_error("kernel byte %zu differs", i);
        }
    }

    /* The setup header copied as is, where the loader has nothing to say. */
    const uint8_t *z = zp(f);
    g_autoptr(GBytes) file = test_bz_build(&o);
    const uint8_t *fb = g_bytes_get_data(file, NULL);
    g_assert_cmpmem(z + 0x1f1, 0x210 - 0x1f1, fb + 0x1f1, 0x210 - 0x1f1);   /* up to type_of_loader */
    g_assert_cmpmem(z + 0x22c, 0x26c - 0x22c, fb + 0x22c, 0x26c - 0x22c);   /* initrd_addr_max.. */
    g_assert_cmpmem(z + 0x202, 4, "HdrS", 4);
    g_assert_cmphex(rd16(z + 0x206), ==, 0x020f);
    g_assert_cmphex(rd16(z + 0x1fe), ==, 0xaa55);
    g_assert_cmphex(z[0x211], ==, 0x01);

    /* The loader's fields. */
    g_assert_cmphex(z[0x210], ==, 0xff);                       /* type_of_loader */
    g_assert_cmphex(rd32(z + 0x214), ==, 0x1000000);           /* code32_start */
    uint32_t cmd = rd32(z + 0x228);
    g_assert_cmphex(cmd, !=, 0);
    g_assert_cmpstr(guest_memory_ptr(f->mem, cmd, strlen(cmdline) + 1), ==, cmdline);
    g_assert_cmphex(rd32(z + 0xc8), ==, 0);                    /* ext_cmd_line_ptr */
    g_assert_cmpmem(guest_memory_ptr(f->mem, rd64(z + 0x70), 8), 8, "RSD PTR ", 8);   /* acpi_rsdp_addr */

    uint32_t rd = rd32(z + 0x218), rdsize = rd32(z + 0x21c);
    gsize rlen;
    const uint8_t *rdata = g_bytes_get_data(f->initrd, &rlen);
    g_assert_cmpuint(rdsize, ==, rlen);
    g_assert_cmphex(rd % 4096, ==, 0);
    g_assert_cmphex(rd, >=, e.kernel_end);                      /* no overlap with the kernel */
    g_assert_cmphex((uint64_t)rd + rdsize, <=, 64 << 20);
    g_assert_cmphex((uint64_t)rd + rdsize, >, (64 << 20) - 8192);   /* as high as possible */
    g_assert_cmpmem(guest_memory_ptr(f->mem, rd, rdsize), rdsize, rdata, rlen);

    /* e820: 4 entries for 64 MiB, at 0x2d0, count at 0x1e8. */
    static const struct { uint64_t addr, size; uint32_t type; } want[] = {
        { 0, 0x9fc00, 1 }, { 0x9fc00, 0x400, 2 }, { 0xf0000, 0x10000, 2 },
        { 0x100000, (64 << 20) - 0x100000, 1 },
    };
    g_assert_cmpuint(z[0x1e8], ==, G_N_ELEMENTS(want));
    for (unsigned i = 0; i < G_N_ELEMENTS(want); i++) {
        const uint8_t *ent = z + 0x2d0 + 20 * i;
        g_assert_cmphex(rd64(ent), ==, want[i].addr);
        g_assert_cmphex(rd64(ent + 8), ==, want[i].size);
        g_assert_cmpuint(rd32(ent + 16), ==, want[i].type);
    }
    g_assert_cmphex(rd64(z + 0x2d0 + 20 * 4), ==, 0);

    /* The setup code itself was not copied anywhere near the kernel. */
    g_assert_cmphex(k[0], ==, test_payload_byte(0));
}

static void test_load_at_1m(Fixture *f, gconstpointer data)
{
    TestBzOpts o = test_bz_defaults();
    BootEntry e;
    GError *error = NULL;

    o.pref_address = 0;
    g_assert_true(load(f, &o, NULL, false, &e, &error));
    g_assert_no_error(error);
    g_assert_cmphex(e.kernel_start, ==, 0x100000);
    g_assert_cmphex(e.entry, ==, 0x100200);
    const uint8_t *z = zp(f);
    g_assert_cmphex(rd32(z + 0x218), ==, 0);                   /* no initrd */
    g_assert_cmphex(rd32(z + 0x21c), ==, 0);
    g_assert_cmpstr(guest_memory_ptr(f->mem, rd32(z + 0x228), 1), ==, "");
}

static void test_initrd_addr_max(Fixture *f, gconstpointer data)
{
    TestBzOpts o = test_bz_defaults();
    BootEntry e;
    GError *error = NULL;

    o.initrd_addr_max = 0x1ffffff;     /* last byte the initrd may use: 32 MiB - 1 */
    g_assert_true(load(f, &o, NULL, true, &e, &error));
    g_assert_no_error(error);
    const uint8_t *z = zp(f);
    uint64_t end = (uint64_t)rd32(z + 0x218) + rd32(z + 0x21c);
    g_assert_cmphex(end, <=, 0x2000000);
    g_assert_cmphex(end, >, 0x2000000 - 4096);
}

typedef struct Reject {
    const char *name;
    void (*tweak)(TestBzOpts *o);
    int code;
    const char *text;   /* part of the message a user would read */
} Reject;

static void no_magic(TestBzOpts *o) { o->magic = false; }
static void v205(TestBzOpts *o) { o->version = 0x0205; }
static void v20b(TestBzOpts *o) { o->version = 0x020b; }
static void no_xlf64(TestBzOpts *o) { o->xloadflags = 0x02; }
static void no_loaded_high(TestBzOpts *o) { o->loadflags = 0; }
static void bad_flag(TestBzOpts *o) { o->boot_flag = 0x1234; }
static void big_init(TestBzOpts *o) { o->init_size = 60 << 20; }
static void pref_high(TestBzOpts *o) { o->pref_address = 1ULL << 40; }
static void pref_low(TestBzOpts *o) { o->pref_address = 0x8000; }
static void bad_align(TestBzOpts *o) { o->kernel_alignment = 0x3000; }
static void short_cmdline(TestBzOpts *o) { o->cmdline_size = 5; }
static void low_initrd_max(TestBzOpts *o) { o->initrd_addr_max = 0x1100000; }
static void no_payload(TestBzOpts *o) { o->payload_size = 0; }

static const Reject rejects[] = {
    { "no-hdrs", no_magic, BOOT_ERROR_FORMAT, "unknown kernel format" },
    { "version-2.05", v205, BOOT_ERROR_VERSION, "2.05 is too old" },
    { "version-2.11", v20b, BOOT_ERROR_VERSION, "no 64-bit entry" },
    { "no-xlf-kernel-64", no_xlf64, BOOT_ERROR_VERSION, "XLF_KERNEL_64" },
    { "zimage", no_loaded_high, BOOT_ERROR_INVALID, "LOADED_HIGH" },
    { "boot-flag", bad_flag, BOOT_ERROR_INVALID, "boot_flag" },
    { "kernel-too-big", big_init, BOOT_ERROR_NO_ROOM, "init_size" },
    { "pref-beyond-ram", pref_high, BOOT_ERROR_NO_ROOM, "RAM below 4 GiB" },
    { "pref-below-1m", pref_low, BOOT_ERROR_INVALID, "pref_address" },
    { "kernel-alignment", bad_align, BOOT_ERROR_INVALID, "kernel_alignment" },
    { "cmdline-too-long", short_cmdline, BOOT_ERROR_NO_ROOM, "command line" },
    { "initrd-addr-max", low_initrd_max, BOOT_ERROR_NO_ROOM, "initrd" },
    { "no-payload", no_payload, BOOT_ERROR_INVALID, "truncated" },
};

static void test_reject(Fixture *f, gconstpointer data)
{
    const Reject *r = data;
    TestBzOpts o = test_bz_defaults();
    BootEntry e, before;
    GError *error = NULL;

    r->tweak(&o);
    memset(&e, 0x5a, sizeof(e));
    before = e;
    g_assert_false(load(f, &o, "console=ttyS0", true, &e, &error));
    g_assert_error(error, BOOT_ERROR, r->code);
    g_test_message("%s: %s", r->name, error->message);
    g_assert_nonnull(strstr(error->message, r->text));
    g_assert_cmpmem(&e, sizeof(e), &before, sizeof(before));   /* entry untouched */
    g_error_free(error);
}

static void test_initrd_too_big(Fixture *f, gconstpointer data)
{
    TestBzOpts o = test_bz_defaults();
    g_autoptr(GBytes) k = test_bz_build(&o);
    gsize klen;
    const uint8_t *kp = g_bytes_get_data(k, &klen);
    size_t rlen = 48 << 20;    /* kernel claims 16..20 MiB of 64 */
    g_autofree uint8_t *rd = g_malloc0(rlen);
    BootImages img = { .kernel = kp, .kernel_size = klen, .initrd = rd, .initrd_size = rlen, .ncpus = 1 };
    BootEntry e;
    GError *error = NULL;

    g_assert_false(boot_load_images(f->mem, &img, &e, &error));
    g_assert_error(error, BOOT_ERROR, BOOT_ERROR_NO_ROOM);
    g_assert_nonnull(strstr(error->message, "initrd"));
    g_clear_error(&error);

    img.initrd_size = 40 << 20;    /* fits above 20 MiB */
    g_assert_true(boot_load_images(f->mem, &img, &e, &error));
    g_assert_no_error(error);
}

/* Every prefix of a valid image is either rejected cleanly or (once the
 * payload starts) loaded; never a crash or a read past the end. */
static void test_truncated(Fixture *f, gconstpointer data)
{
    TestBzOpts o = test_bz_defaults();
    o.payload_size = 4096;
    g_autoptr(GBytes) k = test_bz_build(&o);
    gsize klen;
    const uint8_t *kp = g_bytes_get_data(k, &klen);
    size_t setup = 5 * 512;

    for (size_t len = 0; len < klen; len += (len < setup + 16 ? 1 : 509)) {
        g_autofree uint8_t *copy = len ? g_malloc(len) : NULL;   /* exact size: ASan sees overreads */
        if (len) {
            memcpy(copy, kp, len);
        }
        BootImages img = { .kernel = copy, .kernel_size = len, .ncpus = 1 };
        BootEntry e;
        GError *error = NULL;
        bool ok = boot_load_images(f->mem, &img, &e, &error);
        if (len <= setup) {
            g_assert_false(ok);
            g_assert_error(error, BOOT_ERROR, (len < 0x206 ? BOOT_ERROR_FORMAT : BOOT_ERROR_INVALID));
            g_clear_error(&error);
        } else {
            g_assert_no_error(error);
            g_assert_true(ok);
        }
    }
}

static void test_files(Fixture *f, gconstpointer data)
{
    TestBzOpts o = test_bz_defaults();
    g_autoptr(GBytes) k = test_bz_build(&o);
    gsize klen, rlen;
    const uint8_t *kp = g_bytes_get_data(k, &klen);
    const uint8_t *rp = g_bytes_get_data(f->initrd, &rlen);
    g_autofree char *kpath = test_tmpfile(kp, klen);
    g_autofree char *rpath = test_tmpfile(rp, rlen);
    BootConfig cfg = { .kernel = kpath, .initrd = rpath, .cmdline = "quiet", .ncpus = 1 };
    BootEntry e;
    GError *error = NULL;

    g_assert_true(boot_load(f->mem, &cfg, &e, &error));
    g_assert_no_error(error);
    g_assert_cmphex(e.entry, ==, 0x1000200);
    g_assert_cmpuint(rd32(zp(f) + 0x21c), ==, rlen);

    cfg.initrd = "/nonexistent/initrd.img";
    g_assert_false(boot_load(f->mem, &cfg, &e, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_assert_nonnull(strstr(error->message, "initrd"));
    g_assert_nonnull(strstr(error->message, "/nonexistent/initrd.img"));
    g_clear_error(&error);

    cfg.kernel = "/nonexistent/vmlinuz";
    g_assert_false(boot_load(f->mem, &cfg, &e, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_assert_nonnull(strstr(error->message, "kernel"));
    g_clear_error(&error);

    /* A file that is neither format: the error names the file. */
    cfg.kernel = rpath;
    cfg.initrd = NULL;
    g_assert_false(boot_load(f->mem, &cfg, &e, &error));
    g_assert_error(error, BOOT_ERROR, BOOT_ERROR_FORMAT);
    g_assert_nonnull(strstr(error->message, rpath));
    g_clear_error(&error);

    unlink(kpath);
    unlink(rpath);
}

/* Endless or oversized files are refused before they are read: a pipe
 * (the kind of file /dev/zero's endless reads stand for, without filling
 * memory if the check is missing) and sparse files bigger than the
 * guest's RAM, as kernel and as initrd. */
/* @bad is refused as kernel and as initrd (with the good kernel @kpath). */
static void assert_file_refused(Fixture *f, const char *kpath, const char *bad, int code,
                                const char *text)
{
    for (int as_initrd = 0; as_initrd < 2; as_initrd++) {
        BootConfig cfg = { .kernel = as_initrd ? kpath : bad, .initrd = as_initrd ? bad : NULL,
                           .ncpus = 1 };
        BootEntry e;
        GError *error = NULL;

        g_assert_false(boot_load(f->mem, &cfg, &e, &error));
        g_assert_error(error, BOOT_ERROR, code);
        g_assert_nonnull(strstr(error->message, as_initrd ? "the initrd" : "the kernel"));
        g_assert_nonnull(strstr(error->message, text));
        g_clear_error(&error);
    }
}

static void test_file_size_checks(Fixture *f, gconstpointer data)
{
    TestBzOpts o = test_bz_defaults();
    g_autoptr(GBytes) k = test_bz_build(&o);
    gsize klen;
    const uint8_t *kp = g_bytes_get_data(k, &klen);
    g_autofree char *kpath = test_tmpfile(kp, klen);
    g_autofree char *big = test_tmpfile(kp, klen);
    BootConfig cfg = { .kernel = kpath, .ncpus = 1 };
    BootEntry e;
    GError *error = NULL;
    int fds[2];
    char chunk[4096] = { 0 };

    g_assert_cmpint(pipe(fds), ==, 0);
    g_assert_cmpint(write(fds[1], chunk, sizeof(chunk)), ==, sizeof(chunk));
    close(fds[1]);
    g_autofree char *fifo = g_strdup_printf("/proc/self/fd/%d", fds[0]);
    assert_file_refused(f, kpath, fifo, BOOT_ERROR_INVALID, "not a regular file");
    close(fds[0]);

    /* One byte more than the guest's 64 MiB. */
    g_assert_cmpint(truncate(big, (64 << 20) + 1), ==, 0);
    assert_file_refused(f, kpath, big, BOOT_ERROR_NO_ROOM, "larger than the guest's RAM");
    /* Exactly the RAM's size is not refused for its size (it does not fit
     * with the kernel, which the loader reports as usual). */
    g_assert_cmpint(truncate(big, 64 << 20), ==, 0);
    cfg.kernel = kpath;
    cfg.initrd = big;
    g_assert_false(boot_load(f->mem, &cfg, &e, &error));
    g_assert_error(error, BOOT_ERROR, BOOT_ERROR_NO_ROOM);
    g_assert_null(strstr(error->message, "larger than the guest's RAM"));
    g_clear_error(&error);

    unlink(kpath);
    unlink(big);
}

/* A distribution kernel: $COLO_TEST_BZIMAGE, else /boot/vmlinuz-* if the
 * machine has one. */
static void test_host_kernel(Fixture *f, gconstpointer data)
{
    g_autoptr(GDir) dir = g_dir_open("/boot", 0, NULL);
    const char *name;
    g_autofree char *path = g_strdup(g_getenv("COLO_TEST_BZIMAGE"));

    while (!path && dir && (name = g_dir_read_name(dir))) {
        if (g_str_has_prefix(name, "vmlinuz-")) {
            path = g_build_filename("/boot", name, NULL);
            break;
        }
    }
    if (!path || access(path, R_OK) != 0) {
        g_test_skip("no host kernel: no readable /boot/vmlinuz-* on this machine (or set COLO_TEST_BZIMAGE)");
        return;
    }
    guest_memory_free(f->mem);
    f->mem = test_mem_new(512);
    BootConfig cfg = { .kernel = path, .cmdline = "console=ttyS0", .ncpus = 1 };
    BootEntry e;
    GError *error = NULL;
    g_assert_true(boot_load(f->mem, &cfg, &e, &error));
    g_assert_no_error(error);
    const uint8_t *z = zp(f);
    g_assert_cmpmem(z + 0x202, 4, "HdrS", 4);
    g_assert_cmphex(z[0x210], ==, 0xff);
    g_assert_cmphex(rd16(z + 0x236) & 1, ==, 1);
    g_assert_cmphex(e.entry, ==, rd64(z + 0x258) + 0x200);
    g_assert_cmphex(e.kernel_end, >=, e.kernel_start + rd32(z + 0x260));
    g_assert_cmpuint(z[0x1e8], ==, 4);
    g_assert_cmpstr(guest_memory_ptr(f->mem, rd32(z + 0x228), 14), ==, "console=ttyS0");
    g_test_message("%s: protocol %u.%02u, entry 0x%" G_GINT64_MODIFIER "x, init_size 0x%x", path,
                   z[0x207], z[0x206], e.entry, rd32(z + 0x260));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/boot/bzimage/load", Fixture, NULL, fixture_setup, test_load_full, fixture_teardown);
    g_test_add("/boot/bzimage/load-at-1m", Fixture, NULL, fixture_setup, test_load_at_1m,
               fixture_teardown);
    g_test_add("/boot/bzimage/initrd-addr-max", Fixture, NULL, fixture_setup, test_initrd_addr_max,
               fixture_teardown);
    for (unsigned i = 0; i < G_N_ELEMENTS(rejects); i++) {
        g_autofree char *path = g_strdup_printf("/boot/bzimage/reject/%s", rejects[i].name);
        g_test_add(path, Fixture, &rejects[i], fixture_setup, test_reject, fixture_teardown);
    }
    g_test_add("/boot/bzimage/reject/initrd-too-big", Fixture, NULL, fixture_setup,
               test_initrd_too_big, fixture_teardown);
    g_test_add("/boot/bzimage/truncated", Fixture, NULL, fixture_setup, test_truncated,
               fixture_teardown);
    g_test_add("/boot/bzimage/files", Fixture, NULL, fixture_setup, test_files, fixture_teardown);
    g_test_add("/boot/bzimage/file-size-checks", Fixture, NULL, fixture_setup, test_file_size_checks,
               fixture_teardown);
    g_test_add("/boot/bzimage/host-kernel", Fixture, NULL, fixture_setup, test_host_kernel,
               fixture_teardown);
    return g_test_run();
}
