/* TCP, passive open only: a real state machine (RFC 793's, minus the
 * active-open states), in-order receive, go-back-N retransmission on
 * timeout or three duplicate ACKs, FIN and RST. Services: echo (port 7)
 * and stream (port 19). Echoed bytes wait in a per-connection ring until
 * acknowledged; stream bytes are regenerated from their offset, so
 * retransmitting them needs no buffer. */
#include "netstack.h"

#define TCP_HLEN        20
#define TCP_MAX_CONNS   32
#define TCP_RING        16384           /* echo bytes in flight or not yet sent */
#define TCP_MSS         1460
#define TCP_FLIGHT      (32 * 1024)     /* at most this much unacknowledged */
#define TCP_RTO_MS      400             /* initial, and the floor */
#define TCP_RTO_MAX_MS  30000
#define TCP_MAX_RETRIES 10
#define TCP_TIME_WAIT_MS 2000
#define STREAM_MAX      (1ULL << 31)    /* a stream fits well inside the sequence space */

#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_PSH 0x08
#define F_ACK 0x10

enum tcp_state {
    TCP_FREE, TCP_SYN_RCVD, TCP_ESTABLISHED, TCP_CLOSE_WAIT, TCP_LAST_ACK, TCP_FIN_WAIT_1, TCP_FIN_WAIT_2,
    TCP_CLOSING, TCP_TIME_WAIT,
};

struct tcb {
    enum tcp_state state;
    uint32_t rip;
    uint16_t rport, lport;
    uint32_t iss, snd_una, snd_nxt, snd_max, snd_wnd;
    uint32_t rcv_nxt;
    uint32_t rcv_wnd_sent;      /* the window we last advertised */
    uint16_t mss;
    uint8_t dupacks;
    uint8_t retries;
    bool ack_now;
    bool fin_queued;            /* a FIN follows the last byte of tx_len */
    uint64_t tx_len;            /* bytes the service has for the peer so far */
    uint64_t rto_at;            /* 0: timer off */
    uint32_t rto_ms;            /* current, backed off on timeouts */
    uint32_t rto_base_ms;       /* from the RTT estimate (RFC 6298) */
    uint32_t srtt_ms, rttvar_ms;    /* srtt 0: no sample yet */
    uint32_t rtt_seq;           /* the timed segment's end */
    uint64_t rtt_start;         /* 0: nothing timed */
    uint64_t tw_until;
    uint8_t req_len;            /* stream: request line so far */
    char req[20];
    uint8_t ring[TCP_RING];     /* echo: byte at offset o lives at ring[o % TCP_RING] */
};

static struct tcb conns[TCP_MAX_CONNS];
static uint64_t isn_seed;
static bool tx_blocked;         /* a segment found no transmit buffer: retry at the next tick */
static bool tcp_live;           /* some connection is not FREE (tcp_timer has work) */

/* Sequence-space comparisons. */
static inline bool seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline bool seq_le(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }

void tcp_init(uint64_t seed)
{
    isn_seed = seed;
    tcp_live = false;
    tx_blocked = false;
    for (unsigned i = 0; i < TCP_MAX_CONNS; i++) {
        conns[i].state = TCP_FREE;
    }
}

static uint32_t tcp_isn(uint32_t rip, uint16_t rport)
{
    /* splitmix64 of the seed (the TSC at this moment), per connection. */
    uint64_t z = (isn_seed += 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)rip << 16 | rport);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (uint32_t)(z ^ (z >> 31));
}

/* Bytes of the stream acknowledged so far (SYN excluded). */
static uint64_t tcb_acked(const struct tcb *t)
{
    return seq_lt(t->iss, t->snd_una) ? (uint32_t)(t->snd_una - t->iss - 1) : 0;
}

static uint32_t tcb_rcv_wnd(const struct tcb *t)
{
    if (t->lport == NET_PORT_ECHO) {
        /* Only what the ring can hold until the peer acknowledges the echo. */
        uint64_t used = t->tx_len - tcb_acked(t);
        return used >= TCP_RING ? 0 : (uint32_t)(TCP_RING - used);
    }
    return sizeof(t->req);
}

