/* Unit tests of the compare engine on a virtual clock. */
#include "config.h"

#include "compare.h"
#include "packet.h"
#include "pktgen.h"

#include <glib.h>
#include <string.h>

#define MS 1000000ull
#define GUEST "10.0.0.2"
#define CLIENT "10.0.0.9"

struct fixture {
    CmpEngine *e;
    struct cmp_params params;
    GArray *released;          /* uint64_t handles, in release order */
    GArray *requests;          /* enum cmp_reason */
    uint64_t now;
    uint64_t next_handle;
    uint8_t buf[70000];
};

static void on_release(void *opaque, uint64_t handle)
{
    struct fixture *f = opaque;

    g_array_append_val(f->released, handle);
}

static void on_checkpoint(void *opaque, enum cmp_reason reason)
{
    struct fixture *f = opaque;
    int r = reason;

    g_array_append_val(f->requests, r);
}

/* (Re)create the engine with f->params. */
static void fixture_start(struct fixture *f)
{
    struct cmp_callbacks cb = { on_release, on_checkpoint, f };

    cmp_engine_free(f->e);
    f->e = cmp_engine_new(&f->params, &cb);
    cmp_engine_arm(f->e);   /* COLO began (test_unarmed_passes: before it) */
    g_array_set_size(f->released, 0);
    g_array_set_size(f->requests, 0);
    f->now = 1000 * MS;
    f->next_handle = 1;
}

static void fixture_setup(struct fixture *f, gconstpointer data)
{
    f->e = NULL;
    f->released = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    f->requests = g_array_new(FALSE, FALSE, sizeof(int));
    cmp_params_init(&f->params);
    fixture_start(f);
}

static void fixture_teardown(struct fixture *f, gconstpointer data)
{
    cmp_engine_free(f->e);
    g_array_free(f->released, TRUE);
    g_array_free(f->requests, TRUE);
}

static size_t tcp_pkt(struct fixture *f, uint32_t seq, uint32_t ack, uint8_t flags, const char *data)
{
    struct pktgen_tcp t = { .src = GUEST, .dst = CLIENT, .sport = 80, .dport = 40000, .seq = seq,
                            .ack = ack, .flags = flags, .payload = data, .plen = data ? strlen(data) : 0 };

    return pktgen_tcp(f->buf, &t);
}

/* Primary TCP segment; returns its handle. */
static uint64_t p_tcp(struct fixture *f, uint32_t seq, uint32_t ack, uint8_t flags, const char *data)
{
    size_t len = tcp_pkt(f, seq, ack, flags, data);
    uint64_t h = f->next_handle++;

    cmp_primary_add(f->e, h, f->buf, len, false, f->now);
    return h;
}

static void s_tcp(struct fixture *f, uint32_t seq, uint32_t ack, uint8_t flags, const char *data)
{
    size_t len = tcp_pkt(f, seq, ack, flags, data);

    cmp_secondary_add(f->e, cmp_engine_epoch(f->e), f->buf, len, false, f->now);
}

static bool released(struct fixture *f, uint64_t h)
{
    for (guint i = 0; i < f->released->len; i++) {
        if (g_array_index(f->released, uint64_t, i) == h) {
            return true;
        }
    }
    return false;
}

static int last_request(struct fixture *f)
{
    return f->requests->len ? g_array_index(f->requests, int, f->requests->len - 1) : -1;
}

#define A PKT_TCP_ACK
#define AP (PKT_TCP_ACK | PKT_TCP_PSH)

static void test_resegment(struct fixture *f, gconstpointer data)
{
    uint64_t h1 = p_tcp(f, 1000, 500, AP, "hello ");
    uint64_t h2 = p_tcp(f, 1006, 500, AP, "world, ");
    uint64_t h3 = p_tcp(f, 1013, 500, AP, "again");

    g_assert_cmpuint(f->released->len, ==, 0);
    /* The secondary sends the same bytes cut differently. */
    s_tcp(f, 1000, 500, AP, "hel");
    g_assert_cmpuint(f->released->len, ==, 0);
    s_tcp(f, 1003, 500, AP, "lo world");
    g_assert_true(released(f, h1));
    g_assert_false(released(f, h2));
    s_tcp(f, 1011, 500, AP, ", again");
    g_assert_true(released(f, h2) && released(f, h3));
    g_assert_cmpuint(f->requests->len, ==, 0);

    /* Secondary first this time, one big segment, primary in pieces. */
    s_tcp(f, 1018, 500, AP, "abcdefgh");
    g_assert_true(released(f, p_tcp(f, 1018, 500, AP, "abcd")));
    g_assert_true(released(f, p_tcp(f, 1022, 500, AP, "efgh")));
    g_assert_cmpuint(f->released->len, ==, 5);
}

