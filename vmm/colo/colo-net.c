/* COLO and the local colo-proxy (-colo-proxy PATH, docs/colo.md): the
 * checkpoint loop tells the proxy when the guest is paused
 * (checkpoint-begin) and when a checkpoint is loaded on the secondary
 * (checkpoint-commit: the primary's held packets go out, both proxies
 * advance the epoch); the proxy's CHECKPOINT_REQUEST events become
 * checkpoint triggers; failover tells the proxy to pass (primary) or to
 * hand the guest's traffic out (secondary); a primary whose COLO broke
 * tells its proxy to hold everything until colod decides.
 *
 * Every call has a deadline: a proxy that hangs or dies fails the
 * checkpoint like a failed peer would (the guest runs on, x-broken), never
 * freezes the guest. */
#include "config.h"

#include "colo/colo-priv.h"
#include "colo/proxy-client.h"

#include <string.h>

#include <gio/gio.h>
#include <qb/qblog.h>

#define PROXY_CONNECT_MS 1000
/* The primary's guest stands still during begin and commit. */
#define PROXY_CALL_MS 1000
/* The secondary's takeover installs firewall rules (iptables runs). Only
 * the loop's thread waits for it, never x-colo-lost-heartbeat. */
#define PROXY_FAILOVER_MS 2000

/* The proxy's reasons (docs/colo-proxy.md) as checkpoint triggers. */
static ColoTrigger colo_net_trigger(const char *reason)
{
    static const struct {
        const char *reason;
        ColoTrigger trigger;
    } map[] = {
        { "payload", COLO_TRIGGER_MISMATCH },      { "flags", COLO_TRIGGER_MISMATCH },
        { "unparseable", COLO_TRIGGER_MISMATCH },  { "history", COLO_TRIGGER_MISMATCH },
        { "timeout", COLO_TRIGGER_STALE },         { "queue-full", COLO_TRIGGER_QUEUE_FULL },
        { "table-full", COLO_TRIGGER_QUEUE_FULL }, { "overflow", COLO_TRIGGER_QUEUE_FULL },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(map); i++) {
        if (!strcmp(map[i].reason, reason)) {
            return map[i].trigger;
        }
    }
    return COLO_TRIGGER_MISMATCH;   /* whatever else it cannot judge */
}

/* On the proxy client's reader thread. */
static void colo_net_event(void *opaque, const char *event, JsonObject *data)
{
    Migration *m = opaque;
    Colo *co = m->colo;

    if (strcmp(event, "CHECKPOINT_REQUEST") != 0 || !data) {
        return;
    }
    const char *reason = json_object_get_string_member_with_default(data, "reason", NULL);
    uint32_t epoch = (uint32_t)json_object_get_int_member_with_default(data, "epoch", 0);
    ColoTrigger trigger = colo_net_trigger(reason ? reason : "");

    g_mutex_lock(&m->lock);
    bool take = co->mode == COLO_MODE_PRIMARY && (int32_t)(epoch - co->proxy_epoch) >= 0;
    if (!take) {
        co->proxy_stale++;
    } else {
        co->proxy_requests++;
        if (!co->requested) {
            co->requested = true;
            co->request_trigger = trigger;
            co->request_epoch = epoch;
            g_cond_broadcast(&m->cond);
        }
    }
    g_mutex_unlock(&m->lock);
    qb_log(LOG_DEBUG, "COLO: colo-proxy asks for a checkpoint (%s, epoch %u)%s", reason ? reason : "?", epoch,
           take ? "" : ": already committed, ignored");
}

/* On the proxy client's thread. A secondary whose proxy is gone cannot
 * commit its next checkpoint: it leaves COLO now rather than at that
 * checkpoint, and by shutting the stream down it tells its primary at
 * once, which otherwise waited for the checkpoint's answer (10 s). The
 * primary's loop sees its own proxy fail at its next call. */
static void colo_net_closed(void *opaque, const char *why)
{
    Migration *m = opaque;
    Colo *co = m->colo;

    g_mutex_lock(&m->lock);
    bool leave = co->mode == COLO_MODE_SECONDARY && !co->broken && !colo_should_stop_locked(co);
    if (leave) {
        co->proxy_lost = true;
    }
    g_mutex_unlock(&m->lock);
    if (!leave) {
        return;
    }
    qb_log(LOG_ERR, "COLO: colo-proxy closed its control socket (%s): the secondary leaves COLO now", why);
    mig_channel_shutdown(m->dst.in, EPIPE);
}

bool colo_net_connect(Migration *m, ColoMode mode, GError **error)
{
    Colo *co = m->colo;

    if (!co->proxy_path) {
        return true;
    }
    ProxyClient *pc = proxy_client_connect(co->proxy_path, mode == COLO_MODE_PRIMARY ? "primary" : "secondary",
                                           PROXY_CONNECT_MS, colo_net_event, colo_net_closed, m, error);
    if (!pc) {
        g_prefix_error(error, "COLO: ");
        return false;
    }
    g_mutex_lock(&m->lock);
    co->proxy = pc;
    co->proxy_epoch = 0;        /* until our first commit: take its requests */
    co->proxy_failed_over = false;
    co->proxy_lost = false;
    co->proxy_silent = false;
    g_mutex_unlock(&m->lock);
    qb_log(LOG_INFO, "COLO: connected to colo-proxy at %s", co->proxy_path);
    return true;
}

