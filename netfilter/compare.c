#include "config.h"

#include "compare.h"
#include "packet.h"

#include <glib.h>
#include <netinet/in.h>
#include <qb/qblog.h>
#include <string.h>

/* Secondary packets from the next epoch (sent after the secondary resumed
 * but before our commit) are kept for it, up to this many. */
#define CMP_MAX_FUTURE 4096

/* Datagrams our guest sent, remembered per epoch (this one and the last)
 * up to this many each, and the bytes of each that count. */
#define CMP_MAX_SENT 16384
#define CMP_SENT_DIGEST_BYTES 64

/* One primary packet held back. Linked into the engine's arrival-ordered
 * queue and its flow's queue without extra allocations. */
struct cmp_held {
    GList glink;
    GList flink;
    struct cmp_flow *flow;     /* NULL: untracked, waits for a checkpoint */
    uint64_t handle;
    uint64_t arrival_ns;
    uint32_t seq;              /* TCP */
    uint32_t ack;
    uint8_t flags;
    uint32_t len;
    /* The caller's bytes while cmp_primary_add runs (most packets whose
     * partner is already there are released then, never copied); our own
     * copy once the packet has to wait. */
    const uint8_t *payload;
    bool owned;
};

/* A piece of the secondary's output: a TCP byte range (sorted, never
 * overlapping) or one packet of another protocol (FIFO), kept whole from
 * its IP header: its payload, which is compared, starts @off bytes in. A
 * primary whose guest died sends such packets on (cmp_take_datagrams). */
struct cmp_sseg {
    uint32_t seq;
    uint32_t len;
    uint32_t off;
    uint32_t pkt_len;
    uint8_t data[];
};

struct cmp_flow {
    struct flow_key key;
    bool tcp;
    bool diverged;             /* a mismatch: everything waits for commit */
    GQueue held;
    GSequence *sdata;          /* struct cmp_sseg */
    size_t sbytes;
    /* What the secondary sent, in the primary's numbering. */
    bool s_ack_valid;
    uint32_t s_ack;
    bool s_syn, s_synack, s_rst, s_fin;
    uint32_t s_fin_seq;
    /* Secondary bytes below trim_seq were dropped (the client acked them,
     * or they were released and room was short). */
    bool trim_valid;
    uint32_t trim_seq;
    /* End of the highest primary byte released. */
    bool rel_valid;
    uint32_t rel_seq;
    /* The client's highest acknowledgement (the mirrored input). */
    bool c_ack_valid;
    uint32_t c_ack;
};

struct cmp_engine {
    struct cmp_params params;
    struct cmp_callbacks cb;
    GHashTable *flows;         /* flow_key -> cmp_flow */
    GQueue held;               /* every held packet, arrival order */
    GQueue future;             /* struct cmp_future, for epoch + 1 */
    uint32_t epoch;
    bool requested;            /* a checkpoint was asked for this epoch */
    bool failed_over;
    bool armed;                /* COLO began (a checkpoint-begin): compare */
    struct cmp_held *adding;   /* the packet cmp_primary_add is judging */
    /* Digests of the datagrams released in this epoch and the last: the
     * secondary's guest can answer an input twice (cmp_take_datagrams). */
    GHashTable *sent_now, *sent_before;
    struct cmp_stats stats;
};

struct cmp_future {
    bool eth;
    size_t len;
    uint8_t data[];
};

enum cmp_verdict { CMP_WAIT, CMP_MATCH, CMP_MISMATCH };

static const char *const cmp_reason_names[CMP_REASON_COUNT] = {
    [CMP_REASON_PAYLOAD] = "payload",
    [CMP_REASON_FLAGS] = "flags",
    [CMP_REASON_TIMEOUT] = "timeout",
    [CMP_REASON_QUEUE_FULL] = "queue-full",
    [CMP_REASON_TABLE_FULL] = "table-full",
    [CMP_REASON_UNPARSEABLE] = "unparseable",
    [CMP_REASON_HISTORY] = "history",
    [CMP_REASON_OVERFLOW] = "overflow",
};

const char *cmp_reason_name(enum cmp_reason reason)
{
    return (unsigned int)reason < CMP_REASON_COUNT ? cmp_reason_names[reason] : "unknown";
}

