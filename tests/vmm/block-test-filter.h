/* A block filter for tests (a spy): counts and records the writes and closes that
 * pass through it and forwards writes to its child (or fails them with
 * @fail, an -errno, when set); reads and flushes fall through (NULL
 * callbacks), as any filter may let them. */
#ifndef COLO_TESTS_BLOCK_TEST_FILTER_H
#define COLO_TESTS_BLOCK_TEST_FILTER_H

#include "block/block.h"

typedef struct SpyLog {
    unsigned writes, closes;
    uint64_t offset;            /* of the last write */
    size_t bytes;
    int fail;
} SpyLog;

extern const BlockDriver spy_driver;

/* A spy filter over @child (same size and read-only flag). */
BlockNode *spy_new(BlockNode *child, SpyLog *log);

#endif
