/* The block layer's generic part and the raw driver: byte-granular and
 * vectored I/O on an image file, range and read-only checks, flush, and
 * filters stacked over the raw node (pass-through, find, removal). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "block-test-filter.h"
#include "block/block.h"
#include "block/raw.h"

#define IMAGE_SIZE (256 * 1024)

typedef struct Fixture {
    char *path;
    BlockNode *node;
} Fixture;

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 8));
    }
}

static void fx_setup(Fixture *fx, gconstpointer data)
{
    int fd = g_file_open_tmp("block-XXXXXX", &fx->path, NULL);
    g_autofree uint8_t *init = g_malloc(IMAGE_SIZE);

    g_assert_cmpint(fd, >=, 0);
    fill(init, IMAGE_SIZE, 1);
    g_assert_cmpint(write(fd, init, IMAGE_SIZE), ==, IMAGE_SIZE);
    close(fd);
    fx->node = block_raw_open(fx->path, data != NULL, NULL);
    g_assert_nonnull(fx->node);
}

static void fx_teardown(Fixture *fx, gconstpointer data)
{
    block_node_close(fx->node);
    g_unlink(fx->path);
    g_free(fx->path);
}

static uint8_t *file_contents(Fixture *fx)
{
    gchar *contents = NULL;
    gsize len = 0;

    g_assert_true(g_file_get_contents(fx->path, &contents, &len, NULL));
    g_assert_cmpuint(len, ==, IMAGE_SIZE);
    return (uint8_t *)contents;
}

static void test_open_errors(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("block-XXXXXX", NULL);
    g_autofree char *missing = g_build_filename(dir, "missing.img", NULL);

    g_assert_null(block_raw_open(missing, false, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_null(block_raw_open(dir, true, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_rmdir(dir);
}

static void test_raw_rw(Fixture *fx, gconstpointer data)
{
    uint8_t buf[3000], back[3000];
    g_autofree uint8_t *expect = file_contents(fx);

    g_assert_cmpuint(block_length(fx->node), ==, IMAGE_SIZE);
    g_assert_false(fx->node->readonly);
    g_assert_cmpstr(fx->node->name, ==, fx->path);
    /* Unaligned offsets and lengths, the last one ending at the end. */
    const uint64_t offsets[] = { 0, 1, 511, 4097, IMAGE_SIZE - 3000 };
    for (unsigned i = 0; i < G_N_ELEMENTS(offsets); i++) {
        size_t len = sizeof(buf) - i * 333;
        fill(buf, len, 10 + i);
        g_assert_cmpint(block_pwrite(fx->node, offsets[i], buf, len), ==, 0);
        memcpy(expect + offsets[i], buf, len);
        g_assert_cmpint(block_pread(fx->node, offsets[i], back, len), ==, 0);
        g_assert_cmpmem(back, len, buf, len);
    }
    g_assert_cmpint(block_flush(fx->node), ==, 0);
    g_autofree uint8_t *got = file_contents(fx);
    g_assert_cmpmem(got, IMAGE_SIZE, expect, IMAGE_SIZE);
}

/* Vectors of odd-sized pieces (some empty), one longer than IOV_MAX: the
 * bytes land in order, and read back with a different split. */
