/* Postcopy: the destination runs while the source still sends pages.
 *
 * Destination: guest RAM is registered with userfaultfd; a vCPU (or KVM on
 * its behalf) touching a missing page blocks in the kernel, the fault
 * thread asks the source for that page over the return path, and the page
 * is placed with UFFDIO_COPY / UFFDIO_ZEROPAGE, which fill it atomically
 * and wake the vCPU: nothing ever sees half a page.
 *
 * Source: the VM stays stopped; the migration thread streams the remaining
 * pages in the background on the main channel, while the return-path
 * thread answers page requests at once on a channel of their own, so a
 * demanded page never queues behind the background stream or its
 * bandwidth limit. */
#include "config.h"

#include "migration/postcopy.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gio/gio.h>
#include <qb/qblog.h>

#include "migration/format.h"
#include "migration/migration-priv.h"
#include "migration/owner.h"

#define BITS_PER_WORD     (8 * sizeof(unsigned long))
#define DISCARD_BATCH     4000        /* ranges per discard command, < 64 KiB */
#define BACKGROUND_CHUNK  64          /* pages between request checks */
#define MAX_REQUEST_LEN   (1u << 20)

struct Postcopy {
    /* destination */
    int uffd;
    int quit_fd;
    GThread *fault_thread;
    bool advised;
    bool listening;
    bool running;                   /* the guest runs here: a broken stream pauses, not fails */
    bool ended;                     /* POSTCOPY_END came: no second listen (its bitmaps are set) */
    unsigned long *received[GUEST_MAX_REGIONS];
    unsigned long *requested[GUEST_MAX_REGIONS];
    GMutex lock;                    /* fault_times, latencies */
    GHashTable *fault_times;        /* page key -> monotonic us of the fault */
    GArray *latencies;              /* us from fault to placement, uint32 */
    uint64_t blocktime_us;
    /* source */
    MigChannel *demand;             /* demanded pages */
    GMutex demand_lock;
};

static bool test_and_set_bit(unsigned long *map, uint64_t bit)
{
    unsigned long mask = 1UL << (bit % BITS_PER_WORD);

    return __atomic_fetch_or(&map[bit / BITS_PER_WORD], mask, __ATOMIC_ACQ_REL) & mask;
}

static bool test_bit(const unsigned long *map, uint64_t bit)
{
    return __atomic_load_n(&map[bit / BITS_PER_WORD], __ATOMIC_ACQUIRE) & (1UL << (bit % BITS_PER_WORD));
}

Postcopy *postcopy_new(void)
{
    Postcopy *pc = g_new0(Postcopy, 1);

    pc->uffd = pc->quit_fd = -1;
    g_mutex_init(&pc->lock);
    g_mutex_init(&pc->demand_lock);
    pc->fault_times = g_hash_table_new(g_int64_hash, g_int64_equal);
    pc->latencies = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    return pc;
}

static void postcopy_stop_faults(Postcopy *pc, GuestMemory *mem)
{
    if (pc->fault_thread) {
        uint64_t one = 1;
        if (write(pc->quit_fd, &one, sizeof(one)) < 0) {
            qb_log(LOG_WARNING, "postcopy: cannot stop the fault thread: %s", strerror(errno));
        }
        g_thread_join(pc->fault_thread);
        pc->fault_thread = NULL;
    }
    if (pc->uffd >= 0) {
        for (unsigned i = 0; mem && i < mem->nr_blocks; i++) {
            struct uffdio_range range = { (uintptr_t)mem->blocks[i]->host, mem->blocks[i]->size };
            ioctl(pc->uffd, UFFDIO_UNREGISTER, &range);
        }
        close(pc->uffd);
        pc->uffd = -1;
    }
    if (pc->quit_fd >= 0) {
        close(pc->quit_fd);
        pc->quit_fd = -1;
    }
    pc->listening = false;
}

void postcopy_free(Postcopy *pc, GuestMemory *mem)
{
    if (!pc) {
        return;
    }
    postcopy_stop_faults(pc, mem);
    for (unsigned i = 0; i < GUEST_MAX_REGIONS; i++) {
        g_free(pc->received[i]);
        g_free(pc->requested[i]);
    }
    g_hash_table_destroy(pc->fault_times);
    g_array_free(pc->latencies, TRUE);
    mig_channel_free(pc->demand);
    g_mutex_clear(&pc->lock);
    g_mutex_clear(&pc->demand_lock);
    g_free(pc);
}

