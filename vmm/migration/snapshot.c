/* Snapshot protect: the copy-on-write snapshot of guest RAM that COLO's
 * initial sync streams (snapshot.h, docs/colo.md). */
#include "config.h"

#include "migration/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <gio/gio.h>
#include <qb/qblog.h>

#include "migration/migration-priv.h"
#include "migration/ram-priv.h"

#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)  /* Linux 6.4; older headers lack it */
#endif

/* Pages per batch the stream takes: a write waiting at the copy limit
 * waits at most for one batch to go out. */
#define SNAP_BATCH_MAX 256
#define SNAP_BATCH_MIN 16

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

/* A page written before the stream reached it, as it was at the snapshot. */
typedef struct SnapCopy {
    unsigned block;
    uint64_t offset;
    uint8_t data[GUEST_PAGE_SIZE];
} SnapCopy;

typedef struct SnapPage {
    unsigned block;
    uint64_t offset;
} SnapPage;

struct Snapshot {
    GuestMemory *mem;
    unsigned nr_blocks;         /* the blocks at the snapshot; RAM added later
                                 * goes whole in the final phase */
    int uffd, quit_fd;
    bool wp_unpopulated;        /* the kernel write-protects pages not populated yet */
    GThread *thread;
    bool registered[GUEST_MAX_REGIONS];
    bool stopped;

    GMutex lock;                /* everything below */
    bool armed;                 /* the pause is over: copy before letting a write through */
    bool stopping;              /* the fault thread only lets writes through */
    unsigned long *pending[GUEST_MAX_REGIONS];  /* bit = not yet taken for the stream */
    GQueue copies;              /* SnapCopy, oldest first */
    GArray *waiting;            /* SnapPage: writes held at the copy limit */
    uint64_t limit;             /* copies held at most */
    uint64_t pages_total, pages_left;
    uint64_t copies_held, copies_peak, copies_total;
    uint64_t faults, waits;
    uint64_t pause_us;
    const char *status;         /* "active", "completed", "failed" */
};

bool migration_snapshot_selected(const Migration *m)
{
    return m->caps.x_colo && m->caps.postcopy_ram;
}

static bool snap_test_clear(unsigned long *map, uint64_t page)
{
    unsigned long bit = 1UL << (page % BITS_PER_WORD);
    bool set = map[page / BITS_PER_WORD] & bit;

    map[page / BITS_PER_WORD] &= ~bit;
    return set;
}

/* Let writes to [@host, @host + @len) through, waking whoever waits on it. */
static void snap_unprotect(Snapshot *s, const uint8_t *host, uint64_t len)
{
    struct uffdio_writeprotect wp = { .range = { (uintptr_t)host, len }, .mode = 0 };

    while (ioctl(s->uffd, UFFDIO_WRITEPROTECT, &wp) < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            qb_log(LOG_ERR, "snapshot: cannot remove write protection at %p+%" G_GUINT64_FORMAT ": %s",
                   (const void *)host, len, g_strerror(errno));
            return;
        }
    }
}

/* ---- the fault thread ------------------------------------------------------ */

static bool snap_locate(Snapshot *s, uint64_t addr, unsigned *block, uint64_t *offset)
{
    for (unsigned i = 0; i < s->nr_blocks; i++) {
        const RamBlock *b = s->mem->blocks[i];
        uintptr_t start = (uintptr_t)b->host;
        if (addr >= start && addr - start < b->size) {
            *block = i;
            *offset = (addr - start) & ~(uint64_t)(GUEST_PAGE_SIZE - 1);
            return true;
        }
    }
    return false;
}

/* A write hit a protected page: copy it aside if the stream still needs
 * it, and let the write through; at the copy limit, leave the writer
 * waiting for the stream to take the page (snapshot_stream). */