void cmp_params_init(struct cmp_params *p)
{
    memset(p, 0, sizeof(*p));
    p->compare_timeout_ms = 3000;
    p->expired_scan_cycle_ms = 1000;
    p->max_queue_size = 16384;
    p->max_flows = 65536;
    p->max_flow_bytes = 16u << 20;
    p->checkpoint_on_mismatch = true;
}

static void cmp_flow_free(gpointer data)
{
    struct cmp_flow *f = data;

    /* Held packets are owned by the engine queue; only sdata is ours. */
    g_sequence_free(f->sdata);
    g_free(f);
}

CmpEngine *cmp_engine_new(const struct cmp_params *params, const struct cmp_callbacks *cb)
{
    CmpEngine *e = g_new0(CmpEngine, 1);

    e->params = *params;
    e->cb = *cb;
    e->flows = g_hash_table_new_full(flow_key_hash, flow_key_equal, NULL, cmp_flow_free);
    g_queue_init(&e->held);
    g_queue_init(&e->future);
    e->sent_now = g_hash_table_new(g_direct_hash, g_direct_equal);
    e->sent_before = g_hash_table_new(g_direct_hash, g_direct_equal);
    return e;
}

void cmp_engine_free(CmpEngine *e)
{
    if (!e) {
        return;
    }
    while (e->held.head) {
        GList *l = e->held.head;
        struct cmp_held *h = l->data;

        g_queue_unlink(&e->held, l);
        if (h->owned) {
            g_free((uint8_t *)h->payload);
        }
        g_free(h);
    }
    g_queue_clear_full(&e->future, g_free);
    g_hash_table_destroy(e->flows);
    g_hash_table_destroy(e->sent_now);
    g_hash_table_destroy(e->sent_before);
    g_free(e);
}

void cmp_engine_set_params(CmpEngine *e, const struct cmp_params *params)
{
    e->params = *params;
}

const struct cmp_params *cmp_engine_params(const CmpEngine *e)
{
    return &e->params;
}

bool cmp_engine_failed_over(const CmpEngine *e)
{
    return e->failed_over;
}

uint32_t cmp_engine_epoch(const CmpEngine *e)
{
    return e->epoch;
}

void cmp_engine_stats(const CmpEngine *e, struct cmp_stats *out)
{
    *out = e->stats;
    out->queue_depth = e->held.length;
    out->flows = g_hash_table_size(e->flows);
    out->epoch = e->epoch;
}

/* Count @reason and ask for a checkpoint, unless one is pending or this is
 * a plain mismatch and checkpoint-on-mismatch is off. */
static void cmp_request(CmpEngine *e, enum cmp_reason reason)
{
    bool mismatch = reason == CMP_REASON_PAYLOAD || reason == CMP_REASON_FLAGS;

    e->stats.mismatches[reason]++;
    if (e->requested || e->failed_over || (mismatch && !e->params.checkpoint_on_mismatch)) {
        return;
    }
    e->requested = true;
    e->stats.checkpoint_requests++;
    qb_log(LOG_INFO, "checkpoint requested (epoch %u): %s", e->epoch, cmp_reason_name(reason));
    e->cb.checkpoint(e->cb.opaque, reason);
}

static unsigned int cmp_hist_bucket(uint64_t ns)
{
    uint64_t us = ns / 1000;
    unsigned int b = 0;

    while (us && b < CMP_HIST_BUCKETS - 1) {
        us >>= 1;
        b++;
    }
    return b;
}

/* A datagram told apart by its flow, length and first bytes (FNV-1a's
 * step, a 64-bit word at a time): enough to know an answer sent already,
 * and cheap on every release. */
static gpointer cmp_datagram_digest(const struct flow_key *k, const uint8_t *payload, uint32_t len)
{
    uint64_t h = 0xcbf29ce484222325ull ^ ((uint64_t)flow_key_hash(k) << 32) ^ len;
    uint32_t n = MIN(len, CMP_SENT_DIGEST_BYTES), i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t w;

        memcpy(&w, payload + i, sizeof(w));
        h = (h ^ w) * 0x100000001b3ull;
    }
    for (; i < n; i++) {
        h = (h ^ payload[i]) * 0x100000001b3ull;
    }
    h ^= h >> 29;
    return GSIZE_TO_POINTER((gsize)(h ? h : 1));
}

