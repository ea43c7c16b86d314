#include "config.h"

#include "replay.h"
#include "capture.h"
#include "packet.h"

#include <errno.h>
#include <gio/gio.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>
#include <qb/qblog.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Flows tracked at most; past it, new ones are sent whole. */
#define REPLAY_MAX_FLOWS 65536

/* Frames at least this long are taken from the caller when it can give
 * its buffer up (replay_keep_take), not copied: GSO super-packets. */
#define REPLAY_TAKE_MIN 4096

struct kept_frame {
    size_t len;
    uint8_t *data;           /* copy[], or a buffer taken from the caller */
    uint8_t copy[];
};

static void kept_frame_free(gpointer data)
{
    struct kept_frame *k = data;

    if (k->data != k->copy) {
        g_free(k->data);
    }
    g_free(k);
}

static struct kept_frame *kept_frame_copy(const uint8_t *buf, size_t len)
{
    struct kept_frame *k = g_malloc(sizeof(*k) + len);

    k->data = k->copy;
    k->len = len;
    memcpy(k->copy, buf, len);
    return k;
}

/* Per flow, guest to client. */
struct replay_flow {
    struct flow_key key;     /* first: the hash table's key */
    uint32_t acked;          /* the client's highest acknowledgement */
    uint32_t sent_upto;      /* during a flush: the end of what went */
    bool ack_valid, sent_valid;
};

struct output_replay {
    GQueue frames;           /* struct kept_frame *, oldest first */
    GQueue datagrams;        /* struct kept_frame *: replay_keep_datagram */
    size_t bytes;            /* of both */
    size_t max_bytes;
    GHashTable *flows;       /* struct flow_key * -> struct replay_flow * */
    uint8_t *scratch;        /* one segment */
    struct replay_stats st;
};

OutputReplay *replay_new(size_t max_bytes)
{
    OutputReplay *r = g_new0(OutputReplay, 1);

    g_queue_init(&r->frames);
    g_queue_init(&r->datagrams);
    r->max_bytes = max_bytes;
    r->flows = g_hash_table_new_full(flow_key_hash, flow_key_equal, NULL, g_free);
    /* One IP packet: up to 65535 bytes, plus IPv6's fixed header, which its
     * payload length does not count. */
    r->scratch = g_malloc(65535 + 40);
    return r;
}

static void replay_drop_all(OutputReplay *r)
{
    g_queue_clear_full(&r->frames, kept_frame_free);
    g_queue_clear_full(&r->datagrams, kept_frame_free);
    r->bytes = 0;
    g_hash_table_remove_all(r->flows);
}

void replay_free(OutputReplay *r)
{
    if (!r) {
        return;
    }
    replay_drop_all(r);
    g_hash_table_unref(r->flows);
    g_free(r->scratch);
    g_free(r);
}

static struct replay_flow *replay_flow(OutputReplay *r, const struct flow_key *key)
{
    struct replay_flow *f = g_hash_table_lookup(r->flows, key);

    if (!f && g_hash_table_size(r->flows) < REPLAY_MAX_FLOWS) {
        f = g_new0(struct replay_flow, 1);
        f->key = *key;
        g_hash_table_insert(r->flows, &f->key, f);
    }
    return f;
}

static bool parse_tcp(const uint8_t *frame, size_t len, struct pkt_info *pi)
{
    memset(pi, 0, sizeof(*pi));
    return pkt_parse_eth(frame, len, pi) == PKT_OK && pi->key.proto == IPPROTO_TCP && !pi->fragment &&
           (pi->ethertype == PKT_ETHERTYPE_IPV4 || pi->ethertype == PKT_ETHERTYPE_IPV6);
}

void replay_note_input(OutputReplay *r, const uint8_t *frame, size_t len)
{
    struct replay_flow *f;
    struct flow_key out;
    struct pkt_info pi;

    if (!parse_tcp(frame, len, &pi) || !(pi.tcp_flags & PKT_TCP_ACK)) {
        return;
    }
    flow_key_reverse(&pi.key, &out);
    f = replay_flow(r, &out);
    if (f && (!f->ack_valid || seq_gt(pi.ack, f->acked))) {
        f->acked = pi.ack;
        f->ack_valid = true;
    }
}