static void snap_fault(Snapshot *s, uint64_t addr)
{
    unsigned bi;
    uint64_t offset;
    bool hold = false;

    if (!snap_locate(s, addr, &bi, &offset)) {
        qb_log(LOG_ERR, "snapshot: write fault outside guest RAM at 0x%" G_GINT64_MODIFIER "x", addr);
        return;
    }
    const uint8_t *host = s->mem->blocks[bi]->host + offset;
    g_mutex_lock(&s->lock);
    s->faults++;
    if (s->armed && !s->stopping && snap_test_clear(s->pending[bi], offset / GUEST_PAGE_SIZE)) {
        if (s->copies_held < s->limit) {
            SnapCopy *cp = g_new(SnapCopy, 1);
            cp->block = bi;
            cp->offset = offset;
            memcpy(cp->data, host, GUEST_PAGE_SIZE);
            g_queue_push_tail(&s->copies, cp);
            s->pages_left--;
            s->copies_total++;
            s->copies_held++;
            s->copies_peak = MAX(s->copies_peak, s->copies_held);
        } else {
            /* Still pending: the stream takes it from guest memory. */
            s->pending[bi][offset / GUEST_PAGE_SIZE / BITS_PER_WORD] |= 1UL << (offset / GUEST_PAGE_SIZE % BITS_PER_WORD);
            SnapPage p = { bi, offset };
            g_array_append_val(s->waiting, p);
            s->waits++;
            hold = true;
        }
    }
    g_mutex_unlock(&s->lock);
    if (!hold) {
        snap_unprotect(s, host, GUEST_PAGE_SIZE);
    }
}

static gpointer snap_fault_thread(gpointer opaque)
{
    Snapshot *s = opaque;
    struct pollfd fds[2] = { { s->uffd, POLLIN, 0 }, { s->quit_fd, POLLIN, 0 } };

    /* A vCPU waits on every fault this thread serves. */
    postcopy_thread_urgent();
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            qb_log(LOG_ERR, "snapshot: poll: %s", g_strerror(errno));
            break;
        }
        if (fds[1].revents) {
            break;
        }
        if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {     /* no spinning at real-time priority */
            qb_log(LOG_ERR, "snapshot: userfaultfd reports an error (poll 0x%x)", (unsigned)fds[0].revents);
            break;
        }
        struct uffd_msg msgs[16];
        ssize_t n = read(s->uffd, msgs, sizeof(msgs));
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                continue;
            }
            qb_log(LOG_ERR, "snapshot: reading userfaultfd: %s", g_strerror(errno));
            break;
        }
        for (size_t i = 0; i < (size_t)n / sizeof(msgs[0]); i++) {
            if (msgs[i].event == UFFD_EVENT_PAGEFAULT && (msgs[i].arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP)) {
                snap_fault(s, msgs[i].arg.pagefault.address);
            }
        }
    }
    return NULL;
}

/* ---- set-up and the pause ---------------------------------------------------- */

static int snap_uffd_open(bool *unpopulated, GError **error)
{
    /* Not UFFD_USER_MODE_ONLY: KVM writes guest memory from the kernel on
     * the guest's behalf, and those writes must trap too. */
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

    if (fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "snapshot protect needs userfaultfd: %s%s", g_strerror(errno),
                    errno == EPERM ? " (vm.unprivileged_userfaultfd, or run as root)" : "");
        return -1;
    }
    /* Protect holes too (a page first written after the snapshot was zero
     * in it); kernels before 6.4 lack that, and shmem holes are protected
     * there anyway (pte markers). */
    const uint64_t base = UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
    struct uffdio_api api = { .api = UFFD_API, .features = base | UFFD_FEATURE_WP_UNPOPULATED };
    *unpopulated = true;
    if (ioctl(fd, UFFDIO_API, &api) < 0) {
        *unpopulated = false;
        /* A refused UFFDIO_API leaves the fd unusable: open another. */
        close(fd);
        fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
        api = (struct uffdio_api) { .api = UFFD_API, .features = base };
        if (fd < 0 || ioctl(fd, UFFDIO_API, &api) < 0) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                        "snapshot protect: userfaultfd write protection on shared memory: %s", g_strerror(errno));
            if (fd >= 0) {
                close(fd);
            }
            return -1;
        }
    }
    return fd;
}