/* False if it could not go out (no transmit buffer, no ARP entry yet). */
static bool tcp_segment(struct tcb *t, uint32_t seq, uint8_t flags, uint64_t off, uint32_t len)
{
    uint8_t *s = net_ip_begin(t->rip);
    uint32_t hlen = flags & F_SYN ? TCP_HLEN + 4 : TCP_HLEN;
    uint32_t wnd = tcb_rcv_wnd(t);

    if (!s) {
        tx_blocked = true;
        return false;
    }
    put16(s, t->lport);
    put16(s + 2, t->rport);
    put32(s + 4, seq);
    put32(s + 8, t->rcv_nxt);
    s[12] = (uint8_t)(hlen / 4) << 4;
    s[13] = flags;
    wnd = wnd > 0xffff ? 0xffff : wnd;
    t->rcv_wnd_sent = wnd;
    put16(s + 14, (uint16_t)wnd);
    put32(s + 16, 0);
    if (flags & F_SYN) {
        put32(s + 20, 0x02040000u | TCP_MSS);       /* MSS option */
    }
    if (len) {
        uint8_t *d = s + hlen;
        if (t->lport == NET_PORT_ECHO) {
            uint32_t at = (uint32_t)(off % TCP_RING);
            uint32_t first = len < TCP_RING - at ? len : TCP_RING - at;
            __builtin_memcpy(d, t->ring + at, first);
            __builtin_memcpy(d + first, t->ring, len - first);
        } else {
            __builtin_memcpy(d, net_stream_table() + off % NET_STREAM_PERIOD, len);
        }
    }
    net_ip_send(s, IP_PROTO_TCP, t->rip, hlen + len, 16);
    t->ack_now = false;
    return true;
}

/* A RST in answer to @seg, which belongs to no connection (RFC 793 p. 36). */
static void tcp_reset(uint32_t src, const uint8_t *seg, uint32_t seq_len)
{
    uint8_t flags = seg[13];
    uint8_t *s;

    if ((flags & F_RST) || !(s = net_ip_begin(src))) {
        return;
    }
    put16(s, get16(seg + 2));
    put16(s + 2, get16(seg));
    if (flags & F_ACK) {
        put32(s + 4, get32(seg + 8));
        put32(s + 8, 0);
        s[13] = F_RST;
    } else {
        put32(s + 4, 0);
        put32(s + 8, get32(seg + 4) + seq_len);
        s[13] = F_RST | F_ACK;
    }
    s[12] = TCP_HLEN / 4 << 4;
    put16(s + 14, 0);
    put32(s + 16, 0);
    net_ip_send(s, IP_PROTO_TCP, src, TCP_HLEN, 16);
    net_stats.tcp_resets++;
}

static void tcb_free(struct tcb *t)
{
    t->state = TCP_FREE;
}

static void tcb_abort(struct tcb *t)
{
    tcp_segment(t, t->snd_nxt, F_RST | F_ACK, 0, 0);
    net_stats.tcp_resets++;
    tcb_free(t);
}

static bool tcb_fin_sent(const struct tcb *t)
{
    return t->state == TCP_FIN_WAIT_1 || t->state == TCP_FIN_WAIT_2 || t->state == TCP_CLOSING ||
           t->state == TCP_TIME_WAIT || t->state == TCP_LAST_ACK;
}

static void tcb_timer_arm(struct tcb *t)
{
    if (!t->rto_at) {
        t->rto_at = net_now_ms + t->rto_ms;
    }
}

/* Sends what the window allows: data, then the FIN when it is due; a bare
 * ACK if something must be acknowledged and nothing else went. */
