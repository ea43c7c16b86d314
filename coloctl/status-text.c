/* coloctl's output for people: colod's status in a few aligned lines (in
 * the manner of crm_mon and pcs status) and events as log-like lines. */
#include "config.h"

#include "coloctl.h"

#include <string.h>

/* ---- lenient member access ------------------------------------------------- */

static JsonNode *member(JsonObject *o, const char *name)
{
    return o ? json_object_get_member(o, name) : NULL;
}

const char *coloctl_str(JsonObject *o, const char *name, const char *def)
{
    JsonNode *n = member(o, name);

    return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING ? json_node_get_string(n)
                                                                                         : def;
}

bool coloctl_has_int(JsonObject *o, const char *name)
{
    JsonNode *n = member(o, name);

    return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64;
}

gint64 coloctl_int(JsonObject *o, const char *name, gint64 def)
{
    return coloctl_has_int(o, name) ? json_node_get_int(member(o, name)) : def;
}

bool coloctl_bool(JsonObject *o, const char *name, bool def)
{
    JsonNode *n = member(o, name);

    return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_BOOLEAN ? json_node_get_boolean(n)
                                                                                          : def;
}

JsonObject *coloctl_obj(JsonObject *o, const char *name)
{
    JsonNode *n = member(o, name);

    return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

/* ---- status ------------------------------------------------------------------ */

static const struct {
    const char *why;
    const char *hint;
} wait_hints[] = {
    { "unknown-generation", "the peer's generation is not known (its colod is not there): `coloctl failover` here "
                            "starts the VM from this node's copy" },
    { "tie", "both nodes hold equally new copies: `coloctl failover` on the node whose copy to keep" },
    { "stale-peer", "the peer runs the VM from an older copy than this node's: `coloctl protect` here discards this "
                    "node's copy and makes it the peer's secondary" },
    { "split-brain", "both nodes ran the VM as primary: `coloctl failover` on the node to keep (the other's copy is "
                     "discarded)" },
    { "peer-missing", "quorum came back without the peer, which may have served meanwhile: `coloctl failover` keeps "
                      "this node's VM" },
    { "vmm-exited", "the VM's colo-vmm exited (guest shutdown or crash): `coloctl failover` starts it again" },
    { "persist-failed", "the state file could not be written: fix its disk, then `coloctl failover`" },
    { "relocation-lost", "a relocation by postcopy broke after its guest had moved: neither node holds the whole VM; "
                         "check it runs nowhere, then `coloctl failover` on one node starts it again (from boot)" },
};

const char *coloctl_wait_hint(const char *why)
{
    for (size_t i = 0; why && i < G_N_ELEMENTS(wait_hints); i++) {
        if (!strcmp(why, wait_hints[i].why)) {
            return wait_hints[i].hint;
        }
    }
    return NULL;
}

#define ROW "  %-12s "

static void peer_text(GString *s, JsonObject *peer)
{
    bool present = coloctl_bool(peer, "present", false);

    g_string_append_printf(s, "Peer node %" G_GINT64_FORMAT ": %s\n", coloctl_int(peer, "node-id", 0),
                           present ? "present" : "absent (its colod is not in the group)");
    if (!present) {
        return;
    }
    if (!coloctl_str(peer, "state", NULL)) {
        g_string_append_printf(s, ROW "no hello from it yet\n", "state");
        return;
    }
    g_string_append_printf(s, ROW "%s\n", "state", coloctl_str(peer, "state", "?"));
    g_string_append_printf(s, ROW "%s, generation %" G_GINT64_FORMAT "\n", "role", coloctl_str(peer, "role", "?"),
                           coloctl_int(peer, "generation", 0));
    g_string_append_printf(s, ROW "%s%s\n", "colo-vmm", coloctl_str(peer, "vmm", "?"),
                           coloctl_bool(peer, "paused", false) ? ", paused" : "");
}

static void ms_append(GString *s, const char *label, gint64 us)
{
    g_string_append_printf(s, "%s%s %.1f ms", s->str[s->len - 1] == ' ' ? "" : ", ", label, (double)us / 1000.0);
}

static void colo_text(GString *s, JsonObject *colo, JsonObject *proxy)
{
    JsonObject *cp = coloctl_obj(colo, "checkpoints");
    JsonObject *pause = coloctl_obj(cp, "pause-us");
    JsonObject *reasons = coloctl_obj(cp, "reasons");
    const char *mode = coloctl_str(colo, "mode", "?");

    if (!strcmp(mode, "none")) {
        g_string_append_printf(s, "COLO: not running (last %s, ended: %s)", coloctl_str(colo, "last-mode", "?"),
                               coloctl_str(colo, "reason", "?"));
    } else {
        g_string_append_printf(s, "COLO: %s", mode);
    }
    g_string_append_printf(s, ", %" G_GINT64_FORMAT " checkpoints%s\n", coloctl_int(cp, "count", 0),
                           coloctl_bool(colo, "x-broken", false) ? ", BROKEN (the peer is lost)" : "");
    if (pause) {
        g_string_append_printf(s, ROW, "pause");
        ms_append(s, "last", coloctl_int(pause, "last", 0));
        ms_append(s, "p50", coloctl_int(pause, "p50", 0));
        ms_append(s, "p99", coloctl_int(pause, "p99", 0));
        ms_append(s, "max", coloctl_int(pause, "max", 0));
        g_string_append_c(s, '\n');
    }
    if (cp && coloctl_has_int(cp, "last-bytes")) {
        g_string_append_printf(s, ROW "%" G_GINT64_FORMAT " pages, %" G_GINT64_FORMAT " bytes\n", "last sent",
                               coloctl_int(cp, "last-pages", 0), coloctl_int(cp, "last-bytes", 0));
    }
    if (reasons) {
        g_autoptr(GList) names = json_object_get_members(reasons);

        g_string_append_printf(s, ROW, "reasons");
        for (GList *l = names; l; l = l->next) {
            g_string_append_printf(s, "%s%s %" G_GINT64_FORMAT, l == names ? "" : ", ", (const char *)l->data,
                                   coloctl_int(reasons, l->data, 0));
        }
        g_string_append_c(s, '\n');
    }
    if (proxy) {
        g_string_append_printf(s, ROW "%s, epoch %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                                  " checkpoint requests (%" G_GINT64_FORMAT " ignored)%s\n",
                               "proxy", coloctl_bool(proxy, "connected", false) ? "connected" : "NOT connected",
                               coloctl_int(proxy, "epoch", 0), coloctl_int(proxy, "requests", 0),
                               coloctl_int(proxy, "requests-ignored", 0),
                               coloctl_bool(proxy, "failed-over", false) ? ", failed over" : "");
    }
}

/* colo-proxy as colod sees it (status "colo-proxy"). */
static void colo_proxy_text(GString *s, JsonObject *cp)
{
    JsonObject *stats = coloctl_obj(cp, "stats");
    JsonObject *mismatches = coloctl_obj(stats, "mismatches");
    gint64 restarts = coloctl_int(cp, "restarts", 0);
    gint64 mismatched = 0;

    g_string_append_printf(s, ROW "pid %" G_GINT64_FORMAT ", %s%s%s", "colo-proxy", coloctl_int(cp, "pid", 0),
                           coloctl_str(cp, "role", "?"), coloctl_bool(cp, "ready", false) ? "" : ", NOT ready",
                           coloctl_bool(cp, "failed-over", false) ? ", failed over (passes the guest's output)" : "");
    if (restarts) {
        g_string_append_printf(s, ", restarted %" G_GINT64_FORMAT " times", restarts);
    }
    g_string_append_c(s, '\n');
    if (!coloctl_has_int(stats, "compared")) {
        return; /* not comparing: a secondary's proxy */
    }
    if (mismatches) {
        g_autoptr(GList) names = json_object_get_members(mismatches);

        for (GList *l = names; l; l = l->next) {
            mismatched += coloctl_int(mismatches, l->data, 0);
        }
    }
    g_string_append_printf(s, ROW "%" G_GINT64_FORMAT " compared, %" G_GINT64_FORMAT " released, %" G_GINT64_FORMAT
                              " held now, %" G_GINT64_FORMAT " mismatches\n",
                           "packets", coloctl_int(stats, "compared", 0), coloctl_int(stats, "released", 0),
                           coloctl_int(stats, "queue-depth", 0), mismatched);
}

char *coloctl_status_text(JsonObject *st)
{
    GString *s = g_string_new(NULL);
    JsonObject *vmm = coloctl_obj(st, "vmm");
    JsonObject *settings = coloctl_obj(st, "settings");
    JsonObject *colo = coloctl_obj(st, "colo");
    const char *waiting = coloctl_str(st, "waiting", NULL);
    bool running = coloctl_bool(st, "running", false);

    g_string_append_printf(s, "VM %s on node %" G_GINT64_FORMAT ": %s%s\n", coloctl_str(st, "vm", "?"),
                           coloctl_int(st, "node-id", 0), coloctl_str(st, "state", "?"),
                           coloctl_bool(st, "managed", false) ? " (managed by pacemaker)" : "");
    g_string_append_printf(s, ROW "%s, generation %" G_GINT64_FORMAT "%s\n", "role", coloctl_str(st, "role", "?"),
                           coloctl_int(st, "generation", 0),
                           running ? ", the guest serves here" : ", the guest does not serve here");
    g_string_append_printf(s, ROW "%s\n", "quorum", coloctl_bool(st, "quorate", false) ? "yes" : "NO");
    g_string_append_printf(s, ROW "%s\n", "protection",
                           coloctl_bool(st, "protect", true) ? "enabled" : "disabled (coloctl protect enables it)");
    if (coloctl_has_int(vmm, "pid")) {
        g_string_append_printf(s, ROW "pid %" G_GINT64_FORMAT ", %s%s\n", "colo-vmm", coloctl_int(vmm, "pid", 0),
                               coloctl_str(vmm, "kind", "?"), coloctl_bool(vmm, "paused", false) ? ", PAUSED" : "");
    } else {
        g_string_append_printf(s, ROW "not running\n", "colo-vmm");
    }
    if (waiting) {
        const char *hint = coloctl_wait_hint(waiting);

        g_string_append_printf(s, ROW "for an administrator: %s%s%s\n", "WAITING", waiting, hint ? ": " : "",
                               hint ? hint : "");
    }
    g_string_append_printf(s, ROW "%s\n", "last", coloctl_str(st, "reason", ""));
    g_string_append_c(s, '\n');
    peer_text(s, coloctl_obj(st, "peer"));
    if (colo) {
        g_string_append_c(s, '\n');
        colo_text(s, colo, coloctl_obj(st, "proxy"));
    }
    if (coloctl_obj(st, "colo-proxy")) {
        if (!colo) {
            g_string_append_c(s, '\n');
        }
        colo_proxy_text(s, coloctl_obj(st, "colo-proxy"));
    }
    if (settings) {
        g_autoptr(GList) names = json_object_get_members(settings);

        g_string_append(s, "\nSettings:");
        for (GList *l = names; l; l = l->next) {
            JsonNode *v = json_object_get_member(settings, l->data);
            const char *str = coloctl_str(settings, l->data, NULL);
            g_autofree char *text = JSON_NODE_HOLDS_NULL(v) ? g_strdup("default")
                                    : str                  ? g_strdup(str)
                                                           : json_to_string(v, FALSE);

            g_string_append_printf(s, "%s %s %s", l == names ? "" : ",", (const char *)l->data, text);
        }
        g_string_append_c(s, '\n');
    }
    return g_string_free(s, FALSE);
}

/* ---- events ------------------------------------------------------------------ */

char *coloctl_event_text(const char *name, JsonObject *data, JsonObject *ts)
{
    GString *s = g_string_new(NULL);

    if (coloctl_has_int(ts, "seconds")) {
        g_autoptr(GDateTime) t = g_date_time_new_from_unix_local(coloctl_int(ts, "seconds", 0));
        g_autofree char *when = t ? g_date_time_format(t, "%F %T") : g_strdup("?");

        g_string_append_printf(s, "%s.%03d ", when, (int)(coloctl_int(ts, "microseconds", 0) / 1000));
    }
    g_string_append(s, name);
    if (!strcmp(name, "COLOD_STATE") && data) {
        const char *waiting = coloctl_str(data, "waiting", NULL);

        g_string_append_printf(s, " %s -> %s (%s, generation %" G_GINT64_FORMAT "%s%s%s): %s",
                               coloctl_str(data, "old", "?"), coloctl_str(data, "new", "?"),
                               coloctl_str(data, "role", "?"), coloctl_int(data, "generation", 0),
                               coloctl_bool(data, "running", false) ? ", serving" : "", waiting ? ", waiting: " : "",
                               waiting ? waiting : "", coloctl_str(data, "reason", ""));
    } else if (data) {
        g_autoptr(GList) names = json_object_get_members(data);

        for (GList *l = names; l; l = l->next) {
            g_autofree char *v = json_to_string(json_object_get_member(data, l->data), FALSE);

            g_string_append_printf(s, " %s=%s", (const char *)l->data, v);
        }
    }
    return g_string_free(s, FALSE);
}
