/* A copy-on-write overlay over a base node (COLO's secondary: the guest's
 * own writes must not reach the image, and are dropped at each
 * checkpoint). Writes go to the overlay's own storage, at @granularity
 * blocks; reads come from the overlay for blocks it holds, else from the
 * base. A write that covers part of a block the overlay does not hold yet
 * first copies that block from the base. The base is never written through
 * this node: whoever owns the stack may write the base itself (the
 * secondary applies the primary's writes there), and those writes show
 * through wherever the overlay holds nothing.
 *
 * Storage: an anonymous memfd (RAM, or swap) or, with a directory, an
 * unlinked file in it; sparse, as large as the base, block N at offset
 * N * granularity. Any thread: reads run side by side, writes and
 * block_overlay_discard_all() one at a time (a read-write lock). */
#ifndef COLO_VMM_BLOCK_OVERLAY_H
#define COLO_VMM_BLOCK_OVERLAY_H

#include <stdint.h>
#include <glib.h>

#include "block/block.h"

#define BLOCK_OVERLAY_DEFAULT_GRANULARITY 4096
#define BLOCK_OVERLAY_MAX_GRANULARITY (1024 * 1024)

extern const BlockDriver block_overlay_driver;

/* An empty overlay over @base (owned from now on if it succeeds, left to
 * the caller if not: an overlay is put into a live stack; @base may be
 * read-only: the overlay node is writable). @granularity: a power of two
 * from 512 bytes to 1 MiB, or 0 for 4 KiB. @dir: NULL for a memfd. */
BlockNode *block_overlay_new(BlockNode *base, uint64_t granularity, const char *dir, GError **error);

/* Drop everything the overlay holds: reads see the base again, and the
 * storage is given back. 0 or the -errno of giving it back (the overlay is
 * empty either way). */
int block_overlay_discard_all(BlockNode *node);

/* Write everything the overlay holds into the base, flush the base, then
 * drop it (COLO's secondary after failover: its guest's view becomes the
 * image). 0 or the first -errno (the overlay then still holds it all). */
int block_overlay_commit(BlockNode *node);

/* Blocks held, and bytes per block. */
uint64_t block_overlay_allocated(BlockNode *node);
uint64_t block_overlay_granularity(BlockNode *node);

#endif