static void tcp_output(struct tcb *t)
{
    if (t->state == TCP_SYN_RCVD) {
        return;         /* the SYN-ACK is sent on its own */
    }
    for (;;) {
        uint64_t off = (uint32_t)(t->snd_nxt - t->iss - 1);
        uint64_t avail = t->tx_len > off ? t->tx_len - off : 0;
        uint32_t wnd = t->snd_wnd < TCP_FLIGHT ? t->snd_wnd : TCP_FLIGHT;
        uint32_t in_flight = t->snd_nxt - t->snd_una;
        uint32_t room = wnd > in_flight ? wnd - in_flight : 0;
        uint32_t n = (uint32_t)(avail < t->mss ? avail : t->mss);
        bool fin;
        uint8_t flags = F_ACK;

        if (n > room) {
            n = room;
        }
        /* Past the FIN, off is tx_len + 1: it goes once, and again only
         * when go-back-N rewinds snd_nxt before it. */
        fin = t->fin_queued && off + n == t->tx_len;
        if (!n && !fin) {
            if (avail && !in_flight && !t->snd_wnd) {
                tcb_timer_arm(t);       /* zero window: the timer probes */
            }
            break;
        }
        if (n) {
            flags |= F_PSH;
        }
        if (fin) {
            flags |= F_FIN;
        }
        if (!tcp_segment(t, t->snd_nxt, flags, off, n)) {
            break;      /* not sent, not counted: tcp_timer() tries again */
        }
        t->snd_nxt += n + (fin ? 1 : 0);
        if (seq_lt(t->snd_max, t->snd_nxt)) {
            t->snd_max = t->snd_nxt;
            if (!t->rtt_start) {
                t->rtt_start = net_now_ms | 1;  /* never 0 */
                t->rtt_seq = t->snd_nxt;
            }
        }
        tcb_timer_arm(t);
        if (fin) {
            if (t->state == TCP_ESTABLISHED) {
                t->state = TCP_FIN_WAIT_1;
            } else if (t->state == TCP_CLOSE_WAIT) {
                t->state = TCP_LAST_ACK;
            }
            break;
        }
    }
    /* A window update when the echo ring drained enough: the peer may be
     * waiting on a zero window we advertised. */
    uint32_t wnd = tcb_rcv_wnd(t);
    if (wnd >= t->rcv_wnd_sent + 2u * t->mss || (t->rcv_wnd_sent < t->mss && wnd >= t->mss)) {
        t->ack_now = true;
    }
    if (t->ack_now) {
        tcp_segment(t, t->snd_nxt, F_ACK, 0, 0);
    }
}

/* The service reads what the peer sent. Returns how many bytes it took
 * (the rest stays unacknowledged). */
static uint32_t tcp_deliver(struct tcb *t, const uint8_t *d, uint32_t len)
{
    if (t->lport == NET_PORT_ECHO) {
        uint32_t wnd = tcb_rcv_wnd(t);
        uint32_t n = len < wnd ? len : wnd;
        uint32_t at = (uint32_t)(t->tx_len % TCP_RING);
        uint32_t first = n < TCP_RING - at ? n : TCP_RING - at;
        __builtin_memcpy(t->ring + at, d, first);
        __builtin_memcpy(t->ring, d + first, n - first);
        t->tx_len += n;
        return n;
    }
    /* Stream: one request line "<length>\n"; anything after it is read
     * and ignored. */
    for (uint32_t i = 0; i < len && !t->fin_queued; i++) {
        char c = (char)d[i];
        if (c == '\n' || c == '\r') {
            uint64_t v = 0;
            bool ok = t->req_len > 0;
            for (unsigned k = 0; k < t->req_len && ok; k++) {
                ok = t->req[k] >= '0' && t->req[k] <= '9' && v <= STREAM_MAX;
                v = v * 10 + (uint64_t)(t->req[k] - '0');
            }
            t->tx_len = ok && v <= STREAM_MAX ? v : 0;   /* a bad request gets an empty stream */
            t->fin_queued = true;
        } else if (t->req_len < sizeof(t->req)) {
            t->req[t->req_len++] = c;
        } else {
            t->tx_len = 0;
            t->fin_queued = true;
        }
    }
    return len;
}

static struct tcb *tcb_find(uint32_t rip, uint16_t rport, uint16_t lport)
{
    for (unsigned i = 0; i < TCP_MAX_CONNS; i++) {
        struct tcb *t = &conns[i];
        if (t->state != TCP_FREE && t->rip == rip && t->rport == rport && t->lport == lport) {
            return t;
        }
    }
    return 0;
}

static struct tcb *tcb_alloc(void)
{
    struct tcb *oldest = 0;