/* @command with @args (taken; NULL: none) on the proxy; its reply's
 * "epoch" in *@epoch. */
static bool colo_net_call(Migration *m, const char *command, JsonObject *args, uint32_t *epoch, GError **error)
{
    ProxyClient *pc = m->colo->proxy;

    if (!pc) {
        if (args) {
            json_object_unref(args);
        }
        return true;
    }
    GError *local = NULL;
    g_autoptr(JsonObject) ret = proxy_client_call_args(pc, command, args, PROXY_CALL_MS, &local);
    if (!ret) {
        m->colo->proxy_silent |= g_error_matches(local, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
        g_propagate_prefixed_error(error, local, "COLO: ");
        return false;
    }
    *epoch = (uint32_t)json_object_get_int_member_with_default(ret, "epoch", 0);
    return true;
}

bool colo_net_checkpoint_begin(Migration *m, GError **error)
{
    uint32_t epoch;

    return colo_net_call(m, "checkpoint-begin", NULL, &epoch, error);
}

bool colo_net_sync_begin(Migration *m, int64_t stopping_us, GError **error)
{
    JsonObject *args = json_object_new();
    uint32_t epoch;

    /* Both sides' clock is CLOCK_MONOTONIC (g_get_monotonic_time). */
    json_object_set_int_member(args, "input-since-ns", stopping_us * 1000);
    return colo_net_call(m, "checkpoint-begin", args, &epoch, error);
}

bool colo_net_commit(Migration *m, GError **error)
{
    Colo *co = m->colo;
    uint32_t epoch;

    if (!co->proxy) {
        return true;
    }
    if (!colo_net_call(m, "checkpoint-commit", NULL, &epoch, error)) {
        return false;
    }
    g_mutex_lock(&m->lock);
    co->proxy_epoch = epoch;
    /* A request from the epoch just committed is answered already. */
    if (co->requested && co->request_trigger >= COLO_TRIGGER_MISMATCH &&
        (int32_t)(co->request_epoch - epoch) < 0) {
        co->requested = false;
    }
    g_mutex_unlock(&m->lock);
    return true;
}

void colo_net_hold(Migration *m)
{
    Colo *co = m->colo;
    g_autoptr(GError) error = NULL;

    g_mutex_lock(&m->lock);
    ProxyClient *pc = co->proxy;
    bool primary = co->mode == COLO_MODE_PRIMARY;
    g_mutex_unlock(&m->lock);
    /* One that did not answer in time would only add its deadline before
     * colod hears of the break (and colod kills a hung proxy). */
    if (!pc || proxy_client_broken(pc) || co->proxy_silent) {
        return;
    }
    /* A secondary's proxy keeps its guest's answers from now on, for a
     * takeover, and tells the primary's to release nothing more on them
     * (docs/colo-proxy.md, "A primary whose colo-vmm died"). An older
     * colo-proxy does not know the command: nothing lost but that. */
    const char *command = primary ? "hold" : "primary-lost";
    g_autoptr(JsonObject) ret = proxy_client_call(pc, command, PROXY_CALL_MS, &error);
    if (!ret) {
        qb_log(LOG_WARNING, "COLO: colo-proxy's %s: %s", command, error->message);
    }
}

static void colo_net_disconnect(Migration *m, bool failover)
{
    Colo *co = m->colo;

    g_mutex_lock(&m->lock);
    ProxyClient *pc = co->proxy;
    g_mutex_unlock(&m->lock);
    if (!pc) {
        return;
    }
    if (failover) {
        g_autoptr(GError) error = NULL;
        /* The guest's output waits in its queues while the proxy changes
         * its rules: a secondary's, sent meanwhile, met the old DROP rule
         * after the proxy had stopped taking it from its capture, and was
         * lost (the client's retransmission, 200 ms and more). */
        m->host.ops->hold_network(m->host.vm);
        g_autoptr(JsonObject) ret = proxy_client_call(pc, "failover", PROXY_FAILOVER_MS, &error);
        m->host.ops->release_network(m->host.vm);
        if (ret) {
            qb_log(LOG_NOTICE, "COLO: colo-proxy failed over");
        } else {
            qb_log(LOG_ERR, "COLO: %s; the guest's traffic may stay held", error->message);
        }
        g_mutex_lock(&m->lock);
        co->proxy_failed_over = ret != NULL;
        g_mutex_unlock(&m->lock);
    }
    g_mutex_lock(&m->lock);
    co->proxy = NULL;
    g_mutex_unlock(&m->lock);
    proxy_client_free(pc);
}

void colo_net_leave(Migration *m)
{
    g_mutex_lock(&m->lock);
    bool failover = m->colo->failover;
    g_mutex_unlock(&m->lock);
    colo_net_disconnect(m, failover);
}

void colo_net_abandon(Migration *m)
{
    colo_net_disconnect(m, true);
}

JsonObject *colo_net_query_locked(const Colo *co)
{
    if (!co->proxy_path) {
        return NULL;
    }
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "path", co->proxy_path);
    json_object_set_boolean_member(o, "connected", co->proxy && !proxy_client_broken(co->proxy));
    json_object_set_int_member(o, "epoch", co->proxy_epoch);
    json_object_set_int_member(o, "requests", (gint64)co->proxy_requests);
    json_object_set_int_member(o, "requests-ignored", (gint64)co->proxy_stale);
    json_object_set_boolean_member(o, "failed-over", co->proxy_failed_over);
    return o;
}