static bool snap_register(Snapshot *s, GError **error)
{
    for (unsigned i = 0; i < s->nr_blocks; i++) {
        const RamBlock *b = s->mem->blocks[i];
        struct statfs fs;
        /* Huge pages are protected whole: a 4 KiB page could not be let
         * go on its own, and a writer would wait for good. */
        if (b->fd >= 0 && fstatfs(b->fd, &fs) == 0 && fs.f_type == HUGETLBFS_MAGIC) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                        "snapshot protect: RAM block %s is on hugetlbfs (4 KiB pages only)", b->id);
            return false;
        }
        /* Anonymous memory on a kernel that protects only populated pages
         * (before 6.4): map the zero page wherever nothing is, as QEMU's
         * background snapshot does, so that a first write traps too. */
        if (b->fd < 0 && !s->wp_unpopulated && madvise(b->host, b->size, MADV_POPULATE_READ) < 0) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                        "snapshot protect: populating RAM block %s: %s", b->id, g_strerror(errno));
            return false;
        }
        struct uffdio_register reg = {
            .range = { (uintptr_t)b->host, b->size },
            .mode = UFFDIO_REGISTER_MODE_WP,
        };
        if (ioctl(s->uffd, UFFDIO_REGISTER, &reg) < 0) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                        "snapshot protect: registering RAM block %s: %s", b->id, g_strerror(errno));
            return false;
        }
        s->registered[i] = true;
        if (!(reg.ioctls & (1ULL << _UFFDIO_WRITEPROTECT))) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                        "snapshot protect: RAM block %s cannot be write-protected", b->id);
            return false;
        }
    }
    return true;
}

static bool snap_protect_all(Snapshot *s, GError **error)
{
    for (unsigned i = 0; i < s->nr_blocks; i++) {
        const RamBlock *b = s->mem->blocks[i];
        struct uffdio_writeprotect wp = {
            .range = { (uintptr_t)b->host, b->size },
            .mode = UFFDIO_WRITEPROTECT_MODE_WP,
        };
        while (ioctl(s->uffd, UFFDIO_WRITEPROTECT, &wp) < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                            "snapshot protect: write-protecting RAM block %s: %s", b->id, g_strerror(errno));
                return false;
            }
        }
    }
    return true;
}

bool snapshot_start(Migration *m, GError **error)
{
    Snapshot *s = g_new0(Snapshot, 1);
    RamSave *rs = &m->src.ram;

    s->mem = m->host.mem;
    s->nr_blocks = rs->nr_blocks;
    s->uffd = s->quit_fd = -1;
    s->status = "active";
    s->limit = m->params.x_snapshot_copy_limit / GUEST_PAGE_SIZE;
    g_mutex_init(&s->lock);
    g_queue_init(&s->copies);
    s->waiting = g_array_new(FALSE, FALSE, sizeof(SnapPage));
    for (unsigned i = 0; i < s->nr_blocks; i++) {
        uint64_t pages = block_pages(s->mem->blocks[i]);
        s->pending[i] = bitmap_new_full(pages);
        s->pages_total += pages;
    }
    s->pages_left = s->pages_total;
    g_mutex_lock(&m->lock);
    m->src.snapshot = s;
    g_mutex_unlock(&m->lock);

    s->uffd = snap_uffd_open(&s->wp_unpopulated, error);
    s->quit_fd = eventfd(0, EFD_CLOEXEC);
    if (s->uffd < 0 || !snap_register(s, error)) {
        snapshot_stop(m);
        return false;
    }
    if (s->quit_fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "eventfd: %s", g_strerror(errno));
        snapshot_stop(m);
        return false;
    }
    s->thread = g_thread_new("mig/snap-wp", snap_fault_thread, s);

    /* Write-protecting takes the kernel a walk over the page tables (some
     * 150 ms for 4 GiB here): done before the pause, while the guest runs.
     * A page written before the pause is let go uncopied (it stays to be
     * sent, as it is when the stream reaches it); so is the KVM dirty log's
     * first round, which write-protects every page for KVM. */
    bool ok = snap_protect_all(s, error) && ram_save_sync(rs, error);
    if (!ok) {
        snapshot_stop(m);
        return false;
    }
    /* The one pause: from here the dirty log counts every write, for the
     * final phase, and a page written before the stream took it is copied
     * first: what the stream sends is RAM as it is now, but for the pages
     * let go above, which the dirty log covers from here on either way. */
    gint64 t0 = g_get_monotonic_time();
    m->host.ops->pause_vcpus(m->host.vm);
    ok = ram_save_sync(rs, error);
    ram_save_clear(rs);
    g_mutex_lock(&s->lock);
    s->armed = true;
    g_mutex_unlock(&s->lock);
    m->host.ops->resume_vcpus(m->host.vm);
    g_mutex_lock(&s->lock);
    s->pause_us = (uint64_t)(g_get_monotonic_time() - t0);
    g_mutex_unlock(&s->lock);
    if (!ok) {
        snapshot_stop(m);
        return false;
    }
    qb_log(LOG_INFO, "snapshot protect: %" G_GUINT64_FORMAT " MiB write-protected, guest paused %"
           G_GUINT64_FORMAT " us", s->pages_total * GUEST_PAGE_SIZE >> 20, s->pause_us);
    return true;
}

