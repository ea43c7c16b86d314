#include "config.h"

#include "migration/multifd.h"

#include <errno.h>
#include <string.h>

#include <gio/gio.h>
#include <qb/qblog.h>

#include "migration/format.h"
#include "migration/mig-tls.h"

#define BITS_PER_WORD   (8 * sizeof(unsigned long))
#define PACKET_PAGES    128     /* pages per packet: 512 KiB of data at most */
#define QUEUE_DEPTH     4       /* packets waiting per channel */
#define SYNC_TIMEOUT_S  60

enum { PACKET_PAGES_TYPE = 1, PACKET_SYNC_TYPE = 2 };
#define PAGE_ZERO_FLAG 1ULL

typedef struct {
    const RamBlock *block;      /* NULL: a sync marker */
    const uint8_t *data;        /* the pages' copies, in order (COLO); NULL: from guest RAM */
    uint64_t seq;
    unsigned n;
    uint64_t offsets[PACKET_PAGES];
} Packet;

typedef struct {
    MultifdSend *ms;
    unsigned index;
    MigChannel *c;
    GThread *thread;
    GAsyncQueue *queue;         /* Packet *; NULL pointer never queued */
} SendChannel;

struct MultifdSend {
    unsigned n;
    SendChannel *ch;
    GMutex lock;
    GCond cond;
    unsigned in_flight[MIG_MAX_MULTIFD];    /* packets queued or being sent, per channel */
    uint64_t synced;            /* channels that flushed the current sync */
    uint64_t seq;
    unsigned next;
    RamStats *stats;            /* the migration's, updated atomically */
};

static void send_packet(SendChannel *sc, Packet *p)
{
    MigChannel *c = sc->c;
    const RamBlock *b = p->block;
    size_t idlen = strlen(b->id);
    uint64_t zero_flags[PACKET_PAGES];
    const uint8_t *page[PACKET_PAGES];

    for (unsigned i = 0; i < p->n; i++) {
        page[i] = p->data ? p->data + (size_t)i * GUEST_PAGE_SIZE : b->host + p->offsets[i];
        zero_flags[i] = buffer_is_zero(page[i], GUEST_PAGE_SIZE) ? PAGE_ZERO_FLAG : 0;
    }
    mig_put_u8(c, PACKET_PAGES_TYPE);
    mig_put_u8(c, (uint8_t)idlen);
    mig_put_bytes(c, b->id, idlen);
    mig_put_be32(c, p->n);
    for (unsigned i = 0; i < p->n; i++) {
        mig_put_be64(c, p->offsets[i] | zero_flags[i]);
    }
    for (unsigned i = 0; i < p->n; i++) {
        if (zero_flags[i]) {
            __atomic_fetch_add(&sc->ms->stats->duplicate, 1, __ATOMIC_RELAXED);
        } else {
            mig_put_bytes_ref(c, page[i], GUEST_PAGE_SIZE);
            __atomic_fetch_add(&sc->ms->stats->normal, 1, __ATOMIC_RELAXED);
        }
    }
    mig_flush(c);
}

static gpointer send_thread(gpointer opaque)
{
    SendChannel *sc = opaque;
    MultifdSend *ms = sc->ms;

    for (;;) {
        Packet *p = g_async_queue_pop(sc->queue);
        if (p->block) {
            if (!mig_channel_error(sc->c)) {
                send_packet(sc, p);
            }
        } else if (p->seq == UINT64_MAX) {
            g_free(p);
            break;      /* quit */
        } else {
            mig_put_u8(sc->c, PACKET_SYNC_TYPE);
            mig_put_be64(sc->c, p->seq);
            mig_flush(sc->c);
            g_mutex_lock(&ms->lock);
            ms->synced++;
            g_mutex_unlock(&ms->lock);
        }
        g_free(p);
        g_mutex_lock(&ms->lock);
        ms->in_flight[sc->index]--;
        g_cond_broadcast(&ms->cond);
        g_mutex_unlock(&ms->lock);
    }
    return NULL;
}