/* @sg equals a datagram we released in this epoch or the last. */
static bool cmp_sent_lately(const CmpEngine *e, const struct cmp_flow *f, const struct cmp_sseg *sg)
{
    gpointer d = cmp_datagram_digest(&f->key, sg->data + sg->off, sg->len);

    return g_hash_table_contains(e->sent_now, d) || g_hash_table_contains(e->sent_before, d);
}

static void cmp_release(CmpEngine *e, struct cmp_held *h, uint64_t now_ns)
{
    g_queue_unlink(&e->held, &h->glink);
    if (h->flow) {
        g_queue_unlink(&h->flow->held, &h->flink);
        if (!h->flow->tcp && g_hash_table_size(e->sent_now) < CMP_MAX_SENT) {
            g_hash_table_add(e->sent_now, cmp_datagram_digest(&h->flow->key, h->payload, h->len));
        }
    }
    e->stats.released++;
    e->stats.hold_hist[cmp_hist_bucket(now_ns > h->arrival_ns ? now_ns - h->arrival_ns : 0)]++;
    e->cb.release(e->cb.opaque, h->handle);
    if (e->adding == h) {
        e->adding = NULL;
    }
    if (h->owned) {
        g_free((uint8_t *)h->payload);
    }
    g_free(h);
}

static bool cmp_is_passthrough(const CmpEngine *e, const struct pkt_info *pi)
{
    if (pi->key.proto != IPPROTO_TCP && pi->key.proto != IPPROTO_UDP) {
        return false;
    }
    for (unsigned int i = 0; i < e->params.n_passthrough; i++) {
        if (pi->key.sport == e->params.passthrough_ports[i] ||
            pi->key.dport == e->params.passthrough_ports[i]) {
            return true;
        }
    }
    return false;
}

static struct cmp_flow *cmp_flow_get(CmpEngine *e, const struct pkt_info *pi, bool create)
{
    struct cmp_flow *f = g_hash_table_lookup(e->flows, &pi->key);

    if (f || !create) {
        return f;
    }
    if (g_hash_table_size(e->flows) >= e->params.max_flows) {
        return NULL;
    }
    f = g_new0(struct cmp_flow, 1);
    f->key = pi->key;
    f->tcp = pi->key.proto == IPPROTO_TCP && !pi->fragment;
    g_queue_init(&f->held);
    f->sdata = g_sequence_new(g_free);
    g_hash_table_insert(e->flows, &f->key, f);
    return f;
}

static int cmp_sseg_order(gconstpointer a, gconstpointer b, gpointer data)
{
    const struct cmp_sseg *x = a, *y = b;

    return x->seq == y->seq ? 0 : seq_lt(x->seq, y->seq) ? -1 : 1;
}

/* The first secondary segment that ends after @seq (or the end). */
static GSequenceIter *cmp_sdata_find(const struct cmp_flow *f, uint32_t seq)
{
    struct cmp_sseg probe = { .seq = seq };
    GSequenceIter *it = g_sequence_search(f->sdata, &probe, cmp_sseg_order, NULL);

    if (!g_sequence_iter_is_begin(it)) {
        GSequenceIter *prev = g_sequence_iter_prev(it);
        const struct cmp_sseg *s = g_sequence_get(prev);

        if (seq_gt(s->seq + s->len, seq)) {
            return prev;
        }
    }
    return it;
}

/* Primary bytes below the returned @settled were released after a compare
 * and the client acknowledged them: it drops them if they come again, so a
 * retransmission of them needs no compare (and their secondary copy no
 * keeping). A guest's retransmission can reach us well after the client's
 * ack: it waited in NFQUEUE's backlog, milliseconds in which a fast stream
 * moves megabytes. An ack past what was released counts up to the release. */
static bool cmp_flow_settled(const struct cmp_flow *f, uint32_t *settled)
{
    if (!f->c_ack_valid || !f->rel_valid) {
        return false;
    }
    *settled = seq_lt(f->c_ack, f->rel_seq) ? f->c_ack : f->rel_seq;
    return true;
}

