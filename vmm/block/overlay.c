#include "config.h"

#include <gio/gio.h>

#include "block/overlay.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "block/raw.h"

typedef struct Overlay {
    int fd;
    unsigned shift;             /* log2 of the granularity */
    uint64_t blocks;
    uint64_t *present;          /* blocks held (bit per block) */
    uint64_t allocated;
    uint8_t *scratch;           /* one block, for partial writes (under the write lock) */
    GRWLock lock;               /* read: reads; write: writes, discard */
} Overlay;

static Overlay *overlay_of(BlockNode *node)
{
    g_assert(node->drv == &block_overlay_driver);
    return node->opaque;
}

static bool overlay_has(const Overlay *ov, uint64_t block)
{
    return ov->present[block / 64] >> (block % 64) & 1;
}

static void overlay_hold(Overlay *ov, uint64_t first, uint64_t last)
{
    for (uint64_t b = first; b <= last; b++) {
        if (!overlay_has(ov, b)) {
            ov->present[b / 64] |= 1ULL << (b % 64);
            ov->allocated++;
        }
    }
}

/* The slice of @iov for [pos, end) of a request at @offset: the caller's
 * vector itself when that is the whole request (no allocation then),
 * else described in *@buf, allocated on first use. */
static const struct iovec *overlay_slice(const struct iovec *iov, int iovcnt, uint64_t offset, size_t bytes,
                                         uint64_t pos, uint64_t end, struct iovec **buf, int *n)
{
    if (pos == offset && end == offset + bytes) {
        *n = iovcnt;
        return iov;
    }
    if (!*buf) {
        *buf = g_new(struct iovec, iovcnt);
    }
    *n = block_iov_slice(iov, iovcnt, pos - offset, end - pos, *buf);
    return *buf;
}

/* Runs of blocks all held, or all not held, each read from where it is. */
static int overlay_preadv(BlockNode *node, uint64_t offset, const struct iovec *iov, int iovcnt,
                          size_t bytes)
{
    Overlay *ov = node->opaque;
    g_autofree struct iovec *buf = NULL;
    uint64_t pos = offset, end = offset + bytes;
    int r = 0;

    g_rw_lock_reader_lock(&ov->lock);
    while (pos < end && r == 0) {
        uint64_t b = pos >> ov->shift;
        bool held = overlay_has(ov, b);
        while (++b < ov->blocks && (b << ov->shift) < end && overlay_has(ov, b) == held) {
        }
        uint64_t run_end = MIN(end, b << ov->shift);
        int n;
        const struct iovec *v = overlay_slice(iov, iovcnt, offset, bytes, pos, run_end, &buf, &n);
        r = held ? block_fd_preadv(ov->fd, pos, v, n, run_end - pos) : block_preadv(node->child, pos, v, n);
        pos = run_end;
    }
    g_rw_lock_reader_unlock(&ov->lock);
    return r;
}

/* A write into part of a block not held yet: the base's block, patched. */
static int overlay_fill_block(BlockNode *node, uint64_t block, const struct iovec *iov, int iovcnt,
                              uint64_t offset, uint64_t pos, uint64_t end)
{
    Overlay *ov = node->opaque;
    uint64_t start = block << ov->shift, len = MIN(node->size - start, 1ULL << ov->shift);
    struct iovec whole = { ov->scratch, (size_t)len };
    int r = block_preadv(node->child, start, &whole, 1);

    if (r < 0) {
        return r;
    }
    block_iov_to_buf(iov, iovcnt, pos - offset, ov->scratch + (pos - start), end - pos);
    return block_fd_pwritev(ov->fd, start, &whole, 1, len);
}

/* Blocks the write covers whole, or that are held already, go straight to
 * the storage in runs; partial blocks not held are filled from the base.
 * A block is marked held only once its data is in. */
static int overlay_pwritev(BlockNode *node, uint64_t offset, const struct iovec *iov, int iovcnt,
                           size_t bytes)
{
    Overlay *ov = node->opaque;
    g_autofree struct iovec *buf = NULL;
    uint64_t gran = 1ULL << ov->shift, pos = offset, end = offset + bytes;
    int r = 0;

    g_rw_lock_writer_lock(&ov->lock);
    while (pos < end && r == 0) {
        uint64_t b = pos >> ov->shift, block_end = MIN((b << ov->shift) + gran, node->size);
        if (!overlay_has(ov, b) && (pos > b << ov->shift || end < block_end)) {
            r = overlay_fill_block(node, b, iov, iovcnt, offset, pos, MIN(end, block_end));
            if (r == 0) {
                overlay_hold(ov, b, b);
            }
            pos = MIN(end, block_end);
            continue;
        }
        uint64_t run_end = block_end;
        while (run_end < end) {
            uint64_t next_end = MIN(run_end + gran, node->size);
            if (end < next_end && !overlay_has(ov, run_end >> ov->shift)) {
                break;
            }
            run_end = next_end;
        }
        run_end = MIN(run_end, end);
        int n;
        const struct iovec *v = overlay_slice(iov, iovcnt, offset, bytes, pos, run_end, &buf, &n);
        r = block_fd_pwritev(ov->fd, pos, v, n, run_end - pos);
        if (r == 0) {
            overlay_hold(ov, b, (run_end - 1) >> ov->shift);
        }
        pos = run_end;
    }
    g_rw_lock_writer_unlock(&ov->lock);
    return r;
}