static void test_raw_vectored(Fixture *fx, gconstpointer data)
{
    const int count = IOV_MAX + 500;
    g_autofree struct iovec *iov = g_new(struct iovec, count);
    g_autofree uint8_t *src = g_malloc(IMAGE_SIZE), *back = g_malloc0(IMAGE_SIZE);
    size_t total = 0;

    fill(src, IMAGE_SIZE, 5);
    for (int i = 0; i < count; i++) {
        size_t len = (size_t)(i % 7 == 3 ? 0 : 1 + i % 13);
        iov[i] = (struct iovec) { src + total, len };
        total += len;
    }
    g_assert_cmpuint(block_iov_size(iov, count), ==, total);
    g_assert_cmpint(block_pwritev(fx->node, 777, iov, count), ==, 0);
    /* Read back in 2 pieces, then in pieces of 100. */
    struct iovec two[2] = { { back, 5 }, { back + 5, total - 5 } };
    g_assert_cmpint(block_preadv(fx->node, 777, two, 2), ==, 0);
    g_assert_cmpmem(back, total, src, total);
    memset(back, 0, total);
    int n = 0;
    for (size_t off = 0; off < total; off += 100) {
        iov[n++] = (struct iovec) { back + off, MIN((size_t)100, total - off) };
    }
    g_assert_cmpint(block_preadv(fx->node, 777, iov, n), ==, 0);
    g_assert_cmpmem(back, total, src, total);
    g_autofree uint8_t *got = file_contents(fx);
    g_assert_cmpmem(got + 777, total, src, total);
}

static void test_raw_ranges(Fixture *fx, gconstpointer data)
{
    uint8_t buf[16] = { 0 };
    struct iovec iov = { buf, sizeof(buf) };

    g_assert_cmpint(block_pread(fx->node, IMAGE_SIZE, buf, 1), ==, -EIO);
    g_assert_cmpint(block_pread(fx->node, IMAGE_SIZE - 15, buf, 16), ==, -EIO);
    g_assert_cmpint(block_pwrite(fx->node, IMAGE_SIZE - 15, buf, 16), ==, -EIO);
    g_assert_cmpint(block_pwrite(fx->node, UINT64_MAX - 4, buf, 16), ==, -EIO);
    g_assert_cmpint(block_pread(fx->node, IMAGE_SIZE, buf, 0), ==, 0);
    g_assert_cmpint(block_preadv(fx->node, 0, &iov, -1), ==, -EINVAL);
    g_assert_cmpint(block_pread(fx->node, IMAGE_SIZE - 16, buf, 16), ==, 0);
}

static void test_raw_readonly(Fixture *fx, gconstpointer data)
{
    uint8_t buf[512];
    g_autofree uint8_t *expect = file_contents(fx);

    g_assert_true(fx->node->readonly);
    memset(buf, 0xaa, sizeof(buf));
    g_assert_cmpint(block_pwrite(fx->node, 0, buf, sizeof(buf)), ==, -EROFS);
    g_assert_cmpint(block_pread(fx->node, 100, buf, sizeof(buf)), ==, 0);
    g_assert_cmpmem(buf, sizeof(buf), expect + 100, sizeof(buf));
    g_assert_cmpint(block_flush(fx->node), ==, 0);
    g_autofree uint8_t *got = file_contents(fx);
    g_assert_cmpmem(got, IMAGE_SIZE, expect, IMAGE_SIZE);
}

/* The file shrank under the node: the read comes up short, the rest is
 * retried, and end of file is an I/O error (not a hang, not a success). */
static void test_raw_short_read(Fixture *fx, gconstpointer data)
{
    uint8_t a[40], b[80];
    struct iovec iov[2] = { { a, sizeof(a) }, { b, sizeof(b) } };
    g_autofree uint8_t *expect = file_contents(fx);

    g_assert_cmpint(truncate(fx->path, 1050), ==, 0);
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    g_assert_cmpint(block_preadv(fx->node, 1000, iov, 2), ==, -EIO);
    g_assert_cmpmem(a, sizeof(a), expect + 1000, sizeof(a));
    g_assert_cmpmem(b, 10, expect + 1040, 10);
    g_assert_cmpint(block_preadv(fx->node, 900, iov, 2), ==, 0);
    g_assert_cmpmem(b, sizeof(b), expect + 940, sizeof(b));
}

