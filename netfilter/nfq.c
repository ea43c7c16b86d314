#include "config.h"

#include "nfq.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <libnfnetlink/libnfnetlink.h>
#include <linux/netfilter.h>
#include <linux/netlink.h>
#include <qb/qblog.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NFQ_RCVBUF (16u << 20)
#define NFQ_BURST 64
/* Room for a 64 KiB GSO packet and its netlink attributes. */
#define NFQ_BUFSIZE (128 * 1024)
/* Messages per recvmmsg(): one syscall per burst, not per packet. */
#define NFQ_BATCH 16

struct nfq_entry {
    uint32_t id;
    bool released;
    bool verdicted;      /* accepted on its own already */
    bool on_arrival;     /* released while it was being handed over */
    uint64_t arrival_ns; /* CLOCK_MONOTONIC */
    uint64_t read_ns;    /* when we read it */
    GBytes *bytes;       /* nfq_release_with: the verdict's payload, padded */
    uint32_t bytes_len;  /* its length */
};

struct proxy_nfq {
    struct nfq_callbacks cb;
    struct nfq_handle *h;
    struct nfq_q_handle *qh;
    int fd;
    guint watch;
    bool immediate;
    uint32_t last_id;    /* newest id seen; a new queue starts at 1 */
    GQueue entries;      /* struct nfq_entry, every id in order */
    GHashTable *by_id;   /* id -> GList node in entries */
    unsigned int released_pending;
    unsigned int unverdicted;   /* released, no verdict sent yet */
    unsigned int with_bytes;    /* of those, released with new bytes */
    uint8_t *buf;        /* NFQ_BATCH buffers of NFQ_BUFSIZE */
    struct iovec iov[NFQ_BATCH];
    struct mmsghdr msg[NFQ_BATCH];
    struct nfq_stats stats;
    int ts_fd;           /* keeps kernel timestamping on, or -1 */
    int64_t real_to_mono; /* CLOCK_MONOTONIC - CLOCK_REALTIME, per burst */
    uint64_t burst_ns;   /* when this burst was read */
    struct nfq_latency lat_all, lat_matched, lat_matched_read;
};

static uint64_t nfq_clock(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void nfq_latency_add(struct nfq_latency *l, uint64_t ns)
{
    uint64_t us = ns / 1000u;

    l->count++;
    l->us[us < NFQ_LAT_BUCKETS ? us : NFQ_LAT_BUCKETS - 1]++;
    if (us > l->max_us) {
        l->max_us = us;
    }
}

/* A packet leaves the queue with an accept verdict sent at @now. */
static void nfq_entry_done(ProxyNfq *q, const struct nfq_entry *e, uint64_t now)
{
    uint64_t ns = now > e->arrival_ns ? now - e->arrival_ns : 0;

    if (!e->arrival_ns) {
        return;   /* a gap's placeholder */
    }
    nfq_latency_add(&q->lat_all, ns);
    if (e->on_arrival) {
        nfq_latency_add(&q->lat_matched, ns);
        nfq_latency_add(&q->lat_matched_read, now > e->read_ns ? now - e->read_ns : 0);
    }
}

static void nfq_entry_free(gpointer data)
{
    struct nfq_entry *e = data;

    if (e->bytes) {
        g_bytes_unref(e->bytes);
    }
    g_free(e);
}

static struct nfq_entry *nfq_entry_add(ProxyNfq *q, uint32_t id)
{
    struct nfq_entry *e = g_new0(struct nfq_entry, 1);

    e->id = id;
    g_queue_push_tail(&q->entries, e);
    g_hash_table_insert(q->by_id, GUINT_TO_POINTER(id), q->entries.tail);
    return e;
}

/* When @nfad arrived: the kernel's receive timestamp if it has one. */
static uint64_t nfq_arrival(ProxyNfq *q, struct nfq_data *nfad)
{
    struct timeval tv;
    int64_t t;

    if (q->ts_fd < 0 || nfq_get_timestamp(nfad, &tv) < 0) {
        return q->burst_ns;
    }
    t = ((int64_t)tv.tv_sec * 1000000 + tv.tv_usec) * 1000 + q->real_to_mono;
    /* Clock steps would make nonsense: never before 0, never after now. */
    return t > 0 && (uint64_t)t < q->burst_ns ? (uint64_t)t : q->burst_ns;
}

static int nfq_on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfad, void *data)
{
    ProxyNfq *q = data;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfad);
    unsigned char *payload = NULL;
    int len = nfq_get_payload(nfad, &payload);
    bool partial = (nfq_get_skbinfo(nfad) & NFQA_SKB_CSUMNOTREADY) != 0;
    struct nfq_entry *e;
    uint32_t id;

    if (!ph) {
        return 0;
    }
    id = ntohl(ph->packet_id);
    if (len < 0) {
        len = 0;
    }
    q->stats.packets++;
    q->stats.bytes += (uint64_t)len;
    if (q->immediate) {
        q->cb.packet(q->cb.opaque, id, payload, (size_t)len, partial, nfq_get_indev(nfad));
        if (nfq_set_verdict(q->qh, id, NF_ACCEPT, (uint32_t)len, payload) < 0) {
            q->stats.verdict_errors++;
        }
        q->stats.single_verdicts++;
        return 0;
    }
    if (id != q->last_id + 1) {
        unsigned int lost = id - q->last_id - 1;

        q->stats.lost += lost;
        qb_log(LOG_WARNING, "nfqueue: %u packets queued by the kernel never reached us", lost);
        /* Placeholders that are never released: no batch verdict may
         * cover a packet we did not see, until the checkpoint commit. */
        for (uint32_t i = q->last_id + 1; i != id; i++) {
            nfq_entry_add(q, i);
        }
        q->cb.lost(q->cb.opaque, lost);
    }
    q->last_id = id;
    e = nfq_entry_add(q, id);
    e->arrival_ns = nfq_arrival(q, nfad);
    e->read_ns = q->burst_ns;
    q->cb.packet(q->cb.opaque, id, payload, (size_t)len, partial, nfq_get_indev(nfad));
    /* The callback released it at once: its partner was already waiting. */
    e->on_arrival = e->released;
    return 0;
}

