#include "config.h"

#include "rewrite.h"
#include "packet.h"

#include <gio/gio.h>
#include <netinet/in.h>
#include <qb/qblog.h>
#include <string.h>

#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_SACK 5
#define TCPOPT_TIMESTAMP 8

struct rw_flow {
    struct flow_key key;       /* output direction: the guest is the source */
    bool isn_valid;
    uint32_t isn;              /* the secondary's SYN or SYN-ACK sequence */
    bool tsval_valid;
    uint32_t tsval;            /* TSval of that SYN */
    bool offset_valid;
    uint32_t offset;           /* primary minus secondary */
    bool ts_valid;
    uint32_t ts_offset;
};

struct rw_table {
    GHashTable *flows;
    unsigned int max_flows;
    bool frozen;               /* carried flows only: learn nothing new */
    struct rw_stats stats;
};

RwTable *rw_table_new(unsigned int max_flows)
{
    RwTable *t = g_new0(RwTable, 1);

    t->flows = g_hash_table_new_full(flow_key_hash, flow_key_equal, NULL, g_free);
    t->max_flows = max_flows;
    return t;
}

void rw_table_free(RwTable *t)
{
    if (t) {
        g_hash_table_destroy(t->flows);
        g_free(t);
    }
}

void rw_table_reset(RwTable *t)
{
    g_hash_table_remove_all(t->flows);
}

static gboolean rw_flow_is_zero(gpointer key, gpointer value, gpointer data)
{
    const struct rw_flow *f = value;

    return !f->offset_valid || (f->offset == 0 && (!f->ts_valid || f->ts_offset == 0));
}

void rw_table_takeover(RwTable *t)
{
    g_hash_table_foreach_remove(t->flows, rw_flow_is_zero, NULL);
}

static int rw_carried_cmp(gconstpointer a, gconstpointer b)
{
    return memcmp(&((const struct rw_carried *)a)->key, &((const struct rw_carried *)b)->key,
                  sizeof(struct flow_key));
}

GArray *rw_table_export(const RwTable *t)
{
    GArray *out = g_array_new(FALSE, TRUE, sizeof(struct rw_carried));
    GHashTableIter it;
    gpointer v;

    g_hash_table_iter_init(&it, t->flows);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        const struct rw_flow *f = v;
        struct rw_carried c;

        if (rw_flow_is_zero(NULL, v, NULL)) {
            continue;
        }
        memset(&c, 0, sizeof(c));   /* padding too: exports compare with memcmp */
        c.key = f->key;
        c.offset = f->offset;
        c.ts_valid = f->ts_valid;
        c.ts_offset = f->ts_valid ? f->ts_offset : 0;
        g_array_append_val(out, c);
    }
    g_array_sort(out, rw_carried_cmp);
    return out;
}

static void rw_add_carried_flow(RwTable *t, const struct rw_carried *c)
{
    struct rw_flow *f = g_new0(struct rw_flow, 1);

    f->key = c->key;
    f->offset_valid = true;
    f->offset = c->offset;
    f->ts_valid = c->ts_valid;
    f->ts_offset = c->ts_valid ? c->ts_offset : 0;
    g_hash_table_insert(t->flows, &f->key, f);
}

bool rw_table_import(RwTable *t, const struct rw_carried *c, size_t n, GError **error)
{
    g_autoptr(GHashTable) seen = g_hash_table_new(flow_key_hash, flow_key_equal);
    char b[128];

    if (n + g_hash_table_size(t->flows) > t->max_flows) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%zu flows, the table holds %u", n,
                    t->max_flows);
        return false;
    }
    /* Check everything first: a table half loaded would be worse than none. */
    for (size_t i = 0; i < n; i++) {
        if (c[i].key.proto != IPPROTO_TCP || (c[i].key.family != 4 && c[i].key.family != 6)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "flow %zu is not TCP over IP", i);
            return false;
        }
        if (g_hash_table_contains(t->flows, &c[i].key) || !g_hash_table_add(seen, (gpointer)&c[i].key)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "flow %s given twice",
                        flow_key_format(&c[i].key, b, sizeof(b)));
            return false;
        }
    }
    for (size_t i = 0; i < n; i++) {
        rw_add_carried_flow(t, &c[i]);
    }
    t->frozen = true;
    return true;
}