/* A packet released at once is judged on the caller's bytes; one that
 * waits must keep its own copy (NFQUEUE reuses the buffer). */
static void test_held_copy(struct fixture *f, gconstpointer data)
{
    uint64_t h = p_tcp(f, 1000, 500, AP, "held bytes");

    memset(f->buf, 0xa5, sizeof(f->buf));
    s_tcp(f, 1000, 500, AP, "held bytes");
    g_assert_true(released(f, h));
    s_tcp(f, 1010, 500, AP, "at once");
    g_assert_true(released(f, p_tcp(f, 1010, 500, AP, "at once")));
    /* A differing packet that waits is still judged on its own bytes. */
    h = p_tcp(f, 1017, 500, AP, "mine");
    memset(f->buf, 0, sizeof(f->buf));
    s_tcp(f, 1017, 500, AP, "mime");
    g_assert_false(released(f, h));
    g_assert_cmpint(last_request(f), ==, CMP_REASON_PAYLOAD);
}

static void test_ack_gating(struct fixture *f, gconstpointer data)
{
    uint64_t h = p_tcp(f, 1000, 2000, AP, "reply");

    /* Same bytes, but the secondary has acknowledged less of the client's
     * input: releasing would let the client drop data the secondary lacks. */
    s_tcp(f, 1000, 1900, AP, "reply");
    g_assert_false(released(f, h));
    s_tcp(f, 1005, 2000, A, NULL);
    g_assert_true(released(f, h));
    /* A pure ack of the primary is gated the same way. */
    h = p_tcp(f, 1005, 2100, A, NULL);
    g_assert_false(released(f, h));
    s_tcp(f, 1005, 2200, A, NULL);
    g_assert_true(released(f, h));
    g_assert_cmpuint(f->requests->len, ==, 0);
}

static void test_mismatch(struct fixture *f, gconstpointer data)
{
    uint64_t h1 = p_tcp(f, 1000, 1, AP, "same ");
    uint64_t h2 = p_tcp(f, 1005, 1, AP, "primary");
    struct cmp_stats st;

    s_tcp(f, 1000, 1, AP, "same secondary");
    g_assert_true(released(f, h1));
    g_assert_false(released(f, h2));
    g_assert_cmpint(last_request(f), ==, CMP_REASON_PAYLOAD);
    /* Only one request per epoch for the same trouble. */
    p_tcp(f, 1012, 1, AP, "more");
    g_assert_cmpuint(f->requests->len, ==, 1);
    cmp_engine_stats(f->e, &st);
    g_assert_cmpuint(st.mismatches[CMP_REASON_PAYLOAD], ==, 1);
    g_assert_cmpuint(st.queue_depth, ==, 2);

    g_assert_cmpuint(cmp_checkpoint_begin(f->e), ==, 2);
    g_assert_cmpuint(cmp_checkpoint_commit(f->e, f->now), ==, 2);
    g_assert_true(released(f, h2));
    /* Released in arrival order, so one batch verdict covers them. */
    g_assert_cmpuint(g_array_index(f->released, uint64_t, 1), <, g_array_index(f->released, uint64_t, 2));
    g_assert_cmpuint(cmp_engine_epoch(f->e), ==, 1);

    /* New epoch, fresh state: matching goes on. */
    h1 = p_tcp(f, 1016, 1, AP, "next");
    s_tcp(f, 1016, 1, AP, "next");
    g_assert_true(released(f, h1));
}

static void test_mismatch_no_checkpoint(struct fixture *f, gconstpointer data)
{
    uint64_t h;

    f->params.checkpoint_on_mismatch = false;
    fixture_start(f);
    h = p_tcp(f, 1000, 1, AP, "aaaa");
    s_tcp(f, 1000, 1, AP, "bbbb");
    g_assert_false(released(f, h));
    g_assert_cmpuint(f->requests->len, ==, 0);
    /* It still cannot wait forever: the timeout asks. */
    f->now += 3000 * MS;
    g_assert_true(cmp_expire(f->e, f->now));
    g_assert_cmpint(last_request(f), ==, CMP_REASON_TIMEOUT);
    g_assert_false(released(f, h));
}