/* A vCPU waits on every page this thread handles, while the background
 * stream keeps every core busy. A raised nice value still left some
 * faults waiting milliseconds for a time slice (the slowest of a run 4-8
 * ms on 2 cores); the lowest real-time priority preempts the stream at
 * once (under 1 ms). Such a thread blocks between pages, and the kernel's
 * real-time throttling bounds it should it ever spin. Without
 * CAP_SYS_NICE (or under systemd's RestrictRealtime=), nice -10; without
 * that either, the thread keeps its priority. */
void postcopy_thread_urgent(void)
{
    struct sched_param sp = { .sched_priority = 1 };
    int err = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);

    if (err == 0) {
        return;
    }
    qb_log(LOG_DEBUG, "postcopy: no real-time priority for a demand-path thread: %s", strerror(err));
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), -10) < 0) {
        qb_log(LOG_DEBUG, "postcopy: cannot raise the priority of a demand-path thread: %s",
               strerror(errno));
    }
}

/* ---- destination ------------------------------------------------------- */

static int uffd_open(GError **error)
{
    /* Not UFFD_USER_MODE_ONLY: KVM touches guest memory from the kernel,
     * and those faults must reach us too. */
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

    if (fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "postcopy needs userfaultfd: %s%s", g_strerror(errno),
                    errno == EPERM ? " (vm.unprivileged_userfaultfd, or run as root)" : "");
        return -1;
    }
    struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_MISSING_SHMEM };
    if (ioctl(fd, UFFDIO_API, &api) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "postcopy: userfaultfd API: %s", g_strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static bool uffd_register(int fd, GuestMemory *mem, GError **error)
{
    for (unsigned i = 0; i < mem->nr_blocks; i++) {
        RamBlock *b = mem->blocks[i];
        struct uffdio_register reg = {
            .range = { (uintptr_t)b->host, b->size },
            .mode = UFFDIO_REGISTER_MODE_MISSING,
        };
        if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                        "postcopy: cannot register RAM block '%s' with userfaultfd: %s "
                        "(guest RAM must be anonymous memory, tmpfs or hugetlbfs)", b->id, g_strerror(errno));
            return false;
        }
        if (!(reg.ioctls & (1ULL << _UFFDIO_COPY))) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                        "postcopy: userfaultfd cannot copy pages into RAM block '%s'", b->id);
            return false;
        }
    }
    return true;
}

/* ADVISE: fail early, before the source commits to postcopy, if this side
 * cannot do it. */
static bool postcopy_advise(Migration *m, GError **error)
{
    int fd = uffd_open(error);

    if (fd < 0) {
        return false;
    }
    bool ok = uffd_register(fd, m->host.mem, error);
    close(fd);
    return ok;
}

static int block_index_of(const GuestMemory *mem, const RamBlock *b)
{
    for (unsigned i = 0; i < mem->nr_blocks; i++) {
        if (mem->blocks[i] == b) {
            return (int)i;
        }
    }
    return -1;
}

static int64_t page_key(unsigned block, uint64_t page)
{
    return (int64_t)(((uint64_t)block << 48) | page);
}

static void postcopy_note_fault(Migration *m, uintptr_t addr)
{
    Postcopy *pc = m->postcopy;
    GuestMemory *mem = m->host.mem;

    for (unsigned i = 0; i < mem->nr_blocks; i++) {
        const RamBlock *b = mem->blocks[i];
        if (addr < (uintptr_t)b->host || addr >= (uintptr_t)b->host + b->size) {
            continue;
        }
        uint64_t page = (addr - (uintptr_t)b->host) / GUEST_PAGE_SIZE;
        if (test_bit(pc->received[i], page) || test_and_set_bit(pc->requested[i], page)) {
            return;     /* arrived meanwhile, or already asked for */
        }
        int64_t *key = g_new(int64_t, 2);
        key[0] = page_key(i, page);
        key[1] = g_get_monotonic_time();
        g_mutex_lock(&pc->lock);
        g_hash_table_insert(pc->fault_times, key, key);
        g_mutex_unlock(&pc->lock);

        uint8_t msg[1 + MIG_MAX_ID_LEN + 12];
        size_t idlen = strlen(b->id), n = 0;
        uint64_t offset = GUINT64_TO_BE(page * GUEST_PAGE_SIZE);
        uint32_t len = GUINT32_TO_BE((uint32_t)GUEST_PAGE_SIZE);
        msg[n++] = (uint8_t)idlen;
        memcpy(msg + n, b->id, idlen);
        n += idlen;
        memcpy(msg + n, &offset, 8);
        memcpy(msg + n + 8, &len, 4);
        migration_rp_send(m, MIG_RP_REQ_PAGES, msg, (uint16_t)(n + 12));
        return;
    }
    qb_log(LOG_ERR, "postcopy: fault at %#lx outside guest RAM", (unsigned long)addr);
}

