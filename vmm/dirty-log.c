#include "config.h"

#include "dirty-log.h"

#include <string.h>

#include <qb/qblog.h>
#include <urcu-bp.h>

#define BITS_PER_WORD     (8 * sizeof(unsigned long))
#define BLOCK_WORDS       (DIRTY_LOG_BLOCK_PAGES / BITS_PER_WORD)

struct DirtyLogBlocks {
    struct rcu_head rcu;
    uint64_t nblocks;
    unsigned long *block[];
};

static DirtyLogBlocks *dirty_blocks_new(uint64_t nblocks, const DirtyLogBlocks *old)
{
    DirtyLogBlocks *b = g_malloc0(sizeof(*b) + nblocks * sizeof(unsigned long *));
    uint64_t i = 0;

    b->nblocks = nblocks;
    /* Bitmap blocks are shared with the old array: only the array is new. */
    if (old) {
        for (; i < old->nblocks; i++) {
            b->block[i] = old->block[i];
        }
    }
    for (; i < nblocks; i++) {
        b->block[i] = g_malloc0(BLOCK_WORDS * sizeof(unsigned long));
    }
    return b;
}

static void dirty_blocks_free_array(struct rcu_head *head)
{
    g_free(caa_container_of(head, DirtyLogBlocks, rcu));
}

void dirty_log_init(DirtyLog *log, uint64_t npages)
{
    g_mutex_init(&log->grow_lock);
    log->blocks = dirty_blocks_new((npages + DIRTY_LOG_BLOCK_PAGES - 1) / DIRTY_LOG_BLOCK_PAGES, NULL);
}

void dirty_log_destroy(DirtyLog *log)
{
    DirtyLogBlocks *b = log->blocks;

    if (!b) {
        return;
    }
    /* No reader may remain: called once every thread using the log is gone. */
    for (uint64_t i = 0; i < b->nblocks; i++) {
        g_free(b->block[i]);
    }
    g_free(b);
    log->blocks = NULL;
    g_mutex_clear(&log->grow_lock);
}

void dirty_log_grow(DirtyLog *log, uint64_t npages)
{
    uint64_t want = (npages + DIRTY_LOG_BLOCK_PAGES - 1) / DIRTY_LOG_BLOCK_PAGES;

    g_mutex_lock(&log->grow_lock);
    DirtyLogBlocks *old = log->blocks;      /* stable: only growers replace it */
    if (want > old->nblocks) {
        DirtyLogBlocks *b = dirty_blocks_new(want, old);
        rcu_assign_pointer(log->blocks, b);
        call_rcu(&old->rcu, dirty_blocks_free_array);
    }
    g_mutex_unlock(&log->grow_lock);
}

uint64_t dirty_log_pages(DirtyLog *log)
{
    rcu_read_lock();
    uint64_t n = rcu_dereference(log->blocks)->nblocks * DIRTY_LOG_BLOCK_PAGES;
    rcu_read_unlock();
    return n;
}

void dirty_log_mark(DirtyLog *log, uint64_t page, uint64_t count)
{
    static gint warned;

    rcu_read_lock();
    DirtyLogBlocks *b = rcu_dereference(log->blocks);
    uint64_t limit = b->nblocks * DIRTY_LOG_BLOCK_PAGES;
    if (page >= limit || count > limit - page) {
        if (g_atomic_int_compare_and_exchange(&warned, 0, 1)) {
            qb_log(LOG_WARNING, "dirty log: page %" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT
                   " beyond the %" G_GUINT64_FORMAT " covered, ignored", page, count, limit);
        }
        count = page < limit ? limit - page : 0;
    }
    for (uint64_t p = page; p < page + count; p++) {
        unsigned long *word = &b->block[p / DIRTY_LOG_BLOCK_PAGES][(p % DIRTY_LOG_BLOCK_PAGES) / BITS_PER_WORD];
        unsigned long bit = 1UL << (p % BITS_PER_WORD);
        if (!(__atomic_load_n(word, __ATOMIC_RELAXED) & bit)) {
            __atomic_fetch_or(word, bit, __ATOMIC_RELEASE);
        }
    }
    rcu_read_unlock();
}

uint64_t dirty_log_collect(DirtyLog *log, uint64_t first, uint64_t count, unsigned long *dest)
{
    uint64_t newly = 0;

    g_assert(first % BITS_PER_WORD == 0);
    rcu_read_lock();
    DirtyLogBlocks *b = rcu_dereference(log->blocks);
    uint64_t limit = b->nblocks * DIRTY_LOG_BLOCK_PAGES;
    for (uint64_t off = 0; off < count && first + off < limit; off += BITS_PER_WORD) {
        uint64_t p = first + off;
        unsigned long *word = &b->block[p / DIRTY_LOG_BLOCK_PAGES][(p % DIRTY_LOG_BLOCK_PAGES) / BITS_PER_WORD];
        if (!__atomic_load_n(word, __ATOMIC_RELAXED)) {
            continue;
        }
        unsigned long bits = __atomic_exchange_n(word, 0UL, __ATOMIC_ACQ_REL);
        if (count - off < BITS_PER_WORD) {
            /* Keep the bits past the range for their own collector. */
            unsigned long keep = bits & ~((1UL << (count - off)) - 1);
            if (keep) {
                __atomic_fetch_or(word, keep, __ATOMIC_RELEASE);
            }
            bits &= (1UL << (count - off)) - 1;
        }
        unsigned long *d = &dest[off / BITS_PER_WORD];
        newly += (uint64_t)__builtin_popcountl(bits & ~*d);
        *d |= bits;
    }
    rcu_read_unlock();
    return newly;
}