unsigned int rw_table_add_carried(RwTable *t, const struct rw_carried *c, size_t n)
{
    unsigned int added = 0;

    for (size_t i = 0; i < n; i++) {
        if (g_hash_table_contains(t->flows, &c[i].key) || g_hash_table_size(t->flows) >= t->max_flows) {
            continue;
        }
        rw_add_carried_flow(t, &c[i]);
        added++;
    }
    return added;
}

void rw_table_stats(const RwTable *t, struct rw_stats *out)
{
    *out = t->stats;
    out->flows = g_hash_table_size(t->flows);
}

bool rw_table_offset(const RwTable *t, const struct flow_key *key, uint32_t *offset)
{
    const struct rw_flow *f = g_hash_table_lookup(t->flows, key);

    if (!f || !f->offset_valid) {
        return false;
    }
    *offset = f->offset;
    return true;
}

static void rw_csum_replace16(uint8_t *csum, uint16_t from, uint16_t to)
{
    uint32_t sum = (uint16_t)~pkt_get16(csum);

    sum += (uint16_t)~from;
    sum += to;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    pkt_put16(csum, (uint16_t)~sum);
}

void rw_csum_replace32(uint8_t *csum, uint32_t from, uint32_t to)
{
    rw_csum_replace16(csum, (uint16_t)(from >> 16), (uint16_t)(to >> 16));
    rw_csum_replace16(csum, (uint16_t)from, (uint16_t)to);
}

/* Replace the 32-bit field at @field, keeping the TCP checksum right. */
static void rw_set32(uint8_t *field, uint8_t *csum, uint32_t value, bool csum_partial)
{
    uint32_t old = pkt_get32(field);

    if (old == value) {
        return;
    }
    pkt_put32(field, value);
    if (!csum_partial) {
        rw_csum_replace32(csum, old, value);
    }
}

/* Walk the TCP options; calls back for timestamp and SACK. Returns false
 * for options that run past the header. */
typedef void (*rw_opt_fn)(uint8_t *opt, uint8_t kind, size_t len, void *data);

static bool rw_options_walk(uint8_t *opt, size_t len, rw_opt_fn fn, void *data)
{
    size_t pos = 0;

    while (pos < len) {
        uint8_t kind = opt[pos];
        size_t olen;

        if (kind == TCPOPT_EOL) {
            break;
        }
        if (kind == TCPOPT_NOP) {
            pos++;
            continue;
        }
        if (pos + 2 > len) {
            return false;
        }
        olen = opt[pos + 1];
        if (olen < 2 || pos + olen > len) {
            return false;
        }
        fn(opt + pos, kind, olen, data);
        pos += olen;
    }
    return true;
}

struct rw_opt_ctx {
    struct rw_flow *flow;
    uint8_t *csum;
    bool csum_partial;
    bool output;
    bool learn;          /* record the TSval (output) or learn ts_offset (input) */
};

static void rw_opt_apply(uint8_t *opt, uint8_t kind, size_t len, void *data)
{
    struct rw_opt_ctx *c = data;
    struct rw_flow *f = c->flow;

    if (kind == TCPOPT_TIMESTAMP && len == 10) {
        if (c->output) {
            if (c->learn) {
                f->tsval_valid = true;
                f->tsval = pkt_get32(opt + 2);
            }
            if (f->ts_valid) {
                rw_set32(opt + 2, c->csum, pkt_get32(opt + 2) + f->ts_offset, c->csum_partial);
            }
        } else {
            uint32_t tsecr = pkt_get32(opt + 6);

            if (c->learn && f->tsval_valid && tsecr != 0) {
                f->ts_valid = true;
                f->ts_offset = tsecr - f->tsval;
            }
            if (f->ts_valid && tsecr != 0) {
                rw_set32(opt + 6, c->csum, tsecr - f->ts_offset, c->csum_partial);
            }
        }
    } else if (kind == TCPOPT_SACK && !c->output && f->offset_valid) {
        for (size_t i = 2; i + 4 <= len; i += 4) {
            rw_set32(opt + i, c->csum, pkt_get32(opt + i) - f->offset, c->csum_partial);
        }
    }
}