static gpointer fault_thread(gpointer opaque)
{
    Migration *m = opaque;
    Postcopy *pc = m->postcopy;
    struct pollfd fds[2] = { { pc->uffd, POLLIN, 0 }, { pc->quit_fd, POLLIN, 0 } };

    postcopy_thread_urgent();

    for (;;) {
        if (poll(fds, 2, -1) < 0 && errno != EINTR) {
            qb_log(LOG_ERR, "postcopy: poll: %s", strerror(errno));
            break;
        }
        if (fds[1].revents) {
            break;
        }
        /* At real-time priority an error that poll keeps reporting must
         * end the thread, not spin it. */
        if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
            qb_log(LOG_ERR, "postcopy: userfaultfd reports an error (poll 0x%x)", (unsigned)fds[0].revents);
            break;
        }
        struct uffd_msg msgs[16];
        ssize_t n = read(pc->uffd, msgs, sizeof(msgs));
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            qb_log(LOG_ERR, "postcopy: reading userfaultfd: %s", strerror(errno));
            break;
        }
        for (ssize_t i = 0; i < n / (ssize_t)sizeof(msgs[0]); i++) {
            if (msgs[i].event == UFFD_EVENT_PAGEFAULT) {
                postcopy_note_fault(m, (uintptr_t)msgs[i].arg.pagefault.address & ~(GUEST_PAGE_SIZE - 1));
            }
        }
    }
    return NULL;
}

static bool postcopy_listen(Migration *m, GError **error)
{
    Postcopy *pc = m->postcopy;
    GuestMemory *mem = m->host.mem;

    pc->uffd = uffd_open(error);
    if (pc->uffd < 0 || !uffd_register(pc->uffd, mem, error)) {
        return false;
    }
    for (unsigned i = 0; i < mem->nr_blocks; i++) {
        size_t words = (mem->blocks[i]->size / GUEST_PAGE_SIZE + BITS_PER_WORD - 1) / BITS_PER_WORD;
        pc->received[i] = g_new0(unsigned long, words);
        pc->requested[i] = g_new0(unsigned long, words);
    }
    pc->quit_fd = eventfd(0, EFD_CLOEXEC);
    pc->fault_thread = g_thread_new("mig/faults", fault_thread, m);
    pc->listening = true;
    qb_log(LOG_INFO, "postcopy: listening for faults");
    return true;
}

/* Fill one page atomically and wake whoever waits for it. */
static bool postcopy_place(void *opaque, const RamBlock *b, uint64_t offset, const uint8_t *data)
{
    Migration *m = opaque;
    Postcopy *pc = m->postcopy;
    int bi = block_index_of(m->host.mem, b);
    uint64_t page = offset / GUEST_PAGE_SIZE;
    static const uint8_t zeros[GUEST_PAGE_SIZE];
    int ret;

    if (test_bit(pc->received[bi], page)) {
        return true;    /* came on the other channel first */
    }
    if (!data) {
        struct uffdio_zeropage z = { .range = { (uintptr_t)b->host + offset, GUEST_PAGE_SIZE } };
        ret = ioctl(pc->uffd, UFFDIO_ZEROPAGE, &z);
        if (ret < 0 && errno == EINVAL) {
            data = zeros;       /* hugetlbfs has no zero page */
        }
    }
    if (data) {
        struct uffdio_copy copy = {
            .dst = (uintptr_t)b->host + offset, .src = (uintptr_t)data, .len = GUEST_PAGE_SIZE,
        };
        ret = ioctl(pc->uffd, UFFDIO_COPY, &copy);
    }
    if (ret < 0 && errno != EEXIST) {
        qb_log(LOG_ERR, "postcopy: placing page %#" G_GINT64_MODIFIER "x of '%s': %s",
               offset, b->id, strerror(errno));
        return false;
    }
    test_and_set_bit(pc->received[bi], page);
    if (test_bit(pc->requested[bi], page)) {
        int64_t key = page_key((unsigned)bi, page);
        g_mutex_lock(&pc->lock);
        int64_t *entry = g_hash_table_lookup(pc->fault_times, &key);
        if (entry) {
            uint32_t us = (uint32_t)MIN(g_get_monotonic_time() - entry[1], (int64_t)UINT32_MAX);
            g_array_append_val(pc->latencies, us);
            pc->blocktime_us += us;
            g_hash_table_remove(pc->fault_times, &key);
            g_free(entry);
        }
        g_mutex_unlock(&pc->lock);
    }
    return true;
}

