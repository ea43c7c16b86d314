/* The VMM's own record of guest pages written by devices (DMA into RX
 * buffers, used rings, block reads), beside KVM's dirty log of vCPU writes.
 * Live migration and COLO checkpoints collect both.
 *
 * Pages are numbered in one space across all RAM blocks (a block's pages
 * start at its ram_offset / page size). The bitmap is cut into fixed-size
 * blocks reached through an array that RCU protects, as in QEMU's
 * DirtyMemoryBlocks: RAM added at run time grows the array by publishing a
 * new copy, while device threads go on marking and the migration thread
 * goes on collecting, with no lock on either path. */
#ifndef COLO_VMM_DIRTY_LOG_H
#define COLO_VMM_DIRTY_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#define DIRTY_LOG_BLOCK_PAGES (1ULL << 18)     /* 1 GiB of 4 KiB pages per block */

typedef struct DirtyLogBlocks DirtyLogBlocks;

typedef struct DirtyLog {
    DirtyLogBlocks *blocks;     /* RCU-protected */
    GMutex grow_lock;           /* serialises growers only */
} DirtyLog;

void dirty_log_init(DirtyLog *log, uint64_t npages);
void dirty_log_destroy(DirtyLog *log);

/* Cover at least @npages pages; existing bits stay where they are. Any thread. */
void dirty_log_grow(DirtyLog *log, uint64_t npages);

/* Mark [page, page + count) dirty. Any thread, lock-free; pages beyond the
 * covered size are ignored (and logged once), never written out of bounds. */
void dirty_log_mark(DirtyLog *log, uint64_t page, uint64_t count);

/* Move the bits of [first, first + count) into @dest (bit 0 = page @first),
 * clearing them here atomically so no mark is lost; returns how many were
 * newly set in @dest. @first must be a multiple of 64. */
uint64_t dirty_log_collect(DirtyLog *log, uint64_t first, uint64_t count, unsigned long *dest);

/* Pages covered. */
uint64_t dirty_log_pages(DirtyLog *log);

#endif