MultifdSend *multifd_send_new(const char *uri, struct ColoTlsCreds *tls, const char *tls_hostname, unsigned n,
                              uint64_t max_bandwidth, RamStats *stats, GError **error)
{
    MultifdSend *ms = g_new0(MultifdSend, 1);

    ms->stats = stats;
    g_mutex_init(&ms->lock);
    g_cond_init(&ms->cond);
    ms->ch = g_new0(SendChannel, n);
    for (unsigned i = 0; i < n; i++) {
        MigChannel *c = mig_tls_connect(uri, tls, tls_hostname, error);
        if (!c) {
            g_prefix_error(error, "multifd channel %u: ", i);
            multifd_send_free(ms);
            return NULL;
        }
        SendChannel *sc = &ms->ch[i];
        sc->ms = ms;
        sc->index = i;
        sc->c = c;
        mig_set_rate_limit(sc->c, max_bandwidth / n);
        mig_put_be32(sc->c, MIG_MAGIC);
        mig_put_be32(sc->c, MIG_VERSION);
        mig_put_u8(sc->c, MIG_CHANNEL_MULTIFD);
        mig_put_u8(sc->c, (uint8_t)i);
        mig_flush(sc->c);
        sc->queue = g_async_queue_new();
        ms->n++;
        sc->thread = g_thread_new("mig/multifd", send_thread, sc);
    }
    return ms;
}

static void queue_packet(MultifdSend *ms, unsigned i, Packet *p)
{
    g_mutex_lock(&ms->lock);
    ms->in_flight[i]++;
    g_mutex_unlock(&ms->lock);
    g_async_queue_push(ms->ch[i].queue, p);
}

void multifd_send_shutdown(MultifdSend *ms, int err)
{
    for (unsigned i = 0; ms && i < ms->n; i++) {
        mig_channel_shutdown(ms->ch[i].c, err);
    }
}

void multifd_send_free(MultifdSend *ms)
{
    if (!ms) {
        return;
    }
    for (unsigned i = 0; i < ms->n; i++) {
        Packet *quit = g_new0(Packet, 1);
        quit->seq = UINT64_MAX;
        queue_packet(ms, i, quit);
    }
    for (unsigned i = 0; i < ms->n; i++) {
        g_thread_join(ms->ch[i].thread);
        g_async_queue_unref(ms->ch[i].queue);
        mig_channel_free(ms->ch[i].c);
    }
    g_free(ms->ch);
    g_cond_clear(&ms->cond);
    g_mutex_clear(&ms->lock);
    g_free(ms);
}

/* The least busy channel, waiting while all are full. */
static int pick_channel(MultifdSend *ms, const gint *stop)
{
    int best = -1;

    g_mutex_lock(&ms->lock);
    while (!(stop && g_atomic_int_get(stop))) {
        for (unsigned k = 0; k < ms->n; k++) {
            unsigned i = (ms->next + k) % ms->n;
            if (mig_channel_error(ms->ch[i].c)) {
                goto out;
            }
            if (ms->in_flight[i] < QUEUE_DEPTH && (best < 0 || ms->in_flight[i] < ms->in_flight[best])) {
                best = (int)i;
            }
        }
        if (best >= 0) {
            ms->next = ((unsigned)best + 1) % ms->n;
            break;
        }
        gint64 deadline = g_get_monotonic_time() + 100 * G_TIME_SPAN_MILLISECOND;
        g_cond_wait_until(&ms->cond, &ms->lock, deadline);
    }
out:
    g_mutex_unlock(&ms->lock);
    return best;
}

/* Hand @p to the least busy channel; false (and @p dropped) when they broke
 * or *@stop was set meanwhile. */
static bool send_queue(MultifdSend *ms, Packet *p, const gint *stop)
{
    int ch = pick_channel(ms, stop);

    if (ch < 0) {
        g_free(p);
        return false;
    }
    queue_packet(ms, (unsigned)ch, p);
    return true;
}