void nfq_release(ProxyNfq *q, uint32_t id)
{
    GList *l = g_hash_table_lookup(q->by_id, GUINT_TO_POINTER(id));
    struct nfq_entry *e;

    if (!l) {
        return;
    }
    e = l->data;
    if (!e->released) {
        e->released = true;
        q->released_pending++;
        q->unverdicted++;
    }
}

void nfq_release_with(ProxyNfq *q, uint32_t id, const uint8_t *pkt, size_t len)
{
    GList *l = g_hash_table_lookup(q->by_id, GUINT_TO_POINTER(id));
    struct nfq_entry *e = l ? l->data : NULL;
    uint8_t *copy;

    if (!e || e->released) {
        return;
    }
    /* libnetfilter_queue's verdict reads the payload up to its 4-byte
     * aligned length. */
    copy = g_malloc0((len + 3) & ~(size_t)3);
    memcpy(copy, pkt, len);
    e->bytes = g_bytes_new_take(copy, (len + 3) & ~(size_t)3);
    e->bytes_len = (uint32_t)len;
    q->with_bytes++;
    nfq_release(q, id);
}

/* Verdicts for the packets released with new bytes: each alone, since a
 * batch verdict would let them out unchanged. */
static void nfq_flush_with_bytes(ProxyNfq *q)
{
    for (GList *l = q->entries.head; l && q->with_bytes; l = l->next) {
        struct nfq_entry *e = l->data;

        if (!e->bytes || !e->released || e->verdicted) {
            continue;
        }
        e->verdicted = true;
        q->unverdicted--;
        q->with_bytes--;
        q->stats.single_verdicts++;
        if (nfq_set_verdict(q->qh, e->id, NF_ACCEPT, e->bytes_len, g_bytes_get_data(e->bytes, NULL)) < 0) {
            q->stats.verdict_errors++;
        }
        nfq_entry_done(q, e, nfq_clock(CLOCK_MONOTONIC));
    }
}