void replay_keep_take(OutputReplay *r, uint8_t *buf, size_t len, replay_take_fn take, void *opaque)
{
    struct kept_frame *k;
    uint8_t *taken;
    struct pkt_info pi;

    if (len <= CAPTURE_VNET_LEN || !parse_tcp(buf + CAPTURE_VNET_LEN, len - CAPTURE_VNET_LEN, &pi) ||
        (pi.tcp_flags & PKT_TCP_RST) || !(pi.payload_len > 0 || (pi.tcp_flags & (PKT_TCP_SYN | PKT_TCP_FIN)))) {
        return;
    }
    replay_flow(r, &pi.key);
    if (len > r->max_bytes) {
        r->st.evicted++;
        return;
    }
    /* The oldest segments make room; datagrams (kept after primary-lost)
     * share the budget but are not pushed out. */
    while (r->bytes + len > r->max_bytes && (k = g_queue_pop_head(&r->frames))) {
        r->bytes -= k->len;
        r->st.evicted++;
        kept_frame_free(k);
    }
    if (r->bytes + len > r->max_bytes) {
        r->st.evicted++;
        return;
    }
    if (take && len >= REPLAY_TAKE_MIN && (taken = take(opaque, buf))) {
        k = g_new(struct kept_frame, 1);
        k->data = g_realloc(taken, len);   /* gives the rest of the buffer back */
        k->len = len;
    } else {
        k = kept_frame_copy(buf, len);
    }
    g_queue_push_tail(&r->frames, k);
    r->bytes += len;
    r->st.kept++;
}

void replay_keep(OutputReplay *r, const uint8_t *buf, size_t len)
{
    replay_keep_take(r, (uint8_t *)buf, len, NULL, NULL);
}

/* The IP packet's length by its own header (an Ethernet frame may carry
 * padding after it), or 0 if the frame does not hold it whole. */
static size_t ip_packet_len(const uint8_t *frame, size_t flen, const struct pkt_info *pi)
{
    const uint8_t *ip = frame + pi->l3_off;
    size_t n = pi->ethertype == PKT_ETHERTYPE_IPV4 ? pkt_get16(ip + 2) : 40 + (size_t)pkt_get16(ip + 4);
    struct pkt_info alone;

    if (pi->l3_off + n > flen || n <= pi->l4_off - pi->l3_off + 8) {
        return 0;
    }
    /* What goes out must parse as the packet it claims to be. */
    memset(&alone, 0, sizeof(alone));
    return pkt_parse_ip(ip, n, &alone) == PKT_OK && alone.end == n ? n : 0;
}

void replay_keep_datagram(OutputReplay *r, const uint8_t *buf, size_t len)
{
    const uint8_t *frame = buf + CAPTURE_VNET_LEN;
    struct kept_frame *k;
    struct pkt_info pi;

    memset(&pi, 0, sizeof(pi));
    if (len <= CAPTURE_VNET_LEN || (buf[1] & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN) != VIRTIO_NET_HDR_GSO_NONE ||
        pkt_parse_eth(frame, len - CAPTURE_VNET_LEN, &pi) != PKT_OK || pi.fragment ||
        (pi.ethertype != PKT_ETHERTYPE_IPV4 && pi.ethertype != PKT_ETHERTYPE_IPV6) ||
        !flow_key_is_datagram(&pi.key) || !ip_packet_len(frame, len - CAPTURE_VNET_LEN, &pi)) {
        return;
    }
    if (r->bytes + len > r->max_bytes) {
        r->st.evicted++;     /* the oldest matter most here: keep those */
        return;
    }
    k = kept_frame_copy(buf, len);
    g_queue_push_tail(&r->datagrams, k);
    r->bytes += len;
    r->st.datagrams_kept++;
}

void replay_clear(OutputReplay *r)
{
    r->st.cleared += r->frames.length;
    replay_drop_all(r);
}

static uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t n)
{
    for (; n > 1; p += 2, n -= 2) {
        sum += pkt_get16(p);
    }
    if (n) {
        sum += (uint64_t)p[0] << 8;
    }
    return sum;
}

static uint16_t csum_fold(uint64_t sum)
{
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return (uint16_t)~sum;
}

/* The sum of the pseudo-header of @len bytes of @proto in the IP packet
 * @ip: addresses, length, protocol. */
static uint64_t pseudo_header_sum(const uint8_t *ip, size_t len, uint8_t proto)
{
    uint64_t sum;
    uint8_t l[4];

    if ((ip[0] >> 4) == 4) {
        sum = csum_add(0, ip + 12, 8);
    } else {
        sum = csum_add(0, ip + 8, 32);
    }
    pkt_put32(l, (uint32_t)len);
    return csum_add(sum, l, 4) + proto;
}

/* The TCP checksum of @tcp (@len bytes) in the IP packet @ip, in full:
 * a frame the guest left to its NIC has only the pseudo-header's. */
static void tcp_checksum(uint8_t *ip, uint8_t *tcp, size_t len)
{
    pkt_put16(tcp + 16, 0);
    pkt_put16(tcp + 16, csum_fold(csum_add(pseudo_header_sum(ip, len, IPPROTO_TCP), tcp, len)));
}

