/* Guest RAM in the migration stream: the source's dirty bitmaps and page
 * sender, the destination's page loader. */
#ifndef COLO_VMM_MIGRATION_RAM_H
#define COLO_VMM_MIGRATION_RAM_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "kvm.h"
#include "memory.h"
#include "migration/channel.h"
#include "migration/format.h"

typedef struct RamStats {
    uint64_t transferred;       /* bytes of RAM records sent */
    uint64_t duplicate;         /* zero pages (sent as a header only) */
    uint64_t normal;            /* full pages */
    uint64_t dirty_sync_count;
    uint64_t postcopy_requests;
} RamStats;

/* Source side. Owned by the migration thread. */
typedef struct RamSave {
    GuestMemory *mem;
    Kvm *kvm;
    unsigned long *bmap[GUEST_MAX_REGIONS];     /* per block, bit = page to send */
    unsigned nr_blocks;         /* blocks known to this migration; RAM added
                                 * later joins at the next sync */
    unsigned announced;         /* blocks whose memory device went out */
    uint64_t dirty;             /* bits set across all bmaps */
    const RamBlock *last_block; /* for MIG_PAGE_CONTINUE */
    RamStats stats;
    bool logging;
} RamSave;

/* Start dirty logging and mark every page to send. */
bool ram_save_setup(RamSave *rs, GuestMemory *mem, Kvm *kvm, GError **error);
void ram_save_cleanup(RamSave *rs);

/* The memory devices (pc-dimm) among the blocks, then the list of RAM
 * blocks (id, size) so the destination can check its own. */
void ram_save_blocks(RamSave *rs, MigChannel *c);

/* Collect KVM's and the device log's dirty bits into the bitmaps; returns
 * the number of pages now waiting. RAM added since the last sync joins
 * here with every page to send. */
bool ram_save_sync(RamSave *rs, GError **error);

/* Describe RAM added since the last call on @c (a MIG_REC_MEMORY_DEVICE
 * each), before any of its pages; returns how many. */
unsigned ram_save_announce(RamSave *rs, MigChannel *c);

/* Send up to @max_pages waiting pages as one RAM record (0 = all). Stops
 * early, between pages, when *@stop becomes true. Returns pages sent. */
uint64_t ram_save_pass(RamSave *rs, MigChannel *c, uint64_t max_pages, const gint *stop);

uint64_t ram_save_remaining(const RamSave *rs);

/* A checkpoint's pages, copied aside while the guest stood still and sent
 * once it runs again (COLO): the pause costs a copy, not the network. */
typedef struct RamCapture {
    uint8_t *data;              /* the copies, in order */
    struct RamCapturedPage {
        const RamBlock *block;
        uint64_t offset;
    } *where;
    uint64_t n, capacity;       /* pages */
} RamCapture;

/* Guest stopped: copy every waiting page aside (after ram_save_sync) and
 * forget it. Returns the pages captured. */
uint64_t ram_save_capture(RamSave *rs, RamCapture *cap);
/* The captured pages as one RAM record (zero pages as ZERO entries,
 * neighbours as RUN entries); they must stay until @c is flushed. */
void ram_capture_send(RamSave *rs, const RamCapture *cap, MigChannel *c);
void ram_capture_free(RamCapture *cap);

/* Forget every page waiting (COLO's secondary: its guest and the cache are
 * equal when COLO begins). */
void ram_save_clear(RamSave *rs);

/* Destination: which pages may hold data. Guest RAM of a fresh VM is
 * mostly untouched, and a zero page there needs no work at all: reading it
 * to check would allocate it. */
typedef struct RamStore RamStore;

typedef struct RamLoadState {
    unsigned long *maybe_data[GUEST_MAX_REGIONS];
    gint no_pwrite[GUEST_MAX_REGIONS];     /* the block's file refused pwrite (hugetlbfs) */
    RamStore *store;            /* ram_load's store thread and its buffers, made on first use */
} RamLoadState;

void ram_load_state_init(RamLoadState *st, const GuestMemory *mem);
/* Frees the maps, stops the store thread (no ram_load may be running). */
void ram_load_state_clear(RamLoadState *st);

/* Places one page during postcopy, atomically (@data NULL: a zero page).
 * Returns false on an error it has logged. */
typedef bool (*RamPlaceFunc)(void *opaque, const RamBlock *block, uint64_t offset,
                             const uint8_t *data);

/* Destination side: one RAM record from @c into @mem. Every id, offset and
 * flag is checked; a malformed record fails with @error and leaves guest
 * memory outside the named pages untouched. With @place, pages go through
 * it instead of being written in place. Without, a store thread writes the
 * pages while this one reads the next (with @st); either way every page is
 * in place when it returns. @stats may be updated from several loaders at
 * once (atomic adds). One ram_load per @st at a time. */
bool ram_load(GuestMemory *mem, MigChannel *c, RamStats *stats, RamLoadState *st,
              RamPlaceFunc place, void *opaque, GError **error);

/* A zero page arrived for @block at @offset: clear it unless it is known to
 * be zero already. Safe from several threads. */
void ram_load_zero_page(RamLoadState *st, const GuestMemory *mem, const RamBlock *block, uint64_t offset);
/* Store @len bytes of received pages at @offset of @block. Through the
 * block's file where possible: a whole-page pwrite fills a fresh page
 * without the kernel first clearing it, as a write through the mapping
 * would (the first touch faults the page in zeroed). */
void ram_load_store(RamLoadState *st, const GuestMemory *mem, const RamBlock *block, uint64_t offset,
                    const void *data, size_t len);

/* A full page was written there. */
void ram_load_note_data(RamLoadState *st, const GuestMemory *mem, const RamBlock *block, uint64_t offset);

/* Send one page as a RAM record of its own on @c (postcopy demand pages,
 * on their own channel; independent of any RamSave's position). */
void ram_send_single_page(MigChannel *c, const RamBlock *block, uint64_t offset, RamStats *stats);

/* Ranges of pages still to send, for the postcopy discard list: calls
 * @fn(block, first_page, npages) for each run of set bits. */
void ram_save_for_each_dirty_run(RamSave *rs, void (*fn)(void *opaque, const RamBlock *b,
                                                         uint64_t first, uint64_t n), void *opaque);

/* Check the source's block list against ours. */
bool ram_load_blocks(GuestMemory *mem, MigChannel *c, GError **error);

/* A memory device record, as ram_save_announce writes it. */
typedef struct RamDeviceRecord {
    char id[MIG_MAX_ID_LEN + 1];        /* the pc-dimm */
    char memdev[MIG_MAX_ID_LEN + 1];    /* its backend: the RAM block's id */
    uint32_t slot;
    uint64_t addr;
    uint64_t size;
} RamDeviceRecord;

bool ram_read_device_record(MigChannel *c, RamDeviceRecord *rec, GError **error);

/* A block was added to @mem at index @index on the destination: a fresh
 * one, so all of it is known to be zero. */
void ram_load_state_add_block(RamLoadState *st, const GuestMemory *mem, unsigned index);

const RamBlock *ram_block_by_id(const GuestMemory *mem, const char *id);

/* True if all @len bytes are zero (host code: the compiler vectorises it). */
bool buffer_is_zero(const void *buf, size_t len);

#endif
