/* A raw disk image file: positioned reads and writes (through the host
 * page cache: write-back) and flush with fdatasync(2). */
#ifndef COLO_VMM_BLOCK_RAW_H
#define COLO_VMM_BLOCK_RAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

typedef struct BlockRaw {
    char *path;
    int fd;
    uint64_t size;      /* bytes */
    bool readonly;
} BlockRaw;

BlockRaw *block_raw_open(const char *path, bool readonly, GError **error);
void block_raw_close(BlockRaw *blk);

/* All of [@offset, @offset+@len) or an -errno (-EIO past the end). */
int block_raw_read(BlockRaw *blk, uint64_t offset, void *buf, size_t len);
int block_raw_write(BlockRaw *blk, uint64_t offset, const void *buf, size_t len);
/* Everything written so far is on stable storage when this returns 0. */
int block_raw_flush(BlockRaw *blk);

#endif
