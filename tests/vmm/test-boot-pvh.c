/* ELF kernels with the Xen PVH note: loading, hvm_start_info (version 1)
 * as xen/include/public/arch-x86/hvm/start_info.h lays it out, and the
 * rejection of bad files. */
#include "config.h"

#include <elf.h>
#include <string.h>

#include "boot-images.h"
#include "boot/boot.h"

#define START_INFO_MAGIC 0x336ec578U

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return GUINT32_FROM_LE(v); }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return GUINT64_FROM_LE(v); }

static bool load_bytes(GuestMemory *mem, const uint8_t *k, size_t klen, const char *cmdline,
                       const uint8_t *initrd, size_t rlen, BootEntry *e, GError **error)
{
    BootImages img = {
        .kernel = k, .kernel_size = klen, .initrd = initrd, .initrd_size = rlen,
        .cmdline = cmdline, .ncpus = 1,
    };
    return boot_load_images(mem, &img, e, error);
}

static bool load(GuestMemory *mem, const TestElfOpts *o, BootEntry *e, GError **error)
{
    g_autoptr(GBytes) k = test_elf_build(o);
    gsize len;
    const uint8_t *p = g_bytes_get_data(k, &len);
    return load_bytes(mem, p, len, NULL, NULL, 0, e, error);
}

static void check_loaded(GuestMemory *mem, const TestElfOpts *o, const BootEntry *e,
                         const char *cmdline, const uint8_t *initrd, size_t rlen)
{
    g_assert_cmpint(e->mode, ==, BOOT_MODE_PVH);
    g_assert_cmphex(e->entry, ==, o->entry);
    g_assert_cmphex(e->page_tables, ==, 0);
    g_assert_cmphex(e->kernel_start, ==, o->paddr);
    g_assert_cmphex(e->kernel_end, ==, o->paddr + o->memsz);

    /* Text copied from the file, bss zeroed (RAM was filled with 0xaa). */
    const uint8_t *t = guest_memory_ptr(mem, o->paddr, o->memsz);
    for (size_t i = 0; i < o->memsz; i++) {
        uint8_t want = i < o->filesz ? test_payload_byte(i) : 0;
        if (t[i] != want) {
            g_error("segment byte %zu is 0x%02x, want 0x%02x", i, t[i], want);
        }
    }

    const uint8_t *si = guest_memory_ptr(mem, e->params, 56);
    g_assert_nonnull(si);
    g_assert_cmphex(rd32(si + 0), ==, START_INFO_MAGIC);
    g_assert_cmpuint(rd32(si + 4), ==, 1);                 /* version: memmap fields valid */
    g_assert_cmpuint(rd32(si + 8), ==, 0);                 /* flags */
    g_assert_cmpmem(guest_memory_ptr(mem, rd64(si + 32), 8), 8, "RSD PTR ", 8);   /* rsdp_paddr */
    uint64_t cmd = rd64(si + 24);
    const char *want_cmd = cmdline ? cmdline : "";
    g_assert_cmpstr(guest_memory_ptr(mem, cmd, strlen(want_cmd) + 1), ==, want_cmd);

    if (initrd) {
        g_assert_cmpuint(rd32(si + 12), ==, 1);
        const uint8_t *mod = guest_memory_ptr(mem, rd64(si + 16), 32);
        uint64_t addr = rd64(mod), size = rd64(mod + 8);
        g_assert_cmpuint(size, ==, rlen);
        g_assert_cmphex(addr % 4096, ==, 0);
        g_assert_cmphex(addr, >=, e->kernel_end);
        g_assert_cmpmem(guest_memory_ptr(mem, addr, size), size, initrd, rlen);
    } else {
        g_assert_cmpuint(rd32(si + 12), ==, 0);
    }

    /* The memmap: hvm_memmap_table_entry {addr, size, type, reserved}, the
     * same ranges as the e820 map. */
    struct boot_e820_entry map[BOOT_E820_MAX];
    unsigned n = boot_e820_build(mem, map, BOOT_E820_MAX);
    g_assert_cmpuint(rd32(si + 48), ==, n);
    const uint8_t *mm = guest_memory_ptr(mem, rd64(si + 40), n * 24);
    g_assert_nonnull(mm);
    for (unsigned i = 0; i < n; i++) {
        g_assert_cmphex(rd64(mm + 24 * i), ==, map[i].addr);
        g_assert_cmphex(rd64(mm + 24 * i + 8), ==, map[i].size);
        g_assert_cmpuint(rd32(mm + 24 * i + 16), ==, map[i].type);
        g_assert_cmpuint(rd32(mm + 24 * i + 20), ==, 0);
    }
}

static void fill(GuestMemory *mem)
{
    memset(guest_memory_ptr(mem, 0, 64 << 20), 0xaa, 64 << 20);
}