uint64_t multifd_send_pass(MultifdSend *ms, RamSave *rs, uint64_t max_pages, const gint *stop)
{
    uint64_t queued = 0;
    Packet *p = NULL;

    for (unsigned bi = 0; bi < rs->nr_blocks; bi++) {
        const RamBlock *b = rs->mem->blocks[bi];
        unsigned long *map = rs->bmap[bi];
        size_t words = (b->size / GUEST_PAGE_SIZE + BITS_PER_WORD - 1) / BITS_PER_WORD;
        for (size_t w = 0; w < words; w++) {
            while (map[w]) {
                if ((max_pages && queued >= max_pages) || (stop && g_atomic_int_get(stop))) {
                    goto done;
                }
                unsigned bit = (unsigned)__builtin_ctzl(map[w]);
                map[w] &= ~(1UL << bit);
                rs->dirty--;
                if (!p) {
                    p = g_new0(Packet, 1);
                    p->block = b;
                }
                p->offsets[p->n++] = (w * BITS_PER_WORD + bit) * GUEST_PAGE_SIZE;
                queued++;
                if (p->n == PACKET_PAGES) {
                    if (!send_queue(ms, p, stop)) {
                        return queued;
                    }
                    p = NULL;
                }
            }
        }
        /* Packets never span blocks. */
        if (p && !send_queue(ms, p, stop)) {
            return queued;
        }
        p = NULL;
    }
done:
    if (p) {
        send_queue(ms, p, stop);
    }
    return queued;
}

bool multifd_send_capture(MultifdSend *ms, const RamCapture *cap)
{
    for (uint64_t i = 0; i < cap->n;) {
        Packet *p = g_new0(Packet, 1);
        p->block = cap->where[i].block;
        p->data = cap->data + i * GUEST_PAGE_SIZE;
        /* Packets never span blocks; a packet's copies are neighbours in
         * the capture, whatever their offsets. */
        while (i < cap->n && p->n < PACKET_PAGES && cap->where[i].block == p->block) {
            p->offsets[p->n++] = cap->where[i++].offset;
        }
        if (!send_queue(ms, p, NULL)) {
            return false;
        }
    }
    return true;
}

bool multifd_send_sync(MultifdSend *ms, MigChannel *c)
{
    uint64_t seq = ++ms->seq;

    g_mutex_lock(&ms->lock);
    ms->synced = 0;
    g_mutex_unlock(&ms->lock);
    for (unsigned i = 0; i < ms->n; i++) {
        Packet *p = g_new0(Packet, 1);
        p->seq = seq;
        queue_packet(ms, i, p);
    }
    mig_put_u8(c, MIG_REC_COMMAND);
    mig_put_be16(c, MIG_CMD_MULTIFD_SYNC);
    mig_put_be16(c, 12);
    mig_put_be32(c, ms->n);
    mig_put_be64(c, seq);
    mig_flush(c);

    bool ok = true;
    g_mutex_lock(&ms->lock);
    while (ms->synced < ms->n) {
        for (unsigned i = 0; i < ms->n; i++) {
            if (mig_channel_error(ms->ch[i].c)) {
                ok = false;
            }
        }
        if (!ok) {
            break;
        }
        gint64 deadline = g_get_monotonic_time() + 100 * G_TIME_SPAN_MILLISECOND;
        g_cond_wait_until(&ms->cond, &ms->lock, deadline);
    }
    g_mutex_unlock(&ms->lock);
    return ok && !mig_channel_error(c);
}

uint64_t multifd_send_bytes(MultifdSend *ms)
{
    uint64_t total = 0;

    for (unsigned i = 0; ms && i < ms->n; i++) {
        total += mig_bytes_written(ms->ch[i].c);
    }
    return total;
}

void multifd_send_set_rate_limit(MultifdSend *ms, uint64_t max_bandwidth)
{
    for (unsigned i = 0; ms && i < ms->n; i++) {
        mig_set_rate_limit(ms->ch[i].c, max_bandwidth / ms->n);
    }
}

/* ---- destination ------------------------------------------------------- */

struct MultifdRecv {
    Migration *m;
    GMutex lock;
    GCond cond;
    uint64_t reached[MIG_MAX_MULTIFD];     /* last sync seq each channel got to */
    bool present[MIG_MAX_MULTIFD];
    uint64_t released;                     /* channels may go past syncs <= this */
    MigChannel *channels[MIG_MAX_MULTIFD];
    bool shutdown;
    RamPlaceFunc place;         /* where pages go instead of guest RAM (COLO's cache) */
    void *place_opaque;
};

void multifd_recv_set_place(MultifdRecv *mr, RamPlaceFunc place, void *opaque)
{
    g_mutex_lock(&mr->lock);
    mr->place = place;
    mr->place_opaque = opaque;
    g_mutex_unlock(&mr->lock);
}