/* ---- the stream ---------------------------------------------------------- */

static unsigned snap_batch_pages(const Migration *m)
{
    uint64_t bw = m->params.max_bandwidth;

    /* About 20 ms of the link per batch. */
    return bw ? (unsigned)CLAMP(bw / 50 / GUEST_PAGE_SIZE, SNAP_BATCH_MIN, SNAP_BATCH_MAX) : SNAP_BATCH_MAX;
}

static void snap_take(Snapshot *s, RamCapture *batch, unsigned bi, uint64_t offset, const uint8_t *data)
{
    memcpy(batch->data + batch->n * GUEST_PAGE_SIZE, data, GUEST_PAGE_SIZE);
    batch->where[batch->n++] = (struct RamCapturedPage) { s->mem->blocks[bi], offset };
}

/* Fill @batch, under the lock: the copies first (they hold memory), then
 * the pages writers wait for, then the next pages in order from
 * @bi/@page. Returns the range taken in order (to unprotect), and in
 * @waiting the pages to let writers through. */
static bool snap_fill(Snapshot *s, RamCapture *batch, unsigned *bi, uint64_t *page, uint64_t *first,
                      uint64_t *count, unsigned *range_block, GArray *waiting)
{
    SnapCopy *cp;

    batch->n = 0;
    *count = 0;
    g_mutex_lock(&s->lock);
    while (batch->n < batch->capacity && (cp = g_queue_pop_head(&s->copies))) {
        snap_take(s, batch, cp->block, cp->offset, cp->data);
        g_free(cp);
        s->copies_held--;
    }
    while (batch->n < batch->capacity && s->waiting->len) {
        SnapPage p = g_array_index(s->waiting, SnapPage, 0);
        g_array_remove_index(s->waiting, 0);
        if (snap_test_clear(s->pending[p.block], p.offset / GUEST_PAGE_SIZE)) {
            snap_take(s, batch, p.block, p.offset, s->mem->blocks[p.block]->host + p.offset);
            s->pages_left--;
        }
        g_array_append_val(waiting, p);
    }
    if (batch->n < batch->capacity && *bi < s->nr_blocks) {
        const RamBlock *b = s->mem->blocks[*bi];
        uint64_t end = MIN(*page + (batch->capacity - batch->n), block_pages(b));
        *range_block = *bi;
        *first = *page;
        *count = end - *page;
        for (uint64_t p = *page; p < end; p++) {
            if (snap_test_clear(s->pending[*bi], p)) {
                snap_take(s, batch, *bi, p * GUEST_PAGE_SIZE, b->host + p * GUEST_PAGE_SIZE);
                s->pages_left--;
            }
        }
        *page = end;
        if (end == block_pages(b)) {
            (*bi)++;
            *page = 0;
        }
    }
    bool done = *bi >= s->nr_blocks && !s->copies.length && !s->waiting->len;
    g_mutex_unlock(&s->lock);
    return done;
}

bool snapshot_stream(Migration *m, GError **error)
{
    Snapshot *s = m->src.snapshot;
    MigChannel *c = m->src.out;
    unsigned bi = 0;
    uint64_t page = 0;
    bool done = false;
    RamCapture batch = { 0 };
    g_autoptr(GArray) waiting = g_array_new(FALSE, FALSE, sizeof(SnapPage));

    batch.capacity = snap_batch_pages(m);
    batch.data = g_malloc(batch.capacity * GUEST_PAGE_SIZE);
    batch.where = g_new(struct RamCapturedPage, batch.capacity);
    while (!done) {
        uint64_t first, count;
        unsigned rb = 0;
        g_array_set_size(waiting, 0);
        done = snap_fill(s, &batch, &bi, &page, &first, &count, &rb, waiting);
        /* Taken: what the guest writes there now no longer matters to
         * the snapshot (the dirty log has it for the final phase). */
        for (guint i = 0; i < waiting->len; i++) {
            const SnapPage *p = &g_array_index(waiting, SnapPage, i);
            snap_unprotect(s, s->mem->blocks[p->block]->host + p->offset, GUEST_PAGE_SIZE);
        }
        if (count) {
            snap_unprotect(s, s->mem->blocks[rb]->host + first * GUEST_PAGE_SIZE, count * GUEST_PAGE_SIZE);
        }
        if (batch.n) {
            ram_capture_send(&m->src.ram, &batch, c);
        }
        /* The batch is sent from its buffer: flush before refilling it. */
        if (mig_flush(c) || g_atomic_int_get(&m->src.cancel)) {
            break;
        }
    }
    ram_capture_free(&batch);
    if (!done) {
        int err = mig_channel_error(c);
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(-err), "snapshot protect: the stream to %s: %s",
                    m->src.uri, err ? g_strerror(-err) : "cancelled");
        return false;
    }
    g_mutex_lock(&s->lock);
    s->status = "completed";
    g_mutex_unlock(&s->lock);
    return true;
}