static int overlay_flush(BlockNode *node)
{
    return block_fd_flush(((Overlay *)node->opaque)->fd);
}

static void overlay_close(BlockNode *node)
{
    Overlay *ov = node->opaque;

    close(ov->fd);
    g_rw_lock_clear(&ov->lock);
    g_free(ov->present);
    g_free(ov->scratch);
    g_free(ov);
}

const BlockDriver block_overlay_driver = {
    .name = "overlay",
    .preadv = overlay_preadv,
    .pwritev = overlay_pwritev,
    .flush = overlay_flush,
    .close = overlay_close,
};

/* A memfd, or an unlinked file in @dir (O_TMPFILE, else a named file
 * removed at once, for file systems without it). */
static int overlay_storage(const char *dir, uint64_t size, GError **error)
{
    int fd;

    if (!dir) {
        fd = memfd_create("colo-overlay", MFD_CLOEXEC);
    } else {
        fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
            g_autofree char *path = g_build_filename(dir, "colo-overlay-XXXXXX", NULL);
            fd = g_mkstemp_full(path, O_RDWR | O_CLOEXEC, 0600);
            if (fd >= 0) {
                unlink(path);
            }
        }
    }
    if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "cannot create overlay storage in %s: %s",
                    dir ? dir : "memory", strerror(e));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

BlockNode *block_overlay_new(BlockNode *base, uint64_t granularity, const char *dir, GError **error)
{
    int fd = -1;

    if (!block_granularity_ok(&granularity, BLOCK_OVERLAY_DEFAULT_GRANULARITY,
                              BLOCK_OVERLAY_MAX_GRANULARITY, error) ||
        (fd = overlay_storage(dir, base->size, error)) < 0) {
        return NULL;
    }
    Overlay *ov = g_new0(Overlay, 1);
    ov->fd = fd;
    ov->shift = (unsigned)g_bit_nth_lsf(granularity, -1);
    ov->blocks = (base->size + granularity - 1) >> ov->shift;
    ov->present = g_new0(uint64_t, (ov->blocks + 63) / 64);
    ov->scratch = g_malloc(granularity);
    g_rw_lock_init(&ov->lock);
    g_autofree char *name = g_strdup_printf("overlay(%s)", base->name);
    return block_node_new(&block_overlay_driver, name, base->size, false, base, ov);
}

/* Empty the overlay (write lock held). */
static int overlay_discard_locked(BlockNode *node, Overlay *ov)
{
    memset(ov->present, 0, (ov->blocks + 63) / 64 * sizeof(uint64_t));
    ov->allocated = 0;
    /* Shrinking to nothing frees the storage; growing back keeps the
     * offsets (a hole punch would do too, but not on every file system). */
    if (ftruncate(ov->fd, 0) < 0 || ftruncate(ov->fd, (off_t)node->size) < 0) {
        return -errno;
    }
    return 0;
}

int block_overlay_discard_all(BlockNode *node)
{
    Overlay *ov = overlay_of(node);

    g_rw_lock_writer_lock(&ov->lock);
    int r = overlay_discard_locked(node, ov);
    g_rw_lock_writer_unlock(&ov->lock);
    return r;
}

/* Copy, flush and empty under one hold of the lock: a write that came in
 * between the copy and the emptying would be dropped. */
int block_overlay_commit(BlockNode *node)
{
    Overlay *ov = overlay_of(node);
    uint64_t granularity = 1ULL << ov->shift;
    int r = 0;

    g_rw_lock_writer_lock(&ov->lock);
    for (uint64_t b = 0; b < ov->blocks && r == 0; b++) {
        if (!overlay_has(ov, b)) {
            continue;
        }
        uint64_t offset = b << ov->shift;
        struct iovec v = { ov->scratch, (size_t)MIN(granularity, node->size - offset) };
        r = block_fd_preadv(ov->fd, offset, &v, 1, v.iov_len);
        if (r == 0) {
            r = block_pwritev(node->child, offset, &v, 1);
        }
    }
    if (r == 0) {
        r = block_flush(node->child);
    }
    if (r == 0) {
        r = overlay_discard_locked(node, ov);
    }
    g_rw_lock_writer_unlock(&ov->lock);
    return r;
}

uint64_t block_overlay_allocated(BlockNode *node)
{
    Overlay *ov = overlay_of(node);

    g_rw_lock_reader_lock(&ov->lock);
    uint64_t n = ov->allocated;
    g_rw_lock_reader_unlock(&ov->lock);
    return n;
}

uint64_t block_overlay_granularity(BlockNode *node)
{
    return 1ULL << overlay_of(node)->shift;
}