void nfq_flush(ProxyNfq *q)
{
    struct nfq_entry *e;
    uint32_t batch_id = 0;
    unsigned int batch = 0;
    bool verdict = false;
    uint64_t now;

    if (!q->released_pending) {
        return;
    }
    nfq_flush_with_bytes(q);
    /* The released, gap-free head goes in one batch verdict. */
    for (GList *l = q->entries.head; l && ((struct nfq_entry *)l->data)->released; l = l->next) {
        e = l->data;
        if (!e->verdicted) {
            verdict = true;
            batch_id = e->id;
        }
        batch++;
    }
    if (verdict) {
        q->stats.batch_verdicts++;
        if (nfq_set_verdict_batch(q->qh, batch_id, NF_ACCEPT) < 0) {
            q->stats.verdict_errors++;
            qb_log(LOG_ERR, "nfqueue batch verdict up to %u: %s", batch_id, strerror(errno));
        }
    }
    now = nfq_clock(CLOCK_MONOTONIC);
    while (batch--) {
        e = g_queue_pop_head(&q->entries);
        if (!e->verdicted) {
            q->unverdicted--;
            nfq_entry_done(q, e, now);
        }
        q->released_pending--;
        g_hash_table_remove(q->by_id, GUINT_TO_POINTER(e->id));
        nfq_entry_free(e);
    }
    /* Released packets behind a held one: one by one, so they need not
     * wait. Those accepted so far stay queued until the head moves, so
     * count what is left rather than walk the whole queue every time. */
    if (q->unverdicted) {
        for (GList *l = q->entries.head; l && q->unverdicted; l = l->next) {
            e = l->data;
            if (e->released && !e->verdicted) {
                e->verdicted = true;
                q->unverdicted--;
                q->stats.single_verdicts++;
                if (nfq_set_verdict(q->qh, e->id, NF_ACCEPT, 0, NULL) < 0) {
                    q->stats.verdict_errors++;
                }
                nfq_entry_done(q, e, nfq_clock(CLOCK_MONOTONIC));
            }
        }
    }
}

void nfq_release_all(ProxyNfq *q)
{
    if (!q->entries.length) {
        return;
    }
    nfq_flush_with_bytes(q);
    q->stats.batch_verdicts++;
    if (nfq_set_verdict_batch(q->qh, q->last_id, NF_ACCEPT) < 0) {
        q->stats.verdict_errors++;
        qb_log(LOG_ERR, "nfqueue batch verdict up to %u: %s", q->last_id, strerror(errno));
    }
    /* Checkpoint-time releases are not what verdict latency measures. */
    g_hash_table_remove_all(q->by_id);
    g_queue_clear_full(&q->entries, nfq_entry_free);
    q->released_pending = 0;
    q->unverdicted = 0;
}

/* Read up to @max messages; returns how many. */
static unsigned int nfq_read(ProxyNfq *q, unsigned int max)
{
    unsigned int n = 0;

    while (n < max) {
        int r = recvmmsg(q->fd, q->msg, NFQ_BATCH, MSG_DONTWAIT, NULL);

        q->burst_ns = nfq_clock(CLOCK_MONOTONIC);
        if (q->ts_fd >= 0) {
            q->real_to_mono = (int64_t)q->burst_ns - (int64_t)nfq_clock(CLOCK_REALTIME);
        }
        if (r < 0) {
            if (errno == ENOBUFS) {
                continue;   /* the gap in the ids tells what was lost */
            }
            break;
        }
        q->stats.recv_calls++;
        for (int i = 0; i < r; i++) {
            nfq_handle_packet(q->h, q->iov[i].iov_base, (int)q->msg[i].msg_len);
        }
        n += (unsigned int)r;
        if (r < NFQ_BATCH) {
            break;
        }
    }
    return n;
}

static gboolean nfq_on_readable(gint fd, GIOCondition cond, gpointer data)
{
    ProxyNfq *q = data;

    nfq_read(q, NFQ_BURST);
    q->cb.burst_done(q->cb.opaque);
    nfq_flush(q);
    return G_SOURCE_CONTINUE;
}

unsigned int nfq_drain(ProxyNfq *q)
{
    unsigned int total = 0, n;

    while ((n = nfq_read(q, NFQ_BURST)) > 0) {
        total += n;
    }
    q->cb.burst_done(q->cb.opaque);
    return total;
}

