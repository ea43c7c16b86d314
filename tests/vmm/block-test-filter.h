/* A block filter for tests: counts and records the writes and closes that
 * pass through it and forwards writes to its child (or fails them with
 * @fail, an -errno, when set); reads and flushes fall through (NULL
 * callbacks), as any filter may let them. */
#ifndef COLO_TESTS_BLOCK_TEST_FILTER_H
#define COLO_TESTS_BLOCK_TEST_FILTER_H

#include "block/block.h"

typedef struct WriteLog {
    unsigned writes, closes;
    uint64_t offset;            /* of the last write */
    size_t bytes;
    int fail;
} WriteLog;

extern const BlockDriver write_log_driver;

/* A write-log filter over @child (same size and read-only flag). */
BlockNode *write_log_new(BlockNode *child, WriteLog *log);

#endif
