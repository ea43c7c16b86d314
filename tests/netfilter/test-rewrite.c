/* Unit tests of the secondary's TCP rewriter, and of carrying its flows
 * to a primary (export, JSON, import). */
#include "config.h"

#include "carry.h"
#include "packet.h"
#include "pktgen.h"
#include "rewrite.h"

#include <glib.h>
#include <string.h>

#define GUEST "10.0.0.2"
#define CLIENT "10.0.0.9"

static uint8_t buf[4096];

static const uint8_t *ts_opt(uint32_t tsval, uint32_t tsecr)
{
    static uint8_t o[12];

    o[0] = 1; o[1] = 1; o[2] = 8; o[3] = 10;
    pkt_put32(o + 4, tsval);
    pkt_put32(o + 8, tsecr);
    return o;
}

/* A packet from the guest (@out) or to it. */
static size_t mk(bool out, uint32_t seq, uint32_t ack, uint8_t flags, const uint8_t *opts, size_t optlen,
                 const char *data)
{
    struct pktgen_tcp t = { .src = out ? GUEST : CLIENT, .dst = out ? CLIENT : GUEST,
                            .sport = out ? 80 : 40000, .dport = out ? 40000 : 80, .seq = seq, .ack = ack,
                            .flags = flags, .opts = opts, .optlen = optlen, .payload = data,
                            .plen = data ? strlen(data) : 0 };

    return pktgen_tcp(buf, &t);
}

static uint32_t tcp32(size_t off)
{
    return pkt_get32(buf + 20 + off);
}

static void test_client_opened(void)
{
    RwTable *t = rw_table_new(16);
    const uint32_t p_isn = 7000000, s_isn = 123456, c_isn = 900;
    uint8_t sack[12] = { 1, 1, 5, 10 };
    struct rw_stats st;
    size_t len;

    /* The mirrored SYN: nothing to do yet. */
    len = mk(false, c_isn, 0, PKT_TCP_SYN, ts_opt(50, 0), 12, NULL);
    g_assert_cmpint(rw_input(t, buf, len, false, false), ==, PKT_OK);
    g_assert_cmpuint(tcp32(8), ==, 0);
    /* The secondary's SYN-ACK names its ISN and timestamp clock. */
    len = mk(true, s_isn, c_isn + 1, PKT_TCP_SYN | PKT_TCP_ACK, ts_opt(1000, 50), 12, NULL);
    g_assert_cmpint(rw_output(t, buf, len, false, false), ==, PKT_OK);
    g_assert_cmpuint(tcp32(4), ==, s_isn);
    /* The client's ACK of the primary's SYN-ACK names the primary's. */
    len = mk(false, c_isn + 1, p_isn + 1, PKT_TCP_ACK, ts_opt(51, 5000), 12, NULL);
    g_assert_cmpint(rw_input(t, buf, len, false, false), ==, PKT_OK);
    g_assert_cmpuint(tcp32(8), ==, s_isn + 1);
    g_assert_cmpuint(tcp32(20 + 8), ==, 1000);   /* TSecr in the secondary's clock */
    g_assert_true(pktgen_csum_ok(buf, len));
    /* Secondary data goes out in the primary's numbering and clock. */
    len = mk(true, s_isn + 1, c_isn + 1, PKT_TCP_ACK | PKT_TCP_PSH, ts_opt(1010, 51), 12, "hello");
    rw_output(t, buf, len, false, false);
    g_assert_cmpuint(tcp32(4), ==, p_isn + 1);
    g_assert_cmpuint(tcp32(20 + 4), ==, 5010);
    g_assert_true(pktgen_csum_ok(buf, len));
    /* SACK blocks from the client move back into the secondary's space. */
    pkt_put32(sack + 4, p_isn + 100);
    pkt_put32(sack + 8, p_isn + 200);
    len = mk(false, c_isn + 1, p_isn + 6, PKT_TCP_ACK, sack, 12, NULL);
    rw_input(t, buf, len, false, false);
    g_assert_cmpuint(tcp32(8), ==, s_isn + 6);
    g_assert_cmpuint(tcp32(20 + 4), ==, s_isn + 100);
    g_assert_cmpuint(tcp32(20 + 8), ==, s_isn + 200);
    g_assert_true(pktgen_csum_ok(buf, len));
    rw_table_stats(t, &st);
    g_assert_cmpuint(st.offsets_learned, ==, 1);
    g_assert_cmpuint(st.flows, ==, 1);
    rw_table_free(t);
}