static void test_elf64(void)
{
    GuestMemory *mem = test_mem_new(64);
    TestElfOpts o = test_elf_defaults();
    g_autoptr(GBytes) k = test_elf_build(&o);
    gsize klen;
    const uint8_t *kp = g_bytes_get_data(k, &klen);
    uint8_t initrd[10000];
    BootEntry e;
    GError *error = NULL;

    for (size_t i = 0; i < sizeof(initrd); i++) {
        initrd[i] = (uint8_t)(i * 13);
    }
    fill(mem);
    g_assert_true(load_bytes(mem, kp, klen, "console=hvc0 quiet", initrd, sizeof(initrd), &e, &error));
    g_assert_no_error(error);
    check_loaded(mem, &o, &e, "console=hvc0 quiet", initrd, sizeof(initrd));
    g_assert_cmphex(e.stack, !=, 0);
    guest_memory_free(mem);
}

static void test_elf32(void)
{
    GuestMemory *mem = test_mem_new(64);
    TestElfOpts o = test_elf_defaults();
    BootEntry e;
    GError *error = NULL;

    o.elf32 = true;
    o.desc_size = 4;
    o.paddr = 0x200000;
    o.entry = 0x200010;
    fill(mem);
    g_assert_true(load(mem, &o, &e, &error));
    g_assert_no_error(error);
    check_loaded(mem, &o, &e, NULL, NULL, 0);
    guest_memory_free(mem);
}

typedef struct Reject {
    const char *name;
    void (*tweak)(TestElfOpts *o);
    int code;
    const char *text;
} Reject;

static void no_note(TestElfOpts *o) { o->note = false; }
static void desc2(TestElfOpts *o) { o->desc_size = 2; }
static void bad_phent(TestElfOpts *o) { o->phentsize = 40; }
static void outside_ram(TestElfOpts *o) { o->paddr = 0x3f00000; o->entry = 0x3f00000; o->memsz = 0x200000; }
static void beyond_4g(TestElfOpts *o) { o->paddr = 0x100000000ULL; o->entry = 0x100000; }
static void below_1m(TestElfOpts *o) { o->paddr = 0x8000; o->entry = 0x8000; }
static void entry_outside(TestElfOpts *o) { o->entry = 0x500000; }
static void entry_high(TestElfOpts *o) { o->entry = 0x100000000ULL; }
static void filesz_big(TestElfOpts *o) { o->memsz = 0x100; }

static const Reject rejects[] = {
    { "no-pvh-note", no_note, BOOT_ERROR_FORMAT, "PVH" },
    { "note-size", desc2, BOOT_ERROR_INVALID, "2-byte" },
    { "phentsize", bad_phent, BOOT_ERROR_INVALID, "program header size" },
    { "outside-ram", outside_ram, BOOT_ERROR_NO_ROOM, "outside guest RAM" },
    { "beyond-4g", beyond_4g, BOOT_ERROR_NO_ROOM, "outside guest RAM" },
    { "below-1m", below_1m, BOOT_ERROR_INVALID, "below 1 MiB" },
    { "entry-outside", entry_outside, BOOT_ERROR_INVALID, "not inside a loaded segment" },
    { "entry-above-4g", entry_high, BOOT_ERROR_INVALID, "above 4 GiB" },
    { "filesz-gt-memsz", filesz_big, BOOT_ERROR_INVALID, "more file bytes" },
};

static void test_reject(gconstpointer data)
{
    const Reject *r = data;
    GuestMemory *mem = test_mem_new(64);
    TestElfOpts o = test_elf_defaults();
    BootEntry e, before;
    GError *error = NULL;

    r->tweak(&o);
    memset(&e, 0x5a, sizeof(e));
    before = e;
    g_assert_false(load(mem, &o, &e, &error));
    g_assert_error(error, BOOT_ERROR, r->code);
    g_test_message("%s: %s", r->name, error->message);
    g_assert_nonnull(strstr(error->message, r->text));
    g_assert_cmpmem(&e, sizeof(e), &before, sizeof(before));
    g_error_free(error);
    guest_memory_free(mem);
}

/* Header fields patched in the built file. */
typedef struct Patch {
    const char *name;
    size_t offset;
    unsigned width;
    uint64_t value;
    const char *text;
} Patch;

static const Patch patches[] = {
    { "class", EI_CLASS, 1, 7, "class" },
    { "big-endian", EI_DATA, 1, ELFDATA2MSB, "little-endian" },
    { "machine", offsetof(Elf64_Ehdr, e_machine), 2, EM_AARCH64, "machine" },
    { "not-exec", offsetof(Elf64_Ehdr, e_type), 2, ET_REL, "not an executable" },
    { "phoff-beyond-file", offsetof(Elf64_Ehdr, e_phoff), 8, 0xfffffffffff0ULL, "beyond the end" },
    { "phnum-huge", offsetof(Elf64_Ehdr, e_phnum), 2, 0xffff, "program headers" },
    { "phnum-zero", offsetof(Elf64_Ehdr, e_phnum), 2, 0, "program headers" },
    { "segment-offset", sizeof(Elf64_Ehdr) + offsetof(Elf64_Phdr, p_offset), 8, 0xfffffffffffff000ULL,
      "beyond the end" },
    { "segment-filesz", sizeof(Elf64_Ehdr) + offsetof(Elf64_Phdr, p_filesz), 8, 0x100000,
      "beyond the end" },
    { "note-offset", sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) + offsetof(Elf64_Phdr, p_offset), 8,
      0x7fffffff, "beyond the end" },
};

