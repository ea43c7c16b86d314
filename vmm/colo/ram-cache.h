/* The secondary's RAM cache: a private copy of the primary's memory as of
 * the last checkpoint. A checkpoint's pages land here, never in the running
 * secondary guest; at commit, every page either side dirtied since the last
 * checkpoint is copied from here into the guest (docs/colo.md). */
#ifndef COLO_VMM_COLO_RAM_CACHE_H
#define COLO_VMM_COLO_RAM_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "memory.h"

typedef struct RamCache {
    const GuestMemory *mem;
    unsigned nr_blocks;
    uint8_t *copy[GUEST_MAX_REGIONS];           /* per block, its size */
    unsigned long *received[GUEST_MAX_REGIONS]; /* pages placed since the last commit */
} RamCache;

/* Copy every block of @mem as it is now (the state both sides start from). */
bool ram_cache_init(RamCache *rc, const GuestMemory *mem, GError **error);
void ram_cache_fini(RamCache *rc);

/* A RamPlaceFunc (migration/ram.h): one received page into the cache
 * (@data NULL: a zero page). */
bool ram_cache_place(void *opaque, const RamBlock *block, uint64_t offset, const uint8_t *data);

/* Guest paused: copy into guest RAM every page received since the last
 * commit or set in @guest_dirty (per block, as RamSave's bitmaps: the
 * secondary guest's own writes); clears both. Returns the pages copied. */
uint64_t ram_cache_commit(RamCache *rc, unsigned long *const *guest_dirty);

#endif
