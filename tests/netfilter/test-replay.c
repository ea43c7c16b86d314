/* Unit tests of the secondary's output replay (netfilter/replay.c): what
 * is kept, the byte budget, checkpoints, and the packets sent: cut to the
 * GSO size, numbered, flagged and checksummed as the guest's NIC would. */
#include "config.h"

#include "capture.h"
#include "packet.h"
#include "pktgen.h"
#include "replay.h"

#include <glib.h>
#include <linux/virtio_net.h>
#include <string.h>

#define GUEST "10.0.0.2"
#define CLIENT "10.0.0.9"
#define GUEST6 "fd00::2"
#define CLIENT6 "fd00::9"

/* virtio_net_hdr + Ethernet frame of a TCP segment from the guest. */
static size_t frame(uint8_t *buf, bool v6, uint32_t seq, uint8_t flags, size_t plen, uint16_t gso_size,
                    bool csum_partial)
{
    g_autofree uint8_t *payload = g_malloc(plen ? plen : 1);
    struct pktgen_tcp t = { .src = v6 ? GUEST6 : GUEST, .dst = v6 ? CLIENT6 : CLIENT, .sport = 19,
                            .dport = 40000, .seq = seq, .ack = 555, .flags = flags, .window = 1000,
                            .payload = payload, .plen = plen };
    size_t len;

    for (size_t i = 0; i < plen; i++) {
        payload[i] = (uint8_t)(seq + i);
    }
    len = pktgen_tcp(buf + CAPTURE_VNET_LEN, &t);
    len = pktgen_eth_wrap(buf + CAPTURE_VNET_LEN, len);
    memset(buf, 0, CAPTURE_VNET_LEN);
    if (gso_size) {
        buf[1] = v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
        buf[4] = (uint8_t)gso_size;
        buf[5] = (uint8_t)(gso_size >> 8);
    }
    if (csum_partial) {
        /* As the guest leaves it to its NIC: the pseudo-header's sum only.
         * Anything else will do to show the replay completes it. */
        uint8_t *tcp = buf + CAPTURE_VNET_LEN + PKT_ETH_HLEN + (v6 ? 40 : 20);

        buf[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
        pkt_put16(tcp + 16, 0x1234);
    }
    return CAPTURE_VNET_LEN + len;
}

typedef struct {
    GPtrArray *pkts;     /* GBytes of each IP packet sent */
    unsigned int refuse; /* refuse this many first */
} Sink;

static bool sink_send(void *opaque, const uint8_t *ip, size_t len)
{
    Sink *s = opaque;

    if (s->refuse) {
        s->refuse--;
        return false;
    }
    g_ptr_array_add(s->pkts, g_bytes_new(ip, len));
    return true;
}

static void sink_init(Sink *s)
{
    s->pkts = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    s->refuse = 0;
}

static const uint8_t *pkt(Sink *s, guint i, size_t *len)
{
    return g_bytes_get_data(g_ptr_array_index(s->pkts, i), len);
}

static void check_segment(Sink *s, guint i, bool v6, uint32_t seq, size_t plen, uint8_t flags)
{
    size_t len, hl = v6 ? 40 : 20;
    const uint8_t *ip = pkt(s, i, &len);
    struct pkt_info pi;

    memset(&pi, 0, sizeof(pi));
    g_assert_cmpint(pkt_parse_ip(ip, len, &pi), ==, PKT_OK);
    g_assert_cmpuint(len, ==, hl + 20 + plen);
    g_assert_cmpuint(pi.seq, ==, seq);
    g_assert_cmpuint(pi.payload_len, ==, plen);
    g_assert_cmphex(pi.tcp_flags, ==, flags);
    g_assert_true(pktgen_csum_ok(ip, len));
    /* The payload is the guest's bytes at that sequence number. */
    for (size_t k = 0; k < plen; k++) {
        g_assert_cmpuint(ip[hl + 20 + k], ==, (uint8_t)(seq + k));
    }
}

static void test_kept(void)
{
    OutputReplay *r = replay_new(1 << 20);
    uint8_t buf[4096];
    struct replay_stats st;
    Sink s;
    size_t len;

    sink_init(&s);
    replay_keep(r, buf, frame(buf, false, 1000, PKT_TCP_ACK, 0, 0, false));           /* pure ACK: no */
    replay_keep(r, buf, frame(buf, false, 1000, PKT_TCP_ACK | PKT_TCP_RST, 0, 0, false)); /* RST: never */
    len = pktgen_udp(buf + CAPTURE_VNET_LEN, GUEST, CLIENT, 7, 40000, "answer", 6);
    len = pktgen_eth_wrap(buf + CAPTURE_VNET_LEN, len);
    memset(buf, 0, CAPTURE_VNET_LEN);
    replay_keep(r, buf, CAPTURE_VNET_LEN + len);                                       /* UDP: never */
    replay_keep(r, buf, 4);                                                            /* too short */
    replay_keep(r, buf, frame(buf, false, 2000, PKT_TCP_SYN | PKT_TCP_ACK, 0, 0, false)); /* SYN-ACK */
    replay_keep(r, buf, frame(buf, false, 2001, PKT_TCP_ACK | PKT_TCP_PSH, 100, 0, false)); /* data */
    replay_keep(r, buf, frame(buf, false, 2101, PKT_TCP_ACK | PKT_TCP_FIN, 0, 0, false)); /* FIN */
    replay_get_stats(r, &st);
    g_assert_cmpuint(st.kept, ==, 3);
    g_assert_cmpuint(st.held_frames, ==, 3);
    g_assert_cmpuint(replay_flush(r, sink_send, &s), ==, 3);
    check_segment(&s, 0, false, 2000, 0, PKT_TCP_SYN | PKT_TCP_ACK);
    check_segment(&s, 1, false, 2001, 100, PKT_TCP_ACK | PKT_TCP_PSH);
    check_segment(&s, 2, false, 2101, 0, PKT_TCP_ACK | PKT_TCP_FIN);
    /* Sent once: a second flush has nothing. */
    g_assert_cmpuint(replay_flush(r, sink_send, &s), ==, 0);
    replay_get_stats(r, &st);
    g_assert_cmpuint(st.frames_sent, ==, 3);
    g_assert_cmpuint(st.packets_sent, ==, 3);
    g_assert_cmpuint(st.held_frames, ==, 0);
    g_assert_cmpuint(st.held_bytes, ==, 0);
    g_ptr_array_unref(s.pkts);
    replay_free(r);
}

/* A GSO frame goes out in segments of its GSO size: sequence numbers
 * advance, PSH and FIN only on the last, checksums complete although the
 * guest left its own partial. */
static void test_segmented(gconstpointer data)
{
    bool v6 = GPOINTER_TO_INT(data);
    OutputReplay *r = replay_new(1 << 20);
    g_autofree uint8_t *buf = g_malloc(70000);
    uint32_t seq = 0xfffff000u; /* the cut crosses the 2^32 wrap */
    Sink s;

    sink_init(&s);
    replay_keep(r, buf, frame(buf, v6, seq, PKT_TCP_ACK | PKT_TCP_PSH | PKT_TCP_FIN, 3500, 1448, true));
    g_assert_cmpuint(replay_flush(r, sink_send, &s), ==, 3);
    check_segment(&s, 0, v6, seq, 1448, PKT_TCP_ACK);
    check_segment(&s, 1, v6, seq + 1448, 1448, PKT_TCP_ACK);
    check_segment(&s, 2, v6, seq + 2896, 604, PKT_TCP_ACK | PKT_TCP_PSH | PKT_TCP_FIN);
    if (!v6) {
        /* Each segment its own IP id. */
        size_t len;

        g_assert_cmpuint(pkt_get16(pkt(&s, 1, &len) + 4), ==, (uint16_t)(pkt_get16(pkt(&s, 0, &len) + 4) + 1));
    }
    g_ptr_array_unref(s.pkts);
    replay_free(r);
}

/* A SYN with data cut in two: the SYN and the first data on the first
 * segment, the rest numbered after the SYN's sequence number. */
static void test_syn_with_data(void)
{
    OutputReplay *r = replay_new(1 << 20);
    g_autofree uint8_t *buf = g_malloc(70000);
    Sink s;

    sink_init(&s);
    replay_keep(r, buf, frame(buf, false, 5000, PKT_TCP_SYN | PKT_TCP_ACK, 2000, 1000, false));
    g_assert_cmpuint(replay_flush(r, sink_send, &s), ==, 2);
    check_segment(&s, 0, false, 5000, 1000, PKT_TCP_SYN | PKT_TCP_ACK);
    {
        size_t len, hl = 20;
        const uint8_t *ip = pkt(&s, 1, &len);
        struct pkt_info pi;

        memset(&pi, 0, sizeof(pi));
        g_assert_cmpint(pkt_parse_ip(ip, len, &pi), ==, PKT_OK);
        g_assert_cmpuint(pi.seq, ==, 5001 + 1000);
        g_assert_cmpuint(pi.payload_len, ==, 1000);
        g_assert_cmphex(pi.tcp_flags, ==, PKT_TCP_ACK);
        g_assert_true(pktgen_csum_ok(ip, len));
        /* The payload's second half: bytes 1000.. of the frame's. */
        g_assert_cmpuint(ip[hl + 20], ==, (uint8_t)(5000 + 1000));
    }
    g_ptr_array_unref(s.pkts);
    replay_free(r);
}

/* A partial checksum on a frame that needs no cut is completed too. */
static void test_partial_checksum(void)
{
    OutputReplay *r = replay_new(1 << 20);
    uint8_t buf[4096];
    Sink s;

    sink_init(&s);
    replay_keep(r, buf, frame(buf, false, 77, PKT_TCP_ACK | PKT_TCP_PSH, 333, 0, true));
    g_assert_cmpuint(replay_flush(r, sink_send, &s), ==, 1);
    check_segment(&s, 0, false, 77, 333, PKT_TCP_ACK | PKT_TCP_PSH);
    g_ptr_array_unref(s.pkts);
    replay_free(r);
}

/* virtio_net_hdr + Ethernet frame of a UDP answer from the guest, its
 * checksum left to the NIC if @partial; an Ethernet pad after it. */
static size_t udp_frame(uint8_t *buf, bool v6, const char *text, bool partial)
{
    size_t len = pktgen_udp(buf + CAPTURE_VNET_LEN, v6 ? GUEST6 : GUEST, v6 ? CLIENT6 : CLIENT, 7, 40001, text,
                            strlen(text));

    len = pktgen_eth_wrap(buf + CAPTURE_VNET_LEN, len);
    memset(buf, 0, CAPTURE_VNET_LEN);
    if (partial) {
        buf[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
        pkt_put16(buf + CAPTURE_VNET_LEN + PKT_ETH_HLEN + (v6 ? 40 : 20) + 6, 0x4321);
    }
    memset(buf + CAPTURE_VNET_LEN + len, 0, 16);
    return CAPTURE_VNET_LEN + len + 16;
}

/* Datagrams kept after the primary was lost go at the takeover, once, after
 * the TCP segments, whole (not the Ethernet pad) and checksummed; TCP,
 * GSO frames and ARP are not datagrams; a checkpoint forgets them. */
static void test_datagrams(void)
{
    OutputReplay *r = replay_new(1 << 20);
    struct replay_stats st;
    uint8_t buf[4096];
    size_t len;
    Sink s;

    sink_init(&s);
    replay_keep(r, buf, frame(buf, false, 77, PKT_TCP_ACK | PKT_TCP_PSH, 100, 0, false));
    replay_keep_datagram(r, buf, udp_frame(buf, false, "answer one", true));
    replay_keep_datagram(r, buf, udp_frame(buf, true, "answer two", false));
    replay_keep_datagram(r, buf, frame(buf, false, 177, PKT_TCP_ACK, 100, 0, false));
    len = udp_frame(buf, false, "a GSO frame", false);
    buf[1] = VIRTIO_NET_HDR_GSO_UDP;
    replay_keep_datagram(r, buf, len);
    len = pktgen_arp(buf + CAPTURE_VNET_LEN, 2, GUEST, CLIENT);
    memset(buf, 0, CAPTURE_VNET_LEN);
    replay_keep_datagram(r, buf, CAPTURE_VNET_LEN + len);
    replay_get_stats(r, &st);
    g_assert_cmpuint(st.datagrams_kept, ==, 2);
    g_assert_cmpuint(st.held_frames, ==, 3);

    g_assert_cmpuint(replay_flush(r, sink_send, &s), ==, 3);
    g_assert_cmpuint(s.pkts->len, ==, 3);
    check_segment(&s, 0, false, 77, 100, PKT_TCP_ACK | PKT_TCP_PSH);
    for (guint i = 1; i < 3; i++) {
        const char *text = i == 1 ? "answer one" : "answer two";
        size_t hl = i == 1 ? 20 : 40, plen;
        const uint8_t *ip = pkt(&s, i, &plen);

        g_assert_cmpuint(plen, ==, hl + 8 + strlen(text));
        g_assert_cmpmem(ip + hl + 8, strlen(text), text, strlen(text));
        g_assert_true(pktgen_csum_ok(ip, plen));
    }
    replay_get_stats(r, &st);
    g_assert_cmpuint(st.datagrams_sent, ==, 2);
    g_assert_cmpuint(st.held_frames, ==, 0);
    g_assert_cmpuint(replay_flush(r, sink_send, &s), ==, 0);

    replay_keep_datagram(r, buf, udp_frame(buf, false, "before a checkpoint", false));
    replay_clear(r);
    g_assert_cmpuint(replay_flush(r, sink_send, &s), ==, 0);
    g_ptr_array_unref(s.pkts);
    replay_free(r);

    /* Datagrams share the byte budget but segments do not push them out:
     * with the budget theirs, a segment is not kept (and nothing breaks). */
    len = udp_frame(buf, false, "fills the budget", false);
    r = replay_new(len + 100);
    replay_keep_datagram(r, buf, len);
    replay_keep(r, buf, frame(buf, false, 300, PKT_TCP_ACK | PKT_TCP_PSH, 200, 0, false));
    replay_get_stats(r, &st);
    g_assert_cmpuint(st.datagrams_kept, ==, 1);
    g_assert_cmpuint(st.kept, ==, 0);
    g_assert_cmpuint(st.evicted, ==, 1);
    g_assert_cmpuint(st.held_frames, ==, 1);
    replay_free(r);
}

/* The client's acknowledgement (mirrored input) spares what it covers; a
 * range the guest sent twice (a retransmission) goes once; what is left
 * of a GSO frame past the acknowledgement goes. */
static void test_acked_and_duplicates(void)
{
    OutputReplay *r = replay_new(1 << 20);
    g_autofree uint8_t *buf = g_malloc(70000);
    uint8_t ack[256];
    struct pktgen_tcp t = { .src = CLIENT, .dst = GUEST, .sport = 40000, .dport = 19, .seq = 555,
                            .flags = PKT_TCP_ACK };
    struct replay_stats st;
    Sink s;
    size_t len;

    sink_init(&s);
    replay_keep(r, buf, frame(buf, false, 999, PKT_TCP_SYN | PKT_TCP_ACK, 0, 0, false));
    replay_keep(r, buf, frame(buf, false, 1000, PKT_TCP_ACK, 1000, 0, false));
    replay_keep(r, buf, frame(buf, false, 2000, PKT_TCP_ACK, 3000, 1000, false));
    replay_keep(r, buf, frame(buf, false, 2000, PKT_TCP_ACK, 1000, 0, false)); /* retransmitted */
    replay_keep(r, buf, frame(buf, false, 5000, PKT_TCP_ACK | PKT_TCP_FIN, 0, 0, false));
    /* Acknowledged up to 3000: the SYN-ACK, the first frame and the GSO
     * frame's first segment are the client's already. An older ACK after
     * it changes nothing. */
    t.ack = 3000;
    len = pktgen_eth_wrap(ack, pktgen_tcp(ack, &t));
    replay_note_input(r, ack, len);
    t.ack = 1500;
    len = pktgen_eth_wrap(ack, pktgen_tcp(ack, &t));
    replay_note_input(r, ack, len);
    g_assert_cmpuint(replay_flush(r, sink_send, &s), ==, 3);
    check_segment(&s, 0, false, 3000, 1000, PKT_TCP_ACK);
    check_segment(&s, 1, false, 4000, 1000, PKT_TCP_ACK);
    check_segment(&s, 2, false, 5000, 0, PKT_TCP_ACK | PKT_TCP_FIN);
    replay_get_stats(r, &st);
    g_assert_cmpuint(st.skipped, ==, 4);
    g_ptr_array_unref(s.pkts);
    replay_free(r);
}

/* Over budget the oldest go; a checkpoint forgets everything; a refused
 * send is counted and the rest still go. */
static void test_budget_and_checkpoint(void)
{
    uint8_t buf[4096];
    size_t one = frame(buf, false, 0, PKT_TCP_ACK, 1000, 0, false);
    OutputReplay *r = replay_new(3 * one);
    struct replay_stats st;
    Sink s;

    sink_init(&s);
    for (uint32_t i = 0; i < 5; i++) {
        replay_keep(r, buf, frame(buf, false, i * 1000, PKT_TCP_ACK, 1000, 0, false));
    }
    replay_get_stats(r, &st);
    g_assert_cmpuint(st.kept, ==, 5);
    g_assert_cmpuint(st.evicted, ==, 2);
    g_assert_cmpuint(st.held_frames, ==, 3);
    g_assert_cmpuint(st.held_bytes, ==, 3 * one);
    s.refuse = 1;
    g_assert_cmpuint(replay_flush(r, sink_send, &s), ==, 2);
    check_segment(&s, 0, false, 3000, 1000, PKT_TCP_ACK);
    check_segment(&s, 1, false, 4000, 1000, PKT_TCP_ACK);
    replay_get_stats(r, &st);
    g_assert_cmpuint(st.send_failed, ==, 1);
    g_assert_cmpuint(st.frames_sent, ==, 3);

    /* Larger than the whole budget: not kept. */
    replay_keep(r, buf, frame(buf, false, 0, PKT_TCP_ACK, 4000 - 100, 0, false));
    replay_get_stats(r, &st);
    g_assert_cmpuint(st.held_frames, ==, 0);
    g_assert_cmpuint(st.evicted, ==, 3);

    replay_keep(r, buf, frame(buf, false, 9000, PKT_TCP_ACK, 10, 0, false));
    replay_keep(r, buf, frame(buf, false, 9010, PKT_TCP_ACK, 10, 0, false));
    replay_clear(r);
    replay_get_stats(r, &st);
    g_assert_cmpuint(st.cleared, ==, 2);
    g_assert_cmpuint(st.held_frames, ==, 0);
    g_assert_cmpuint(replay_flush(r, sink_send, &s), ==, 0);
    g_ptr_array_unref(s.pkts);
    replay_free(r);
}

/* A capture that gives its buffers up (capture_take), or refuses to. */
typedef struct {
    unsigned int calls;
    bool refuse;
} Taker;

static uint8_t *take_buffer(void *opaque, uint8_t *buf)
{
    Taker *t = opaque;

    t->calls++;
    return t->refuse ? NULL : buf;
}

/* Large frames are taken from the caller instead of copied, and freed by
 * the replay once sent, evicted or cleared; small ones, those not kept
 * and those the caller keeps are copied (or left alone). */
static void test_taken(void)
{
    g_autofree uint8_t *scratch = g_malloc(70000);
    size_t one = frame(scratch, false, 0, PKT_TCP_ACK, 20000, 1448, false);
    OutputReplay *r = replay_new(3 * one);
    uint8_t small[2048], *big;
    struct replay_stats st;
    Taker t = { 0 };
    Sink s;

    sink_init(&s);
    /* Not kept (a pure ACK), kept small: never taken. */
    replay_keep_take(r, small, frame(small, false, 0, PKT_TCP_ACK, 0, 0, false), take_buffer, &t);
    replay_keep_take(r, small, frame(small, false, 0, PKT_TCP_ACK, 1000, 0, false), take_buffer, &t);
    g_assert_cmpuint(t.calls, ==, 0);
    /* Three large ones taken (the small one and the first then evicted),
     * two refused. */
    for (uint32_t i = 0; i < 3; i++) {
        big = g_malloc(70000);
        replay_keep_take(r, big, frame(big, false, 1000 + i * 20000, PKT_TCP_ACK, 20000, 1448, false),
                         take_buffer, &t);
    }
    g_assert_cmpuint(t.calls, ==, 3);
    t.refuse = true;
    big = g_malloc(70000);
    replay_keep_take(r, big, frame(big, false, 61000, PKT_TCP_ACK, 1000, 0, false), take_buffer, &t);
    replay_keep_take(r, big, frame(big, false, 62000, PKT_TCP_ACK, 8000, 1448, false), take_buffer, &t);
    g_assert_cmpuint(t.calls, ==, 4);
    memset(big, 0, 70000);   /* refused: the caller's, and copied */
    g_free(big);
    replay_get_stats(r, &st);
    g_assert_cmpuint(st.kept, ==, 6);
    g_assert_cmpuint(st.evicted, ==, 2);
    g_assert_cmpuint(st.held_frames, ==, 4);
    /* What is sent comes from the taken buffers and the copies. */
    g_assert_cmpuint(replay_flush(r, sink_send, &s), ==, 2 * 14 + 1 + 6);
    check_segment(&s, 0, false, 21000, 1448, PKT_TCP_ACK);
    check_segment(&s, 27, false, 41000 + 13 * 1448, 20000 - 13 * 1448, PKT_TCP_ACK);
    check_segment(&s, 28, false, 61000, 1000, PKT_TCP_ACK);
    check_segment(&s, 29, false, 62000, 1448, PKT_TCP_ACK);
    /* Taken again, then cleared at a checkpoint. */
    t.refuse = false;
    big = g_malloc(70000);
    replay_keep_take(r, big, frame(big, false, 70000, PKT_TCP_ACK, 5000, 1448, false), take_buffer, &t);
    replay_clear(r);
    g_ptr_array_unref(s.pkts);
    replay_free(r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/replay/kept", test_kept);
    g_test_add_data_func("/replay/segmented/ipv4", GINT_TO_POINTER(0), test_segmented);
    g_test_add_data_func("/replay/segmented/ipv6", GINT_TO_POINTER(1), test_segmented);
    g_test_add_func("/replay/partial-checksum", test_partial_checksum);
    g_test_add_func("/replay/syn-with-data", test_syn_with_data);
    g_test_add_func("/replay/budget-and-checkpoint", test_budget_and_checkpoint);
    g_test_add_func("/replay/acked-and-duplicates", test_acked_and_duplicates);
    g_test_add_func("/replay/taken", test_taken);
    g_test_add_func("/replay/datagrams", test_datagrams);
    return g_test_run();
}