/* The checksum of a datagram's L4 header and payload (@len bytes at @l4)
 * in the IP packet @ip, in full: a guest that left it to its NIC
 * (VIRTIO_NET_HDR_F_NEEDS_CSUM) put only the pseudo-header's there. */
static void datagram_checksum(uint8_t *ip, uint8_t *l4, size_t len, uint8_t proto)
{
    size_t at = proto == IPPROTO_UDP ? 6 : 2;
    /* UDP and ICMPv6 cover a pseudo-header, ICMP does not. */
    uint64_t sum = proto != IPPROTO_ICMP ? pseudo_header_sum(ip, len, proto) : 0;
    uint16_t c;

    pkt_put16(l4 + at, 0);
    c = csum_fold(csum_add(sum, l4, len));
    pkt_put16(l4 + at, proto == IPPROTO_UDP && c == 0 ? 0xffff : c);
}

static bool replay_datagram(OutputReplay *r, const struct kept_frame *k, replay_send_fn send, void *opaque)
{
    const uint8_t *frame = k->data + CAPTURE_VNET_LEN;
    size_t flen = k->len - CAPTURE_VNET_LEN, n;
    struct pkt_info pi;

    memset(&pi, 0, sizeof(pi));
    if (pkt_parse_eth(frame, flen, &pi) != PKT_OK || !(n = ip_packet_len(frame, flen, &pi))) {
        return false; /* kept only after it parsed */
    }
    memcpy(r->scratch, frame + pi.l3_off, n);
    if (k->data[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        size_t l4 = pi.l4_off - pi.l3_off;

        datagram_checksum(r->scratch, r->scratch + l4, n - l4, pi.key.proto);
    }
    return send(opaque, r->scratch, n);
}

/* Whether the segment [@seq, @end) of @f is to go: not acknowledged by
 * the client, not sent already. */
static bool segment_needed(struct replay_flow *f, uint32_t seq, uint32_t end)
{
    if (!f) {
        return true;
    }
    if ((f->ack_valid && seq_leq(end, f->acked)) || (f->sent_valid && seq_leq(end, f->sent_upto))) {
        return false;
    }
    if (!f->sent_valid || seq_gt(end, f->sent_upto)) {
        f->sent_upto = end;
        f->sent_valid = true;
    }
    return true;
}

/* Sends one kept frame as packets of at most its GSO size. */
static unsigned int replay_frame(OutputReplay *r, const struct kept_frame *k, replay_send_fn send, void *opaque)
{
    const uint8_t *vnet = k->data, *frame = k->data + CAPTURE_VNET_LEN;
    size_t flen = k->len - CAPTURE_VNET_LEN, hlen, l4hlen, plen, seg, off = 0;
    uint8_t gso = vnet[1] & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
    uint16_t gso_size = (uint16_t)(vnet[4] | vnet[5] << 8); /* little-endian, as PACKET_VNET_HDR gives it */
    unsigned int sent = 0, n_seg = 0;
    struct replay_flow *f;
    struct pkt_info pi;
    bool v4;

    memset(&pi, 0, sizeof(pi));
    if (pkt_parse_eth(frame, flen, &pi) != PKT_OK) {
        return 0; /* kept only after it parsed */
    }
    f = g_hash_table_lookup(r->flows, &pi.key);
    v4 = pi.ethertype == PKT_ETHERTYPE_IPV4;
    hlen = pi.payload_off - pi.l3_off;
    l4hlen = pi.payload_off - pi.l4_off;
    plen = pi.payload_len;
    seg = plen;
    if ((gso == VIRTIO_NET_HDR_GSO_TCPV4 || gso == VIRTIO_NET_HDR_GSO_TCPV6) && gso_size && gso_size < plen) {
        seg = gso_size;
    }
    /* A SYN takes the first sequence number, data the next ones. */
    uint32_t data_seq = pi.seq + ((pi.tcp_flags & PKT_TCP_SYN) ? 1 : 0);

    do {
        size_t n = MIN(seg, plen - off), total = hlen + n;
        uint8_t *ip = r->scratch, *tcp = ip + (pi.l4_off - pi.l3_off);
        bool first = off == 0, last = off + n >= plen;
        uint32_t seq = first ? pi.seq : data_seq + (uint32_t)off;
        uint32_t end = data_seq + (uint32_t)(off + n) + (last && (pi.tcp_flags & PKT_TCP_FIN) ? 1 : 0);

        n_seg++;
        if (!segment_needed(f, seq, end)) {
            r->st.skipped++;
            off += n;
            continue;
        }
        if (total > 65535 + (v4 ? 0 : 40)) {
            r->st.send_failed++;
            return sent; /* a super-packet without a GSO size: cannot be sent as one */
        }
        memcpy(ip, frame + pi.l3_off, hlen);
        memcpy(ip + hlen, frame + pi.payload_off + off, n);
        if (v4) {
            pkt_put16(ip + 2, (uint16_t)total);
            pkt_put16(ip + 4, (uint16_t)(pkt_get16(ip + 4) + n_seg - 1));
            pkt_put16(ip + 10, 0);
            pkt_put16(ip + 10, csum_fold(csum_add(0, ip, pi.l4_off - pi.l3_off)));
        } else {
            pkt_put16(ip + 4, (uint16_t)(total - 40));
        }
        pkt_put32(tcp + 4, seq);
        if (!last) {
            tcp[13] &= (uint8_t)~(PKT_TCP_FIN | PKT_TCP_PSH);
        }
        if (!first) {
            tcp[13] &= (uint8_t)~(PKT_TCP_SYN | 0x80); /* SYN and CWR: on the first segment only */
        }
        tcp_checksum(ip, tcp, l4hlen + n);
        if (send(opaque, ip, total)) {
            sent++;
        } else {
            r->st.send_failed++;
        }
        off += n;
    } while (off < plen);
    return sent;
}

unsigned int replay_flush(OutputReplay *r, replay_send_fn send, void *opaque)
{
    unsigned int packets = 0;
    struct kept_frame *k;
    GHashTableIter it;
    gpointer v;

    g_hash_table_iter_init(&it, r->flows);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        ((struct replay_flow *)v)->sent_valid = false;
    }
    while ((k = g_queue_pop_head(&r->frames))) {
        packets += replay_frame(r, k, send, opaque);
        r->st.frames_sent++;
        kept_frame_free(k);
    }
    while ((k = g_queue_pop_head(&r->datagrams))) {
        if (replay_datagram(r, k, send, opaque)) {
            packets++;
            r->st.datagrams_sent++;
        } else {
            r->st.send_failed++;
        }
        kept_frame_free(k);
    }
    r->bytes = 0;
    r->st.packets_sent += packets;
    return packets;
}

