/* The block layer's filter nodes over a raw image: the dirty-block bitmap
 * (what writes mark, queries, clearing, concurrent writers and a
 * collector) and the copy-on-write overlay (reads from overlay or base,
 * partial blocks, the base changing underneath, discard, commit, a random
 * workload checked against a model, concurrent partial writes) and the
 * write log. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "block-test-filter.h"
#include "block/block.h"
#include "block/dirty-bitmap.h"
#include "block/overlay.h"
#include "block/raw.h"
#include "block/write-log.h"

typedef struct Image {
    char *path;
    uint64_t size;
    uint8_t *init;              /* what the file held at the start */
} Image;

static void image_create(Image *img, uint64_t size, unsigned seed)
{
    int fd = g_file_open_tmp("block-filters-XXXXXX", &img->path, NULL);

    g_assert_cmpint(fd, >=, 0);
    img->size = size;
    img->init = g_malloc(size);
    for (uint64_t i = 0; i < size; i++) {
        img->init[i] = (uint8_t)(i * 17 + seed + (i >> 9));
    }
    g_assert_cmpint(write(fd, img->init, size), ==, (ssize_t)size);
    close(fd);
}

static void image_destroy(Image *img)
{
    g_unlink(img->path);
    g_free(img->path);
    g_free(img->init);
}

static BlockNode *image_open(Image *img, bool readonly)
{
    BlockNode *raw = block_raw_open(img->path, readonly, NULL);

    g_assert_nonnull(raw);
    return raw;
}

static uint8_t *image_contents(Image *img)
{
    gchar *contents = NULL;
    gsize len = 0;

    g_assert_true(g_file_get_contents(img->path, &contents, &len, NULL));
    g_assert_cmpuint(len, ==, img->size);
    return (uint8_t *)contents;
}

/* Cheap bytes from the test's seeded generator (xorshift from one draw). */
static void random_fill(uint8_t *buf, size_t len)
{
    uint32_t x = g_test_rand_int() | 1;

    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)x;
    }
}

/* ---- dirty bitmap ---- */

static void test_bitmap_setup_errors(void)
{
    Image img;
    SpyLog log = { 0 };
    g_autoptr(GError) error = NULL;
    const uint64_t bad[] = { 256, 1000, 4097, 1ULL << 31 };

    image_create(&img, 8192, 1);
    /* A failed filter leaves its child to the caller (it may be in use). */
    BlockNode *child = spy_new(image_open(&img, false), &log);
    for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_assert_null(block_dirty_bitmap_new(child, bad[i], &error));
        g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
        g_clear_error(&error);
    }
    g_assert_cmpuint(log.closes, ==, 0);
    block_node_close(child);
    g_assert_cmpuint(log.closes, ==, 1);
    BlockNode *node = block_dirty_bitmap_new(image_open(&img, false), 0, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(block_dirty_bitmap_granularity(node), ==, BLOCK_DIRTY_BITMAP_DEFAULT_GRANULARITY);
    g_assert_cmpuint(block_dirty_bitmap_blocks(node), ==, 1);
    block_node_close(node);
    image_destroy(&img);
}

static void assert_dirty(BlockNode *node, const uint64_t *blocks, unsigned n)
{
    uint64_t b = 0, at = 0;
    unsigned seen = 0;

    while (block_dirty_bitmap_next(node, at, &b)) {
        g_assert_cmpuint(seen, <, n);
        g_assert_cmpuint(b, ==, blocks[seen]);
        g_assert_true(block_dirty_bitmap_test(node, b));
        seen++;
        at = b + 1;
    }
    g_assert_cmpuint(seen, ==, n);
    g_assert_cmpuint(block_dirty_bitmap_count(node), ==, n);
}

