/* The control commands of colo-proxy (see control.h for the protocol and
 * docs/colo-proxy.md for each command). @args is never NULL. */
#include "config.h"

#include "carry.h"
#include "proxy.h"

#include <gio/gio.h>

static JsonNode *cmd_reply(JsonBuilder *b)
{
    JsonNode *n = json_builder_get_root(b);

    g_object_unref(b);
    return n;
}

static void add_int(JsonBuilder *b, const char *name, int64_t v)
{
    json_builder_set_member_name(b, name);
    json_builder_add_int_value(b, v);
}

static uint32_t cmd_epoch(const Proxy *p)
{
    return p->engine ? cmp_engine_epoch(p->engine) : p->epoch;
}

static JsonNode *cmd_checkpoint_begin(JsonObject *args, gpointer opaque, GError **error)
{
    Proxy *p = opaque;
    JsonNode *since = args ? json_object_get_member(args, "input-since-ns") : NULL;

    if (since && (!JSON_NODE_HOLDS_VALUE(since) || json_node_get_value_type(since) != G_TYPE_INT64 ||
                  json_node_get_int(since) < 0)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "input-since-ns must be a time of CLOCK_MONOTONIC in nanoseconds (an integer, 0 or more)");
        return NULL;
    }
    JsonBuilder *b = json_builder_new();
    unsigned int held = proxy_checkpoint_begin(p, since != NULL, since ? (uint64_t)json_node_get_int(since) : 0);

    json_builder_begin_object(b);
    add_int(b, "held", held);
    add_int(b, "epoch", cmd_epoch(p));
    json_builder_end_object(b);
    return cmd_reply(b);
}

static JsonNode *cmd_checkpoint_commit(JsonObject *args, gpointer opaque, GError **error)
{
    Proxy *p = opaque;
    JsonBuilder *b = json_builder_new();
    JsonNode *k = args ? json_object_get_member(args, "keep-offsets") : NULL;
    bool keep = k && JSON_NODE_HOLDS_VALUE(k) && json_node_get_value_type(k) == G_TYPE_BOOLEAN &&
                json_node_get_boolean(k);
    unsigned int released = proxy_checkpoint_commit(p, keep);

    json_builder_begin_object(b);
    add_int(b, "released", released);
    add_int(b, "epoch", cmd_epoch(p));
    json_builder_end_object(b);
    return cmd_reply(b);
}

static JsonNode *cmd_hold(JsonObject *args, gpointer opaque, GError **error)
{
    proxy_fence_hold(opaque, error);
    return NULL;    /* {} or the error */
}

static JsonNode *cmd_vmm_lost(JsonObject *args, gpointer opaque, GError **error)
{
    Proxy *p = opaque;
    unsigned int released;
    JsonBuilder *b;

    if (!proxy_vmm_lost(p, &released, error)) {
        return NULL;
    }
    b = json_builder_new();
    json_builder_begin_object(b);
    add_int(b, "released", released);
    json_builder_set_member_name(b, "peer-serving");
    json_builder_add_boolean_value(b, p->peer_serving);
    json_builder_end_object(b);
    return cmd_reply(b);
}

static JsonNode *cmd_primary_lost(JsonObject *args, gpointer opaque, GError **error)
{
    proxy_secondary_lost_primary(opaque, error);
    return NULL;    /* {} or the error */
}

static JsonNode *cmd_failover(JsonObject *args, gpointer opaque, GError **error)
{
    Proxy *p = opaque;
    JsonBuilder *b;

    if (!proxy_failover(p, error)) {
        return NULL;
    }
    b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "failed-over");
    json_builder_add_boolean_value(b, TRUE);
    json_builder_end_object(b);
    return cmd_reply(b);
}

static JsonNode *cmd_replay_output(JsonObject *args, gpointer opaque, GError **error)
{
    Proxy *p = opaque;
    JsonBuilder *b;
    unsigned int frames;
    bool pending;
    int packets = proxy_replay_output(p, &frames, &pending, error);

    if (packets < 0) {
        return NULL;
    }
    b = json_builder_new();
    json_builder_begin_object(b);
    add_int(b, "frames", frames);
    add_int(b, "packets", packets);
    json_builder_set_member_name(b, "at-failover");
    json_builder_add_boolean_value(b, pending);
    json_builder_end_object(b);
    return cmd_reply(b);
}

