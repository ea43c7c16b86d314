/* A filter that records which blocks of its child were written: one bit
 * per @granularity bytes, set by every write that touches the block (also
 * a write that failed, as part of it may have landed). For copying a disk
 * while the guest writes it: copy everything, then, until the bitmap is
 * (nearly) clean, take-and-clear dirty blocks and copy those again.
 *
 * Bits are set once a write has completed, never before: a copier that
 * clears a bit and then reads the block either sees the write's data or
 * finds the bit set again (the same rule as the device dirty log of guest
 * RAM). Marking and every query are lock-free and may run on any thread at
 * once; reads, writes and flushes pass through to the child unchanged. */
#ifndef COLO_VMM_BLOCK_DIRTY_BITMAP_H
#define COLO_VMM_BLOCK_DIRTY_BITMAP_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "block/block.h"

#define BLOCK_DIRTY_BITMAP_DEFAULT_GRANULARITY (64 * 1024)

extern const BlockDriver block_dirty_bitmap_driver;

/* A filter over @child (owned from now on if it succeeds, left to the
 * caller if not, as for the overlay: a filter goes into a stack a device
 * is using); @granularity is a power of two from 512 bytes to 1 GiB, or 0
 * for the default. All blocks start clean. */
BlockNode *block_dirty_bitmap_new(BlockNode *child, uint64_t granularity, GError **error);

/* Bytes per bit, and bits (the last block may be shorter than the rest). */
uint64_t block_dirty_bitmap_granularity(BlockNode *node);
uint64_t block_dirty_bitmap_blocks(BlockNode *node);

/* Is block @block dirty? */
bool block_dirty_bitmap_test(BlockNode *node, uint64_t block);
/* Dirty blocks now. */
uint64_t block_dirty_bitmap_count(BlockNode *node);
/* The first dirty block at or after @from in *@block; false if none. */
bool block_dirty_bitmap_next(BlockNode *node, uint64_t from, uint64_t *block);
/* Clear block @block atomically; true if it was dirty. */
bool block_dirty_bitmap_test_and_clear(BlockNode *node, uint64_t block);
/* Set or clear blocks [@first, @first + @count) (clamped to the bitmap). */
void block_dirty_bitmap_set(BlockNode *node, uint64_t first, uint64_t count);
void block_dirty_bitmap_clear(BlockNode *node, uint64_t first, uint64_t count);

#endif