/* ---- the end ------------------------------------------------------------- */

static void snap_stop(Snapshot *s)
{
    if (!s || s->stopped) {
        return;
    }
    s->stopped = true;
    g_mutex_lock(&s->lock);
    s->stopping = true;
    if (strcmp(s->status, "completed")) {
        s->status = "failed";
    }
    g_mutex_unlock(&s->lock);
    /* Every page writable again (and every waiting writer woken) before
     * the fault thread goes: nothing may stay blocked on it. */
    for (unsigned i = 0; i < s->nr_blocks && s->uffd >= 0; i++) {
        const RamBlock *b = s->mem->blocks[i];
        if (s->registered[i]) {
            snap_unprotect(s, b->host, b->size);
            struct uffdio_range range = { (uintptr_t)b->host, b->size };
            if (ioctl(s->uffd, UFFDIO_UNREGISTER, &range) < 0) {
                qb_log(LOG_ERR, "snapshot: unregistering RAM block %s: %s", b->id, g_strerror(errno));
            }
            s->registered[i] = false;
        }
    }
    if (s->thread) {
        uint64_t one = 1;
        if (write(s->quit_fd, &one, sizeof(one)) != sizeof(one)) {
            qb_log(LOG_ERR, "snapshot: cannot stop the fault thread: %s", g_strerror(errno));
        }
        g_thread_join(s->thread);
        s->thread = NULL;
    }
    if (s->uffd >= 0) {
        close(s->uffd);
        s->uffd = -1;
    }
    if (s->quit_fd >= 0) {
        close(s->quit_fd);
        s->quit_fd = -1;
    }
    g_mutex_lock(&s->lock);
    g_queue_clear_full(&s->copies, g_free);
    s->copies_held = 0;
    g_array_set_size(s->waiting, 0);
    for (unsigned i = 0; i < s->nr_blocks; i++) {
        g_clear_pointer(&s->pending[i], g_free);
    }
    g_mutex_unlock(&s->lock);
    qb_log(LOG_INFO, "snapshot protect %s: %" G_GUINT64_FORMAT " write faults, %" G_GUINT64_FORMAT
           " pages copied aside (at most %" G_GUINT64_FORMAT " at once), %" G_GUINT64_FORMAT
           " writes waited at the copy limit", s->status, s->faults, s->copies_total, s->copies_peak, s->waits);
}

void snapshot_stop(Migration *m)
{
    snap_stop(m->src.snapshot);
}

void snapshot_free(Snapshot *s)
{
    if (!s) {
        return;
    }
    snap_stop(s);
    g_array_unref(s->waiting);
    g_mutex_clear(&s->lock);
    g_free(s);
}

void snapshot_query_locked(Migration *m, JsonObject *ret)
{
    Snapshot *s = m->src.snapshot;

    if (!s) {
        return;
    }
    JsonObject *o = json_object_new();
    g_mutex_lock(&s->lock);
    json_object_set_string_member(o, "status", s->status);
    json_object_set_int_member(o, "pause-us", (gint64)s->pause_us);
    json_object_set_int_member(o, "pages-total", (gint64)s->pages_total);
    json_object_set_int_member(o, "pages-left", (gint64)s->pages_left);
    json_object_set_int_member(o, "faults", (gint64)s->faults);
    json_object_set_int_member(o, "copies-held", (gint64)s->copies_held);
    json_object_set_int_member(o, "copies-peak", (gint64)s->copies_peak);
    json_object_set_int_member(o, "copies-total", (gint64)s->copies_total);
    json_object_set_int_member(o, "copy-limit", (gint64)s->limit);
    json_object_set_int_member(o, "waits", (gint64)s->waits);
    g_mutex_unlock(&s->lock);
    json_object_set_object_member(ret, "snapshot", o);
}