bool migration_incoming_ram(Migration *m, MigChannel *c, GError **error)
{
    Postcopy *pc = m->postcopy;
    bool placing = pc && pc->listening;

    return ram_load(m->host.mem, c, &m->dst.stats, &m->dst.ram, placing ? postcopy_place : NULL, m, error);
}

/* Pages the source will send again: drop our stale copies so that touching
 * them faults instead of reading old data. */
static bool postcopy_discard(Migration *m, const uint8_t *p, uint16_t len, GError **error)
{
    if (len < 1 || len < 1 + p[0] + 4) {
        goto bad;
    }
    char id[MIG_MAX_ID_LEN + 1];
    memcpy(id, p + 1, p[0]);
    id[p[0]] = '\0';
    const RamBlock *b = ram_block_by_id(m->host.mem, id);
    size_t pos = 1 + p[0];
    uint32_t n;
    memcpy(&n, p + pos, 4);
    n = GUINT32_FROM_BE(n);
    pos += 4;
    if (!b || (size_t)len != pos + (size_t)n * 16) {
        goto bad;
    }
    uint64_t pages = b->size / GUEST_PAGE_SIZE;
    for (uint32_t i = 0; i < n; i++, pos += 16) {
        uint64_t first, count;
        memcpy(&first, p + pos, 8);
        memcpy(&count, p + pos + 8, 8);
        first = GUINT64_FROM_BE(first);
        count = GUINT64_FROM_BE(count);
        if (first >= pages || count > pages - first) {
            goto bad;
        }
        if (!ram_block_discard(b, first * GUEST_PAGE_SIZE, count * GUEST_PAGE_SIZE, error)) {
            g_prefix_error(error, "postcopy: ");
            return false;
        }
    }
    return true;
bad:
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "malformed postcopy discard list");
    return false;
}

static gboolean main_postcopy_run(gpointer opaque)
{
    Migration *m = opaque;

    migration_incoming_start_guest(m);
    m->host.ops->announce(m->host.vm);
    return G_SOURCE_REMOVE;
}

/* The loader of the main stream and the demand channel's thread may both
 * be first to need it. */
static Postcopy *postcopy_get(Migration *m)
{
    g_mutex_lock(&m->lock);
    if (!m->postcopy) {
        m->postcopy = postcopy_new();
    }
    Postcopy *pc = m->postcopy;
    g_mutex_unlock(&m->lock);
    return pc;
}

bool migration_incoming_postcopy_command(Migration *m, MigChannel *c, uint16_t cmd,
                                         const uint8_t *payload, uint16_t len, GError **error)
{
    postcopy_get(m);
    switch (cmd) {
    case MIG_CMD_POSTCOPY_ADVISE:
        if (len != 16 || m->postcopy->advised) {
            break;
        }
        m->postcopy->advised = postcopy_advise(m, error);
        return m->postcopy->advised;
    case MIG_CMD_POSTCOPY_DISCARD:
        if (!m->postcopy->advised || m->postcopy->listening || m->postcopy->ended) {
            break;
        }
        return postcopy_discard(m, payload, len, error);
    case MIG_CMD_POSTCOPY_LISTEN:
        if (len || !m->postcopy->advised || m->postcopy->listening || m->postcopy->ended) {
            break;
        }
        return postcopy_listen(m, error);
    case MIG_CMD_POSTCOPY_RUN:
        if (len || !m->postcopy->listening || m->postcopy->running) {
            break;
        }
        m->postcopy->running = true;
        g_mutex_lock(&m->lock);
        m->dst.status = MIG_STATUS_POSTCOPY_ACTIVE;
        g_mutex_unlock(&m->lock);
        migration_emit_status(m, MIG_STATUS_POSTCOPY_ACTIVE);
        g_main_context_invoke(m->host.ctx, main_postcopy_run, m);
        return true;
    case MIG_CMD_POSTCOPY_END:
        if (len || !m->postcopy->listening) {
            break;
        }
        postcopy_stop_faults(m->postcopy, m->host.mem);
        m->postcopy->ended = true;
        return true;
    default:
        break;
    }
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                "postcopy command %u out of order or with a bad payload", cmd);
    return false;
}