/* Compare the primary byte range [seq, seq+len) with the secondary's
 * bytes. @reason is set on a mismatch. */
static enum cmp_verdict cmp_tcp_bytes(const struct cmp_flow *f, uint32_t seq, const uint8_t *data,
                                      uint32_t len, enum cmp_reason *reason)
{
    uint32_t covered = 0;   /* bytes of the range found in the secondary's data */
    bool missing_low = false;
    uint32_t settled;

    if (cmp_flow_settled(f, &settled) && seq_lt(seq, settled)) {
        uint32_t skip = seq_lt(settled, seq + len) ? settled - seq : len;

        seq += skip;
        data += skip;
        len -= skip;
        if (!len) {
            return CMP_MATCH;
        }
    }

    for (GSequenceIter *it = cmp_sdata_find(f, seq); !g_sequence_iter_is_end(it) && covered < len;
         it = g_sequence_iter_next(it)) {
        const struct cmp_sseg *s = g_sequence_get(it);
        uint32_t lo, hi, send = s->seq + s->len, end = seq + len;

        if (seq_leq(send, seq)) {
            continue;
        }
        if (seq_geq(s->seq, end)) {
            break;
        }
        lo = seq_gt(s->seq, seq) ? s->seq : seq;
        hi = seq_lt(send, end) ? send : end;
        if (lo != seq && covered == 0) {
            missing_low = true;
        }
        if (memcmp(data + (lo - seq), s->data + (lo - s->seq), hi - lo) != 0) {
            *reason = CMP_REASON_PAYLOAD;
            return CMP_MISMATCH;
        }
        covered += hi - lo;
    }
    if (covered == len) {
        return CMP_MATCH;
    }
    /* Bytes we dropped can never arrive again: the packet cannot be judged. */
    if (f->trim_valid && seq_lt(seq, f->trim_seq) && (covered == 0 || missing_low)) {
        *reason = CMP_REASON_HISTORY;
        return CMP_MISMATCH;
    }
    return CMP_WAIT;
}

static enum cmp_verdict cmp_judge_tcp(const struct cmp_flow *f, const struct cmp_held *h,
                                      enum cmp_reason *reason)
{
    uint32_t dseq = h->seq + ((h->flags & PKT_TCP_SYN) ? 1 : 0);
    enum cmp_verdict v;

    if (h->flags & PKT_TCP_RST) {
        return f->s_rst ? CMP_MATCH : CMP_WAIT;
    }
    if (h->flags & PKT_TCP_SYN) {
        bool seen = (h->flags & PKT_TCP_ACK) ? f->s_synack : f->s_syn;

        if (!seen) {
            return CMP_WAIT;
        }
    }
    if (h->len) {
        v = cmp_tcp_bytes(f, dseq, h->payload, h->len, reason);
        if (v != CMP_MATCH) {
            return v;
        }
    }
    if (h->flags & PKT_TCP_FIN) {
        if (!f->s_fin) {
            return CMP_WAIT;
        }
        if (f->s_fin_seq != dseq + h->len) {
            *reason = CMP_REASON_FLAGS;
            return CMP_MISMATCH;
        }
    }
    /* Never let the client see an ack for data the secondary lacks: after
     * a failover the secondary would not have it. */
    if ((h->flags & PKT_TCP_ACK) && (!f->s_ack_valid || seq_lt(f->s_ack, h->ack))) {
        return CMP_WAIT;
    }
    return CMP_MATCH;
}

static enum cmp_verdict cmp_judge_packet(struct cmp_flow *f, const struct cmp_held *h,
                                         enum cmp_reason *reason)
{
    GSequenceIter *it = g_sequence_get_begin_iter(f->sdata);
    const struct cmp_sseg *s;
    enum cmp_verdict v = CMP_MATCH;

    if (g_sequence_iter_is_end(it)) {
        return CMP_WAIT;
    }
    s = g_sequence_get(it);
    if (s->len != h->len) {
        *reason = CMP_REASON_FLAGS;
        v = CMP_MISMATCH;
    } else if (memcmp(s->data + s->off, h->payload, h->len) != 0) {
        *reason = CMP_REASON_PAYLOAD;
        v = CMP_MISMATCH;
    }
    f->sbytes -= s->len;
    g_sequence_remove(it);
    return v;
}