static void test_guest_opened_wrap(void)
{
    RwTable *t = rw_table_new(16);
    const uint32_t s_isn = 0xfffffff0u, p_isn = 0x10;   /* offset wraps */
    size_t len;

    len = mk(true, s_isn, 0, PKT_TCP_SYN, NULL, 0, NULL);
    rw_output(t, buf, len, false, false);
    g_assert_cmpuint(tcp32(4), ==, s_isn);
    /* The server's SYN-ACK to the primary's SYN, mirrored. */
    len = mk(false, 4444, p_isn + 1, PKT_TCP_SYN | PKT_TCP_ACK, NULL, 0, NULL);
    rw_input(t, buf, len, false, false);
    g_assert_cmpuint(tcp32(8), ==, s_isn + 1);
    g_assert_true(pktgen_csum_ok(buf, len));
    /* Data crossing 2^32 on the secondary's side. */
    len = mk(true, s_isn + 1 + 20, 4445, PKT_TCP_ACK, NULL, 0, "x");
    rw_output(t, buf, len, false, false);
    g_assert_cmpuint(tcp32(4), ==, p_isn + 1 + 20);
    g_assert_true(pktgen_csum_ok(buf, len));
    rw_table_free(t);
}

static void test_reset_takeover_partial(void)
{
    RwTable *t = rw_table_new(1);
    struct rw_stats st;
    uint8_t csum[2];
    size_t len;

    len = mk(true, 100, 0, PKT_TCP_SYN, NULL, 0, NULL);
    rw_output(t, buf, len, false, false);
    len = mk(false, 1, 1001, PKT_TCP_SYN | PKT_TCP_ACK, NULL, 0, NULL);
    rw_input(t, buf, len, false, false);
    /* Checksum left to the NIC: the field must stay as it was. */
    len = mk(true, 101, 2, PKT_TCP_ACK, NULL, 0, NULL);
    memcpy(csum, buf + 36, 2);
    rw_output(t, buf, len, false, true);
    g_assert_cmpuint(tcp32(4), ==, 1001);
    g_assert_cmpmem(csum, 2, buf + 36, 2);
    /* A second flow does not fit: counted, left alone. */
    {
        struct pktgen_tcp p = { .src = GUEST, .dst = CLIENT, .sport = 81, .dport = 1, .seq = 5,
                                .flags = PKT_TCP_SYN };

        len = pktgen_tcp(buf, &p);
        g_assert_cmpint(rw_output(t, buf, len, false, false), ==, PKT_OK);
    }
    rw_table_stats(t, &st);
    g_assert_cmpuint(st.table_full, ==, 1);
    /* Takeover keeps the flow with an offset. */
    rw_table_takeover(t);
    rw_table_stats(t, &st);
    g_assert_cmpuint(st.flows, ==, 1);
    /* A checkpoint makes every offset zero. */
    rw_table_reset(t);
    len = mk(true, 101, 2, PKT_TCP_ACK, NULL, 0, NULL);
    rw_output(t, buf, len, false, false);
    g_assert_cmpuint(tcp32(4), ==, 101);
    rw_table_free(t);
}

static void test_ipv6_eth(void)
{
    RwTable *t = rw_table_new(4);
    struct pktgen_tcp p = { .src = "fd00::2", .dst = "fd00::9", .sport = 80, .dport = 5, .seq = 10,
                            .flags = PKT_TCP_SYN };
    size_t len = pktgen_tcp(buf, &p);

    len = pktgen_eth_wrap(buf, len);
    rw_output(t, buf, len, true, false);
    p = (struct pktgen_tcp){ .src = "fd00::9", .dst = "fd00::2", .sport = 5, .dport = 80, .seq = 1,
                             .ack = 51, .flags = PKT_TCP_SYN | PKT_TCP_ACK };
    len = pktgen_eth_wrap(buf, pktgen_tcp(buf, &p));
    rw_input(t, buf, len, true, false);
    g_assert_cmpuint(pkt_get32(buf + 14 + 40 + 8), ==, 11);
    g_assert_true(pktgen_csum_ok(buf + 14, len - 14));
    /* Garbage is reported, not rewritten. */
    g_assert_cmpint(rw_input(t, buf, 20, true, false), !=, PKT_OK);
    rw_table_free(t);
}

/* A client-opened flow with offsets learned (as in test_client_opened),
 * another whose offset is zero; returns the table after a takeover. */
