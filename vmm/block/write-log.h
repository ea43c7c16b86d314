/* A filter that keeps a copy of every write that completed on its child,
 * in order, until taken (COLO's primary: the writes of a checkpoint's
 * epoch travel with the checkpoint, so that the secondary's image holds
 * them before it answers LOADED). Reads and flushes pass through. Any
 * thread: the log is under a lock. */
#ifndef COLO_VMM_BLOCK_WRITE_LOG_H
#define COLO_VMM_BLOCK_WRITE_LOG_H

#include <stdint.h>
#include <glib.h>

#include "block/block.h"

extern const BlockDriver block_write_log_driver;

/* One logged write: @len bytes of @data at @offset. */
typedef struct BlockLoggedWrite {
    uint64_t offset;
    uint32_t len;
    uint8_t data[];
} BlockLoggedWrite;

/* A filter over @child (owned from now on). */
BlockNode *block_write_log_new(BlockNode *child);

/* The writes logged since the last take (a GPtrArray of BlockLoggedWrite,
 * g_free'd with it), and a fresh log for the writes from now on. */
GPtrArray *block_write_log_take(BlockNode *node);

#endif