/* The client acknowledges up to @ack (its input, mirrored). */
static void client_acks(struct fixture *f, uint32_t ack)
{
    uint8_t in[256];
    struct pktgen_tcp t = { .src = CLIENT, .dst = GUEST, .sport = 40000, .dport = 80, .seq = 1,
                            .ack = ack, .flags = A };

    cmp_input_add(f->e, in, pktgen_tcp(in, &t), false);
}

static void test_retransmission(struct fixture *f, gconstpointer data)
{
    uint64_t h;

    g_assert_true(released(f, (s_tcp(f, 1000, 1, AP, "0123456789"), p_tcp(f, 1000, 1, AP, "0123456789"))));
    /* The primary retransmits what was already released: still judged
     * against the secondary's bytes, released again. */
    h = p_tcp(f, 1000, 1, AP, "0123456789");
    g_assert_true(released(f, h));
    /* A secondary retransmission changes nothing. */
    s_tcp(f, 1000, 1, AP, "0123456789");
    /* A bad retransmission is caught. */
    h = p_tcp(f, 1005, 1, AP, "5678X");
    g_assert_false(released(f, h));
    g_assert_cmpint(last_request(f), ==, CMP_REASON_PAYLOAD);
    cmp_checkpoint_commit(f->e, f->now);

    /* Bytes released and then acknowledged by the client: a retransmission
     * of them goes through unjudged, whatever it carries (the client drops
     * what it has), and the secondary's copy is dropped. */
    g_assert_true(released(f, (s_tcp(f, 1000, 1, AP, "0123456789"), p_tcp(f, 1000, 1, AP, "0123456789"))));
    client_acks(f, 1006);
    g_assert_true(released(f, p_tcp(f, 1000, 1, AP, "01234")));
    g_assert_true(released(f, p_tcp(f, 1001, 1, AP, "XXXXX")));
    /* Past the ack it is still judged, against the copy still kept. */
    g_assert_true(released(f, p_tcp(f, 1002, 1, AP, "XXXX6789")));
    h = p_tcp(f, 1004, 1, AP, "XX6X89");
    g_assert_false(released(f, h));
    g_assert_cmpint(last_request(f), ==, CMP_REASON_PAYLOAD);
    cmp_checkpoint_commit(f->e, f->now);

    /* An ack past what was released counts only up to the release: the
     * bytes above are judged as ever. */
    g_assert_true(released(f, (s_tcp(f, 1000, 1, AP, "0123456789"), p_tcp(f, 1000, 1, AP, "01234"))));
    client_acks(f, 1010 + (2u << 20));
    h = p_tcp(f, 1000, 1, AP, "012345678X");
    g_assert_false(released(f, h));
    g_assert_cmpint(last_request(f), ==, CMP_REASON_PAYLOAD);
    cmp_checkpoint_commit(f->e, f->now);

    /* The secondary's bytes below the release and the ack are gone, those
     * above kept: a retransmission of released bytes the client has not
     * acknowledged is judged, and one whose copy was given up for room
     * costs a checkpoint (below, with max_flow_bytes). */
    g_assert_true(released(f, (s_tcp(f, 1000, 1, AP, "0123456789"), p_tcp(f, 1000, 1, AP, "0123456789"))));
    client_acks(f, 1004);
    g_assert_true(released(f, p_tcp(f, 1003, 1, AP, "3456789")));
}

/* Short of room, the secondary's copy of released bytes not yet
 * acknowledged is given up: a retransmission of them cannot be judged. */
static void test_retransmission_no_room(struct fixture *f, gconstpointer data)
{
    g_autofree char *big = g_strnfill(600, 'a');
    uint64_t h;

    f->params.max_flow_bytes = 1000;
    fixture_start(f);
    g_assert_true(released(f, (s_tcp(f, 1000, 1, AP, "0123456789"), p_tcp(f, 1000, 1, AP, "0123456789"))));
    s_tcp(f, 1010, 1, AP, big);   /* over half the room: the released bytes go */
    h = p_tcp(f, 1000, 1, AP, "0123456789");
    g_assert_false(released(f, h));
    g_assert_cmpint(last_request(f), ==, CMP_REASON_HISTORY);
}