static void test_filter_stack(Fixture *fx, gconstpointer data)
{
    SpyLog c1 = { 0 }, c2 = { 0 };
    BlockNode *raw = fx->node;
    BlockNode *f1 = spy_new(raw, &c1);
    BlockNode *f2 = spy_new(f1, &c2);
    uint8_t buf[100], back[100];

    fill(buf, sizeof(buf), 3);
    g_assert_cmpint(block_pwrite(f2, 12345, buf, sizeof(buf)), ==, 0);
    g_assert_cmpuint(c1.writes, ==, 1);
    g_assert_cmpuint(c2.writes, ==, 1);
    g_assert_cmpuint(c1.offset, ==, 12345);
    g_assert_cmpuint(c1.bytes, ==, sizeof(buf));
    /* Reads and flushes pass through both to the raw node. */
    g_assert_cmpint(block_pread(f2, 12345, back, sizeof(back)), ==, 0);
    g_assert_cmpmem(back, sizeof(back), buf, sizeof(buf));
    g_assert_cmpint(block_flush(f2), ==, 0);
    /* Checks happen at the top: nothing past the end reaches a filter. */
    g_assert_cmpint(block_pwrite(f2, IMAGE_SIZE, buf, 1), ==, -EIO);
    g_assert_cmpuint(c2.writes, ==, 1);
    g_assert_true(block_node_find(f2, &spy_driver) == f2);
    g_assert_true(block_node_find(f2, &block_raw_driver) == raw);
    g_assert_null(block_node_find(raw, &spy_driver));
    /* Take f2 out: f1 is the top again, f2 alone was closed. */
    g_assert_true(block_node_remove_filter(f2) == f1);
    g_assert_cmpuint(c2.closes, ==, 1);
    g_assert_cmpuint(c1.closes, ==, 0);
    g_assert_cmpint(block_pwrite(f1, 0, buf, 1), ==, 0);
    g_assert_cmpuint(c1.writes, ==, 2);
    /* Closing the top closes the whole stack (the fixture's node too). */
    block_node_close(f1);
    g_assert_cmpuint(c1.closes, ==, 1);
    fx->node = NULL;
}

static void test_iov_helpers(void)
{
    uint8_t a[3] = { 1, 2, 3 }, b[1] = { 4 }, c[4] = { 5, 6, 7, 8 }, out[8];
    struct iovec iov[4] = { { a, 3 }, { NULL, 0 }, { b, 1 }, { c, 4 } }, s[4];

    int n = block_iov_slice(iov, 4, 2, 4, s);
    g_assert_cmpint(n, ==, 3);
    g_assert_true(s[0].iov_base == a + 2 && s[0].iov_len == 1);
    g_assert_true(s[1].iov_base == b && s[1].iov_len == 1);
    g_assert_true(s[2].iov_base == c && s[2].iov_len == 2);
    g_assert_cmpint(block_iov_slice(iov, 4, 8, 5, s), ==, 0);
    block_iov_to_buf(iov, 4, 1, out, 6);
    g_assert_cmpmem(out, 6, ((uint8_t[]) { 2, 3, 4, 5, 6, 7 }), 6);
    block_iov_from_buf(iov, 4, 3, ((uint8_t[]) { 9, 9, 9 }), 3);
    g_assert_cmpuint(b[0], ==, 9);
    g_assert_cmpuint(c[0], ==, 9);
    g_assert_cmpuint(c[1], ==, 9);
    g_assert_cmpuint(c[2], ==, 7);
    g_assert_cmpuint(a[2], ==, 3);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/block/raw/open-errors", test_open_errors);
    g_test_add_func("/block/iov-helpers", test_iov_helpers);
#define ADD(path, fn, ro) g_test_add(path, Fixture, ro, fx_setup, fn, fx_teardown)
    ADD("/block/raw/read-write-flush", test_raw_rw, NULL);
    ADD("/block/raw/vectored", test_raw_vectored, NULL);
    ADD("/block/raw/ranges", test_raw_ranges, NULL);
    ADD("/block/raw/read-only", test_raw_readonly, "ro");
    ADD("/block/raw/short-read", test_raw_short_read, NULL);
    ADD("/block/filter-stack", test_filter_stack, NULL);
    return g_test_run();
}
