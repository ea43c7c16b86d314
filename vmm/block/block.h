/* The block layer: a disk is a stack of nodes, each a BlockDriver with its
 * own state. A device holds the top node and sees only this interface, so
 * a filter (dirty-block tracking, a copy-on-write overlay, later COLO's
 * write replication) can sit between it and the image without the device
 * knowing. docs/block.md describes the layer and its nodes.
 *
 * I/O is synchronous and vectored at byte offsets: the caller's thread
 * (a device's I/O thread) does the I/O, and the buffers may be guest
 * memory itself, so the raw path copies nothing. Errors in I/O paths are
 * -errno, in setup paths a GError. A node is used by one thread at a time
 * unless its driver says otherwise; the generic functions below keep no
 * state of their own. */
#ifndef COLO_VMM_BLOCK_BLOCK_H
#define COLO_VMM_BLOCK_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <glib.h>

typedef struct BlockNode BlockNode;

/* Callbacks get requests already checked against the node's size and
 * read-only flag, with @bytes the iovec's total (> 0). A filter may leave
 * any of them NULL to pass the call on to its child unchanged. */
typedef struct BlockDriver {
    const char *name;               /* "raw", "dirty-bitmap", "overlay" */
    /* All of [@offset, @offset + @bytes) or an -errno. */
    int (*preadv)(BlockNode *node, uint64_t offset, const struct iovec *iov, int iovcnt, size_t bytes);
    int (*pwritev)(BlockNode *node, uint64_t offset, const struct iovec *iov, int iovcnt, size_t bytes);
    /* Every completed write is on stable storage when this returns 0. */
    int (*flush)(BlockNode *node);
    /* Free the driver's state (not the node, not the child). */
    void (*close)(BlockNode *node);
} BlockDriver;

struct BlockNode {
    const BlockDriver *drv;
    char *name;                     /* for log lines: the image path, or the driver over it */
    uint64_t size;                  /* bytes, fixed for the node's life */
    bool readonly;
    BlockNode *child;               /* a filter's node below, owned; NULL for an image */
    void *opaque;                   /* the driver's state */
};

/* A node of @drv over @child (owned from now on; may be NULL). */
BlockNode *block_node_new(const BlockDriver *drv, const char *name, uint64_t size, bool readonly,
                          BlockNode *child, void *opaque);
/* Close @node and everything below it. NULL is fine. */
void block_node_close(BlockNode *node);
/* Close the filter @node alone and hand back its child (to take a filter
 * out of a stack). */
BlockNode *block_node_remove_filter(BlockNode *node);

/* Checked entry points: -EIO for a range past the end, -EROFS for a write
 * to a read-only node, -EINVAL for a negative iovec count; 0 bytes is a
 * no-op. Drivers call these on their children too. */
int block_preadv(BlockNode *node, uint64_t offset, const struct iovec *iov, int iovcnt);
int block_pwritev(BlockNode *node, uint64_t offset, const struct iovec *iov, int iovcnt);
int block_flush(BlockNode *node);
/* One buffer. */
int block_pread(BlockNode *node, uint64_t offset, void *buf, size_t len);
int block_pwrite(BlockNode *node, uint64_t offset, const void *buf, size_t len);

static inline uint64_t block_length(const BlockNode *node)
{
    return node->size;
}

/* The first node in the stack from @node down whose driver is @drv. */
BlockNode *block_node_find(BlockNode *node, const BlockDriver *drv);

/* iovec helpers for drivers. */
size_t block_iov_size(const struct iovec *iov, int iovcnt);
/* Describe bytes [@skip, @skip + @len) of @iov in @out (room for @iovcnt
 * entries always suffices); returns the entries used. */
int block_iov_slice(const struct iovec *iov, int iovcnt, size_t skip, size_t len, struct iovec *out);
/* Copy between bytes [@skip, @skip + @len) of @iov and @buf. */
void block_iov_to_buf(const struct iovec *iov, int iovcnt, size_t skip, void *buf, size_t len);
void block_iov_from_buf(const struct iovec *iov, int iovcnt, size_t skip, const void *buf, size_t len);

/* For block-granular filters: 0 in *@granularity becomes @fallback;
 * otherwise it must be a power of two from 512 bytes to @max. */
bool block_granularity_ok(uint64_t *granularity, uint64_t fallback, uint64_t max, GError **error);

#endif