bool migration_incoming_in_postcopy(Migration *m)
{
    return m->postcopy && m->postcopy->running;
}

bool migration_incoming_postcopy_listening(Migration *m)
{
    return m->postcopy && m->postcopy->listening;
}

/* Demanded pages arrive on their own channel, placed like any other. */
gpointer migration_postcopy_demand_thread(gpointer opaque)
{
    Migration *m = opaque;
    MigChannel *c = m->postcopy->demand;
    g_autoptr(GError) error = NULL;

    postcopy_thread_urgent();
    while (!mig_channel_error(c)) {
        uint8_t kind = mig_get_u8(c);
        if (mig_channel_error(c)) {
            break;
        }
        if (kind != MIG_REC_RAM || !m->postcopy->listening ||
            !ram_load(m->host.mem, c, &m->dst.stats, &m->dst.ram, postcopy_place, m, &error)) {
            qb_log(LOG_ERR, "postcopy: demand channel: %s",
                   error ? error->message : "unexpected record");
            break;
        }
    }
    return NULL;
}

void migration_incoming_postcopy_cleanup(Migration *m)
{
    if (m->postcopy && m->postcopy->demand) {
        mig_channel_shutdown(m->postcopy->demand, ECANCELED);
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

void migration_query_postcopy(Migration *m, JsonObject *ret)
{
    Postcopy *pc = m->postcopy;

    if (!pc || !pc->latencies) {
        return;
    }
    g_mutex_lock(&pc->lock);
    guint n = pc->latencies->len;
    if (n) {
        g_autofree uint32_t *sorted = g_memdup2(pc->latencies->data, n * sizeof(uint32_t));
        qsort(sorted, n, sizeof(uint32_t), cmp_u32);
        JsonObject *f = json_object_new();
        json_object_set_int_member(f, "count", n);
        json_object_set_int_member(f, "latency-p50-us", sorted[n / 2]);
        json_object_set_int_member(f, "latency-p99-us", sorted[MIN(n - 1, n * 99 / 100)]);
        json_object_set_int_member(f, "latency-max-us", sorted[n - 1]);
        json_object_set_object_member(ret, "x-postcopy-faults", f);
        json_object_set_int_member(ret, "postcopy-blocktime", (gint64)(pc->blocktime_us / 1000));
    }
    g_mutex_unlock(&pc->lock);
}

/* ---- source ------------------------------------------------------------- */

bool migration_postcopy_requested(Migration *m)
{
    return g_atomic_int_get(&m->src.postcopy_requested) != 0;
}

void migration_postcopy_set_demand_channel(Migration *m, MigChannel *c)
{
    postcopy_get(m)->demand = c;
}

/* Return-path thread: send the pages asked for, now, on the demand channel.
 * The source VM is stopped, so the pages cannot change under us; a page
 * the background stream also sends is simply placed once. */
bool migration_postcopy_serve_request(Migration *m, const uint8_t *p, uint16_t len)
{
    Postcopy *pc = m->postcopy;

    if (!pc || !pc->demand || len < 1 || len != 1 + p[0] + 12) {
        return false;
    }
    char id[MIG_MAX_ID_LEN + 1];
    memcpy(id, p + 1, p[0]);
    id[p[0]] = '\0';
    uint64_t offset;
    uint32_t size;
    memcpy(&offset, p + 1 + p[0], 8);
    memcpy(&size, p + 1 + p[0] + 8, 4);
    offset = GUINT64_FROM_BE(offset);
    size = GUINT32_FROM_BE(size);
    const RamBlock *b = ram_block_by_id(m->host.mem, id);
    if (!b || offset % GUEST_PAGE_SIZE || size == 0 || size % GUEST_PAGE_SIZE ||
        size > MAX_REQUEST_LEN || offset >= b->size || size > b->size - offset) {
        return false;
    }
    g_mutex_lock(&pc->demand_lock);
    for (uint64_t o = offset; o < offset + size; o += GUEST_PAGE_SIZE) {
        ram_send_single_page(pc->demand, b, o, &m->src.ram.stats);
    }
    mig_flush(pc->demand);
    g_mutex_unlock(&pc->demand_lock);
    __atomic_fetch_add(&m->src.ram.stats.postcopy_requests, 1, __ATOMIC_RELAXED);
    return true;
}

typedef struct {
    MigChannel *c;
    const RamBlock *block;
    GByteArray *ranges;
    uint32_t n;
} DiscardBatch;

static void discard_flush(DiscardBatch *d)
{
    if (!d->n) {
        return;
    }
    size_t idlen = strlen(d->block->id);
    mig_put_u8(d->c, MIG_REC_COMMAND);
    mig_put_be16(d->c, MIG_CMD_POSTCOPY_DISCARD);
    mig_put_be16(d->c, (uint16_t)(1 + idlen + 4 + d->ranges->len));
    mig_put_u8(d->c, (uint8_t)idlen);
    mig_put_bytes(d->c, d->block->id, idlen);
    mig_put_be32(d->c, d->n);
    mig_put_bytes(d->c, d->ranges->data, d->ranges->len);
    g_byte_array_set_size(d->ranges, 0);
    d->n = 0;
}

static void discard_range(void *opaque, const RamBlock *b, uint64_t first, uint64_t n)
{
    DiscardBatch *d = opaque;

    if (d->block != b || d->n == DISCARD_BATCH) {
        discard_flush(d);
        d->block = b;
    }
    uint64_t be[2] = { GUINT64_TO_BE(first), GUINT64_TO_BE(n) };
    g_byte_array_append(d->ranges, (const guint8 *)be, sizeof(be));
    d->n++;
}

static void put_command(MigChannel *c, uint16_t cmd)
{
    mig_put_u8(c, MIG_REC_COMMAND);
    mig_put_be16(c, cmd);
    mig_put_be16(c, 0);
}

void migration_postcopy_advise(Migration *m, MigChannel *c)
{
    uint64_t sizes[2] = { GUINT64_TO_BE(GUEST_PAGE_SIZE), GUINT64_TO_BE(GUEST_PAGE_SIZE) };

    mig_put_u8(c, MIG_REC_COMMAND);
    mig_put_be16(c, MIG_CMD_POSTCOPY_ADVISE);
    mig_put_be16(c, sizeof(sizes));
    mig_put_bytes(c, sizes, sizeof(sizes));
}

/* The device state, RUN_STATE and POSTCOPY_RUN as one packaged chunk: the
 * destination loads the devices only once all of it is there, from memory,
 * so nothing of the switch waits for the network halfway. */
static bool postcopy_send_package(Migration *m, MigChannel *c, GError **error)
{
    uint32_t size;
    g_autofree uint8_t *buf = migration_devices_chunk(m, MIG_CMD_POSTCOPY_RUN, &size, error);

    if (!buf) {
        g_prefix_error(error, "postcopy package: ");
        return false;
    }
    mig_put_u8(c, MIG_REC_COMMAND);
    mig_put_be16(c, MIG_CMD_PACKAGED);
    mig_put_be16(c, 4);
    mig_put_be32(c, size);
    mig_put_bytes(c, buf, size);
    return true;
}

bool migration_postcopy_run(Migration *m, GError **error)
{
    MigChannel *c = m->src.out;
    RamSave *rs = &m->src.ram;

    migration_stop_vm(m);
    int64_t stopped = g_get_monotonic_time();
    if (!ram_save_sync(rs, error)) {
        return false;
    }
    ram_save_announce(rs, c);   /* RAM added since the last pass, before it is listened to */
    /* Everything still to send is stale (or absent) on the destination. */
    DiscardBatch d = { .c = c, .ranges = g_byte_array_new() };
    ram_save_for_each_dirty_run(rs, discard_range, &d);
    discard_flush(&d);
    g_byte_array_free(d.ranges, TRUE);
    put_command(c, MIG_CMD_POSTCOPY_LISTEN);
    /* The package lets the destination run the guest. */
    if (!mig_owner_commit(m, error) || !postcopy_send_package(m, c, error) || mig_flush(c)) {
        return false;
    }
    m->src.downtime_ms = (g_get_monotonic_time() - stopped) / 1000;
    migration_set_status(m, MIG_STATUS_POSTCOPY_ACTIVE);
    qb_log(LOG_INFO, "postcopy: destination runs; %" G_GUINT64_FORMAT " pages still to send",
           ram_save_remaining(rs));

    mig_set_rate_limit(c, m->params.max_postcopy_bandwidth);
    while (ram_save_remaining(rs)) {
        ram_save_pass(rs, c, BACKGROUND_CHUNK, &m->src.cancel);
        if (mig_flush(c)) {
            return false;
        }
    }
    put_command(c, MIG_CMD_POSTCOPY_END);
    mig_put_u8(c, MIG_REC_EOF);
    if (mig_flush(c)) {
        return false;
    }
    return migration_wait_shut(m, error);
}