static void test_reorder(struct fixture *f, gconstpointer data)
{
    uint64_t h1 = p_tcp(f, 1000, 1, AP, "aaaa");
    uint64_t h2 = p_tcp(f, 1004, 1, AP, "bbbb");

    s_tcp(f, 1008, 1, AP, "cccc");
    s_tcp(f, 1004, 1, AP, "bbbb");
    /* h2 matched, but waits behind h1: a flow is released in order. */
    g_assert_cmpuint(f->released->len, ==, 0);
    s_tcp(f, 1000, 1, AP, "aaaa");
    g_assert_cmpuint(f->released->len, ==, 2);
    g_assert_cmpuint(g_array_index(f->released, uint64_t, 0), ==, h1);
    g_assert_cmpuint(g_array_index(f->released, uint64_t, 1), ==, h2);
    /* The primary's own reordering. */
    h2 = p_tcp(f, 1010, 1, AP, "cc");
    h1 = p_tcp(f, 1008, 1, AP, "cc");
    g_assert_true(released(f, h1) && released(f, h2));
}

static void test_syn_fin_rst(struct fixture *f, gconstpointer data)
{
    uint64_t h;

    /* SYN-ACK: the secondary's ISN differs until the rewriter learns it. */
    h = p_tcp(f, 5000, 101, PKT_TCP_SYN | A, NULL);
    s_tcp(f, 9999, 101, PKT_TCP_SYN, NULL);   /* a SYN is not a SYN-ACK */
    g_assert_false(released(f, h));
    s_tcp(f, 9999, 101, PKT_TCP_SYN | A, NULL);
    g_assert_true(released(f, h));
    /* Data then FIN, the FIN in its own segment on one side only. */
    h = p_tcp(f, 5001, 101, AP | PKT_TCP_FIN, "bye");
    s_tcp(f, 5001, 101, AP, "bye");
    g_assert_false(released(f, h));
    s_tcp(f, 5004, 101, A | PKT_TCP_FIN, NULL);
    g_assert_true(released(f, h));
    g_assert_cmpuint(f->requests->len, ==, 0);
    h = p_tcp(f, 5005, 101, PKT_TCP_RST, NULL);
    g_assert_false(released(f, h));
    s_tcp(f, 5005, 0, PKT_TCP_RST, NULL);
    g_assert_true(released(f, h));
}

static void test_fin_mismatch(struct fixture *f, gconstpointer data)
{
    uint64_t h = p_tcp(f, 5001, 101, A | PKT_TCP_FIN, NULL);

    s_tcp(f, 5001, 101, AP | PKT_TCP_FIN, "x");
    g_assert_false(released(f, h));
    g_assert_cmpint(last_request(f), ==, CMP_REASON_FLAGS);
}

static void test_wraparound(struct fixture *f, gconstpointer data)
{
    uint32_t seq = 0xfffffffau;
    uint64_t h1 = p_tcp(f, seq, 0xfffffff0u, AP, "0123456789");
    uint64_t h2 = p_tcp(f, seq + 10, 0xfffffff0u, AP, "abc");

    s_tcp(f, seq + 4, 5, AP, "456789ab");
    g_assert_cmpuint(f->released->len, ==, 0);
    s_tcp(f, seq, 5, AP, "0123");
    g_assert_true(released(f, h1));
    g_assert_false(released(f, h2));
    s_tcp(f, seq + 12, 5, AP, "c");
    g_assert_true(released(f, h2));
    g_assert_cmpuint(f->requests->len, ==, 0);
}

static void test_timeout(struct fixture *f, gconstpointer data)
{
    uint64_t h = p_tcp(f, 1, 1, AP, "lonely");
    struct cmp_stats st;

    f->now += 2999 * MS;
    g_assert_false(cmp_expire(f->e, f->now));
    g_assert_cmpuint(f->requests->len, ==, 0);
    f->now += 1 * MS;
    g_assert_true(cmp_expire(f->e, f->now));
    g_assert_cmpint(last_request(f), ==, CMP_REASON_TIMEOUT);
    g_assert_false(released(f, h));
    cmp_checkpoint_commit(f->e, f->now);
    g_assert_true(released(f, h));
    cmp_engine_stats(f->e, &st);
    /* Held 3 s: bucket of [2^21, 2^22) us. */
    g_assert_cmpuint(st.hold_hist[22], ==, 1);
    g_assert_cmpuint(st.queue_depth, ==, 0);
}

