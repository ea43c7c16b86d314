#include "config.h"

#include "block-test-filter.h"

static int write_log_pwritev(BlockNode *node, uint64_t offset, const struct iovec *iov, int iovcnt,
                             size_t bytes)
{
    WriteLog *log = node->opaque;

    log->writes++;
    log->offset = offset;
    log->bytes = bytes;
    if (log->fail) {
        return log->fail;
    }
    return block_pwritev(node->child, offset, iov, iovcnt);
}

static void write_log_close(BlockNode *node)
{
    ((WriteLog *)node->opaque)->closes++;
}

const BlockDriver write_log_driver = {
    .name = "write-log",
    .pwritev = write_log_pwritev,
    .close = write_log_close,
};

BlockNode *write_log_new(BlockNode *child, WriteLog *log)
{
    return block_node_new(&write_log_driver, "write-log", child->size, child->readonly, child, log);
}
