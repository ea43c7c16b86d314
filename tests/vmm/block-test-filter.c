#include "config.h"

#include "block-test-filter.h"

static int spy_pwritev(BlockNode *node, uint64_t offset, const struct iovec *iov, int iovcnt,
                       size_t bytes)
{
    SpyLog *log = node->opaque;

    log->writes++;
    log->offset = offset;
    log->bytes = bytes;
    if (log->fail) {
        return log->fail;
    }
    return block_pwritev(node->child, offset, iov, iovcnt);
}

static void spy_close(BlockNode *node)
{
    ((SpyLog *)node->opaque)->closes++;
}

const BlockDriver spy_driver = {
    .name = "spy",
    .pwritev = spy_pwritev,
    .close = spy_close,
};

BlockNode *spy_new(BlockNode *child, SpyLog *log)
{
    return block_node_new(&spy_driver, "spy", child->size, child->readonly, child, log);
}