    for (unsigned i = 0; i < TCP_MAX_CONNS; i++) {
        if (conns[i].state == TCP_FREE) {
            return &conns[i];
        }
        if (conns[i].state == TCP_TIME_WAIT && (!oldest || conns[i].tw_until < oldest->tw_until)) {
            oldest = &conns[i];
        }
    }
    return oldest;      /* TIME_WAIT gives way to a new connection */
}

static uint16_t tcp_opt_mss(const uint8_t *seg, uint32_t hlen)
{
    for (uint32_t i = TCP_HLEN; i < hlen;) {
        uint8_t kind = seg[i];
        if (kind == 0) {
            break;
        }
        if (kind == 1) {
            i++;
            continue;
        }
        if (i + 1 >= hlen || seg[i + 1] < 2 || i + seg[i + 1] > hlen) {
            break;
        }
        if (kind == 2 && seg[i + 1] == 4) {
            uint16_t mss = get16(seg + i + 2);
            return mss < 64 ? 64 : mss > TCP_MSS ? TCP_MSS : mss;
        }
        i += seg[i + 1];
    }
    return 536;
}

static void tcp_listen_input(uint32_t src, const uint8_t *seg, uint32_t hlen, uint32_t seq_len)
{
    uint8_t flags = seg[13];
    uint16_t lport = get16(seg + 2);
    struct tcb *t;

    if ((flags & (F_SYN | F_ACK | F_RST | F_FIN)) != F_SYN || (lport != NET_PORT_ECHO && lport != NET_PORT_STREAM)) {
        tcp_reset(src, seg, seq_len);
        return;
    }
    if (!(t = tcb_alloc())) {
        return;                 /* full: the peer's SYN retransmission may find room */
    }
    t->state = TCP_SYN_RCVD;
    tcp_live = true;
    t->rip = src;
    t->rport = get16(seg);
    t->lport = lport;
    t->iss = tcp_isn(src, t->rport);
    t->snd_una = t->iss;
    t->snd_nxt = t->snd_max = t->iss + 1;
    t->snd_wnd = get16(seg + 14);
    t->rcv_nxt = get32(seg + 4) + 1;
    t->mss = tcp_opt_mss(seg, hlen);
    t->dupacks = 0;
    t->retries = 0;
    t->fin_queued = false;
    t->tx_len = 0;
    t->req_len = 0;
    t->rto_ms = t->rto_base_ms = TCP_RTO_MS;
    t->srtt_ms = t->rttvar_ms = 0;
    t->rtt_start = 0;
    t->rto_at = 0;
    tcp_segment(t, t->iss, F_SYN | F_ACK, 0, 0);
    tcb_timer_arm(t);
}

/* RFC 6298 with millisecond integers: one segment timed at a time, RTO =
 * srtt + 4 rttvar, at least TCP_RTO_MS. Under COLO a packet can wait for a
 * checkpoint before it leaves, and a fixed timeout would retransmit every
 * time one does. */
static void tcp_rtt_sample(struct tcb *t, uint32_t r)
{
    uint32_t rto;

    t->rtt_start = 0;
    if (!t->srtt_ms) {
        t->srtt_ms = r ? r : 1;
        t->rttvar_ms = r / 2;
    } else {
        uint32_t diff = t->srtt_ms > r ? t->srtt_ms - r : r - t->srtt_ms;
        t->rttvar_ms = (3 * t->rttvar_ms + diff) / 4;
        t->srtt_ms = (7 * t->srtt_ms + r) / 8;
        if (!t->srtt_ms) {
            t->srtt_ms = 1;
        }
    }
    rto = t->srtt_ms + 4 * t->rttvar_ms;
    t->rto_base_ms = rto < TCP_RTO_MS ? TCP_RTO_MS : rto > TCP_RTO_MAX_MS ? TCP_RTO_MAX_MS : rto;
    t->rto_ms = t->rto_base_ms;
}

/* The ACK field of an acceptable segment. False if the segment is to be
 * dropped (it acknowledged something never sent). */
