/* Guest RAM layout, address translation and size parsing; the I/O bus. */
#include "config.h"

#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "iobus.h"
#include "memory.h"

static void test_layout_small(void)
{
    GuestMemoryConfig cfg = { .size = 64 << 20 };
    g_autoptr(GError) error = NULL;
    GuestMemory *mem = guest_memory_new(&cfg, &error);

    g_assert_no_error(error);
    g_assert_cmpuint(mem->nr_regions, ==, 1);
    g_assert_cmpuint(guest_memory_low_size(mem), ==, 64 << 20);
    g_assert_cmpuint(guest_memory_high_size(mem), ==, 0);
    g_assert_nonnull(guest_memory_ptr(mem, 0, 64 << 20));
    g_assert_null(guest_memory_ptr(mem, 1, 64 << 20));          /* one byte past the end */
    g_assert_null(guest_memory_ptr(mem, 64 << 20, 1));
    g_assert_null(guest_memory_ptr(mem, UINT64_MAX, 2));        /* wrap-around */
    guest_memory_free(mem);
}

/* RAM above 3 GiB moves to 4 GiB; a copy across the hole fails. Untouched
 * anonymous memory, so 4 GiB of address space costs nothing. */
static void test_layout_split(void)
{
    GuestMemoryConfig cfg = { .size = 4ULL << 30 };
    g_autoptr(GError) error = NULL;
    GuestMemory *mem = guest_memory_new(&cfg, &error);
    uint8_t buf[16] = { 1, 2, 3 };

    g_assert_no_error(error);
    g_assert_cmpuint(mem->nr_regions, ==, 2);
    g_assert_cmphex(mem->regions[1].gpa, ==, GUEST_HIGH_RAM_BASE);
    g_assert_cmpuint(guest_memory_high_size(mem), ==, (4ULL << 30) - GUEST_LOW_RAM_END);
    g_assert_null(guest_memory_ptr(mem, GUEST_LOW_RAM_END - 8, 16));
    g_assert_false(guest_memory_write(mem, GUEST_LOW_RAM_END - 8, buf, 16));
    g_assert_true(guest_memory_write(mem, GUEST_HIGH_RAM_BASE, buf, 16));
    /* The high region continues the same block right after the low part. */
    g_assert_cmpmem(mem->blocks[0]->host + GUEST_LOW_RAM_END, 16, buf, 16);
    guest_memory_free(mem);
}

static void test_mem_path(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("colo-mem-XXXXXX", &error);
    g_assert_no_error(error);
    g_autofree char *file = g_build_filename(dir, "ram", NULL);
    GuestMemoryConfig cfg = { .size = 4 << 20, .mem_path = file };
    GuestMemory *mem = guest_memory_new(&cfg, &error);

    g_assert_no_error(error);
    g_assert_true(guest_memory_write(mem, 4096, "colo", 4));
    guest_memory_free(mem);
    g_autofree char *contents = NULL;
    gsize len;
    g_assert_true(g_file_get_contents(file, &contents, &len, NULL));
    g_assert_cmpuint(len, ==, 4 << 20);
    g_assert_cmpmem(contents + 4096, 4, "colo", 4);

    /* A directory gets a private file that disappears with the VM. */
    cfg.mem_path = dir;
    mem = guest_memory_new(&cfg, &error);
    g_assert_no_error(error);
    guest_memory_free(mem);
    unlink(file);
    g_assert_cmpint(g_rmdir(dir), ==, 0);

    cfg.mem_path = "/nonexistent/dir/ram";
    g_assert_null(guest_memory_new(&cfg, &error));
    g_assert_nonnull(strstr(error->message, "/nonexistent/dir/ram"));
}

static void test_parse_size(void)
{
    static const struct {
        const char *text;
        uint64_t bytes;
        bool ok;
    } cases[] = {
        { "64", 64ULL << 20, true },     /* plain numbers are MiB, as QEMU's -m */
        { "64M", 64ULL << 20, true },
        { "64m", 64ULL << 20, true },
        { "1G", 1ULL << 30, true },
        { "2048k", 2ULL << 20, true },
        { "1GB", 1ULL << 30, true },
        { "4096B", 4096, true },
        { "", 0, false },
        { "M", 0, false },
        { "-1G", 0, false },
        { "1X", 0, false },
        { "1Gx", 0, false },
        { "99999999999999999999", 0, false },
        { "17179869184T", 0, false },    /* overflows 64 bits */
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        uint64_t bytes = 0;
        bool ok = guest_memory_parse_size(cases[i].text, &bytes, &error);
        g_assert_cmpint(ok, ==, cases[i].ok);
        if (ok) {
            g_assert_cmpuint(bytes, ==, cases[i].bytes);
        } else {
            g_assert_nonnull(error);
        }
    }
}

typedef struct {
    uint64_t last_offset;
    unsigned calls;
} Probe;

static void probe_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
    Probe *p = opaque;

    p->last_offset = offset;
    p->calls++;
    if (!is_write) {
        memset(data, 0x5a, len);
    }
}