/* Image of 100.5 blocks of 4 KiB: 101 bits, the last one half a block. */
static void test_bitmap_marks(void)
{
    Image img;
    SpyLog log = { 0 };
    uint8_t buf[5 * 4096];

    image_create(&img, 100 * 4096 + 2048, 2);
    BlockNode *node = block_dirty_bitmap_new(spy_new(image_open(&img, false), &log), 4096, NULL);
    g_assert_nonnull(node);
    g_assert_cmpuint(block_length(node), ==, img.size);
    g_assert_cmpuint(block_dirty_bitmap_blocks(node), ==, 101);
    assert_dirty(node, NULL, 0);

    memset(buf, 0x77, sizeof(buf));
    g_assert_cmpint(block_pwrite(node, 4095, buf, 1), ==, 0);              /* block 0 */
    assert_dirty(node, (uint64_t[]) { 0 }, 1);
    g_assert_cmpint(block_pwrite(node, 3 * 4096 - 1, buf, 2), ==, 0);      /* blocks 2, 3 */
    /* Vectored, from inside block 63 into block 65. */
    struct iovec iov[3] = { { buf, 100 }, { buf + 100, 0 }, { buf + 100, 8000 } };
    g_assert_cmpint(block_pwritev(node, 63 * 4096 + 4000, iov, 3), ==, 0);
    g_assert_cmpuint(log.bytes, ==, 8100);
    g_assert_cmpint(block_pwrite(node, img.size - 1, buf, 1), ==, 0);      /* the short last block */
    const uint64_t marked[] = { 0, 2, 3, 63, 64, 65, 100 };
    assert_dirty(node, marked, G_N_ELEMENTS(marked));

    /* Reads, flushes and refused writes mark nothing. */
    uint8_t back[4096];
    g_assert_cmpint(block_pread(node, 10 * 4096, back, sizeof(back)), ==, 0);
    g_assert_cmpint(block_flush(node), ==, 0);
    g_assert_cmpint(block_pwrite(node, img.size - 1, buf, 2), ==, -EIO);
    assert_dirty(node, marked, G_N_ELEMENTS(marked));
    /* A write that failed below may have landed in part: marked. */
    log.fail = -ENOSPC;
    g_assert_cmpint(block_pwrite(node, 50 * 4096, buf, 1), ==, -ENOSPC);
    g_assert_true(block_dirty_bitmap_test(node, 50));
    log.fail = 0;
    /* The data went through to the image. */
    block_node_close(node);
    g_autofree uint8_t *got = image_contents(&img);
    g_assert_cmpmem(got + 63 * 4096 + 4000, 8100, buf, 8100);
    g_assert_cmpmem(got, 4095, img.init, 4095);
    image_destroy(&img);
}

static void test_bitmap_queries(void)
{
    Image img;
    uint64_t b;

    image_create(&img, 300 * 512, 3);
    BlockNode *node = block_dirty_bitmap_new(image_open(&img, false), 512, NULL);
    g_assert_cmpuint(block_dirty_bitmap_blocks(node), ==, 300);
    /* Set across word boundaries, clamped at the end. */
    block_dirty_bitmap_set(node, 60, 10);
    block_dirty_bitmap_set(node, 290, 1000);
    block_dirty_bitmap_set(node, 5000, 1);
    g_assert_cmpuint(block_dirty_bitmap_count(node), ==, 20);
    g_assert_true(block_dirty_bitmap_next(node, 0, &b) && b == 60);
    g_assert_true(block_dirty_bitmap_next(node, 64, &b) && b == 64);
    g_assert_true(block_dirty_bitmap_next(node, 70, &b) && b == 290);
    g_assert_true(block_dirty_bitmap_next(node, 299, &b) && b == 299);
    g_assert_false(block_dirty_bitmap_next(node, 300, &b));
    g_assert_false(block_dirty_bitmap_test(node, 300));
    /* Clear part of a run, then take blocks one by one. */
    block_dirty_bitmap_clear(node, 62, 5);
    g_assert_cmpuint(block_dirty_bitmap_count(node), ==, 15);
    g_assert_false(block_dirty_bitmap_test(node, 64));
    g_assert_true(block_dirty_bitmap_test(node, 67));
    g_assert_true(block_dirty_bitmap_test_and_clear(node, 67));
    g_assert_false(block_dirty_bitmap_test_and_clear(node, 67));
    g_assert_false(block_dirty_bitmap_test_and_clear(node, 1000));
    block_dirty_bitmap_clear(node, 0, UINT64_MAX);
    g_assert_cmpuint(block_dirty_bitmap_count(node), ==, 0);
    g_assert_false(block_dirty_bitmap_next(node, 0, &b));
    block_node_close(node);
    image_destroy(&img);
}

