#include "config.h"

#include <gio/gio.h>

#include "block/raw.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One preadv/pwritev and, if it came up short (or the vector is longer
 * than IOV_MAX), the rest in slices. The first call takes the caller's
 * vector as it is: a request's whole I/O is one system call. */
static int block_fd_rw(int fd, uint64_t offset, const struct iovec *iov, int iovcnt, size_t bytes,
                       bool write)
{
    struct iovec *rest = NULL;
    size_t done = 0;
    int r = 0;

    while (done < bytes) {
        const struct iovec *v = iov;
        int cnt = iovcnt;
        if (done > 0 || iovcnt > IOV_MAX) {
            if (!rest) {
                rest = g_new(struct iovec, iovcnt);
            }
            cnt = MIN(block_iov_slice(iov, iovcnt, done, bytes - done, rest), IOV_MAX);
            v = rest;
        }
        ssize_t n = write ? pwritev(fd, v, cnt, (off_t)(offset + done)) :
                            preadv(fd, v, cnt, (off_t)(offset + done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            r = n < 0 ? -errno : -EIO;
            break;
        }
        done += (size_t)n;
    }
    g_free(rest);
    return r;
}

int block_fd_preadv(int fd, uint64_t offset, const struct iovec *iov, int iovcnt, size_t bytes)
{
    return block_fd_rw(fd, offset, iov, iovcnt, bytes, false);
}

int block_fd_pwritev(int fd, uint64_t offset, const struct iovec *iov, int iovcnt, size_t bytes)
{
    return block_fd_rw(fd, offset, iov, iovcnt, bytes, true);
}

int block_fd_flush(int fd)
{
    while (fdatasync(fd) < 0) {
        if (errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}

static int block_raw_fd(BlockNode *node)
{
    return (int)(intptr_t)node->opaque;
}

static int block_raw_preadv(BlockNode *node, uint64_t offset, const struct iovec *iov, int iovcnt,
                            size_t bytes)
{
    return block_fd_preadv(block_raw_fd(node), offset, iov, iovcnt, bytes);
}

static int block_raw_pwritev(BlockNode *node, uint64_t offset, const struct iovec *iov, int iovcnt,
                             size_t bytes)
{
    return block_fd_pwritev(block_raw_fd(node), offset, iov, iovcnt, bytes);
}

static int block_raw_flush(BlockNode *node)
{
    return block_fd_flush(block_raw_fd(node));
}

static void block_raw_close(BlockNode *node)
{
    close(block_raw_fd(node));
}

const BlockDriver block_raw_driver = {
    .name = "raw",
    .preadv = block_raw_preadv,
    .pwritev = block_raw_pwritev,
    .flush = block_raw_flush,
    .close = block_raw_close,
};

BlockNode *block_raw_open(const char *path, bool readonly, GError **error)
{
    int fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    struct stat st;

    if (fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "cannot open disk image %s: %s",
                    path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "disk image %s is not a regular file", path);
        close(fd);
        return NULL;
    }
    return block_node_new(&block_raw_driver, path, (uint64_t)st.st_size, readonly, NULL,
                          (void *)(intptr_t)fd);
}
