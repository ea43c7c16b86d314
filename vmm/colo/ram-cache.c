#include "config.h"

#include "colo/ram-cache.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gio/gio.h>

#define WORD_BITS (8 * sizeof(unsigned long))

static uint64_t block_pages(const RamBlock *b)
{
    return b->size / GUEST_PAGE_SIZE;
}

static size_t block_words(const RamBlock *b)
{
    return (block_pages(b) + WORD_BITS - 1) / WORD_BITS;
}

/* The cache starts as a copy of guest RAM. Pages that never held data
 * (ram_block_data_map) read as zero, as the fresh cache does: copy only
 * the others (a mostly unused 1 GiB guest is copied in milliseconds instead
 * of seconds, and the primary's guest waits for this at COLO's start). */
static void ram_cache_copy(uint8_t *dst, const RamBlock *b)
{
    g_autofree unsigned long *map = g_new0(unsigned long, block_words(b));
    uint64_t pages = block_pages(b), p = 0;

    ram_block_data_map(b, map);
    while (p < pages) {
        if (!(map[p / WORD_BITS] & (1UL << (p % WORD_BITS)))) {
            p++;
            continue;
        }
        uint64_t end = p + 1;
        while (end < pages && (map[end / WORD_BITS] & (1UL << (end % WORD_BITS)))) {
            end++;
        }
        memcpy(dst + p * GUEST_PAGE_SIZE, b->host + p * GUEST_PAGE_SIZE, (size_t)((end - p) * GUEST_PAGE_SIZE));
        p = end;
    }
}

bool ram_cache_init(RamCache *rc, const GuestMemory *mem, GError **error)
{
    memset(rc, 0, sizeof(*rc));
    rc->mem = mem;
    for (unsigned i = 0; i < guest_memory_nr_blocks(mem); i++) {
        const RamBlock *b = mem->blocks[i];
        void *p = mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
        if (p == MAP_FAILED) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                        "COLO RAM cache for %s (%" G_GUINT64_FORMAT " MiB): %s", b->id, b->size >> 20,
                        g_strerror(errno));
            ram_cache_fini(rc);
            return false;
        }
        /* Pages land here one by one, sparse: a 4 KiB fault each, where a
         * huge page would clear 2 MiB inside a checkpoint's pause. */
        madvise(p, b->size, MADV_NOHUGEPAGE);
        rc->copy[i] = p;
        rc->nr_blocks = i + 1;
        ram_cache_copy(p, b);
        rc->received[i] = g_new0(unsigned long, block_words(b));
    }
    return true;
}

void ram_cache_fini(RamCache *rc)
{
    for (unsigned i = 0; i < rc->nr_blocks; i++) {
        munmap(rc->copy[i], rc->mem->blocks[i]->size);
        g_free(rc->received[i]);
    }
    memset(rc, 0, sizeof(*rc));
}

static int ram_cache_block(const RamCache *rc, const RamBlock *block)
{
    for (unsigned i = 0; i < rc->nr_blocks; i++) {
        if (rc->mem->blocks[i] == block) {
            return (int)i;
        }
    }
    return -1;
}

bool ram_cache_place(void *opaque, const RamBlock *block, uint64_t offset, const uint8_t *data)
{
    RamCache *rc = opaque;
    int i = ram_cache_block(rc, block);

    /* ram_load checked the offset against the block; a block the cache does
     * not know was added after COLO began, which hot-plug refuses. */
    if (i < 0 || offset >= block->size) {
        return false;
    }
    uint8_t *dst = rc->copy[i] + offset;
    if (data) {
        memcpy(dst, data, GUEST_PAGE_SIZE);
    } else {
        memset(dst, 0, GUEST_PAGE_SIZE);
    }
    uint64_t page = offset / GUEST_PAGE_SIZE;
    /* Atomic: multifd channels place neighbouring pages at once. */
    __atomic_fetch_or(&rc->received[i][page / WORD_BITS], 1UL << (page % WORD_BITS), __ATOMIC_RELAXED);
    return true;
}

uint64_t ram_cache_commit(RamCache *rc, unsigned long *const *guest_dirty)
{
    uint64_t copied = 0;

    for (unsigned i = 0; i < rc->nr_blocks; i++) {
        const RamBlock *b = rc->mem->blocks[i];
        unsigned long *recv = rc->received[i];
        unsigned long *own = guest_dirty ? guest_dirty[i] : NULL;
        size_t words = block_words(b);

        for (size_t w = 0; w < words; w++) {
            unsigned long bits = recv[w] | (own ? own[w] : 0);
            recv[w] = 0;
            if (own) {
                own[w] = 0;
            }
            while (bits) {
                uint64_t page = w * WORD_BITS + (uint64_t)__builtin_ctzl(bits);
                bits &= bits - 1;
                if (page < block_pages(b)) {
                    uint64_t off = page * GUEST_PAGE_SIZE;
                    memcpy(b->host + off, rc->copy[i] + off, GUEST_PAGE_SIZE);
                    copied++;
                }
            }
        }
    }
    return copied;
}