static bool tcp_ack_input(struct tcb *t, uint32_t ack, uint16_t wnd, bool pure)
{
    if (seq_lt(t->snd_max, ack)) {
        t->ack_now = true;
        return false;
    }
    if (t->state == TCP_SYN_RCVD) {
        if (ack != t->iss + 1) {
            return false;
        }
        t->state = TCP_ESTABLISHED;
        t->snd_una = ack;
        t->snd_wnd = wnd;
        t->rto_at = 0;
        t->retries = 0;
        net_stats.tcp_accepted++;
        return true;
    }
    if (seq_lt(t->snd_una, ack)) {
        if (t->rtt_start && seq_le(t->rtt_seq, ack)) {
            tcp_rtt_sample(t, (uint32_t)(net_now_ms - (t->rtt_start & ~1ULL)));
        }
        t->snd_una = ack;
        if (seq_lt(t->snd_nxt, ack)) {
            t->snd_nxt = ack;
        }
        t->dupacks = 0;
        t->retries = 0;
        t->rto_at = 0;          /* rto_ms stays backed off until a valid sample (Karn) */
        if (t->snd_una != t->snd_max) {
            tcb_timer_arm(t);
        }
    } else if (pure && ack == t->snd_una && t->snd_una != t->snd_max && wnd == t->snd_wnd && ++t->dupacks == 3) {
        /* Duplicate: no data, no window change, nothing new acknowledged. */
        t->snd_nxt = t->snd_una;        /* fast retransmit, go-back-N */
        t->rtt_start = 0;
        net_stats.tcp_retrans++;
    }
    t->snd_wnd = wnd;
    /* Our FIN acknowledged? */
    if (tcb_fin_sent(t) && t->snd_una == t->snd_max && t->fin_queued &&
        (uint32_t)(t->snd_una - t->iss - 1) == t->tx_len + 1) {
        switch (t->state) {
        case TCP_FIN_WAIT_1: t->state = TCP_FIN_WAIT_2; break;
        case TCP_CLOSING:
            t->state = TCP_TIME_WAIT;
            t->tw_until = net_now_ms + TCP_TIME_WAIT_MS;
            break;
        case TCP_LAST_ACK: tcb_free(t); return false;
        default: break;
        }
    }
    return true;
}

static void tcp_fin_input(struct tcb *t)
{
    t->rcv_nxt++;
    t->ack_now = true;
    switch (t->state) {
    case TCP_SYN_RCVD:
    case TCP_ESTABLISHED:
        t->state = TCP_CLOSE_WAIT;
        t->fin_queued = true;           /* echo: after what is left; stream: now, if never asked */
        break;
    case TCP_FIN_WAIT_1:
        t->state = TCP_CLOSING;
        break;
    case TCP_FIN_WAIT_2:
        t->state = TCP_TIME_WAIT;
        t->tw_until = net_now_ms + TCP_TIME_WAIT_MS;
        break;
    default:
        break;
    }
}