static RwTable *learned_table(void)
{
    RwTable *t = rw_table_new(16);
    struct pktgen_tcp z = { .src = GUEST, .dst = CLIENT, .sport = 81, .dport = 41000, .seq = 5,
                            .flags = PKT_TCP_SYN };
    size_t len;

    len = mk(true, 123456, 901, PKT_TCP_SYN | PKT_TCP_ACK, ts_opt(1000, 50), 12, NULL);
    rw_output(t, buf, len, false, false);
    len = mk(false, 901, 7000001, PKT_TCP_ACK, ts_opt(51, 5000), 12, NULL);
    rw_input(t, buf, len, false, false);
    /* Same ISN on both sides: nothing to carry. */
    len = pktgen_tcp(buf, &z);
    rw_output(t, buf, len, false, false);
    z = (struct pktgen_tcp){ .src = CLIENT, .dst = GUEST, .sport = 41000, .dport = 81, .seq = 1, .ack = 6,
                             .flags = PKT_TCP_SYN | PKT_TCP_ACK };
    len = pktgen_tcp(buf, &z);
    rw_input(t, buf, len, false, false);
    rw_table_takeover(t);
    return t;
}

static GArray *json_round_trip(const GArray *flows)
{
    g_autoptr(JsonNode) n = carry_to_json(flows);
    g_autofree char *text = json_to_string(n, FALSE);
    g_autoptr(GError) err = NULL;
    GArray *back = carry_parse(text, strlen(text), &err);

    g_assert_no_error(err);
    return back;
}

static void test_carry_round_trip(void)
{
    RwTable *t = learned_table(), *carried = rw_table_new(16);
    g_autoptr(GArray) flows = rw_table_export(t);
    g_autoptr(GArray) parsed = NULL, again = NULL;
    g_autoptr(GError) err = NULL;
    const struct rw_carried *c;
    uint8_t sack[12] = { 1, 1, 5, 10 };
    struct rw_stats st;
    size_t len;

    g_assert_cmpuint(flows->len, ==, 1);
    c = &g_array_index(flows, struct rw_carried, 0);
    g_assert_cmpuint(c->offset, ==, 7000000 - 123456);
    g_assert_true(c->ts_valid);
    g_assert_cmpuint(c->ts_offset, ==, 4000);
    g_assert_cmpuint(c->key.sport, ==, 80);
    parsed = json_round_trip(flows);
    g_assert_cmpmem(parsed->data, parsed->len * sizeof(*c), flows->data, flows->len * sizeof(*c));
    g_assert_true(rw_table_import(carried, (struct rw_carried *)(void *)parsed->data, parsed->len, &err));
    g_assert_no_error(err);
    again = rw_table_export(carried);
    g_assert_cmpmem(again->data, again->len * sizeof(*c), flows->data, flows->len * sizeof(*c));
    /* The imported table shifts exactly as the one it came from. */
    len = mk(true, 123457, 901, PKT_TCP_ACK | PKT_TCP_PSH, ts_opt(1010, 51), 12, "hello");
    rw_output(carried, buf, len, false, false);
    g_assert_cmpuint(tcp32(4), ==, 7000001);
    g_assert_cmpuint(tcp32(20 + 4), ==, 5010);
    g_assert_true(pktgen_csum_ok(buf, len));
    pkt_put32(sack + 4, 7000100);
    pkt_put32(sack + 8, 7000200);
    len = mk(false, 901, 7000006, PKT_TCP_ACK, sack, 12, NULL);
    rw_input(carried, buf, len, false, false);
    g_assert_cmpuint(tcp32(8), ==, 123462);
    g_assert_cmpuint(tcp32(20 + 4), ==, 123556);
    g_assert_cmpuint(tcp32(20 + 8), ==, 123656);
    g_assert_true(pktgen_csum_ok(buf, len));
    len = mk(false, 901, 7000006, PKT_TCP_ACK, ts_opt(52, 5010), 12, NULL);
    rw_input(carried, buf, len, false, false);
    g_assert_cmpuint(tcp32(20 + 8), ==, 1010);
    /* It learns no new flow, and refuses a second import of the same. */
    {
        struct pktgen_tcp p = { .src = GUEST, .dst = CLIENT, .sport = 82, .dport = 1, .seq = 5,
                                .flags = PKT_TCP_SYN };

        len = pktgen_tcp(buf, &p);
        rw_output(carried, buf, len, false, false);
    }
    rw_table_stats(carried, &st);
    g_assert_cmpuint(st.flows, ==, 1);
    g_assert_false(rw_table_import(carried, c, 1, &err));
    g_assert_nonnull(err);
    rw_table_free(t);
    rw_table_free(carried);
}