/* Writers on interleaved blocks (neighbours in the same bitmap words) and
 * a collector taking bits while they run: every block written is taken or
 * still dirty at the end, none lost to a race on a word. */
#define MT_WRITERS 4
#define MT_BLOCKS 1024
#define MT_ROUNDS 20

typedef struct BitmapRun {
    BlockNode *node;
    unsigned id;
    gint *stop;
    uint8_t *taken;
} BitmapRun;

static gpointer bitmap_writer(gpointer data)
{
    BitmapRun *run = data;
    uint8_t byte = (uint8_t)run->id;

    for (unsigned round = 0; round < MT_ROUNDS; round++) {
        for (uint64_t b = run->id; b < MT_BLOCKS; b += MT_WRITERS) {
            g_assert_cmpint(block_pwrite(run->node, b * 512 + round, &byte, 1), ==, 0);
        }
    }
    return NULL;
}

static gpointer bitmap_collector(gpointer data)
{
    BitmapRun *run = data;
    uint64_t b;

    while (!g_atomic_int_get(run->stop)) {
        for (uint64_t at = 0; block_dirty_bitmap_next(run->node, at, &b); at = b + 1) {
            if (block_dirty_bitmap_test_and_clear(run->node, b)) {
                run->taken[b] = 1;
            }
        }
    }
    return NULL;
}

static void test_bitmap_threads(void)
{
    Image img;
    gint stop = 0;
    g_autofree uint8_t *taken = g_malloc0(MT_BLOCKS);
    BitmapRun runs[MT_WRITERS + 1];
    GThread *threads[MT_WRITERS + 1];

    image_create(&img, MT_BLOCKS * 512, 4);
    BlockNode *node = block_dirty_bitmap_new(image_open(&img, false), 512, NULL);
    for (unsigned i = 0; i <= MT_WRITERS; i++) {
        runs[i] = (BitmapRun) { node, i, &stop, taken };
        threads[i] = g_thread_new("bitmap", i < MT_WRITERS ? bitmap_writer : bitmap_collector, &runs[i]);
    }
    for (unsigned i = 0; i < MT_WRITERS; i++) {
        g_thread_join(threads[i]);
    }
    g_atomic_int_set(&stop, 1);
    g_thread_join(threads[MT_WRITERS]);
    for (uint64_t b = 0; b < MT_BLOCKS; b++) {
        g_assert_true(taken[b] || block_dirty_bitmap_test(node, b));
    }
    block_node_close(node);
    image_destroy(&img);
}

/* ---- overlay ---- */