static void test_stale_epoch(struct fixture *f, gconstpointer data)
{
    size_t len;
    uint64_t h;
    struct cmp_stats st;

    cmp_checkpoint_commit(f->e, f->now);   /* epoch 1 */
    h = p_tcp(f, 1, 1, AP, "data");
    len = tcp_pkt(f, 1, 1, AP, "data");
    /* In flight across the checkpoint: from the old state. */
    cmp_secondary_add(f->e, 0, f->buf, len, false, f->now);
    g_assert_false(released(f, h));
    /* From the next epoch: kept until our commit, then compared. */
    len = tcp_pkt(f, 1, 1, AP, "next");
    cmp_secondary_add(f->e, 2, f->buf, len, false, f->now);
    g_assert_false(released(f, h));
    cmp_checkpoint_commit(f->e, f->now);
    g_assert_true(released(f, h));
    h = p_tcp(f, 1, 1, AP, "next");
    g_assert_true(released(f, h));
    cmp_engine_stats(f->e, &st);
    g_assert_cmpuint(st.secondary_stale, ==, 1);
    g_assert_cmpuint(st.epoch, ==, 2);
}

static void test_overflow(struct fixture *f, gconstpointer data)
{
    struct pktgen_tcp t = { .src = GUEST, .dst = CLIENT, .dport = 40000, .seq = 1, .ack = 1,
                            .flags = AP, .payload = "x", .plen = 1 };
    uint64_t h;
    size_t len;
    struct cmp_stats st;

    f->params.max_flows = 2;
    f->params.max_queue_size = 3;
    fixture_start(f);
    for (uint16_t port = 1; port <= 3; port++) {
        t.sport = port;
        len = pktgen_tcp(f->buf, &t);
        cmp_primary_add(f->e, port, f->buf, len, false, f->now);
    }
    g_assert_cmpint(last_request(f), ==, CMP_REASON_TABLE_FULL);
    cmp_engine_stats(f->e, &st);
    g_assert_cmpuint(st.flows, ==, 2);
    g_assert_cmpuint(st.queue_depth, ==, 3);
    /* Queue pressure is counted too, and nothing is dropped. */
    h = p_tcp(f, 100, 1, AP, "y");
    cmp_engine_stats(f->e, &st);
    g_assert_cmpuint(st.mismatches[CMP_REASON_QUEUE_FULL], ==, 1);
    g_assert_cmpuint(cmp_checkpoint_commit(f->e, f->now), ==, 4);
    g_assert_true(released(f, 3) && released(f, h));

    /* The secondary running far ahead on one flow. */
    f->params.max_flows = 10;
    f->params.max_flow_bytes = 100;
    fixture_start(f);
    s_tcp(f, 1, 1, AP, "0123456789012345678901234567890123456789012345678901234567890123456789");
    s_tcp(f, 71, 1, AP, "0123456789012345678901234567890123456789");
    g_assert_cmpint(last_request(f), ==, CMP_REASON_OVERFLOW);
}