static void cmp_diverge(CmpEngine *e, struct cmp_flow *f, enum cmp_reason reason)
{
    char buf[128];

    if (!f->diverged) {
        qb_log(LOG_NOTICE, "flow %s diverged: %s", flow_key_format(&f->key, buf, sizeof(buf)),
               cmp_reason_name(reason));
    }
    f->diverged = true;
    g_sequence_remove_range(g_sequence_get_begin_iter(f->sdata), g_sequence_get_end_iter(f->sdata));
    f->sbytes = 0;
    cmp_request(e, reason);
}

/* Release from the head of @f while the head matches. */
static void cmp_flow_run(CmpEngine *e, struct cmp_flow *f, uint64_t now_ns)
{
    while (!f->diverged && f->held.head) {
        struct cmp_held *h = f->held.head->data;
        enum cmp_reason reason = CMP_REASON_PAYLOAD;
        enum cmp_verdict v = f->tcp ? cmp_judge_tcp(f, h, &reason) : cmp_judge_packet(f, h, &reason);

        if (v == CMP_WAIT) {
            return;
        }
        if (v == CMP_MISMATCH) {
            cmp_diverge(e, f, reason);
            return;
        }
        if (f->tcp) {
            uint32_t end = h->seq + h->len + ((h->flags & PKT_TCP_SYN) ? 1 : 0);

            if (!f->rel_valid || seq_gt(end, f->rel_seq)) {
                f->rel_valid = true;
                f->rel_seq = end;
            }
        }
        e->stats.compared++;
        cmp_release(e, h, now_ns);
    }
}

static struct cmp_held *cmp_held_new(CmpEngine *e, uint64_t handle, const uint8_t *data, size_t len,
                                     uint64_t now_ns)
{
    struct cmp_held *h = g_new0(struct cmp_held, 1);

    h->handle = handle;
    h->arrival_ns = now_ns;
    h->len = (uint32_t)len;
    h->payload = data;
    h->glink.data = h;
    h->flink.data = h;
    g_queue_push_tail_link(&e->held, &h->glink);
    e->stats.held++;
    return h;
}

void cmp_primary_add(CmpEngine *e, uint64_t handle, const uint8_t *pkt, size_t len, bool eth,
                     uint64_t now_ns)
{
    struct pkt_info pi;
    struct cmp_flow *f;
    struct cmp_held *h;
    int err;

    if (e->failed_over) {
        e->stats.released++;
        e->cb.release(e->cb.opaque, handle);
        return;
    }
    if (!e->armed) {
        e->stats.unprotected++;
        e->stats.released++;
        e->cb.release(e->cb.opaque, handle);
        return;
    }
    err = eth ? pkt_parse_eth(pkt, len, &pi) : pkt_parse_ip(pkt, len, &pi);
    if (err == PKT_OK && cmp_is_passthrough(e, &pi)) {
        e->stats.passthrough++;
        e->stats.released++;
        e->cb.release(e->cb.opaque, handle);
        return;
    }
    if (e->held.length >= e->params.max_queue_size) {
        cmp_request(e, CMP_REASON_QUEUE_FULL);
    }
    if (err != PKT_OK) {
        /* Held untracked: released by the checkpoint it triggers. */
        qb_log(LOG_WARNING, "primary packet %" G_GUINT64_FORMAT " (%zu bytes): %s", handle, len,
               pkt_strerror(err));
        cmp_held_new(e, handle, NULL, 0, now_ns);
        cmp_request(e, CMP_REASON_UNPARSEABLE);
        return;
    }
    f = cmp_flow_get(e, &pi, true);
    h = cmp_held_new(e, handle, f ? pkt + pi.payload_off : NULL, f ? pi.payload_len : 0, now_ns);
    if (!f) {
        qb_log(LOG_WARNING, "connection table full (%u flows)", e->params.max_flows);
        cmp_request(e, CMP_REASON_TABLE_FULL);
        return;
    }
    h->flow = f;
    h->seq = pi.seq;
    h->ack = pi.ack;
    h->flags = pi.tcp_flags;
    g_queue_push_tail_link(&f->held, &h->flink);
    e->adding = h;
    cmp_flow_run(e, f, now_ns);
    /* Still held: keep the bytes, the caller's buffer is about to go. */
    if (e->adding) {
        e->adding = NULL;
        if (h->len) {
            h->payload = g_memdup2(h->payload, h->len);
            h->owned = true;
        }
    }
}

