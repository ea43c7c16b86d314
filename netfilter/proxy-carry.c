/* The primary's carried flows (docs/colo-proxy.md, "Carried flows"): the
 * flows a taken-over secondary rewrote, handed to the primary colo-proxy
 * that replaced it at re-protection. Both guests now share the survivor's
 * numbering, so compare and mirror see raw guest numbers; only what leaves
 * toward the client and what enters the guest from it are shifted. Their
 * packets reach a queue of their own (segmented, so that a verdict may
 * carry new bytes: the main queue's GSO packets with partial checksums
 * must not be rewritten) through one rule per flow and direction ahead of
 * the main rule. */
#include "config.h"

#include "carry.h"
#include "proxy.h"

#include <gio/gio.h>
#include <qb/qblog.h>

/* The guest's output: held and compared as raw guest output (the bytes
 * kept for the rewrite at release). The client's input: rewritten and let
 * through at once (the tap capture mirrors it afterwards, in guest
 * numbering). */
static void carry_packet(void *opaque, uint32_t id, uint8_t *pkt, size_t len, bool partial, uint32_t indev)
{
    Proxy *p = opaque;

    if (indev == capture_ifindex(p->cap)) {
        g_hash_table_insert(p->carry_held, GUINT_TO_POINTER(id), g_bytes_new(pkt, len));
        cmp_primary_add(p->engine, PROXY_CARRY_HANDLE | id, pkt, len, false, proxy_now_ns());
    } else {
        rw_input(p->rw, pkt, len, false, partial);
        nfq_release_with(p->carry_nfq, id, pkt, len);
    }
}

void proxy_carry_release(Proxy *p, uint32_t id)
{
    g_autoptr(GBytes) raw = NULL;
    g_autofree uint8_t *buf = NULL;
    gsize len;

    if (!g_hash_table_steal_extended(p->carry_held, GUINT_TO_POINTER(id), NULL, (gpointer *)&raw)) {
        nfq_release(p->carry_nfq, id);
        return;
    }
    buf = g_bytes_unref_to_data(g_steal_pointer(&raw), &len);
    /* The queue is segmented: the kernel completed the checksum. */
    rw_output(p->rw, buf, len, false, false);
    nfq_release_with(p->carry_nfq, id, buf, len);
}

/* The rules of the carried flows, out and in for each, then @main (if
 * not NULL): the first match wins, so they go ahead of it. */
static GPtrArray *carry_specs(Proxy *p, const char *const *main_spec)
{
    GPtrArray *specs = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
    g_autofree char *qnum = g_strdup_printf("%u", proxy_carry_queue(p->cfg.queue_num));
    g_autoptr(GArray) flows = rw_table_export(p->rw);

    for (guint i = 0; i < flows->len; i++) {
        for (int out = 1; out >= 0; out--) {
            g_auto(GStrv) match = carry_match_words(&g_array_index(flows, struct rw_carried, i), out);
            GPtrArray *w = g_ptr_array_new();

            g_ptr_array_add(w, g_strdup(out ? "-i" : "-o"));
            g_ptr_array_add(w, g_strdup(p->cfg.guest_iface));
            for (char **m = match; *m; m++) {
                g_ptr_array_add(w, g_strdup(*m));
            }
            for (const char *const *t = (const char *const[]){ "-j", "NFQUEUE", "--queue-num", qnum,
                                                                "--queue-bypass", NULL }; *t; t++) {
                g_ptr_array_add(w, g_strdup(*t));
            }
            g_ptr_array_add(w, NULL);
            g_ptr_array_add(specs, g_ptr_array_free(w, FALSE));
        }
    }
    if (main_spec) {
        g_ptr_array_add(specs, g_strdupv((char **)main_spec));
    }
    return specs;
}

bool proxy_carry_set_rules(Proxy *p, const char *const *main_spec, GError **error)
{
    g_autoptr(GPtrArray) specs = NULL;

    if (!p->rw && !main_spec) {
        rules_remove_all(p->rules);
        return true;
    }
    if (!p->rw) {
        return rules_set_forward(p->rules, (const char *const *[]){ main_spec }, 1, error);
    }
    specs = carry_specs(p, main_spec);
    return rules_set_forward(p->rules, (const char *const *const *)specs->pdata, specs->len, error);
}

bool proxy_carry_start(Proxy *p, GError **error)
{
    struct nfq_callbacks ncb = { carry_packet, proxy_primary_lost, proxy_primary_burst_done, p };
    const GArray *flows = p->cfg.carried;

    if (!flows || !flows->len) {
        return true;
    }
    if (p->cfg.queue_num >= PROXY_CARRY_QUEUE_BASE) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "carried flows use queue %u + %u: --queue-num must be below %u", p->cfg.queue_num,
                    PROXY_CARRY_QUEUE_BASE, PROXY_CARRY_QUEUE_BASE);
        return false;
    }
    p->rw = rw_table_new(MAX(p->cfg.params.max_flows, flows->len));
    if (!rw_table_import(p->rw, (const struct rw_carried *)(const void *)flows->data, flows->len, error)) {
        return false;
    }
    p->carry_held = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, (GDestroyNotify)g_bytes_unref);
    p->carry_nfq = nfq_open_queue(proxy_carry_queue(p->cfg.queue_num), p->cfg.queue_maxlen, NFQ_HOLD_SEGMENTED,
                                  &ncb, error);
    if (!p->carry_nfq) {
        return false;
    }
    qb_log(LOG_NOTICE, "%u carried flow%s rewritten through queue %u", flows->len, flows->len == 1 ? "" : "s",
           proxy_carry_queue(p->cfg.queue_num));
    return true;
}

void proxy_carry_free(Proxy *p)
{
    nfq_close_queue(p->carry_nfq);
    if (p->carry_held) {
        g_hash_table_destroy(p->carry_held);
    }
}
