#include "config.h"

#include <gio/gio.h>

#include "block/block.h"

#include <errno.h>
#include <string.h>

BlockNode *block_node_new(const BlockDriver *drv, const char *name, uint64_t size, bool readonly,
                          BlockNode *child, void *opaque)
{
    BlockNode *node = g_new0(BlockNode, 1);

    node->drv = drv;
    node->name = g_strdup(name);
    node->size = size;
    node->readonly = readonly;
    node->child = child;
    node->opaque = opaque;
    return node;
}

BlockNode *block_node_remove_filter(BlockNode *node)
{
    BlockNode *child = node->child;

    if (node->drv->close) {
        node->drv->close(node);
    }
    g_free(node->name);
    g_free(node);
    return child;
}

void block_node_close(BlockNode *node)
{
    while (node) {
        node = block_node_remove_filter(node);
    }
}

BlockNode *block_node_find(BlockNode *node, const BlockDriver *drv)
{
    while (node && node->drv != drv) {
        node = node->child;
    }
    return node;
}

size_t block_iov_size(const struct iovec *iov, int iovcnt)
{
    size_t n = 0;

    for (int i = 0; i < iovcnt; i++) {
        n += iov[i].iov_len;
    }
    return n;
}

int block_iov_slice(const struct iovec *iov, int iovcnt, size_t skip, size_t len, struct iovec *out)
{
    int n = 0;

    for (int i = 0; i < iovcnt && len > 0; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        size_t take = MIN(iov[i].iov_len - skip, len);
        out[n++] = (struct iovec) { (uint8_t *)iov[i].iov_base + skip, take };
        len -= take;
        skip = 0;
    }
    return n;
}

/* Walk bytes [@skip, @skip + @len) of @iov, copying to or from @buf. */
static void block_iov_copy(const struct iovec *iov, int iovcnt, size_t skip, uint8_t *buf, size_t len,
                           bool to_buf)
{
    for (int i = 0; i < iovcnt && len > 0; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        size_t take = MIN(iov[i].iov_len - skip, len);
        uint8_t *p = (uint8_t *)iov[i].iov_base + skip;
        if (to_buf) {
            memcpy(buf, p, take);
        } else {
            memcpy(p, buf, take);
        }
        buf += take;
        len -= take;
        skip = 0;
    }
}

void block_iov_to_buf(const struct iovec *iov, int iovcnt, size_t skip, void *buf, size_t len)
{
    block_iov_copy(iov, iovcnt, skip, buf, len, true);
}

void block_iov_from_buf(const struct iovec *iov, int iovcnt, size_t skip, const void *buf, size_t len)
{
    block_iov_copy(iov, iovcnt, skip, (uint8_t *)buf, len, false);
}

/* 0: nothing to do; 1: go ahead with *@bytes; or an -errno. */
static int block_check(BlockNode *node, uint64_t offset, const struct iovec *iov, int iovcnt, size_t *bytes)
{
    if (iovcnt < 0) {
        return -EINVAL;
    }
    *bytes = block_iov_size(iov, iovcnt);
    if (offset > node->size || *bytes > node->size - offset) {
        return -EIO;
    }
    return *bytes > 0;
}

int block_preadv(BlockNode *node, uint64_t offset, const struct iovec *iov, int iovcnt)
{
    size_t bytes;
    int r = block_check(node, offset, iov, iovcnt, &bytes);

    if (r <= 0) {
        return r;
    }
    while (!node->drv->preadv) {
        node = node->child;
    }
    return node->drv->preadv(node, offset, iov, iovcnt, bytes);
}

int block_pwritev(BlockNode *node, uint64_t offset, const struct iovec *iov, int iovcnt)
{
    size_t bytes;
    int r;

    if (node->readonly) {
        return -EROFS;
    }
    r = block_check(node, offset, iov, iovcnt, &bytes);
    if (r <= 0) {
        return r;
    }
    while (!node->drv->pwritev) {
        node = node->child;
    }
    return node->drv->pwritev(node, offset, iov, iovcnt, bytes);
}

int block_flush(BlockNode *node)
{
    if (node->readonly) {
        return 0;
    }
    while (!node->drv->flush) {
        node = node->child;
    }
    return node->drv->flush(node);
}

int block_pread(BlockNode *node, uint64_t offset, void *buf, size_t len)
{
    struct iovec iov = { buf, len };

    return block_preadv(node, offset, &iov, 1);
}

int block_pwrite(BlockNode *node, uint64_t offset, const void *buf, size_t len)
{
    struct iovec iov = { (void *)buf, len };

    return block_pwritev(node, offset, &iov, 1);
}

bool block_granularity_ok(uint64_t *granularity, uint64_t fallback, uint64_t max, GError **error)
{
    uint64_t g = *granularity ? *granularity : fallback;

    if (g < 512 || g > max || (g & (g - 1))) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "block granularity %" G_GUINT64_FORMAT " is not a power of two from 512 to %"
                    G_GUINT64_FORMAT, g, max);
        return false;
    }
    *granularity = g;
    return true;
}