/* Drop secondary bytes below @seq: the client acknowledged them. */
static void cmp_flow_trim(struct cmp_flow *f, uint32_t seq)
{
    if (f->trim_valid && seq_leq(seq, f->trim_seq)) {
        return;
    }
    f->trim_valid = true;
    f->trim_seq = seq;
    for (;;) {
        GSequenceIter *it = g_sequence_get_begin_iter(f->sdata);
        struct cmp_sseg *s;

        if (g_sequence_iter_is_end(it)) {
            break;
        }
        s = g_sequence_get(it);
        if (seq_gt(s->seq + s->len, seq)) {
            break;
        }
        f->sbytes -= s->len;
        g_sequence_remove(it);
    }
}

static struct cmp_sseg *cmp_sseg_new(uint32_t seq, const uint8_t *data, uint32_t len)
{
    struct cmp_sseg *s = g_malloc(sizeof(*s) + len);

    s->seq = seq;
    s->len = s->pkt_len = len;
    s->off = 0;
    memcpy(s->data, data, len);
    return s;
}

/* A non-TCP packet of the secondary, from its IP header (@pkt at the
 * frame or packet as parsed into @pi). */
static struct cmp_sseg *cmp_sseg_packet(const uint8_t *pkt, const struct pkt_info *pi)
{
    uint32_t n = (uint32_t)(pi->end - pi->l3_off);
    struct cmp_sseg *s = g_malloc(sizeof(*s) + n);

    s->seq = 0;
    s->len = (uint32_t)pi->payload_len;
    s->off = (uint32_t)(pi->payload_off - pi->l3_off);
    s->pkt_len = n;
    memcpy(s->data, pkt + pi->l3_off, n);
    return s;
}

/* Add the secondary's bytes [seq, seq+len) to the sorted, non-overlapping
 * list; bytes we already have keep their first copy. */
static void cmp_flow_add_bytes(struct cmp_flow *f, uint32_t seq, const uint8_t *data, uint32_t len)
{
    uint32_t cur = seq, end = seq + len;
    GSequenceIter *it;

    if (f->trim_valid && seq_lt(cur, f->trim_seq)) {
        if (seq_leq(end, f->trim_seq)) {
            return;
        }
        cur = f->trim_seq;
    }
    it = cmp_sdata_find(f, cur);
    while (seq_lt(cur, end)) {
        struct cmp_sseg *s = g_sequence_iter_is_end(it) ? NULL : g_sequence_get(it);
        struct cmp_sseg *n;
        uint32_t piece_end;

        if (s && seq_leq(s->seq, cur)) {
            cur = s->seq + s->len;   /* already have these */
            it = g_sequence_iter_next(it);
            continue;
        }
        piece_end = (s && seq_lt(s->seq, end)) ? s->seq : end;
        n = cmp_sseg_new(cur, data + (cur - seq), piece_end - cur);
        g_sequence_insert_before(it, n);
        f->sbytes += n->len;
        cur = piece_end;
    }
}