static void test_patch(gconstpointer data)
{
    const Patch *p = data;
    GuestMemory *mem = test_mem_new(64);
    TestElfOpts o = test_elf_defaults();
    g_autoptr(GBytes) k = test_elf_build(&o);
    gsize len;
    g_autofree uint8_t *buf = g_malloc(g_bytes_get_size(k));

    memcpy(buf, g_bytes_get_data(k, &len), g_bytes_get_size(k));
    BootEntry e;
    GError *error = NULL;

    uint64_t v = GUINT64_TO_LE(p->value);
    memcpy(buf + p->offset, &v, p->width);
    g_assert_false(load_bytes(mem, buf, len, NULL, NULL, 0, &e, &error));
    g_assert_error(error, BOOT_ERROR, BOOT_ERROR_INVALID);
    g_test_message("%s: %s", p->name, error->message);
    g_assert_nonnull(strstr(error->message, p->text));
    g_error_free(error);
    guest_memory_free(mem);
}

/* Every prefix of the file: a clean error until the segment is whole. */
static void test_truncated(void)
{
    GuestMemory *mem = test_mem_new(64);
    TestElfOpts o = test_elf_defaults();
    g_autoptr(GBytes) k = test_elf_build(&o);
    gsize len;
    const uint8_t *kp = g_bytes_get_data(k, &len);

    for (size_t n = 0; n <= len; n += (n < 0x300 ? 1 : 97)) {
        g_autofree uint8_t *copy = n ? g_malloc(n) : NULL;
        BootEntry e;
        GError *error = NULL;
        if (n) {
            memcpy(copy, kp, n);
        }
        bool ok = load_bytes(mem, copy, n, NULL, NULL, 0, &e, &error);
        g_assert_cmpint(ok, ==, n == len);
        if (!ok) {
            g_assert_error(error, BOOT_ERROR, (n < SELFMAG ? BOOT_ERROR_FORMAT : BOOT_ERROR_INVALID));
            g_clear_error(&error);
        }
        if (n < len && n + 97 > len) {
            n = len - 97;      /* make sure the full length is tried */
        }
    }
    guest_memory_free(mem);
}

static void test_initrd_too_big(void)
{
    GuestMemory *mem = test_mem_new(8);
    TestElfOpts o = test_elf_defaults();
    g_autoptr(GBytes) k = test_elf_build(&o);
    gsize klen;
    const uint8_t *kp = g_bytes_get_data(k, &klen);
    size_t rlen = 7 << 20;
    g_autofree uint8_t *rd = g_malloc0(rlen);
    BootEntry e;
    GError *error = NULL;

    g_assert_false(load_bytes(mem, kp, klen, NULL, rd, rlen, &e, &error));
    g_assert_error(error, BOOT_ERROR, BOOT_ERROR_NO_ROOM);
    g_assert_nonnull(strstr(error->message, "initrd"));
    g_clear_error(&error);
    guest_memory_free(mem);
}

static void test_cmdline_too_long(void)
{
    GuestMemory *mem = test_mem_new(8);
    TestElfOpts o = test_elf_defaults();
    g_autoptr(GBytes) k = test_elf_build(&o);
    gsize klen;
    const uint8_t *kp = g_bytes_get_data(k, &klen);
    g_autofree char *cmd = g_strnfill(70000, 'x');
    BootEntry e;
    GError *error = NULL;

    g_assert_false(load_bytes(mem, kp, klen, cmd, NULL, 0, &e, &error));
    g_assert_error(error, BOOT_ERROR, BOOT_ERROR_NO_ROOM);
    g_assert_nonnull(strstr(error->message, "command line"));
    g_clear_error(&error);
    guest_memory_free(mem);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/boot/pvh/elf64", test_elf64);
    g_test_add_func("/boot/pvh/elf32", test_elf32);
    for (unsigned i = 0; i < G_N_ELEMENTS(rejects); i++) {
        g_autofree char *path = g_strdup_printf("/boot/pvh/reject/%s", rejects[i].name);
        g_test_add_data_func(path, &rejects[i], test_reject);
    }
    for (unsigned i = 0; i < G_N_ELEMENTS(patches); i++) {
        g_autofree char *path = g_strdup_printf("/boot/pvh/bad-header/%s", patches[i].name);
        g_test_add_data_func(path, &patches[i], test_patch);
    }
    g_test_add_func("/boot/pvh/truncated", test_truncated);
    g_test_add_func("/boot/pvh/initrd-too-big", test_initrd_too_big);
    g_test_add_func("/boot/pvh/cmdline-too-long", test_cmdline_too_long);
    return g_test_run();
}
