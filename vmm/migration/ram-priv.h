/* Helpers shared by the RAM sender (ram-save.c) and loader (ram-load.c). */
#ifndef COLO_VMM_MIGRATION_RAM_PRIV_H
#define COLO_VMM_MIGRATION_RAM_PRIV_H

#include <string.h>

#include "migration/ram.h"

#define BITS_PER_WORD (8 * sizeof(unsigned long))

static inline uint64_t block_pages(const RamBlock *b)
{
    return b->size / GUEST_PAGE_SIZE;
}

static inline size_t bitmap_words(uint64_t bits)
{
    return (bits + BITS_PER_WORD - 1) / BITS_PER_WORD;
}

/* A bitmap of @pages bits, all set. */
static inline unsigned long *bitmap_new_full(uint64_t pages)
{
    size_t words = bitmap_words(pages);
    unsigned long *map = g_new(unsigned long, words);

    memset(map, 0xff, words * sizeof(unsigned long));
    if (pages % BITS_PER_WORD) {
        map[words - 1] = (1UL << (pages % BITS_PER_WORD)) - 1;
    }
    return map;
}

/* Index of @b in mem->blocks (it must be there). */
unsigned ram_block_index(const GuestMemory *mem, const RamBlock *b);

/* A block id as the stream carries it (u8 length, bytes), NUL-terminated
 * into @id; false once the channel has failed. */
bool ram_read_id(MigChannel *c, char id[MIG_MAX_ID_LEN + 1]);

#endif
