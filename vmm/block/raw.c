#include "config.h"

#include <gio/gio.h>

#include "block/raw.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

BlockRaw *block_raw_open(const char *path, bool readonly, GError **error)
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
    BlockRaw *blk = g_new0(BlockRaw, 1);
    blk->path = g_strdup(path);
    blk->fd = fd;
    blk->size = (uint64_t)st.st_size;
    blk->readonly = readonly;
    return blk;
}

void block_raw_close(BlockRaw *blk)
{
    if (blk) {
        close(blk->fd);
        g_free(blk->path);
        g_free(blk);
    }
}

static bool block_raw_in_range(const BlockRaw *blk, uint64_t offset, size_t len)
{
    return offset <= blk->size && len <= blk->size - offset;
}

int block_raw_read(BlockRaw *blk, uint64_t offset, void *buf, size_t len)
{
    if (!block_raw_in_range(blk, offset, len)) {
        return -EIO;
    }
    for (size_t done = 0; done < len;) {
        ssize_t n = pread(blk->fd, (uint8_t *)buf + done, len - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n < 0 ? -errno : -EIO;
        }
        done += (size_t)n;
    }
    return 0;
}

int block_raw_write(BlockRaw *blk, uint64_t offset, const void *buf, size_t len)
{
    if (blk->readonly) {
        return -EROFS;
    }
    if (!block_raw_in_range(blk, offset, len)) {
        return -EIO;
    }
    for (size_t done = 0; done < len;) {
        ssize_t n = pwrite(blk->fd, (const uint8_t *)buf + done, len - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n < 0 ? -errno : -EIO;
        }
        done += (size_t)n;
    }
    return 0;
}

int block_raw_flush(BlockRaw *blk)
{
    while (fdatasync(blk->fd) < 0) {
        if (errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}
