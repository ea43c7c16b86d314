/* coloctl metrics: colod's status in Prometheus's text exposition format
 * (version 0.0.4: "# HELP" and "# TYPE" once per metric, then samples
 * with labels; label values escape \, " and newlines). Every sample has
 * the label vm; times are in seconds, as Prometheus names them. For the
 * node_exporter's textfile collector or a small exporter around it. */
#include "config.h"

#include "coloctl.h"

#include <string.h>

typedef struct {
    GString *out;
    char *vm; /* the vm label, escaped */
} Metrics;

static char *label_escape(const char *v)
{
    GString *s = g_string_new(NULL);

    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '"') {
            g_string_append_c(s, '\\');
            g_string_append_c(s, *p);
        } else if (*p == '\n') {
            g_string_append(s, "\\n");
        } else {
            g_string_append_c(s, *p);
        }
    }
    return g_string_free(s, FALSE);
}

static void family(Metrics *m, const char *name, const char *type, const char *help)
{
    g_string_append_printf(m->out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A sample; @label and @value name one more label (NULL: none). */
static void sample(Metrics *m, const char *name, const char *label, const char *value, double v)
{
    g_string_append_printf(m->out, "%s{vm=\"%s\"", name, m->vm);
    if (label) {
        g_autofree char *esc = label_escape(value);

        g_string_append_printf(m->out, ",%s=\"%s\"", label, esc);
    }
    /* Counts in full, fractions (seconds) short. */
    g_string_append_printf(m->out, v == (double)(gint64)v ? "} %.0f\n" : "} %.9g\n", v);
}

static void gauge(Metrics *m, const char *name, const char *help, double v)
{
    family(m, name, "gauge", help);
    sample(m, name, NULL, NULL, v);
}

static void counter(Metrics *m, const char *name, const char *help, double v)
{
    family(m, name, "counter", help);
    sample(m, name, NULL, NULL, v);
}

static void colo_metrics(Metrics *m, JsonObject *colo)
{
    JsonObject *cp = coloctl_obj(colo, "checkpoints");
    JsonObject *pause = coloctl_obj(cp, "pause-us");
    JsonObject *reasons = coloctl_obj(cp, "reasons");
    static const struct {
        const char *key, *name, *help;
    } pauses[] = {
        { "last", "colod_colo_pause_last_seconds", "How long the last checkpoint stopped the guest." },
        { "p50", "colod_colo_pause_p50_seconds", "Median guest stop of the recent checkpoints." },
        { "p99", "colod_colo_pause_p99_seconds", "99th percentile guest stop of the recent checkpoints." },
        { "max", "colod_colo_pause_max_seconds", "Longest guest stop of a checkpoint since COLO started." },
    };

    gauge(m, "colod_colo_active", "1 while COLO runs (this node primary or secondary).",
          strcmp(coloctl_str(colo, "mode", "none"), "none") != 0);
    gauge(m, "colod_colo_broken", "1 when colo-vmm lost its peer (x-broken) and waits for failover.",
          coloctl_bool(colo, "x-broken", false));
    counter(m, "colod_colo_checkpoints_total", "Checkpoints since COLO started.", (double)coloctl_int(cp, "count", 0));
    if (reasons) {
        g_autoptr(GList) names = json_object_get_members(reasons);

        family(m, "colod_colo_checkpoints_by_reason_total", "counter", "Checkpoints by what caused them.");
        for (GList *l = names; l; l = l->next) {
            sample(m, "colod_colo_checkpoints_by_reason_total", "reason", l->data,
                   (double)coloctl_int(reasons, l->data, 0));
        }
    }
    for (size_t i = 0; pause && i < G_N_ELEMENTS(pauses); i++) {
        gauge(m, pauses[i].name, pauses[i].help, (double)coloctl_int(pause, pauses[i].key, 0) / 1e6);
    }
    if (coloctl_has_int(cp, "last-bytes")) {
        gauge(m, "colod_colo_last_checkpoint_bytes", "Bytes the last checkpoint sent.",
              (double)coloctl_int(cp, "last-bytes", 0));
    }
}

static void proxy_metrics(Metrics *m, JsonObject *proxy)
{
    gauge(m, "colod_proxy_connected", "1 while colo-vmm is connected to its colo-proxy.",
          coloctl_bool(proxy, "connected", false));
    gauge(m, "colod_proxy_epoch", "The checkpoint epoch colo-vmm told its colo-proxy last.",
          (double)coloctl_int(proxy, "epoch", 0));
    counter(m, "colod_proxy_checkpoint_requests_total", "Checkpoints colo-proxy asked for (its output differed).",
            (double)coloctl_int(proxy, "requests", 0));
    counter(m, "colod_proxy_checkpoint_requests_ignored_total",
            "Checkpoint requests for an epoch already committed.", (double)coloctl_int(proxy, "requests-ignored", 0));
}

/* colo-proxy's own counters (status "colo-proxy": colod polls its
 * query-stats); the comparing ones only where it compares (a primary). */
static void colo_proxy_metrics(Metrics *m, JsonObject *cp)
{
    JsonObject *stats = coloctl_obj(cp, "stats");
    JsonObject *mismatches = coloctl_obj(stats, "mismatches");

    counter(m, "colod_proxy_restarts_total", "colo-proxy processes colod started again after one ended unasked.",
            (double)coloctl_int(cp, "restarts", 0));
    if (coloctl_has_int(stats, "compared")) {
        counter(m, "colod_proxy_packets_compared_total",
                "Guest packets released after the secondary's output matched.", (double)coloctl_int(stats, "compared", 0));
        counter(m, "colod_proxy_packets_released_total", "Guest packets released (compared, or at a checkpoint).",
                (double)coloctl_int(stats, "released", 0));
        gauge(m, "colod_proxy_packets_held", "Guest packets held now, waiting for the secondary's or a checkpoint.",
              (double)coloctl_int(stats, "queue-depth", 0));
    }
    if (mismatches) {
        g_autoptr(GList) names = json_object_get_members(mismatches);

        family(m, "colod_proxy_mismatches_total", "counter", "Outputs that differed, by how.");
        for (GList *l = names; l; l = l->next) {
            sample(m, "colod_proxy_mismatches_total", "reason", l->data, (double)coloctl_int(mismatches, l->data, 0));
        }
    }
    if (coloctl_has_int(stats, "nfq-lost")) {
        counter(m, "colod_proxy_nfqueue_lost_total", "Packets the kernel's NFQUEUE dropped before colo-proxy read them.",
                (double)coloctl_int(stats, "nfq-lost", 0));
    }
}

char *coloctl_metrics_text(JsonObject *st)
{
    static const char *const roles[] = { "none", "primary", "secondary", "syncing" };
    Metrics m = { g_string_new(NULL), label_escape(coloctl_str(st, "vm", "")) };
    JsonObject *peer = coloctl_obj(st, "peer");
    const char *role = coloctl_str(st, "role", "none");
    const char *state = coloctl_str(st, "state", "");
    const char *waiting = coloctl_str(st, "waiting", NULL);
    g_autofree char *state_esc = label_escape(state);
    g_autofree char *wait_esc = label_escape(waiting ? waiting : "");

    gauge(&m, "colod_up", "1: colod answered.", 1);
    family(&m, "colod_info", "gauge", "colod's node id, state and wait reason as labels; always 1.");
    g_string_append_printf(m.out, "colod_info{vm=\"%s\",node_id=\"%" G_GINT64_FORMAT "\",state=\"%s\",waiting=\"%s\"} 1\n",
                           m.vm, coloctl_int(st, "node-id", 0), state_esc, wait_esc);
    family(&m, "colod_role", "gauge", "1 for this node's role as last written to its state file, 0 for the others.");
    for (size_t i = 0; i < G_N_ELEMENTS(roles); i++) {
        sample(&m, "colod_role", "role", roles[i], !strcmp(role, roles[i]));
    }
    gauge(&m, "colod_generation", "The generation of this node's copy of the VM.",
          (double)coloctl_int(st, "generation", 0));
    gauge(&m, "colod_quorate", "1 while this node has quorum.", coloctl_bool(st, "quorate", false));
    gauge(&m, "colod_running", "1 while the guest serves on this node (colo-vmm primary, not paused).",
          coloctl_bool(st, "running", false));
    gauge(&m, "colod_protected", "1 while the VM is protected (COLO runs between both nodes).",
          !strcmp(state, "primary-protected") || !strcmp(state, "secondary-protected"));
    gauge(&m, "colod_waiting", "1 while colod waits for an administrator (colod_info's waiting says why).",
          waiting != NULL);
    gauge(&m, "colod_peer_present", "1 while the peer's colod is in the cluster group.",
          coloctl_bool(peer, "present", false));
    if (coloctl_has_int(peer, "generation")) {
        gauge(&m, "colod_peer_generation", "The generation of the peer's copy, as it said last.",
              (double)coloctl_int(peer, "generation", 0));
    }
    if (coloctl_obj(st, "colo")) {
        colo_metrics(&m, coloctl_obj(st, "colo"));
    }
    if (coloctl_obj(st, "proxy")) {
        proxy_metrics(&m, coloctl_obj(st, "proxy"));
    }
    if (coloctl_obj(st, "colo-proxy")) {
        colo_proxy_metrics(&m, coloctl_obj(st, "colo-proxy"));
    }
    g_free(m.vm);
    return g_string_free(m.out, FALSE);
}