/* A secondary of a primary with carried flows (its FRAME_CARRY): at its
 * takeover those flows join its own table, which still learns; a flow it
 * already has keeps its own offset, and the table's size holds. */
static void test_carry_into_takeover(void)
{
    RwTable *from = learned_table(), *t = rw_table_new(2);
    g_autoptr(GArray) flows = rw_table_export(from);
    struct rw_carried more[2];
    struct rw_stats st;
    uint32_t off;
    size_t len;

    g_assert_cmpuint(flows->len, ==, 1);
    /* Our own flow since the last checkpoint: learned as usual. */
    {
        struct pktgen_tcp p = { .src = GUEST, .dst = CLIENT, .sport = 90, .dport = 40000, .seq = 500,
                                .flags = PKT_TCP_SYN };

        len = pktgen_tcp(buf, &p);
        rw_output(t, buf, len, false, false);
        p = (struct pktgen_tcp){ .src = CLIENT, .dst = GUEST, .sport = 40000, .dport = 90, .seq = 1, .ack = 601,
                                 .flags = PKT_TCP_SYN | PKT_TCP_ACK };
        len = pktgen_tcp(buf, &p);
        rw_input(t, buf, len, false, false);
    }
    rw_table_takeover(t);
    g_assert_cmpuint(rw_table_add_carried(t, (struct rw_carried *)(void *)flows->data, flows->len), ==, 1);
    g_assert_true(rw_table_offset(t, &g_array_index(flows, struct rw_carried, 0).key, &off));
    g_assert_cmpuint(off, ==, 7000000 - 123456);
    /* The carried flow is shifted like on the primary that carried it. */
    len = mk(true, 123457, 901, PKT_TCP_ACK | PKT_TCP_PSH, ts_opt(1010, 51), 12, "hello");
    rw_output(t, buf, len, false, false);
    g_assert_cmpuint(tcp32(4), ==, 7000001);
    g_assert_cmpuint(tcp32(20 + 4), ==, 5010);
    g_assert_true(pktgen_csum_ok(buf, len));
    len = mk(false, 901, 7000006, PKT_TCP_ACK, NULL, 0, NULL);
    rw_input(t, buf, len, false, false);
    g_assert_cmpuint(tcp32(8), ==, 123462);
    /* Again: nothing new; and a full table takes no more. */
    g_assert_cmpuint(rw_table_add_carried(t, (struct rw_carried *)(void *)flows->data, flows->len), ==, 0);
    more[0] = g_array_index(flows, struct rw_carried, 0);
    more[0].key.sport = 91;
    more[1] = more[0];
    more[1].key.sport = 92;
    g_assert_cmpuint(rw_table_add_carried(t, more, 2), ==, 0);
    rw_table_stats(t, &st);
    g_assert_cmpuint(st.flows, ==, 2);
    rw_table_free(from);
    rw_table_free(t);
}

static void test_carry_ipv6_wrap(void)
{
    struct rw_carried c[2];
    g_autoptr(GArray) flows = g_array_new(FALSE, TRUE, sizeof(struct rw_carried));
    g_autoptr(GArray) back = NULL;
    RwTable *t = rw_table_new(1);
    g_autoptr(GError) err = NULL;

    memset(c, 0, sizeof(c));
    c[0].key.proto = 6;
    c[0].key.family = 6;
    c[0].key.sport = 65535;
    c[0].key.dport = 1;
    c[0].key.src[0] = 0xfd;
    c[0].key.src[15] = 2;
    c[0].key.dst[0] = 0xfd;
    c[0].key.dst[15] = 9;
    c[0].offset = UINT32_MAX;
    c[1] = c[0];
    c[1].key.dport = 2;
    c[1].offset = 0;
    c[1].ts_valid = true;
    c[1].ts_offset = UINT32_MAX;
    g_array_append_vals(flows, c, 2);
    back = json_round_trip(flows);
    g_assert_cmpmem(back->data, back->len * sizeof(c[0]), c, sizeof(c));
    /* Two flows do not fit a table of one: nothing is loaded. */
    g_assert_false(rw_table_import(t, c, 2, &err));
    g_assert_nonnull(err);
    g_clear_error(&err);
    c[0].key.proto = 17;
    g_assert_false(rw_table_import(t, c, 1, &err));
    g_assert_nonnull(err);
    rw_table_free(t);
}