void replay_get_stats(const OutputReplay *r, struct replay_stats *out)
{
    *out = r->st;
    out->held_frames = r->frames.length + r->datagrams.length;
    out->held_bytes = r->bytes;
}

/* --- raw IP sockets -------------------------------------------------- */

struct replay_raw {
    int fd4, fd6;
};

ReplayRaw *replay_raw_open(GError **error)
{
    ReplayRaw *s = g_new0(ReplayRaw, 1);

    /* IPPROTO_RAW: we give the whole IP header (IP_HDRINCL, and for IPv6
     * its equivalent), so the source stays the guest's address. */
    s->fd4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (s->fd4 < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "raw IPv4 socket: %s", g_strerror(errno));
        g_free(s);
        return NULL;
    }
    /* A host without IPv6 still replays IPv4. */
    s->fd6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (s->fd6 < 0) {
        qb_log(LOG_INFO, "no raw IPv6 socket (%s): IPv6 output is not replayed", g_strerror(errno));
    }
    return s;
}

bool replay_raw_send(void *opaque, const uint8_t *ip, size_t len)
{
    ReplayRaw *s = opaque;
    ssize_t n;

    if ((ip[0] >> 4) == 4) {
        struct sockaddr_in to = { .sin_family = AF_INET };

        memcpy(&to.sin_addr, ip + 16, 4);
        n = sendto(s->fd4, ip, len, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to));
    } else {
        struct sockaddr_in6 to = { .sin6_family = AF_INET6 };

        if (s->fd6 < 0) {
            return false;
        }
        memcpy(&to.sin6_addr, ip + 24, 16);
        n = sendto(s->fd6, ip, len, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to));
    }
    if (n < 0) {
        qb_log(LOG_DEBUG, "replay: send: %s", g_strerror(errno));
        return false;
    }
    return true;
}

bool replay_raw_send_datagram(ReplayRaw *s, const uint8_t *ip, size_t len)
{
    struct pkt_info pi;

    memset(&pi, 0, sizeof(pi));
    if (pkt_parse_ip(ip, len, &pi) != PKT_OK || pi.fragment || !flow_key_is_datagram(&pi.key)) {
        return false;
    }
    g_autofree uint8_t *copy = g_memdup2(ip, pi.end);

    /* Whether the guest left it to its NIC is not known here: in full. */
    datagram_checksum(copy, copy + pi.l4_off, pi.payload_off + pi.payload_len - pi.l4_off, pi.key.proto);
    return replay_raw_send(s, copy, pi.end);
}

void replay_raw_close(ReplayRaw *s)
{
    if (!s) {
        return;
    }
    close(s->fd4);
    if (s->fd6 >= 0) {
        close(s->fd6);
    }
    g_free(s);
}