MultifdRecv *multifd_recv_new(Migration *m)
{
    MultifdRecv *mr = g_new0(MultifdRecv, 1);

    mr->m = m;
    g_mutex_init(&mr->lock);
    g_cond_init(&mr->cond);
    return mr;
}

void multifd_recv_shutdown(MultifdRecv *mr)
{
    if (!mr) {
        return;
    }
    g_mutex_lock(&mr->lock);
    mr->shutdown = true;
    for (unsigned i = 0; i < MIG_MAX_MULTIFD; i++) {
        if (mr->channels[i]) {
            mig_channel_shutdown(mr->channels[i], ECANCELED);
        }
    }
    g_cond_broadcast(&mr->cond);
    g_mutex_unlock(&mr->lock);
}

void multifd_recv_drain(MultifdRecv *mr)
{
    multifd_recv_shutdown(mr);
    g_mutex_lock(&mr->lock);
    for (unsigned i = 0; i < MIG_MAX_MULTIFD; i++) {
        while (mr->channels[i]) {
            g_cond_wait(&mr->cond, &mr->lock);
        }
    }
    g_mutex_unlock(&mr->lock);
}

void multifd_recv_free(MultifdRecv *mr)
{
    if (!mr) {
        return;
    }
    g_cond_clear(&mr->cond);
    g_mutex_clear(&mr->lock);
    g_free(mr);
}

/* @buf: PACKET_PAGES pages, the channel's. */
static bool recv_pages(MultifdRecv *mr, MigChannel *c, uint8_t *buf, GError **error)
{
    GuestMemory *mem = mr->m->host.mem;
    char id[MIG_MAX_ID_LEN + 1];
    uint8_t idlen = mig_get_u8(c);
    uint64_t offsets[PACKET_PAGES];

    g_mutex_lock(&mr->lock);
    RamPlaceFunc place = mr->place;
    void *opaque = mr->place_opaque;
    g_mutex_unlock(&mr->lock);

    mig_get_bytes(c, id, idlen);
    id[idlen] = '\0';
    uint32_t n = mig_get_be32(c);
    if (mig_channel_error(c)) {
        return false;
    }
    const RamBlock *b = ram_block_by_id(mem, id);
    if (!b || n == 0 || n > PACKET_PAGES) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "multifd: packet of %u pages for block '%s'%s", n, id, b ? "" : " (unknown)");
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        offsets[i] = mig_get_be64(c);
        uint64_t off = offsets[i] & ~PAGE_ZERO_FLAG;
        if ((off % GUEST_PAGE_SIZE) || off >= b->size) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        "multifd: page offset 0x%" G_GINT64_MODIFIER "x outside block '%s'", offsets[i], id);
            return false;
        }
    }
    /* Consecutive data pages are read into one buffer and stored with one
     * write (see ram_load_store); the data follows in offset order. */
    for (uint32_t i = 0; i < n && !mig_channel_error(c);) {
        uint64_t off = offsets[i] & ~PAGE_ZERO_FLAG;
        if (offsets[i] & PAGE_ZERO_FLAG) {
            if (place && !place(opaque, b, off, NULL)) {
                goto misplaced;
            }
            if (!place) {
                ram_load_zero_page(&mr->m->dst.ram, mem, b, off);
            }
            __atomic_fetch_add(&mr->m->dst.stats.duplicate, 1, __ATOMIC_RELAXED);
            i++;
            continue;
        }
        uint32_t run = 1;
        while (i + run < n && !(offsets[i + run] & PAGE_ZERO_FLAG) &&
               offsets[i + run] == off + run * GUEST_PAGE_SIZE) {
            run++;
        }
        mig_get_bytes(c, buf, (size_t)run * GUEST_PAGE_SIZE);
        if (mig_channel_error(c)) {
            break;
        }
        if (place) {
            for (uint32_t k = 0; k < run; k++) {
                if (!place(opaque, b, off + k * GUEST_PAGE_SIZE, buf + (size_t)k * GUEST_PAGE_SIZE)) {
                    goto misplaced;
                }
            }
        } else {
            ram_load_store(&mr->m->dst.ram, mem, b, off, buf, (size_t)run * GUEST_PAGE_SIZE);
            for (uint32_t k = 0; k < run; k++) {
                ram_load_note_data(&mr->m->dst.ram, mem, b, off + k * GUEST_PAGE_SIZE);
            }
        }
        __atomic_fetch_add(&mr->m->dst.stats.normal, run, __ATOMIC_RELAXED);
        i += run;
    }
    return !mig_channel_error(c);