static void test_other_protocols(struct fixture *f, gconstpointer data)
{
    size_t len;

    /* UDP, packet by packet. */
    len = pktgen_udp(f->buf, GUEST, CLIENT, 53, 5353, "answer", 6);
    cmp_primary_add(f->e, 1, f->buf, len, false, f->now);
    cmp_secondary_add(f->e, 0, f->buf, len, false, f->now);
    g_assert_true(released(f, 1));
    /* ICMPv6 over IPv6, the secondary's copy inside an Ethernet frame. */
    len = pktgen_icmp_echo(f->buf, "fd00::2", "fd00::9", 7, 1, "ping", 4);
    cmp_primary_add(f->e, 2, f->buf, len, false, f->now);
    len = pktgen_eth_wrap(f->buf, len);
    cmp_secondary_add(f->e, 0, f->buf, len, true, f->now);
    g_assert_true(released(f, 2));
    /* ARP is compared too. */
    len = pktgen_arp(f->buf, 2, GUEST, CLIENT);
    cmp_primary_add(f->e, 3, f->buf, len, true, f->now);
    g_assert_false(released(f, 3));
    cmp_secondary_add(f->e, 0, f->buf, len, true, f->now);
    g_assert_true(released(f, 3));
    g_assert_cmpuint(f->requests->len, ==, 0);
    /* A different UDP answer is a mismatch. */
    len = pktgen_udp(f->buf, GUEST, CLIENT, 53, 5353, "answer", 6);
    cmp_primary_add(f->e, 4, f->buf, len, false, f->now);
    len = pktgen_udp(f->buf, GUEST, CLIENT, 53, 5353, "answex", 6);
    cmp_secondary_add(f->e, 0, f->buf, len, false, f->now);
    g_assert_false(released(f, 4));
    g_assert_cmpint(last_request(f), ==, CMP_REASON_PAYLOAD);
    /* IPv6 TCP goes through the byte-stream compare. */
    {
        struct pktgen_tcp t = { .src = "fd00::2", .dst = "fd00::9", .sport = 22, .dport = 999, .seq = 7,
                                .ack = 1, .flags = AP, .payload = "ssh", .plen = 3 };

        len = pktgen_tcp(f->buf, &t);
        cmp_primary_add(f->e, 5, f->buf, len, false, f->now);
        cmp_secondary_add(f->e, 0, f->buf, len, false, f->now);
        g_assert_true(released(f, 5));
    }
}

static void test_passthrough(struct fixture *f, gconstpointer data)
{
    size_t len;
    struct cmp_stats st;

    f->params.passthrough_ports[0] = 123;
    f->params.n_passthrough = 1;
    fixture_start(f);
    len = pktgen_udp(f->buf, GUEST, CLIENT, 123, 5000, "time", 4);
    cmp_primary_add(f->e, 1, f->buf, len, false, f->now);
    g_assert_true(released(f, 1));
    /* Other ports are still held. */
    len = pktgen_udp(f->buf, GUEST, CLIENT, 124, 5000, "time", 4);
    cmp_primary_add(f->e, 2, f->buf, len, false, f->now);
    g_assert_false(released(f, 2));
    cmp_engine_stats(f->e, &st);
    g_assert_cmpuint(st.passthrough, ==, 1);
}

static void test_unparseable(struct fixture *f, gconstpointer data)
{
    size_t len = tcp_pkt(f, 1, 1, AP, "data");

    /* Truncated inside the TCP header: held, never released uncompared. */
    cmp_primary_add(f->e, 1, f->buf, 30, false, f->now);
    g_assert_false(released(f, 1));
    g_assert_cmpint(last_request(f), ==, CMP_REASON_UNPARSEABLE);
    /* The same truncation from the secondary is counted, not fatal. */
    cmp_secondary_add(f->e, 0, f->buf, 30, false, f->now);
    cmp_secondary_add(f->e, 0, f->buf, len, true, f->now);   /* not an Ethernet frame */
    cmp_checkpoint_commit(f->e, f->now);
    g_assert_true(released(f, 1));
}

static void test_failover(struct fixture *f, gconstpointer data)
{
    uint64_t h1 = p_tcp(f, 1, 1, AP, "one");
    uint64_t h2;

    g_assert_cmpuint(cmp_failover(f->e, f->now), ==, 1);
    g_assert_true(released(f, h1));
    h2 = p_tcp(f, 4, 1, AP, "two");
    g_assert_true(released(f, h2));
    g_assert_true(cmp_engine_failed_over(f->e));
    /* No checkpoint requests any more: there is no secondary. */
    f->now += 10000 * MS;
    g_assert_false(cmp_expire(f->e, f->now));
}

/* Before COLO begins (no checkpoint-begin yet) nothing is held: the
 * guest is not protected, its output passes as it comes. The first
 * checkpoint-begin arms the engine, without a new epoch. */