static JsonNode *cmd_query_status(JsonObject *args, gpointer opaque, GError **error)
{
    Proxy *p = opaque;
    JsonBuilder *b = json_builder_new();

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "role");
    json_builder_add_string_value(b, p->engine ? "primary" : "secondary");
    add_int(b, "epoch", cmd_epoch(p));
    json_builder_set_member_name(b, "peer-link");
    json_builder_add_boolean_value(b, link_is_up(p->link));
    json_builder_set_member_name(b, "failed-over");
    json_builder_add_boolean_value(b, p->failed_over);
    if (p->engine) {
        json_builder_set_member_name(b, "vmm-lost");
        json_builder_add_boolean_value(b, p->vmm_lost);
    }
    if (p->nfq) {
        add_int(b, "queue-fd", nfq_socket(p->nfq));
    }
    json_builder_end_object(b);
    return cmd_reply(b);
}

static void stats_engine(JsonBuilder *b, const Proxy *p)
{
    struct cmp_stats st;

    cmp_engine_stats(p->engine, &st);
    add_int(b, "held", (int64_t)st.held);
    add_int(b, "released", (int64_t)st.released);
    add_int(b, "compared", (int64_t)st.compared);
    add_int(b, "passthrough", (int64_t)st.passthrough);
    add_int(b, "unprotected", (int64_t)st.unprotected);
    add_int(b, "queue-depth", st.queue_depth);
    add_int(b, "flows", st.flows);
    add_int(b, "secondary-packets", (int64_t)st.secondary);
    add_int(b, "secondary-stale", (int64_t)st.secondary_stale);
    add_int(b, "secondary-unparseable", (int64_t)st.secondary_unparseable);
    add_int(b, "secondary-dropped", (int64_t)st.secondary_dropped);
    add_int(b, "secondary-repeats", (int64_t)st.secondary_repeats);
    add_int(b, "vmm-lost-datagrams-withheld", (int64_t)st.secondary_answered_already);
    add_int(b, "input-packets", (int64_t)st.input);
    add_int(b, "checkpoint-requests", (int64_t)(st.checkpoint_requests + p->lost_requests));
    json_builder_set_member_name(b, "mismatches");
    json_builder_begin_object(b);
    for (int r = 0; r < CMP_REASON_COUNT; r++) {
        add_int(b, cmp_reason_name(r), (int64_t)st.mismatches[r]);
    }
    json_builder_end_object(b);
    /* Upper bounds in microseconds, as in the buckets' definition. */
    json_builder_set_member_name(b, "hold-time-us");
    json_builder_begin_array(b);
    for (int i = 0; i < CMP_HIST_BUCKETS; i++) {
        json_builder_begin_object(b);
        if (i < CMP_HIST_BUCKETS - 1) {
            add_int(b, "below", (int64_t)1 << i);
        }
        add_int(b, "count", (int64_t)st.hold_hist[i]);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
}

/* Sparse: [[us, count], ...] for the non-empty 1 us buckets (the last
 * bucket holds everything longer), so a client can subtract snapshots. */
static void stats_latency(JsonBuilder *b, const char *name, const struct nfq_latency *l)
{
    json_builder_set_member_name(b, name);
    json_builder_begin_object(b);
    add_int(b, "count", (int64_t)l->count);
    add_int(b, "max", (int64_t)l->max_us);
    json_builder_set_member_name(b, "buckets");
    json_builder_begin_array(b);
    for (unsigned int i = 0; i < NFQ_LAT_BUCKETS; i++) {
        if (l->us[i]) {
            json_builder_begin_array(b);
            json_builder_add_int_value(b, i);
            json_builder_add_int_value(b, (int64_t)l->us[i]);
            json_builder_end_array(b);
        }
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
}

static JsonNode *cmd_query_stats(JsonObject *args, gpointer opaque, GError **error)
{
    Proxy *p = opaque;
    JsonBuilder *b = json_builder_new();
    struct link_stats ls;

    json_builder_begin_object(b);
    add_int(b, "epoch", cmd_epoch(p));
    if (p->engine) {
        stats_engine(b, p);
        json_builder_set_member_name(b, "fenced");
        json_builder_add_boolean_value(b, p->fenced);
        add_int(b, "fences", (int64_t)p->fences);
        add_int(b, "fence-released", (int64_t)p->fence_released);
        add_int(b, "fence-deferred", p->fence_deferred ? (int64_t)p->fence_deferred->len : 0);
        add_int(b, "sync-input-mirrored", (int64_t)p->sync_input_mirrored);
        add_int(b, "vmm-lost-released", (int64_t)p->vmm_lost_released);
        add_int(b, "vmm-lost-datagrams-sent", (int64_t)p->vmm_lost_datagrams_sent);
    }
    if (p->rw) {
        struct rw_stats rs;

        rw_table_stats(p->rw, &rs);
        add_int(b, "rewritten-output", (int64_t)rs.output_rewritten);
        add_int(b, "rewritten-input", (int64_t)rs.input_rewritten);
        add_int(b, "offsets-learned", (int64_t)rs.offsets_learned);
        add_int(b, "rewriter-flows", rs.flows);
        add_int(b, "rewriter-table-full", (int64_t)rs.table_full);
        add_int(b, "rewriter-unparseable", (int64_t)rs.unparseable);
        add_int(b, "mirror-stale", (int64_t)p->mirror_stale);
        add_int(b, "mirror-after-takeover", (int64_t)p->mirror_after_takeover);
        add_int(b, "carried-from-primary", p->carried_in ? (int64_t)p->carried_in->len : 0);
        add_int(b, "carry-refused", (int64_t)p->carry_refused);
        add_int(b, "not-forwarded", (int64_t)p->not_forwarded);
        add_int(b, "pings-refused", (int64_t)p->pings_refused);
    }
    if (p->replay) {
        struct replay_stats rs;

        replay_get_stats(p->replay, &rs);
        add_int(b, "replay-kept", (int64_t)rs.kept);
        add_int(b, "replay-evicted", (int64_t)rs.evicted);
        add_int(b, "replay-cleared", (int64_t)rs.cleared);
        add_int(b, "replay-held-frames", rs.held_frames);
        add_int(b, "replay-held-bytes", (int64_t)rs.held_bytes);
        add_int(b, "replay-frames-sent", (int64_t)rs.frames_sent);
        add_int(b, "replay-packets-sent", (int64_t)rs.packets_sent);
        add_int(b, "replay-skipped", (int64_t)rs.skipped);
        add_int(b, "replay-send-failed", (int64_t)rs.send_failed);
        add_int(b, "replay-datagrams-kept", (int64_t)rs.datagrams_kept);
        add_int(b, "replay-datagrams-sent", (int64_t)rs.datagrams_sent);
    }
    if (p->nfq) {
        struct nfq_stats ns;

        nfq_get_stats(p->nfq, &ns);
        add_int(b, "nfq-packets", (int64_t)ns.packets);
        add_int(b, "nfq-lost", (int64_t)ns.lost);
        add_int(b, "nfq-recv-calls", (int64_t)ns.recv_calls);
        add_int(b, "nfq-batch-verdicts", (int64_t)ns.batch_verdicts);
        add_int(b, "nfq-single-verdicts", (int64_t)ns.single_verdicts);
        add_int(b, "nfq-verdict-errors", (int64_t)ns.verdict_errors);
        stats_latency(b, "verdict-latency-us", nfq_get_latency(p->nfq, NFQ_LAT_ALL));
        stats_latency(b, "matched-verdict-latency-us", nfq_get_latency(p->nfq, NFQ_LAT_MATCHED));
        stats_latency(b, "matched-read-latency-us", nfq_get_latency(p->nfq, NFQ_LAT_MATCHED_READ));
    }
    if (p->cap) {
        struct capture_stats cs;
        uint64_t drops;

        capture_get_stats(p->cap, &cs);
        add_int(b, "guest-frames", (int64_t)cs.frames);
        add_int(b, "injected", (int64_t)cs.sent);
        add_int(b, "inject-errors", (int64_t)cs.send_errors);
        add_int(b, "capture-recv-calls", (int64_t)cs.recv_calls);
        add_int(b, "inject-calls", (int64_t)cs.send_calls);
        drops = cs.drops;
        if (p->uplink_cap) {
            capture_get_stats(p->uplink_cap, &cs);
            drops += cs.drops;
        }
        /* Frames lost before colo-proxy read them: a secondary's output
         * lost here would otherwise be invisible. */
        add_int(b, "capture-drops", (int64_t)drops);
    }
    link_stats(p->link, &ls);
    add_int(b, "link-sent", (int64_t)ls.sent);
    add_int(b, "link-writes", (int64_t)ls.writes);
    add_int(b, "link-dropped-down", (int64_t)ls.dropped_down);
    add_int(b, "link-dropped-full", (int64_t)ls.dropped_full);
    add_int(b, "link-refused", (int64_t)ls.refused);
    add_int(b, "link-tls-refused", (int64_t)ls.tls_refused);
    add_int(b, "link-frames", (int64_t)ls.rx.frames);
    add_int(b, "link-unknown-type", (int64_t)ls.rx.unknown_type);
    add_int(b, "link-bad-header", (int64_t)ls.rx.bad_header);
    add_int(b, "link-truncated", (int64_t)ls.rx.truncated);
    json_builder_end_object(b);
    return cmd_reply(b);
}

/* The flows the rewriter still shifts (a taken-over secondary's, or a
 * primary's carried ones), in --carry-flows' format. */
static JsonNode *cmd_query_rewriter(JsonObject *args, gpointer opaque, GError **error)
{
    Proxy *p = opaque;
    g_autoptr(GArray) flows = p->rw ? rw_table_export(p->rw) : g_array_new(FALSE, TRUE, sizeof(struct rw_carried));

    return carry_to_json(flows);
}

static JsonNode *cmd_query_parameters(JsonObject *args, gpointer opaque, GError **error)
{
    Proxy *p = opaque;
    const struct cmp_params *cp = p->engine ? cmp_engine_params(p->engine) : &p->cfg.params;
    JsonBuilder *b = json_builder_new();

    json_builder_begin_object(b);
    add_int(b, "compare_timeout", cp->compare_timeout_ms);
    add_int(b, "expired_scan_cycle", cp->expired_scan_cycle_ms);
    add_int(b, "max_queue_size", cp->max_queue_size);
    json_builder_set_member_name(b, "checkpoint_on_mismatch");
    json_builder_add_boolean_value(b, cp->checkpoint_on_mismatch);
    json_builder_set_member_name(b, "passthrough_ports");
    json_builder_begin_array(b);
    for (unsigned int i = 0; i < cp->n_passthrough; i++) {
        json_builder_add_int_value(b, cp->passthrough_ports[i]);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    return cmd_reply(b);
}

static bool get_uint(JsonObject *args, const char *name, uint32_t min, uint32_t *out, GError **error)
{
    JsonNode *n = json_object_get_member(args, name);
    int64_t v;

    if (!n) {
        return true;
    }
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s must be an integer", name);
        return false;
    }
    v = json_node_get_int(n);
    if (v < min || v > UINT32_MAX) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s out of range", name);
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

static JsonNode *cmd_set_parameters(JsonObject *args, gpointer opaque, GError **error)
{
    Proxy *p = opaque;
    struct cmp_params np = p->engine ? *cmp_engine_params(p->engine) : p->cfg.params;
    JsonNode *n;

    if (!args) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "arguments required");
        return NULL;
    }
    if (!get_uint(args, "compare_timeout", 1, &np.compare_timeout_ms, error) ||
        !get_uint(args, "expired_scan_cycle", 1, &np.expired_scan_cycle_ms, error) ||
        !get_uint(args, "max_queue_size", 1, &np.max_queue_size, error)) {
        return NULL;
    }
    n = json_object_get_member(args, "checkpoint_on_mismatch");
    if (n) {
        if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "checkpoint_on_mismatch must be a boolean");
            return NULL;
        }
        np.checkpoint_on_mismatch = json_node_get_boolean(n);
    }
    n = json_object_get_member(args, "passthrough_ports");
    if (n) {
        JsonArray *a = JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;

        if (!a || json_array_get_length(a) > CMP_MAX_PASSTHROUGH) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "passthrough_ports must be an array of at most %d ports", CMP_MAX_PASSTHROUGH);
            return NULL;
        }
        np.n_passthrough = 0;
        for (guint i = 0; i < json_array_get_length(a); i++) {
            JsonNode *e = json_array_get_element(a, i);
            int64_t v = JSON_NODE_HOLDS_VALUE(e) && json_node_get_value_type(e) == G_TYPE_INT64 ? json_node_get_int(e)
                                                                                              : -1;

            if (v < 1 || v > 65535) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "bad port in passthrough_ports");
                return NULL;
            }
            np.passthrough_ports[np.n_passthrough++] = (uint16_t)v;
        }
    }
    if (p->engine) {
        uint32_t old_cycle = cmp_engine_params(p->engine)->expired_scan_cycle_ms;

        cmp_engine_set_params(p->engine, &np);
        if (old_cycle != np.expired_scan_cycle_ms && !p->failed_over) {
            proxy_set_scan_cycle(p, np.expired_scan_cycle_ms);
        }
    }
    p->cfg.params = np;
    return cmd_query_parameters(args, p, error);
}

const struct ctl_command proxy_commands[] = {
    { "checkpoint-begin", cmd_checkpoint_begin },
    { "checkpoint-commit", cmd_checkpoint_commit },
    { "failover", cmd_failover },
    { "hold", cmd_hold },
    { "vmm-lost", cmd_vmm_lost },
    { "primary-lost", cmd_primary_lost },
    { "replay-output", cmd_replay_output },
    { "query-status", cmd_query_status },
    { "query-stats", cmd_query_stats },
    { "query-rewriter", cmd_query_rewriter },
    { "query-parameters", cmd_query_parameters },
    { "set-parameters", cmd_set_parameters },
    { NULL, NULL },
};
