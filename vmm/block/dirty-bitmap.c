#include "config.h"

#include "block/dirty-bitmap.h"

typedef struct DirtyBitmap {
    unsigned shift;             /* log2 of the granularity */
    uint64_t blocks;
    uint64_t *words;            /* bit b of word w: block 64 * w + b; atomics only */
} DirtyBitmap;

static DirtyBitmap *dirty_bitmap_of(BlockNode *node)
{
    g_assert(node->drv == &block_dirty_bitmap_driver);
    return node->opaque;
}

/* Apply @set (or clear) to blocks [first, first + count), a word at a time. */
static void dirty_bitmap_update(DirtyBitmap *db, uint64_t first, uint64_t count, bool set)
{
    uint64_t end = first >= db->blocks ? first : first + MIN(count, db->blocks - first);

    while (first < end) {
        unsigned bit = (unsigned)(first % 64);
        uint64_t n = MIN(end - first, (uint64_t)(64 - bit));
        uint64_t mask = (n == 64 ? ~0ULL : ((1ULL << n) - 1)) << bit;
        if (set) {
            __atomic_fetch_or(&db->words[first / 64], mask, __ATOMIC_RELEASE);
        } else {
            __atomic_fetch_and(&db->words[first / 64], ~mask, __ATOMIC_ACQ_REL);
        }
        first += n;
    }
}

static int dirty_bitmap_pwritev(BlockNode *node, uint64_t offset, const struct iovec *iov, int iovcnt,
                                size_t bytes)
{
    DirtyBitmap *db = node->opaque;
    int r = block_pwritev(node->child, offset, iov, iovcnt);
    uint64_t first = offset >> db->shift, last = (offset + bytes - 1) >> db->shift;

    /* After the write, also a failed one: see the header. */
    dirty_bitmap_update(db, first, last - first + 1, true);
    return r;
}

static void dirty_bitmap_close(BlockNode *node)
{
    DirtyBitmap *db = node->opaque;

    g_free(db->words);
    g_free(db);
}

const BlockDriver block_dirty_bitmap_driver = {
    .name = "dirty-bitmap",
    .pwritev = dirty_bitmap_pwritev,
    .close = dirty_bitmap_close,
};

BlockNode *block_dirty_bitmap_new(BlockNode *child, uint64_t granularity, GError **error)
{
    if (!block_granularity_ok(&granularity, BLOCK_DIRTY_BITMAP_DEFAULT_GRANULARITY, 1ULL << 30, error)) {
        return NULL;
    }
    DirtyBitmap *db = g_new0(DirtyBitmap, 1);
    db->shift = (unsigned)g_bit_nth_lsf(granularity, -1);
    db->blocks = (child->size + granularity - 1) >> db->shift;
    db->words = g_new0(uint64_t, (db->blocks + 63) / 64);
    g_autofree char *name = g_strdup_printf("dirty-bitmap(%s)", child->name);
    return block_node_new(&block_dirty_bitmap_driver, name, child->size, child->readonly, child, db);
}

uint64_t block_dirty_bitmap_granularity(BlockNode *node)
{
    return 1ULL << dirty_bitmap_of(node)->shift;
}

uint64_t block_dirty_bitmap_blocks(BlockNode *node)
{
    return dirty_bitmap_of(node)->blocks;
}

bool block_dirty_bitmap_test(BlockNode *node, uint64_t block)
{
    DirtyBitmap *db = dirty_bitmap_of(node);

    return block < db->blocks &&
           (__atomic_load_n(&db->words[block / 64], __ATOMIC_ACQUIRE) >> (block % 64) & 1);
}

uint64_t block_dirty_bitmap_count(BlockNode *node)
{
    DirtyBitmap *db = dirty_bitmap_of(node);
    uint64_t n = 0;

    for (uint64_t w = 0; w < (db->blocks + 63) / 64; w++) {
        n += (uint64_t)__builtin_popcountll(__atomic_load_n(&db->words[w], __ATOMIC_RELAXED));
    }
    return n;
}

bool block_dirty_bitmap_next(BlockNode *node, uint64_t from, uint64_t *block)
{
    DirtyBitmap *db = dirty_bitmap_of(node);

    for (uint64_t w = from / 64; from < db->blocks; w++, from = w * 64) {
        uint64_t bits = __atomic_load_n(&db->words[w], __ATOMIC_ACQUIRE) >> (from % 64);
        if (bits) {
            *block = from + (uint64_t)__builtin_ctzll(bits);
            return true;
        }
    }
    return false;
}

bool block_dirty_bitmap_test_and_clear(BlockNode *node, uint64_t block)
{
    DirtyBitmap *db = dirty_bitmap_of(node);
    uint64_t mask = 1ULL << (block % 64);

    return block < db->blocks && (__atomic_fetch_and(&db->words[block / 64], ~mask, __ATOMIC_ACQ_REL) & mask);
}

void block_dirty_bitmap_set(BlockNode *node, uint64_t first, uint64_t count)
{
    dirty_bitmap_update(dirty_bitmap_of(node), first, count, true);
}

void block_dirty_bitmap_clear(BlockNode *node, uint64_t first, uint64_t count)
{
    dirty_bitmap_update(dirty_bitmap_of(node), first, count, false);
}