static void test_unarmed_passes(struct fixture *f, gconstpointer data)
{
    struct cmp_callbacks cb = { on_release, on_checkpoint, f };
    struct cmp_stats st;
    uint64_t h1, h2;

    cmp_engine_free(f->e);
    f->e = cmp_engine_new(&f->params, &cb);
    g_assert_false(cmp_engine_armed(f->e));
    h1 = p_tcp(f, 1, 1, AP, "before");
    g_assert_true(released(f, h1));
    f->now += 10000 * MS;
    g_assert_false(cmp_expire(f->e, f->now));
    g_assert_cmpuint(cmp_checkpoint_begin(f->e), ==, 0);
    g_assert_true(cmp_engine_armed(f->e));
    g_assert_cmpuint(cmp_engine_epoch(f->e), ==, 0);
    h2 = p_tcp(f, 7, 1, AP, "after");
    g_assert_false(released(f, h2));
    s_tcp(f, 7, 1, AP, "after");
    g_assert_true(released(f, h2));
    cmp_engine_stats(f->e, &st);
    g_assert_cmpuint(st.unprotected, ==, 1);
    g_assert_cmpuint(st.compared, ==, 1);
    g_assert_cmpuint(f->requests->len, ==, 0);
}

static void take_one(void *opaque, const uint8_t *ip, size_t len)
{
    g_ptr_array_add(opaque, g_bytes_new(ip, len));
}

/* A primary whose guest died sends the secondary's unmatched datagrams:
 * whole (from the IP header, an Ethernet frame's too), in order, once;
 * not a matched one, not TCP. */
static void test_take_datagrams(struct fixture *f, gconstpointer data)
{
    g_autoptr(GPtrArray) got = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    uint8_t first[128], second[128];
    size_t len, flen, slen;
    unsigned int withheld;

    /* Matched: not given. */
    len = pktgen_udp(f->buf, GUEST, CLIENT, 53, 5353, "matched", 7);
    cmp_primary_add(f->e, 1, f->buf, len, false, f->now);
    cmp_secondary_add(f->e, 0, f->buf, len, false, f->now);
    g_assert_true(released(f, 1));
    /* Two unmatched answers on one flow, one in an Ethernet frame. */
    flen = pktgen_udp(first, GUEST, CLIENT, 53, 5353, "one", 3);
    cmp_secondary_add(f->e, 0, first, flen, false, f->now);
    slen = pktgen_udp(second, GUEST, CLIENT, 53, 5353, "two!", 4);
    memcpy(f->buf, second, slen);
    len = pktgen_eth_wrap(f->buf, slen);
    cmp_secondary_add(f->e, 0, f->buf, len, true, f->now);
    /* An unmatched ICMP echo reply, and TCP bytes. */
    len = pktgen_icmp_echo(f->buf, "fd00::2", "fd00::9", 7, 1, "ping", 4);
    cmp_secondary_add(f->e, 0, f->buf, len, false, f->now);
    s_tcp(f, 7, 1, AP, "tcp");

    g_assert_cmpuint(cmp_take_datagrams(f->e, take_one, got, &withheld), ==, 3);
    g_assert_cmpuint(withheld, ==, 0);
    g_assert_cmpuint(got->len, ==, 3);
    for (guint i = 0, seen = 0; i < got->len; i++) {
        gsize n;
        const uint8_t *ip = g_bytes_get_data(got->pdata[i], &n);

        if ((ip[0] >> 4) == 6) {
            continue;
        }
        /* The flow's order kept. */
        if (seen++ == 0) {
            g_assert_cmpmem(ip, n, first, flen);
        } else {
            g_assert_cmpmem(ip, n, second, slen);
        }
    }
    g_assert_cmpuint(cmp_take_datagrams(f->e, take_one, got, &withheld), ==, 0);
    /* Given means forgotten: a late primary twin no longer matches. */
    len = pktgen_udp(f->buf, GUEST, CLIENT, 53, 5353, "one", 3);
    cmp_primary_add(f->e, 2, f->buf, len, false, f->now);
    g_assert_false(released(f, 2));
}

/* A second answer of the secondary's guest to input ours answered already
 * (it took the input again after loading a checkpoint that held it) is
 * not given: ours sent the same datagram in this epoch or the last. One
 * our guest sent two epochs back no longer counts. */
