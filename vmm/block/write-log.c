#include "config.h"

#include "block/write-log.h"

typedef struct WriteLog {
    GMutex lock;
    GPtrArray *writes;          /* BlockLoggedWrite, since the last take */
} WriteLog;

static WriteLog *write_log_of(BlockNode *node)
{
    g_assert(node->drv == &block_write_log_driver);
    return node->opaque;
}

static int write_log_pwritev(BlockNode *node, uint64_t offset, const struct iovec *iov, int iovcnt,
                             size_t bytes)
{
    /* A failed write is logged too: part of it may be on the image, and
     * the guest, told of the error, may rely on neither version. */
    int r = block_pwritev(node->child, offset, iov, iovcnt);

    /* Split into records the stream can carry (docs/migration-stream.md). */
    for (size_t done = 0; done < bytes;) {
        uint32_t len = (uint32_t)MIN(bytes - done, (size_t)(1u << 20));
        BlockLoggedWrite *w = g_malloc(sizeof(*w) + len);
        w->offset = offset + done;
        w->len = len;
        block_iov_to_buf(iov, iovcnt, done, w->data, len);
        WriteLog *log = node->opaque;
        g_mutex_lock(&log->lock);
        g_ptr_array_add(log->writes, w);
        g_mutex_unlock(&log->lock);
        done += len;
    }
    return r;
}

static void write_log_close(BlockNode *node)
{
    WriteLog *log = node->opaque;

    g_ptr_array_unref(log->writes);
    g_mutex_clear(&log->lock);
    g_free(log);
}

const BlockDriver block_write_log_driver = {
    .name = "write-log",
    .pwritev = write_log_pwritev,
    .close = write_log_close,
};

BlockNode *block_write_log_new(BlockNode *child)
{
    WriteLog *log = g_new0(WriteLog, 1);

    g_mutex_init(&log->lock);
    log->writes = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *name = g_strdup_printf("write-log(%s)", child->name);
    return block_node_new(&block_write_log_driver, name, child->size, child->readonly, child, log);
}

GPtrArray *block_write_log_take(BlockNode *node)
{
    WriteLog *log = write_log_of(node);
    GPtrArray *fresh = g_ptr_array_new_with_free_func(g_free);

    g_mutex_lock(&log->lock);
    GPtrArray *taken = log->writes;
    log->writes = fresh;
    g_mutex_unlock(&log->lock);
    return taken;
}