static void cmp_secondary_parsed(CmpEngine *e, const uint8_t *pkt, const struct pkt_info *pi,
                                 uint64_t now_ns)
{
    struct cmp_flow *f;

    if (cmp_is_passthrough(e, pi)) {
        return;
    }
    f = cmp_flow_get(e, pi, true);
    if (!f) {
        e->stats.secondary_dropped++;
        qb_log(LOG_WARNING, "connection table full (%u flows): secondary packet dropped",
               e->params.max_flows);
        cmp_request(e, CMP_REASON_TABLE_FULL);
        return;
    }
    if (f->diverged) {
        e->stats.secondary_dropped++;
        return;
    }
    if (f->tcp) {
        uint8_t flags = pi->tcp_flags;
        uint32_t dseq = pi->seq + ((flags & PKT_TCP_SYN) ? 1 : 0);

        if (flags & PKT_TCP_RST) {
            f->s_rst = true;
        }
        if (flags & PKT_TCP_SYN) {
            if (flags & PKT_TCP_ACK) {
                f->s_synack = true;
            } else {
                f->s_syn = true;
            }
        }
        if ((flags & PKT_TCP_ACK) && (!f->s_ack_valid || seq_gt(pi->ack, f->s_ack))) {
            f->s_ack_valid = true;
            f->s_ack = pi->ack;
        }
        if (pi->payload_len) {
            cmp_flow_add_bytes(f, dseq, pkt + pi->payload_off, (uint32_t)pi->payload_len);
        }
        if (flags & PKT_TCP_FIN) {
            f->s_fin = true;
            f->s_fin_seq = dseq + (uint32_t)pi->payload_len;
        }
    } else {
        g_sequence_append(f->sdata, cmp_sseg_packet(pkt, pi));
        f->sbytes += pi->payload_len;
    }
    /* Short of room: give up the history of bytes already released (a
     * retransmission of them then costs a checkpoint). */
    if (f->tcp && f->sbytes > e->params.max_flow_bytes / 2 && f->rel_valid) {
        cmp_flow_trim(f, f->rel_seq);
    }
    if (f->sbytes > e->params.max_flow_bytes) {
        qb_log(LOG_WARNING, "secondary is %zu bytes ahead on one flow", f->sbytes);
        cmp_diverge(e, f, CMP_REASON_OVERFLOW);
        return;
    }
    cmp_flow_run(e, f, now_ns);
}

void cmp_secondary_add(CmpEngine *e, uint32_t epoch, const uint8_t *pkt, size_t len, bool eth,
                       uint64_t now_ns)
{
    struct pkt_info pi;
    int err;

    e->stats.secondary++;
    if (e->failed_over) {
        return;
    }
    if (epoch != e->epoch) {
        /* The secondary may resume and send before our commit arrives:
         * keep that output for the next epoch; older output is stale. */
        if (epoch == e->epoch + 1 && e->future.length < CMP_MAX_FUTURE) {
            struct cmp_future *fu = g_malloc(sizeof(*fu) + len);

            fu->eth = eth;
            fu->len = len;
            memcpy(fu->data, pkt, len);
            g_queue_push_tail(&e->future, fu);
        } else {
            e->stats.secondary_stale++;
        }
        return;
    }
    err = eth ? pkt_parse_eth(pkt, len, &pi) : pkt_parse_ip(pkt, len, &pi);
    if (err != PKT_OK) {
        /* Its primary twin will wait and time out into a checkpoint. */
        e->stats.secondary_unparseable++;
        qb_log(LOG_WARNING, "secondary packet (%zu bytes): %s", len, pkt_strerror(err));
        return;
    }
    cmp_secondary_parsed(e, pkt, &pi, now_ns);
}

unsigned int cmp_take_datagrams(CmpEngine *e, cmp_datagram_fn fn, void *opaque, unsigned int *withheld)
{
    GHashTableIter it;
    struct cmp_flow *f;
    unsigned int n = 0;

    *withheld = 0;

    g_hash_table_iter_init(&it, e->flows);
    while (g_hash_table_iter_next(&it, NULL, (gpointer *)&f)) {
        if (!flow_key_is_datagram(&f->key)) {
            continue;
        }
        for (GSequenceIter *si = g_sequence_get_begin_iter(f->sdata); !g_sequence_iter_is_end(si);
             si = g_sequence_iter_next(si)) {
            const struct cmp_sseg *sg = g_sequence_get(si);

            /* Input our guest took before the checkpoint's copy can reach
             * the secondary's after its guest paused for that checkpoint:
             * it waits in the tap and, the copy loaded, is taken again
             * and answered again. Ours answered it already. */
            if (cmp_sent_lately(e, f, sg)) {
                e->stats.secondary_answered_already++;
                (*withheld)++;
                continue;
            }
            fn(opaque, sg->data, sg->pkt_len);
            n++;
        }
        g_sequence_remove_range(g_sequence_get_begin_iter(f->sdata), g_sequence_get_end_iter(f->sdata));
        f->sbytes = 0;
    }
    return n;
}