static void test_take_datagrams_answered(struct fixture *f, gconstpointer data)
{
    g_autoptr(GPtrArray) got = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    struct cmp_stats st;
    unsigned int withheld;
    size_t len;

    /* Ours answered "seq 1" and "seq 2" in epoch 0, released by the commit. */
    len = pktgen_udp(f->buf, GUEST, CLIENT, 7, 4000, "seq 1", 5);
    cmp_primary_add(f->e, 1, f->buf, len, false, f->now);
    len = pktgen_udp(f->buf, GUEST, CLIENT, 7, 4000, "seq 2", 5);
    cmp_primary_add(f->e, 2, f->buf, len, false, f->now);
    g_assert_cmpuint(cmp_checkpoint_commit(f->e, f->now), ==, 2);
    /* Epoch 1: the secondary answers "seq 1" again; "seq 3" only it. */
    len = pktgen_udp(f->buf, GUEST, CLIENT, 7, 4000, "seq 1", 5);
    cmp_secondary_add(f->e, 1, f->buf, len, false, f->now);
    len = pktgen_udp(f->buf, GUEST, CLIENT, 7, 4000, "seq 3", 5);
    cmp_secondary_add(f->e, 1, f->buf, len, false, f->now);
    /* The same bytes on another flow are another answer. */
    len = pktgen_udp(f->buf, GUEST, CLIENT, 7, 4001, "seq 1", 5);
    cmp_secondary_add(f->e, 1, f->buf, len, false, f->now);
    g_assert_cmpuint(cmp_take_datagrams(f->e, take_one, got, &withheld), ==, 2);
    g_assert_cmpuint(withheld, ==, 1);
    for (guint i = 0; i < got->len; i++) {
        gsize n;
        const uint8_t *ip = g_bytes_get_data(got->pdata[i], &n);

        g_assert_cmpuint(n, ==, len);
        g_assert_true(memcmp(ip + n - 5, "seq 3", 5) == 0 || pkt_get16(ip + 22) == 4001);
    }
    cmp_engine_stats(f->e, &st);
    g_assert_cmpuint(st.secondary_answered_already, ==, 1);

    /* Two epochs on, "seq 2" is forgotten: a copy of it is given. */
    cmp_checkpoint_commit(f->e, f->now);
    len = pktgen_udp(f->buf, GUEST, CLIENT, 7, 4000, "seq 2", 5);
    cmp_secondary_add(f->e, 2, f->buf, len, false, f->now);
    g_assert_cmpuint(cmp_take_datagrams(f->e, take_one, got, &withheld), ==, 1);
    g_assert_cmpuint(withheld, ==, 0);
    cmp_engine_stats(f->e, &st);
    g_assert_cmpuint(st.secondary_answered_already, ==, 1);

    /* A second answer left at a commit is counted, nothing more. */
    len = pktgen_udp(f->buf, GUEST, CLIENT, 7, 4000, "seq 9", 5);
    cmp_primary_add(f->e, 9, f->buf, len, false, f->now);
    cmp_secondary_add(f->e, 2, f->buf, len, false, f->now);
    g_assert_true(released(f, 9));
    cmp_secondary_add(f->e, 2, f->buf, len, false, f->now);
    len = pktgen_udp(f->buf, GUEST, CLIENT, 7, 4000, "seq 10", 6);
    cmp_secondary_add(f->e, 2, f->buf, len, false, f->now);
    g_assert_cmpuint(cmp_checkpoint_commit(f->e, f->now), ==, 0);
    cmp_engine_stats(f->e, &st);
    g_assert_cmpuint(st.secondary_repeats, ==, 1);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add("/compare/" name, struct fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("resegment", test_resegment);
    ADD("held-copy", test_held_copy);
    ADD("ack-gating", test_ack_gating);
    ADD("mismatch", test_mismatch);
    ADD("mismatch-no-checkpoint", test_mismatch_no_checkpoint);
    ADD("retransmission", test_retransmission);
    ADD("retransmission-no-room", test_retransmission_no_room);
    ADD("reorder", test_reorder);
    ADD("syn-fin-rst", test_syn_fin_rst);
    ADD("fin-mismatch", test_fin_mismatch);
    ADD("wraparound", test_wraparound);
    ADD("timeout", test_timeout);
    ADD("stale-epoch", test_stale_epoch);
    ADD("overflow", test_overflow);
    ADD("other-protocols", test_other_protocols);
    ADD("passthrough", test_passthrough);
    ADD("unparseable", test_unparseable);
    ADD("failover", test_failover);
    ADD("unarmed-passes", test_unarmed_passes);
    ADD("take-datagrams", test_take_datagrams);
    ADD("take-datagrams-answered", test_take_datagrams_answered);
    return g_test_run();
}