static void test_iobus(void)
{
    IoBus *bus = iobus_new();
    Probe a = { 0 }, b = { 0 };
    g_autoptr(GError) error = NULL;
    uint8_t data[4];

    g_assert_true(iobus_register(bus, IOBUS_PIO, 0x3f8, 8, probe_io, &a, "a", &error));
    g_assert_true(iobus_register(bus, IOBUS_PIO, 0x70, 2, probe_io, &b, "b", &error));
    g_assert_false(iobus_register(bus, IOBUS_PIO, 0x3fc, 8, probe_io, &b, "c", &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS);
    /* The same address on the other bus is independent. */
    g_assert_true(iobus_register(bus, IOBUS_MMIO, 0x3f8, 8, probe_io, &b, "m", NULL));

    g_assert_true(iobus_dispatch(bus, IOBUS_PIO, 0x3fd, data, 1, false));
    g_assert_cmpuint(a.last_offset, ==, 5);
    g_assert_cmphex(data[0], ==, 0x5a);
    g_assert_true(iobus_dispatch(bus, IOBUS_PIO, 0x71, data, 1, true));
    g_assert_cmpuint(b.calls, ==, 1);
    /* Unassigned reads float high. */
    g_assert_false(iobus_dispatch(bus, IOBUS_PIO, 0x400, data, 4, false));
    g_assert_cmphex(data[0] & data[1] & data[2] & data[3], ==, 0xff);
    g_assert_false(iobus_dispatch(bus, IOBUS_PIO, 0x3f7, data, 1, false));
    iobus_free(bus);
}

static bool map_bit(const unsigned long *map, uint64_t page)
{
    return map[page / (8 * sizeof(long))] & (1UL << (page % (8 * sizeof(long))));
}

/* Pages written are data, pages never written or discarded are known zero;
 * a discarded page reads as zero. Anonymous memory (the default), a memfd
 * (-mem-share) and a file (-mem-path) alike. */
static void check_data_map_and_discard(const GuestMemoryConfig *cfg)
{
    g_autoptr(GError) error = NULL;
    GuestMemory *mem = guest_memory_new(cfg, &error);
    g_assert_no_error(error);
    RamBlock *b = mem->blocks[0];
    uint64_t pages = b->size / GUEST_PAGE_SIZE;
    g_autofree unsigned long *map = g_new0(unsigned long, pages / (8 * sizeof(long)) + 1);
    uint8_t one = 1, got = 0xff;

    g_assert_true(guest_memory_write(mem, 5 * GUEST_PAGE_SIZE, &one, 1));
    g_assert_true(guest_memory_write(mem, 700 * GUEST_PAGE_SIZE + 17, &one, 1));
    g_assert_true(guest_memory_write(mem, (pages - 1) * GUEST_PAGE_SIZE, &one, 1));
    ram_block_data_map(b, map);
    /* A transparent huge page is present whole: the 2 MiB around a written
     * page may be data too, the 2 MiB from page 1024 up must not. */
    for (uint64_t p = 0; p < pages; p++) {
        if (p == 5 || p == 700 || p == pages - 1) {
            g_assert_true(map_bit(map, p));
        } else if (p >= 1024 && p < 1536) {
            g_assert_false(map_bit(map, p));
        }
    }
    g_assert_true(ram_block_discard(b, 700 * GUEST_PAGE_SIZE, GUEST_PAGE_SIZE, &error));
    g_assert_no_error(error);
    memset(map, 0, (pages / (8 * sizeof(long)) + 1) * sizeof(long));
    ram_block_data_map(b, map);
    g_assert_true(map_bit(map, 5) && !map_bit(map, 700) && map_bit(map, pages - 1));
    /* (Reading it maps the zero page: data again for the map, harmlessly.) */
    g_assert_true(guest_memory_read(mem, 700 * GUEST_PAGE_SIZE + 17, &got, 1));
    g_assert_cmpuint(got, ==, 0);
    g_assert_true(guest_memory_read(mem, 5 * GUEST_PAGE_SIZE, &got, 1));
    g_assert_cmpuint(got, ==, 1);
    guest_memory_free(mem);
}

static void test_data_map(void)
{
    GuestMemoryConfig cfg = { .size = 8 << 20 };
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("colo-mem-XXXXXX", &error);

    g_assert_no_error(error);
    check_data_map_and_discard(&cfg);           /* anonymous */
    cfg.mem_share = true;
    check_data_map_and_discard(&cfg);           /* memfd */
    cfg.mem_share = false;
    cfg.mem_path = dir;
    check_data_map_and_discard(&cfg);           /* an unlinked file in a directory */
    g_rmdir(dir);
}

/* The default: anonymous memory aligned to 2 MiB (room for huge pages),
 * no file behind it; -mem-share gives a memfd. */
static void test_backing(void)
{
    GuestMemoryConfig cfg = { .size = 6 << 20 };
    g_autoptr(GError) error = NULL;
    GuestMemory *mem = guest_memory_new(&cfg, &error);

    g_assert_no_error(error);
    g_assert_cmpint(mem->blocks[0]->fd, ==, -1);
    g_assert_cmpuint((uintptr_t)mem->blocks[0]->host % (2 << 20), ==, 0);
    guest_memory_free(mem);
    cfg.mem_share = true;
    mem = guest_memory_new(&cfg, &error);
    g_assert_no_error(error);
    g_assert_cmpint(mem->blocks[0]->fd, >=, 0);
    guest_memory_free(mem);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/memory/layout-small", test_layout_small);
    g_test_add_func("/memory/layout-split", test_layout_split);
    g_test_add_func("/memory/mem-path", test_mem_path);
    g_test_add_func("/memory/backing", test_backing);
    g_test_add_func("/memory/data-map", test_data_map);
    g_test_add_func("/memory/parse-size", test_parse_size);
    g_test_add_func("/iobus/dispatch", test_iobus);
    return g_test_run();
}