misplaced:
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "multifd: a page of block '%s' has no place here",
                id);
    return false;
}

void multifd_recv_channel(MultifdRecv *mr, MigChannel *c, unsigned index)
{
    g_autoptr(GError) error = NULL;
    /* Allocated once: a fresh 512 KiB per packet can mean a fresh mmap
     * and a page fault per page. */
    g_autofree uint8_t *buf = g_malloc((size_t)PACKET_PAGES * GUEST_PAGE_SIZE);

    g_mutex_lock(&mr->lock);
    if (index >= MIG_MAX_MULTIFD || mr->present[index] || mr->shutdown) {
        g_mutex_unlock(&mr->lock);
        qb_log(LOG_WARNING, "multifd: channel %u refused (duplicate or late)", index);
        mig_channel_free(c);
        return;
    }
    mr->present[index] = true;
    mr->channels[index] = c;
    g_cond_broadcast(&mr->cond);
    g_mutex_unlock(&mr->lock);

    while (!mig_channel_error(c)) {
        uint8_t type = mig_get_u8(c);
        if (mig_channel_error(c)) {
            break;
        }
        if (type == PACKET_PAGES_TYPE) {
            if (!recv_pages(mr, c, buf, &error)) {
                break;
            }
        } else if (type == PACKET_SYNC_TYPE) {
            uint64_t seq = mig_get_be64(c);
            g_mutex_lock(&mr->lock);
            mr->reached[index] = seq;
            g_cond_broadcast(&mr->cond);
            /* Wait until every channel got here: the next pass may resend
             * a page this pass sent on another channel. */
            while (mr->released < seq && !mr->shutdown) {
                g_cond_wait(&mr->cond, &mr->lock);
            }
            g_mutex_unlock(&mr->lock);
        } else {
            g_set_error(&error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "multifd: unknown packet type %u", type);
            break;
        }
    }
    if (error) {
        qb_log(LOG_ERR, "multifd channel %u: %s", index, error->message);
    }
    g_mutex_lock(&mr->lock);
    mr->channels[index] = NULL;
    mr->reached[index] = UINT64_MAX - 1;     /* gone: never reaches a sync again */
    g_cond_broadcast(&mr->cond);
    g_mutex_unlock(&mr->lock);
    mig_channel_free(c);
}

bool multifd_recv_sync(MultifdRecv *mr, const uint8_t *p, uint16_t len, GError **error)
{
    uint32_t n;
    uint64_t seq;

    if (len != 12) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "multifd sync of %u bytes", len);
        return false;
    }
    memcpy(&n, p, 4);
    memcpy(&seq, p + 4, 8);
    n = GUINT32_FROM_BE(n);
    seq = GUINT64_FROM_BE(seq);
    if (n == 0 || n > MIG_MAX_MULTIFD || seq == 0 || seq <= mr->released) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "multifd sync for %u channels at %" G_GUINT64_FORMAT " is invalid", n, seq);
        return false;
    }
    gint64 deadline = g_get_monotonic_time() + SYNC_TIMEOUT_S * G_TIME_SPAN_SECOND;
    g_mutex_lock(&mr->lock);
    for (;;) {
        unsigned there = 0;
        bool lost = false;
        for (unsigned i = 0; i < n; i++) {
            if (mr->present[i] && mr->reached[i] == UINT64_MAX - 1) {
                lost = true;
            } else if (mr->present[i] && mr->reached[i] >= seq) {
                there++;
            }
        }
        if (there == n || lost || mr->shutdown || !g_cond_wait_until(&mr->cond, &mr->lock, deadline)) {
            bool ok = there == n && !lost;
            if (ok) {
                mr->released = seq;
                g_cond_broadcast(&mr->cond);
            }
            g_mutex_unlock(&mr->lock);
            if (!ok) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE,
                            "multifd: only %u of %u channels reached sync %" G_GUINT64_FORMAT, there, n, seq);
            }
            return ok;
        }
    }
}