ProxyNfq *nfq_open_queue(uint16_t num, uint32_t maxlen, enum nfq_mode mode, const struct nfq_callbacks *cb,
                         GError **error)
{
    ProxyNfq *q = g_new0(ProxyNfq, 1);
    int one = 1;

    q->cb = *cb;
    q->immediate = mode == NFQ_IMMEDIATE;
    q->fd = -1;
    q->ts_fd = -1;
    g_queue_init(&q->entries);
    q->by_id = g_hash_table_new(g_direct_hash, g_direct_equal);
    q->buf = g_malloc((size_t)NFQ_BATCH * NFQ_BUFSIZE);
    for (int i = 0; i < NFQ_BATCH; i++) {
        q->iov[i] = (struct iovec){ q->buf + (size_t)i * NFQ_BUFSIZE, NFQ_BUFSIZE };
        q->msg[i].msg_hdr.msg_iov = &q->iov[i];
        q->msg[i].msg_hdr.msg_iovlen = 1;
    }
    q->h = nfq_open();
    if (!q->h) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "nfq_open: %s", strerror(errno));
        nfq_close_queue(q);
        return NULL;
    }
    q->qh = nfq_create_queue(q->h, num, nfq_on_packet, q);
    if (!q->qh) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot bind NFQUEUE %u (%s): is another process using it, or are we not root?", num,
                    strerror(errno));
        nfq_close_queue(q);
        return NULL;
    }
    /* Immediate and segmented hold mode rewrite packets, and the kernel
     * turns a mangled packet's checksum state into "complete": so it must
     * hand us complete checksums and single segments (no F_GSO), never
     * partial ones. */
    if (nfq_set_mode(q->qh, NFQNL_COPY_PACKET, 0xffff) < 0 ||
        nfq_set_queue_maxlen(q->qh, maxlen) < 0 ||
        nfq_set_queue_flags(q->qh, NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN, mode == NFQ_HOLD ? NFQA_CFG_F_GSO : 0) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "configuring NFQUEUE %u: %s", num,
                    strerror(errno));
        nfq_close_queue(q);
        return NULL;
    }
    q->fd = nfq_fd(q->h);
    nfnl_rcvbufsiz(nfq_nfnlh(q->h), NFQ_RCVBUF);
    setsockopt(q->fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
    q->watch = g_unix_fd_add(q->fd, G_IO_IN, nfq_on_readable, q);
    return q;
}

void nfq_close_queue(ProxyNfq *q)
{
    if (!q) {
        return;
    }
    if (q->watch) {
        g_source_remove(q->watch);
    }
    /* Destroying the queue makes the kernel drop what is still queued:
     * never accept uncompared packets on the way out. */
    if (q->qh) {
        nfq_destroy_queue(q->qh);
    }
    if (q->h) {
        nfq_close(q->h);
    }
    if (q->ts_fd >= 0) {
        close(q->ts_fd);
    }
    g_hash_table_destroy(q->by_id);
    g_queue_clear_full(&q->entries, nfq_entry_free);
    g_free(q->buf);
    g_free(q);
}

int nfq_socket(const ProxyNfq *q)
{
    return q->fd;
}

bool nfq_use_kernel_timestamps(ProxyNfq *q, GError **error)
{
    int one = 1;

    if (q->ts_fd >= 0) {
        return true;
    }
    /* The kernel stamps received packets only while some socket wants
     * timestamps; NFQUEUE then passes the stamp on (NFQA_TIMESTAMP). */
    q->ts_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (q->ts_fd < 0 || setsockopt(q->ts_fd, SOL_SOCKET, SO_TIMESTAMP, &one, sizeof(one)) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "enabling kernel timestamps: %s",
                    strerror(errno));
        if (q->ts_fd >= 0) {
            close(q->ts_fd);
            q->ts_fd = -1;
        }
        return false;
    }
    return true;
}

const struct nfq_latency *nfq_get_latency(const ProxyNfq *q, enum nfq_latency_kind kind)
{
    switch (kind) {
    case NFQ_LAT_MATCHED:
        return &q->lat_matched;
    case NFQ_LAT_MATCHED_READ:
        return &q->lat_matched_read;
    default:
        return &q->lat_all;
    }
}

void nfq_get_stats(const ProxyNfq *q, struct nfq_stats *out)
{
    *out = q->stats;
    out->outstanding = q->entries.length;
}