static void test_carry_bad_input(void)
{
    static const char *const bad[] = {
        "",
        "{",
        "[]",
        "{\"flows\": {}}",
        "{\"flows\": [], \"more\": 1}",
        "{\"flows\": [1]}",
        "{\"flows\": [{}]}",
        "{\"flows\": [{\"src\": \"10.0.0.300\", \"sport\": 80, \"dst\": \"10.0.0.9\", \"dport\": 1, \"offset\": 1}]}",
        "{\"flows\": [{\"src\": \" 10.0.0.2\", \"sport\": 80, \"dst\": \"10.0.0.9\", \"dport\": 1, \"offset\": 1}]}",
        "{\"flows\": [{\"src\": \"10.0.0.2\", \"sport\": 80, \"dst\": \"fd00::9\", \"dport\": 1, \"offset\": 1}]}",
        "{\"flows\": [{\"src\": \"10.0.0.2\", \"sport\": 0, \"dst\": \"10.0.0.9\", \"dport\": 1, \"offset\": 1}]}",
        "{\"flows\": [{\"src\": \"10.0.0.2\", \"sport\": 80, \"dst\": \"10.0.0.9\", \"dport\": 65536, \"offset\": 1}]}",
        "{\"flows\": [{\"src\": \"10.0.0.2\", \"sport\": 80, \"dst\": \"10.0.0.9\", \"dport\": 1, \"offset\": -1}]}",
        "{\"flows\": [{\"src\": \"10.0.0.2\", \"sport\": 80, \"dst\": \"10.0.0.9\", \"dport\": 1, \"offset\": 4294967296}]}",
        "{\"flows\": [{\"src\": \"10.0.0.2\", \"sport\": 80, \"dst\": \"10.0.0.9\", \"dport\": 1, \"offset\": \"1\"}]}",
        "{\"flows\": [{\"src\": \"10.0.0.2\", \"sport\": 80, \"dst\": \"10.0.0.9\", \"dport\": 1, \"offset\": 1, \"ts-offset\": 1.5}]}",
        "{\"flows\": [{\"src\": \"10.0.0.2\", \"sport\": 80, \"dst\": \"10.0.0.9\", \"dport\": 1, \"offset\": 1, \"x\": 1}]}",
        "{\"flows\": [{\"src\": \"10.0.0.2\", \"sport\": 80, \"dst\": \"10.0.0.9\", \"dport\": 1, \"offset\": 1},"
        " {\"src\": \"10.0.0.2\", \"sport\": 80, \"dst\": \"10.0.0.9\", \"dport\": 1, \"offset\": 2}]}",
    };
    g_autoptr(GString) many = g_string_new("{\"flows\": [");

    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        GArray *a = carry_parse(bad[i], strlen(bad[i]), &err);

        if (a || !err) {
            g_error("accepted: %s", bad[i]);
        }
        g_test_message("%s -> %s", bad[i], err->message);
    }
    for (int i = 0; i <= CARRY_MAX_FLOWS; i++) {
        g_string_append_printf(many, "%s{\"src\": \"10.0.0.2\", \"sport\": 80, \"dst\": \"10.0.0.9\", "
                               "\"dport\": %d, \"offset\": 1}", i ? ", " : "", i + 1);
    }
    g_string_append(many, "]}");
    {
        g_autoptr(GError) err = NULL;

        g_assert_null(carry_parse(many->str, many->len, &err));
        g_assert_nonnull(strstr(err->message, "at most"));
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/rewrite/client-opened", test_client_opened);
    g_test_add_func("/rewrite/guest-opened-wrap", test_guest_opened_wrap);
    g_test_add_func("/rewrite/reset-takeover-partial", test_reset_takeover_partial);
    g_test_add_func("/rewrite/ipv6-eth", test_ipv6_eth);
    g_test_add_func("/rewrite/carry-round-trip", test_carry_round_trip);
    g_test_add_func("/rewrite/carry-ipv6-wrap", test_carry_ipv6_wrap);
    g_test_add_func("/rewrite/carry-into-takeover", test_carry_into_takeover);
    g_test_add_func("/rewrite/carry-bad-input", test_carry_bad_input);
    return g_test_run();
}