static int rw_parse(RwTable *t, const uint8_t *buf, size_t len, bool eth, struct pkt_info *pi)
{
    int err = eth ? pkt_parse_eth(buf, len, pi) : pkt_parse_ip(buf, len, pi);

    if (err != PKT_OK && err != PKT_ERR_UNSUPPORTED) {
        t->stats.unparseable++;
    }
    return err;
}

int rw_output(RwTable *t, uint8_t *buf, size_t len, bool eth, bool csum_partial)
{
    struct pkt_info pi;
    struct rw_flow *f;
    struct rw_opt_ctx ctx;
    uint8_t *tcp;
    int err = rw_parse(t, buf, len, eth, &pi);

    if (err != PKT_OK || pi.key.proto != IPPROTO_TCP || pi.fragment) {
        return err;
    }
    tcp = buf + pi.l4_off;
    f = g_hash_table_lookup(t->flows, &pi.key);
    if (!f && (pi.tcp_flags & PKT_TCP_SYN) && !t->frozen) {
        if (g_hash_table_size(t->flows) >= t->max_flows) {
            char b[128];

            /* Its packets will mismatch and the checkpoint that follows
             * resets the table. */
            t->stats.table_full++;
            qb_log(LOG_WARNING, "rewriter table full (%u flows), %s not tracked", t->max_flows,
                   flow_key_format(&pi.key, b, sizeof(b)));
            return PKT_OK;
        }
        f = g_new0(struct rw_flow, 1);
        f->key = pi.key;
        g_hash_table_insert(t->flows, &f->key, f);
    }
    if (!f) {
        return PKT_OK;
    }
    ctx = (struct rw_opt_ctx){ .flow = f, .csum = tcp + 16, .csum_partial = csum_partial,
                               .output = true, .learn = false };
    if ((pi.tcp_flags & PKT_TCP_SYN) && !f->offset_valid) {
        f->isn_valid = true;
        f->isn = pi.seq;
        ctx.learn = true;
    }
    if (f->offset_valid) {
        rw_set32(tcp + 4, tcp + 16, pi.seq + f->offset, csum_partial);
    }
    rw_options_walk(buf + pi.tcp_opt_off, pi.tcp_opt_len, rw_opt_apply, &ctx);
    t->stats.output_rewritten++;
    return PKT_OK;
}

int rw_input(RwTable *t, uint8_t *buf, size_t len, bool eth, bool csum_partial)
{
    struct pkt_info pi;
    struct flow_key rev;
    struct rw_flow *f;
    struct rw_opt_ctx ctx;
    uint8_t *tcp;
    int err = rw_parse(t, buf, len, eth, &pi);

    if (err != PKT_OK || pi.key.proto != IPPROTO_TCP || pi.fragment) {
        return err;
    }
    flow_key_reverse(&pi.key, &rev);
    f = g_hash_table_lookup(t->flows, &rev);
    if (!f || !(pi.tcp_flags & PKT_TCP_ACK)) {
        return PKT_OK;
    }
    tcp = buf + pi.l4_off;
    ctx = (struct rw_opt_ctx){ .flow = f, .csum = tcp + 16, .csum_partial = csum_partial,
                               .output = false, .learn = false };
    /* The first ack of the handshake names the primary's ISN: the
     * client's ACK of a SYN-ACK, or the server's SYN-ACK to a guest SYN.
     * The compare engine releases the primary's SYN only after it saw
     * ours, so our ISN is always known by then. */
    if (!f->offset_valid && f->isn_valid) {
        char b[128];

        f->offset_valid = true;
        f->offset = pi.ack - 1 - f->isn;
        ctx.learn = true;
        t->stats.offsets_learned++;
        qb_log(LOG_DEBUG, "offset %u for %s", f->offset, flow_key_format(&f->key, b, sizeof(b)));
    }
    if (f->offset_valid) {
        rw_set32(tcp + 8, tcp + 16, pi.ack - f->offset, csum_partial);
    }
    rw_options_walk(buf + pi.tcp_opt_off, pi.tcp_opt_len, rw_opt_apply, &ctx);
    if (pi.tcp_flags & PKT_TCP_RST) {
        g_hash_table_remove(t->flows, &rev);
    }
    t->stats.input_rewritten++;
    return PKT_OK;
}