static void test_overlay_setup_errors(void)
{
    Image img;
    SpyLog log = { 0 };
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("block-overlay-XXXXXX", NULL);
    g_autofree char *missing = g_build_filename(dir, "missing", NULL);

    image_create(&img, 8192, 5);
    /* A failed overlay leaves its base to the caller (it may be in use). */
    BlockNode *base = spy_new(image_open(&img, false), &log);
    g_assert_null(block_overlay_new(base, 2 << 20, NULL, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);
    g_assert_null(block_overlay_new(base, 0, missing, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
    g_assert_cmpuint(log.closes, ==, 0);
    block_node_close(base);
    g_assert_cmpuint(log.closes, ==, 1);
    /* In a directory: the storage file is unlinked at once. */
    BlockNode *node = block_overlay_new(image_open(&img, false), 0, dir, NULL);
    g_assert_nonnull(node);
    g_assert_cmpuint(block_overlay_granularity(node), ==, BLOCK_OVERLAY_DEFAULT_GRANULARITY);
    g_assert_cmpint(block_pwrite(node, 0, "x", 1), ==, 0);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
    block_node_close(node);
    image_destroy(&img);
}

static void assert_reads(BlockNode *node, uint64_t offset, const uint8_t *expect, size_t len)
{
    g_autofree uint8_t *buf = g_malloc(len);

    memset(buf, 0xcc, len);
    g_assert_cmpint(block_pread(node, offset, buf, len), ==, 0);
    g_assert_cmpmem(buf, len, expect, len);
}

/* The guest's writes stay in the overlay, the image is never written;
 * the base changing underneath shows through where the overlay holds
 * nothing; discard brings back the base. */
static void test_overlay_semantics(void)
{
    Image img;
    const uint64_t size = 16 * 4096;
    g_autofree uint8_t *view = NULL, *base = NULL;
    uint8_t buf[5 * 4096];

    image_create(&img, size, 6);
    view = g_memdup2(img.init, size);
    base = g_memdup2(img.init, size);
    BlockNode *node = block_overlay_new(image_open(&img, false), 4096, NULL, NULL);
    g_assert_false(node->readonly);
    assert_reads(node, 0, view, size);

    /* Unaligned write inside block 0: the rest of the block is the base's. */
    memset(buf, 0xa1, sizeof(buf));
    g_assert_cmpint(block_pwrite(node, 100, buf, 10), ==, 0);
    memcpy(view + 100, buf, 10);
    g_assert_cmpuint(block_overlay_allocated(node), ==, 1);
    /* From inside block 1 to inside block 4: two partial blocks, two whole. */
    g_assert_cmpint(block_pwrite(node, 4096 + 7, buf, 4 * 4096 - 100), ==, 0);
    memcpy(view + 4096 + 7, buf, 4 * 4096 - 100);
    g_assert_cmpuint(block_overlay_allocated(node), ==, 5);
    /* Into a block already held, partly. */
    memset(buf, 0xb2, 64);
    g_assert_cmpint(block_pwrite(node, 4 * 4096 + 4000, buf, 64), ==, 0);
    memcpy(view + 4 * 4096 + 4000, buf, 64);
    g_assert_cmpuint(block_overlay_allocated(node), ==, 5);
    assert_reads(node, 0, view, size);
    assert_reads(node, 4090, view + 4090, 20);

    /* The base is written underneath (the secondary applying the primary's
     * writes): blocks 0 and 8 change there; only 8 shows through. */
    memset(buf, 0xd3, 8192);
    g_assert_cmpint(block_pwrite(node->child, 0, buf, 10), ==, 0);
    g_assert_cmpint(block_pwrite(node->child, 8 * 4096, buf, 8192), ==, 0);
    memcpy(base, buf, 10);
    memcpy(base + 8 * 4096, buf, 8192);
    memcpy(view + 8 * 4096, buf, 8192);
    assert_reads(node, 0, view, size);
    g_assert_cmpint(block_flush(node), ==, 0);
    g_autofree uint8_t *file = image_contents(&img);
    g_assert_cmpmem(file, size, base, size);

    g_assert_cmpint(block_overlay_discard_all(node), ==, 0);
    g_assert_cmpuint(block_overlay_allocated(node), ==, 0);
    assert_reads(node, 0, base, size);
    /* And it works as new after that. */
    memset(buf, 0xe4, 4096);
    g_assert_cmpint(block_pwrite(node, 2 * 4096, buf, 4096), ==, 0);
    memcpy(base + 2 * 4096, buf, 4096);
    assert_reads(node, 0, base, size);
    block_node_close(node);
    g_autofree uint8_t *after = image_contents(&img);
    g_assert_cmpmem(after + 2 * 4096, 4096, img.init + 2 * 4096, 4096);
    image_destroy(&img);
}

/* A read-only image under a writable overlay (the secondary's guest may
 * write; the image stays as it was). */
static void test_overlay_readonly_base(void)
{
    Image img;
    uint8_t buf[1000];

    image_create(&img, 3 * 4096 + 10, 7);
    BlockNode *node = block_overlay_new(image_open(&img, true), 4096, NULL, NULL);
    g_assert_true(node->child->readonly);
    memset(buf, 0x42, sizeof(buf));
    /* The short last block, written in part. */
    g_assert_cmpint(block_pwrite(node, img.size - 500, buf, 500), ==, 0);
    g_assert_cmpint(block_flush(node), ==, 0);
    assert_reads(node, img.size - 500, buf, 500);
    /* Block 2, written from byte 3606 on: the base before that. */
    assert_reads(node, 2 * 4096, img.init + 2 * 4096, 3606);
    g_assert_cmpuint(block_overlay_allocated(node), ==, 2);
    /* Committing into a read-only image fails; the overlay keeps it all. */
    g_assert_cmpint(block_overlay_commit(node), ==, -EROFS);
    g_assert_cmpuint(block_overlay_allocated(node), ==, 2);
    assert_reads(node, img.size - 500, buf, 500);
    block_node_close(node);
    g_autofree uint8_t *file = image_contents(&img);
    g_assert_cmpmem(file, img.size, img.init, img.size);
    image_destroy(&img);
}

/* Commit writes what the overlay holds into the image, leaves the rest
 * (also what the base got underneath), and empties the overlay. */
static void test_overlay_commit(void)
{
    Image img;
    uint8_t buf[4096];
    g_autofree uint8_t *expect = NULL;

    image_create(&img, 4 * 4096 + 100, 11);
    expect = g_memdup2(img.init, img.size);
    BlockNode *node = block_overlay_new(image_open(&img, false), 4096, NULL, NULL);
    memset(buf, 0x5c, sizeof(buf));
    g_assert_cmpint(block_pwrite(node, 4096 + 10, buf, 20), ==, 0);
    g_assert_cmpint(block_pwrite(node, 4 * 4096, buf, 100), ==, 0);       /* the short last block */
    memcpy(expect + 4096 + 10, buf, 20);
    memcpy(expect + 4 * 4096, buf, 100);
    g_assert_cmpint(block_pwrite(node->child, 3 * 4096, buf, 50), ==, 0);
    memcpy(expect + 3 * 4096, buf, 50);
    g_assert_cmpint(block_overlay_commit(node), ==, 0);
    g_assert_cmpuint(block_overlay_allocated(node), ==, 0);
    assert_reads(node, 0, expect, img.size);
    g_autofree uint8_t *file = image_contents(&img);
    g_assert_cmpmem(file, img.size, expect, img.size);
    block_node_close(node);
    image_destroy(&img);
}

/* Commit while the guest goes on writing (COLO's secondary commits at
 * failover with its guest running): each write lands in a block of its
 * own, once; every write that completed must be in the image or still in
 * the overlay afterwards, none dropped by a commit that overtook it. */
#define CW_BLOCKS 16384

typedef struct CommitRun {
    BlockNode *node;
    gint written;               /* blocks whose write completed */
} CommitRun;

static gpointer commit_writer(gpointer data)
{
    CommitRun *run = data;

    for (gint b = 0; b < CW_BLOCKS; b++) {
        uint32_t mark = (uint32_t)b + 1;
        g_assert_cmpint(block_pwrite(run->node, (uint64_t)b * 512, &mark, sizeof(mark)), ==, 0);
        g_atomic_int_set(&run->written, b + 1);
    }
    return NULL;
}

static void test_overlay_commit_while_writing(void)
{
    Image img;
    CommitRun run = { 0 };
    unsigned commits = 0;

    image_create(&img, CW_BLOCKS * 512, 13);
    run.node = block_overlay_new(image_open(&img, false), 512, NULL, NULL);
    GThread *writer = g_thread_new("writer", commit_writer, &run);
    while (g_atomic_int_get(&run.written) < CW_BLOCKS) {
        g_assert_cmpint(block_overlay_commit(run.node), ==, 0);
        commits++;
    }
    g_thread_join(writer);
    g_assert_cmpuint(commits, >, 1);
    for (uint64_t b = 0; b < CW_BLOCKS; b++) {
        uint32_t mark = 0;
        g_assert_cmpint(block_pread(run.node, b * 512, &mark, sizeof(mark)), ==, 0);
        g_assert_cmpuint(mark, ==, b + 1);
    }
    block_node_close(run.node);
    image_destroy(&img);
}

/* ---- write log ---- */

static void assert_logged(const BlockLoggedWrite *w, uint64_t offset, const uint8_t *data, uint32_t len)
{
    g_assert_cmpuint(w->offset, ==, offset);
    g_assert_cmpuint(w->len, ==, len);
    g_assert_cmpmem(w->data, w->len, data, len);
}

/* Every completed write, in order, as it was written (vectored ones
 * gathered), split at 1 MiB; failed writes too; reads and flushes not;
 * each take hands over what came since the last. */
static void test_write_log(void)
{
    Image img;
    SpyLog spy = { 0 };
    const uint32_t big = 2 * (1u << 20) + 1000;
    g_autofree uint8_t *data = g_malloc(big);
    uint8_t back[64];

    image_create(&img, 4 << 20, 12);
    random_fill(data, big);
    BlockNode *node = block_write_log_new(spy_new(image_open(&img, false), &spy));
    g_assert_cmpuint(block_length(node), ==, img.size);
    struct iovec iov[3] = { { data, 10 }, { data + 10, 0 }, { data + 10, 90 } };
    g_assert_cmpint(block_pwritev(node, 7, iov, 3), ==, 0);
    g_assert_cmpint(block_pwrite(node, 1 << 20, data, big), ==, 0);
    g_assert_cmpint(block_pread(node, 7, back, sizeof(back)), ==, 0);
    g_assert_cmpmem(back, sizeof(back), data, sizeof(back));
    g_assert_cmpint(block_flush(node), ==, 0);
    spy.fail = -EIO;
    g_assert_cmpint(block_pwrite(node, 3, data + 5, 4), ==, -EIO);
    spy.fail = 0;
    g_assert_cmpint(block_pwrite(node, img.size, data, 1), ==, -EIO);    /* refused above it */

    g_autoptr(GPtrArray) first = block_write_log_take(node);
    g_assert_cmpuint(first->len, ==, 5);
    assert_logged(first->pdata[0], 7, data, 100);
    assert_logged(first->pdata[1], 1 << 20, data, 1 << 20);
    assert_logged(first->pdata[2], 2 << 20, data + (1 << 20), 1 << 20);
    assert_logged(first->pdata[3], 3 << 20, data + (2 << 20), 1000);
    assert_logged(first->pdata[4], 3, data + 5, 4);
    g_autoptr(GPtrArray) empty = block_write_log_take(node);
    g_assert_cmpuint(empty->len, ==, 0);
    g_assert_cmpint(block_pwrite(node, 0, data, 1), ==, 0);
    g_autoptr(GPtrArray) second = block_write_log_take(node);
    g_assert_cmpuint(second->len, ==, 1);
    assert_logged(second->pdata[0], 0, data, 1);
    block_node_close(node);
    g_assert_cmpuint(spy.closes, ==, 1);
    image_destroy(&img);
}

/* Random writes, reads, base writes, flushes, discards and commits,
 * vectored and unaligned, checked against a model: the guest's view, the
 * base, and which blocks the overlay holds. */
typedef struct OverlayModel {
    uint64_t gran;
    const char *dir;
} OverlayModel;

static int random_split(uint8_t *buf, size_t len, struct iovec *iov)
{
    int n = 0;

    while (len > 0 && n < 7) {
        size_t piece = (size_t)g_test_rand_int_range(0, 3000);    /* MIN evaluates twice */
        size_t take = n == 6 ? len : MIN(len, piece);
        iov[n++] = (struct iovec) { buf, take };
        buf += take;
        len -= take;
    }
    return n;
}

static void test_overlay_model(gconstpointer data)
{
    const OverlayModel *m = data;
    g_autofree char *dir = m->dir ? g_dir_make_tmp("block-overlay-XXXXXX", NULL) : NULL;
    Image img;
    const uint64_t size = 37 * m->gran + m->gran / 2 + 3;
    const uint64_t blocks = (size + m->gran - 1) / m->gran;
    g_autofree uint8_t *view = NULL, *base = NULL, *held = g_malloc0(blocks), *buf = g_malloc(size);
    struct iovec iov[7];

    image_create(&img, size, 8);
    view = g_memdup2(img.init, size);
    base = g_memdup2(img.init, size);
    BlockNode *node = block_overlay_new(image_open(&img, false), m->gran, dir, NULL);
    g_assert_nonnull(node);
    for (unsigned op = 0; op < 3000; op++) {
        uint64_t offset = (uint64_t)g_test_rand_int_range(0, (gint32)size);
        uint64_t max = MIN(size - offset, 3 * m->gran);
        size_t len = (size_t)g_test_rand_int_range(0, (gint32)max + 1);
        int kind = g_test_rand_int_range(0, 100);
        if (kind < 40) {                    /* guest write */
            random_fill(buf, len);
            g_assert_cmpint(block_pwritev(node, offset, iov, random_split(buf, len, iov)), ==, 0);
            memcpy(view + offset, buf, len);
            for (uint64_t b = offset / m->gran; len && b <= (offset + len - 1) / m->gran; b++) {
                held[b] = 1;
            }
        } else if (kind < 80) {             /* guest read */
            memset(buf, 0xcc, len);
            g_assert_cmpint(block_preadv(node, offset, iov, random_split(buf, len, iov)), ==, 0);
            g_assert_cmpmem(buf, len, view + offset, len);
        } else if (kind < 95) {             /* the base written underneath */
            random_fill(buf, len);
            g_assert_cmpint(block_pwrite(node->child, offset, buf, len), ==, 0);
            memcpy(base + offset, buf, len);
            for (size_t i = 0; i < len; i++) {
                if (!held[(offset + i) / m->gran]) {
                    view[offset + i] = buf[i];
                }
            }
        } else if (kind < 97) {
            g_assert_cmpint(block_flush(node), ==, 0);
        } else if (kind < 99) {
            g_assert_cmpint(block_overlay_discard_all(node), ==, 0);
            memcpy(view, base, size);
            memset(held, 0, blocks);
        } else {                            /* commit: the view becomes the base */
            g_assert_cmpint(block_overlay_commit(node), ==, 0);
            memcpy(base, view, size);
            memset(held, 0, blocks);
        }
        uint64_t nheld = 0;
        for (uint64_t b = 0; b < blocks; b++) {
            nheld += held[b];
        }
        g_assert_cmpuint(block_overlay_allocated(node), ==, nheld);
    }
    assert_reads(node, 0, view, size);
    block_node_close(node);
    g_autofree uint8_t *file = image_contents(&img);
    g_assert_cmpmem(file, size, base, size);
    image_destroy(&img);
    if (dir) {
        g_assert_cmpint(g_rmdir(dir), ==, 0);
    }
}

/* Two threads write the two halves of every block, none held before, at
 * once (in step, block by block): each write fills its block from the
 * base first, so without serialising them one half would be lost. Readers
 * meanwhile see each half either old or new, never mixed. */
#define PW_BLOCKS 2048
#define PW_GRAN 4096

typedef struct HalfRun {
    BlockNode *node;
    unsigned half;
    const uint8_t *init;
    gint *stop;
    pthread_barrier_t *step;
} HalfRun;

static gpointer half_writer(gpointer data)
{
    HalfRun *run = data;
    uint8_t fill[PW_GRAN / 2];

    memset(fill, 0x10 + run->half, sizeof(fill));
    for (uint64_t b = 0; b < PW_BLOCKS; b++) {
        pthread_barrier_wait(run->step);
        g_assert_cmpint(block_pwrite(run->node, b * PW_GRAN + run->half * sizeof(fill), fill, sizeof(fill)), ==, 0);
    }
    return NULL;
}

static gpointer half_reader(gpointer data)
{
    HalfRun *run = data;
    uint8_t buf[PW_GRAN];

    while (!g_atomic_int_get(run->stop)) {
        uint64_t b = (uint64_t)g_random_int_range(0, PW_BLOCKS);
        g_assert_cmpint(block_pread(run->node, b * PW_GRAN, buf, sizeof(buf)), ==, 0);
        for (unsigned h = 0; h < 2; h++) {
            const uint8_t *p = buf + h * PW_GRAN / 2;
            bool fresh = p[0] == 0x10 + h;
            for (unsigned i = 0; i < PW_GRAN / 2; i++) {
                g_assert_cmpuint(p[i], ==, fresh ? 0x10 + h : run->init[b * PW_GRAN + h * PW_GRAN / 2 + i]);
            }
        }
    }
    return NULL;
}

static void test_overlay_threads(void)
{
    Image img;
    gint stop = 0;
    GThread *threads[4];
    HalfRun runs[4];
    pthread_barrier_t step;

    pthread_barrier_init(&step, NULL, 2);
    image_create(&img, PW_BLOCKS * PW_GRAN, 9);
    BlockNode *node = block_overlay_new(image_open(&img, false), PW_GRAN, NULL, NULL);
    for (unsigned i = 0; i < 4; i++) {
        runs[i] = (HalfRun) { node, i % 2, img.init, &stop, &step };
        threads[i] = g_thread_new("overlay", i < 2 ? half_writer : half_reader, &runs[i]);
    }
    g_thread_join(threads[0]);
    g_thread_join(threads[1]);
    g_atomic_int_set(&stop, 1);
    g_thread_join(threads[2]);
    g_thread_join(threads[3]);
    g_autofree uint8_t *expect = g_malloc(img.size), *got = g_malloc(img.size);
    for (uint64_t i = 0; i < img.size; i++) {
        expect[i] = (uint8_t)(i % PW_GRAN < PW_GRAN / 2 ? 0x10 : 0x11);
    }
    g_assert_cmpint(block_pread(node, 0, got, img.size), ==, 0);
    g_assert_cmpmem(got, img.size, expect, img.size);
    g_assert_cmpuint(block_overlay_allocated(node), ==, PW_BLOCKS);
    block_node_close(node);
    image_destroy(&img);
    pthread_barrier_destroy(&step);
}

int main(int argc, char **argv)
{
    static const OverlayModel models[] = {
        { 4096, NULL }, { 512, NULL }, { 65536, NULL }, { 4096, "dir" },
    };

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/block/dirty-bitmap/setup-errors", test_bitmap_setup_errors);
    g_test_add_func("/block/dirty-bitmap/marks", test_bitmap_marks);
    g_test_add_func("/block/dirty-bitmap/queries", test_bitmap_queries);
    g_test_add_func("/block/dirty-bitmap/threads", test_bitmap_threads);
    g_test_add_func("/block/overlay/setup-errors", test_overlay_setup_errors);
    g_test_add_func("/block/overlay/semantics", test_overlay_semantics);
    g_test_add_func("/block/overlay/read-only-base", test_overlay_readonly_base);
    g_test_add_func("/block/overlay/commit", test_overlay_commit);
    g_test_add_func("/block/overlay/commit-while-writing", test_overlay_commit_while_writing);
    for (unsigned i = 0; i < G_N_ELEMENTS(models); i++) {
        g_autofree char *path = g_strdup_printf("/block/overlay/model/%" G_GUINT64_FORMAT "%s",
                                                models[i].gran, models[i].dir ? "-file" : "-memfd");
        g_test_add_data_func(path, &models[i], test_overlay_model);
    }
    g_test_add_func("/block/overlay/threads", test_overlay_threads);
    g_test_add_func("/block/write-log", test_write_log);
    return g_test_run();
}
