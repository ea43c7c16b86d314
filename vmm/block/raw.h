/* A raw disk image file as a block node: positioned vectored reads and
 * writes straight from and into the caller's buffers (through the host
 * page cache: write-back) and flush with fdatasync(2). Any thread; no
 * state changes after open. */
#ifndef COLO_VMM_BLOCK_RAW_H
#define COLO_VMM_BLOCK_RAW_H

#include <stdbool.h>
#include <glib.h>

#include "block/block.h"

extern const BlockDriver block_raw_driver;

/* Open a regular file; the node's name is @path. */
BlockNode *block_raw_open(const char *path, bool readonly, GError **error);

/* The file I/O under the raw node, for drivers that keep data in a file of
 * their own: all of @bytes at @offset, retrying short transfers and EINTR,
 * split at IOV_MAX; -EIO at end of file, or the -errno. */
int block_fd_preadv(int fd, uint64_t offset, const struct iovec *iov, int iovcnt, size_t bytes);
int block_fd_pwritev(int fd, uint64_t offset, const struct iovec *iov, int iovcnt, size_t bytes);
int block_fd_flush(int fd);

#endif
