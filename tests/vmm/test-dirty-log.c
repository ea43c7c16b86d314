/* The device dirty log: marking, collecting, and growth under RCU while
 * other threads mark and collect. */
#include "config.h"

#include <glib.h>
#include <string.h>

#include "dirty-log.h"
#include "memory.h"

#define WORD_BITS (8 * sizeof(unsigned long))

static bool test_bit(const unsigned long *map, uint64_t bit)
{
    return map[bit / WORD_BITS] & (1UL << (bit % WORD_BITS));
}

static void test_mark_collect(void)
{
    DirtyLog log;
    unsigned long *dest = g_new0(unsigned long, DIRTY_LOG_BLOCK_PAGES / WORD_BITS);

    dirty_log_init(&log, 1000);
    g_assert_cmpuint(dirty_log_pages(&log), ==, DIRTY_LOG_BLOCK_PAGES);
    dirty_log_mark(&log, 3, 1);
    dirty_log_mark(&log, 63, 2);            /* spans a word boundary */
    dirty_log_mark(&log, 100, 1);
    /* Collect [0, 64) only: page 64 and 100 stay for a later collector. */
    g_assert_cmpuint(dirty_log_collect(&log, 0, 64, dest), ==, 2);
    g_assert_true(test_bit(dest, 3) && test_bit(dest, 63) && !test_bit(dest, 64));
    memset(dest, 0, 16);
    g_assert_cmpuint(dirty_log_collect(&log, 64, 64, dest), ==, 2);
    g_assert_true(test_bit(dest, 0) && test_bit(dest, 36));
    /* Collected bits are gone; a second collect finds nothing. */
    memset(dest, 0, 16);
    g_assert_cmpuint(dirty_log_collect(&log, 0, 128, dest), ==, 0);
    /* Out of range: ignored, not written. */
    dirty_log_mark(&log, DIRTY_LOG_BLOCK_PAGES + 5, 1);
    dirty_log_mark(&log, UINT64_MAX - 1, 4);
    dirty_log_destroy(&log);
    g_free(dest);
}

/* guest_memory_write is the device write path: it marks what it wrote. */
static void test_guest_write_marks(void)
{
    GuestMemoryConfig cfg = { .size = 8 << 20 };
    GuestMemory *mem = guest_memory_new(&cfg, NULL);
    unsigned long dest[2048 / WORD_BITS] = { 0 };
    char buf[6000] = { 1 };

    g_assert_true(guest_memory_write(mem, 0x3000 + 100, buf, sizeof(buf)));   /* pages 3 and 4 */
    guest_memory_mark_dirty(mem, 0x10000, 1);                                 /* page 16 */
    g_assert_cmpuint(dirty_log_collect(&mem->dirty, 0, 2048, dest), ==, 3);
    g_assert_true(test_bit(dest, 3) && test_bit(dest, 4) && test_bit(dest, 16));
    g_assert_false(guest_memory_write(mem, (8 << 20) - 1, buf, 2));
    guest_memory_free(mem);
}

typedef struct {
    DirtyLog *log;
    uint64_t pages;             /* how far markers may go (grows) */
    gint stop;
    unsigned long *marked;      /* pages a marker marked, written by that marker only */
    unsigned long *collected;   /* union of every collect */
    uint64_t cover;             /* pages covered by the bitmaps above */
} Race;

static gpointer marker_thread(gpointer opaque)
{
    Race *r = opaque;
    GRand *rand = g_rand_new_with_seed(42);

    while (!g_atomic_int_get(&r->stop)) {
        uint64_t limit = __atomic_load_n(&r->pages, __ATOMIC_ACQUIRE);
        uint64_t page = (uint64_t)g_rand_int_range(rand, 0, (gint32)limit);
        dirty_log_mark(r->log, page, 1);
        __atomic_fetch_or(&r->marked[page / WORD_BITS], 1UL << (page % WORD_BITS), __ATOMIC_RELAXED);
    }
    g_rand_free(rand);
    return NULL;
}

static gpointer collector_thread(gpointer opaque)
{
    Race *r = opaque;

    while (!g_atomic_int_get(&r->stop)) {
        dirty_log_collect(r->log, 0, r->cover, r->collected);
    }
    return NULL;
}

static void test_grow_while_marking(void)
{
    DirtyLog log;
    Race r = { .log = &log, .pages = DIRTY_LOG_BLOCK_PAGES, .cover = 8 * DIRTY_LOG_BLOCK_PAGES };

    r.marked = g_new0(unsigned long, r.cover / WORD_BITS);
    r.collected = g_new0(unsigned long, r.cover / WORD_BITS);
    dirty_log_init(&log, DIRTY_LOG_BLOCK_PAGES);
    GThread *m = g_thread_new("marker", marker_thread, &r);
    GThread *c = g_thread_new("collector", collector_thread, &r);
    for (uint64_t blocks = 2; blocks <= 8; blocks++) {
        g_usleep(20000);
        dirty_log_grow(&log, blocks * DIRTY_LOG_BLOCK_PAGES);
        __atomic_store_n(&r.pages, blocks * DIRTY_LOG_BLOCK_PAGES, __ATOMIC_RELEASE);
    }
    g_usleep(20000);
    g_atomic_int_set(&r.stop, 1);
    g_thread_join(m);
    g_thread_join(c);
    dirty_log_collect(&log, 0, r.cover, r.collected);

    /* Nothing marked was lost across any growth. */
    uint64_t marked = 0;
    for (uint64_t w = 0; w < r.cover / WORD_BITS; w++) {
        g_assert_cmphex(r.marked[w] & ~r.collected[w], ==, 0);
        marked += (uint64_t)__builtin_popcountl(r.marked[w]);
    }
    g_assert_cmpuint(marked, >, 1000);
    g_assert_cmpuint(dirty_log_pages(&log), ==, 8 * DIRTY_LOG_BLOCK_PAGES);
    dirty_log_destroy(&log);
    g_free(r.marked);
    g_free(r.collected);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/dirty-log/mark-collect", test_mark_collect);
    g_test_add_func("/dirty-log/guest-write-marks", test_guest_write_marks);
    g_test_add_func("/dirty-log/grow-while-marking", test_grow_while_marking);
    return g_test_run();
}
