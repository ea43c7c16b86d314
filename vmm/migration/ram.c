/* Guest RAM in the migration stream: what the sender and the loader share. */
#include "config.h"

#include "migration/ram.h"
#include "migration/ram-priv.h"

#include <string.h>

G_STATIC_ASSERT(GUEST_PAGE_SIZE == 4096);

bool buffer_is_zero(const void *buf, size_t len)
{
    const unsigned long *p = buf;
    size_t words = len / sizeof(unsigned long);

    /* Eight words per step: cheap to vectorise, and a dirty page usually
     * fails on the first step. */
    for (size_t i = 0; i + 8 <= words; i += 8) {
        if (p[i] | p[i + 1] | p[i + 2] | p[i + 3] | p[i + 4] | p[i + 5] | p[i + 6] | p[i + 7]) {
            return false;
        }
    }
    for (size_t i = words & ~(size_t)7; i < words; i++) {
        if (p[i]) {
            return false;
        }
    }
    for (size_t i = words * sizeof(unsigned long); i < len; i++) {
        if (((const uint8_t *)buf)[i]) {
            return false;
        }
    }
    return true;
}

unsigned ram_block_index(const GuestMemory *mem, const RamBlock *b)
{
    for (unsigned i = 0; i < mem->nr_blocks; i++) {
        if (mem->blocks[i] == b) {
            return i;
        }
    }
    g_assert_not_reached();
}

const RamBlock *ram_block_by_id(const GuestMemory *mem, const char *id)
{
    for (unsigned i = 0; i < mem->nr_blocks; i++) {
        if (!strcmp(mem->blocks[i]->id, id)) {
            return mem->blocks[i];
        }
    }
    return NULL;
}