void cmp_input_add(CmpEngine *e, const uint8_t *pkt, size_t len, bool eth)
{
    struct pkt_info pi;
    struct flow_key rev;
    struct cmp_flow *f;
    uint32_t settled;

    e->stats.input++;
    if ((eth ? pkt_parse_eth(pkt, len, &pi) : pkt_parse_ip(pkt, len, &pi)) != PKT_OK) {
        return;
    }
    if (pi.key.proto != IPPROTO_TCP || pi.fragment || !(pi.tcp_flags & PKT_TCP_ACK)) {
        return;
    }
    flow_key_reverse(&pi.key, &rev);
    f = g_hash_table_lookup(e->flows, &rev);
    if (!f) {
        return;
    }
    if (!f->c_ack_valid || seq_gt(pi.ack, f->c_ack)) {
        f->c_ack_valid = true;
        f->c_ack = pi.ack;
    }
    if (cmp_flow_settled(f, &settled)) {
        cmp_flow_trim(f, settled);
    }
}

bool cmp_expire(CmpEngine *e, uint64_t now_ns)
{
    struct cmp_held *oldest = g_queue_peek_head(&e->held);
    uint64_t limit = (uint64_t)e->params.compare_timeout_ms * 1000000u;

    if (!oldest || now_ns - oldest->arrival_ns < limit) {
        return false;
    }
    /* Ask again each scan: a coordinator may have missed the first. */
    e->requested = false;
    cmp_request(e, CMP_REASON_TIMEOUT);
    return true;
}

void cmp_engine_arm(CmpEngine *e)
{
    e->armed = true;
}

bool cmp_engine_armed(const CmpEngine *e)
{
    return e->armed;
}

unsigned int cmp_checkpoint_begin(CmpEngine *e)
{
    e->armed = true;
    qb_log(LOG_DEBUG, "checkpoint begin, epoch %u, %u packets held", e->epoch, e->held.length);
    return e->held.length;
}

static unsigned int cmp_release_all(CmpEngine *e, uint64_t now_ns)
{
    unsigned int n = 0;

    while (e->held.head) {
        cmp_release(e, e->held.head->data, now_ns);
        n++;
    }
    return n;
}

/* The secondary's datagrams left unmatched that equal one we sent: its
 * guest answered one input twice (cmp_take_datagrams). Only counted. */
static void cmp_count_repeats(CmpEngine *e)
{
    GHashTableIter it;
    struct cmp_flow *f;

    g_hash_table_iter_init(&it, e->flows);
    while (g_hash_table_iter_next(&it, NULL, (gpointer *)&f)) {
        if (f->tcp) {
            continue;
        }
        for (GSequenceIter *si = g_sequence_get_begin_iter(f->sdata); !g_sequence_iter_is_end(si);
             si = g_sequence_iter_next(si)) {
            e->stats.secondary_repeats += cmp_sent_lately(e, f, g_sequence_get(si));
        }
    }
}

unsigned int cmp_checkpoint_commit(CmpEngine *e, uint64_t now_ns)
{
    unsigned int n = cmp_release_all(e, now_ns);
    GQueue future = e->future;

    cmp_count_repeats(e);
    g_hash_table_remove_all(e->flows);
    GHashTable *t = e->sent_before;
    e->sent_before = e->sent_now;
    e->sent_now = t;
    g_hash_table_remove_all(e->sent_now);
    e->epoch++;
    e->requested = false;
    g_queue_init(&e->future);
    qb_log(LOG_DEBUG, "checkpoint commit: released %u, now epoch %u", n, e->epoch);
    while (future.head) {
        struct cmp_future *fu = g_queue_pop_head(&future);

        e->stats.secondary--;   /* counted once already */
        cmp_secondary_add(e, e->epoch, fu->data, fu->len, fu->eth, now_ns);
        g_free(fu);
    }
    return n;
}

unsigned int cmp_failover(CmpEngine *e, uint64_t now_ns)
{
    unsigned int n = cmp_release_all(e, now_ns);

    e->failed_over = true;
    g_hash_table_remove_all(e->flows);
    g_queue_clear_full(&e->future, g_free);
    qb_log(LOG_NOTICE, "failover: primary alone, released %u, comparing no more", n);
    return n;
}