void tcp_input(uint32_t src, const uint8_t *seg, size_t len)
{
    uint32_t hlen, dlen, seq, seq_len;
    uint8_t flags;
    struct tcb *t;

    if (len < TCP_HLEN || (hlen = (uint32_t)(seg[12] >> 4) * 4) < TCP_HLEN || hlen > len) {
        net_stats.rx_dropped++;
        return;
    }
    flags = seg[13];
    dlen = (uint32_t)len - hlen;
    seq = get32(seg + 4);
    seq_len = dlen + (flags & F_SYN ? 1 : 0) + (flags & F_FIN ? 1 : 0);
    t = tcb_find(src, get16(seg), get16(seg + 2));
    if (!t) {
        tcp_listen_input(src, seg, hlen, seq_len);
        return;
    }
    if (t->state == TCP_SYN_RCVD && (flags & F_SYN) && !(flags & F_ACK) && seq + 1 == t->rcv_nxt) {
        tcp_segment(t, t->iss, F_SYN | F_ACK, 0, 0);   /* our SYN-ACK was lost */
        return;
    }
    /* Acceptability: in-order only. Older bytes are trimmed; a segment
     * from the future is answered with an ACK (a duplicate one) and
     * dropped. */
    if (flags & F_RST) {
        if (seq == t->rcv_nxt || (seq_le(t->rcv_nxt, seq) && seq_lt(seq, t->rcv_nxt + tcb_rcv_wnd(t)))) {
            tcb_free(t);
        }
        return;
    }
    if (flags & F_SYN) {
        /* A SYN inside a connection: tell the peer where we are. */
        t->ack_now = true;
        tcp_output(t);
        return;
    }
    if (!(flags & F_ACK)) {
        return;
    }
    if (seq_lt(t->rcv_nxt, seq)) {
        t->ack_now = true;
        tcp_ack_input(t, get32(seg + 8), get16(seg + 14), seq_len == 0);
        if (t->state != TCP_FREE) {
            tcp_output(t);
        }
        return;
    }
    uint32_t old = t->rcv_nxt - seq;    /* bytes (and FIN) we already have */
    if (!tcp_ack_input(t, get32(seg + 8), get16(seg + 14), seq_len == 0)) {
        if (t->state != TCP_FREE && t->ack_now) {
            tcp_output(t);
        }
        return;
    }
    if (t->state == TCP_TIME_WAIT) {
        if (flags & F_FIN) {
            t->ack_now = true;          /* the peer lost our last ACK */
            tcp_segment(t, t->snd_nxt, F_ACK, 0, 0);
        }
        return;
    }
    bool fin_seen = false;
    if (seq_len > old) {
        const uint8_t *d = seg + hlen + (old < dlen ? old : dlen);
        uint32_t n = old < dlen ? dlen - old : 0;
        uint32_t took = 0;

        if (n && (t->state == TCP_ESTABLISHED || t->state == TCP_FIN_WAIT_1 || t->state == TCP_FIN_WAIT_2)) {
            took = tcp_deliver(t, d, n);
            t->rcv_nxt += took;
        }
        if (n) {
            t->ack_now = true;
        }
        fin_seen = (flags & F_FIN) && took == n;
    } else if (seq_len || seq_lt(seq, t->rcv_nxt)) {
        /* A retransmission of what we have, or a probe below rcv_nxt
         * (keepalive, zero-window probe): say where we are. */
        t->ack_now = true;
    }
    if (fin_seen && (t->state == TCP_ESTABLISHED || t->state == TCP_FIN_WAIT_1 || t->state == TCP_FIN_WAIT_2)) {
        tcp_fin_input(t);
    }
    tcp_output(t);
}

void tcp_timer(void)
{
    bool retry = tx_blocked;
    bool active = false;

    if (!tcp_live && !retry) {
        return;         /* the common idle tick: nothing to look at */
    }
    tx_blocked = false;
    for (unsigned i = 0; i < TCP_MAX_CONNS; i++) {
        struct tcb *t = &conns[i];

        if (t->state == TCP_FREE) {
            continue;
        }
        active = true;
        if (t->state == TCP_TIME_WAIT) {
            if (net_now_ms >= t->tw_until) {
                tcb_free(t);
            }
            continue;
        }
        if (!t->rto_at || net_now_ms < t->rto_at) {
            if (retry && t->state != TCP_SYN_RCVD) {
                tcp_output(t);
            }
            continue;
        }
        t->rto_at = 0;
        if (++t->retries > TCP_MAX_RETRIES) {
            tcb_abort(t);
            continue;
        }
        net_stats.tcp_retrans++;
        t->rtt_start = 0;               /* Karn: no sample from a retransmitted range */
        t->rto_ms = t->rto_ms * 2 > TCP_RTO_MAX_MS ? TCP_RTO_MAX_MS : t->rto_ms * 2;
        if (t->state == TCP_SYN_RCVD) {
            tcp_segment(t, t->iss, F_SYN | F_ACK, 0, 0);
            tcb_timer_arm(t);
            continue;
        }
        t->snd_nxt = t->snd_una;        /* go-back-N */
        if (!t->snd_wnd && t->snd_una == t->snd_max) {
            /* Zero-window probe: one byte past the window. */
            uint64_t off = (uint32_t)(t->snd_una - t->iss - 1);
            if (t->tx_len > off) {
                if (tcp_segment(t, t->snd_nxt, F_ACK, off, 1)) {
                    t->snd_nxt++;
                    if (seq_lt(t->snd_max, t->snd_nxt)) {
                        t->snd_max = t->snd_nxt;
                    }
                }
            }
            tcb_timer_arm(t);
            continue;
        }
        tcp_output(t);
        tcb_timer_arm(t);
    }
    tcp_live = active;
}
