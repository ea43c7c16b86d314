/* COLO state shared by both sides: mode, failover, metrics, query-colo-status
 * and COLO_EXIT. */
#include "config.h"

#include "colo/colo-priv.h"

#include <string.h>

#include <gio/gio.h>
#include <qb/qblog.h>

#include "common/qmp/qmp-server.h"
#include "migration/multifd.h"
#include "migration/snapshot.h"

static const char *const colo_mode_names[] = {
    [COLO_MODE_NONE] = "none",
    [COLO_MODE_PRIMARY] = "primary",
    [COLO_MODE_SECONDARY] = "secondary",
};

static const char *const colo_reason_names[] = {
    [COLO_EXIT_NONE] = "none",
    [COLO_EXIT_REQUEST] = "request",
    [COLO_EXIT_ERROR] = "error",
    [COLO_EXIT_PROCESSING] = "processing",
};

static const char *const colo_trigger_names[] = {
    [COLO_TRIGGER_PERIODIC] = "periodic",
    [COLO_TRIGGER_REQUEST] = "request",
    [COLO_TRIGGER_MISMATCH] = "mismatch",
    [COLO_TRIGGER_STALE] = "stale",
    [COLO_TRIGGER_QUEUE_FULL] = "queue-full",
};

static const char *const colo_msg_names[] = {
    [COLO_MSG_CHECKPOINT_READY] = "checkpoint-ready",
    [COLO_MSG_CHECKPOINT_REQUEST] = "checkpoint-request",
    [COLO_MSG_CHECKPOINT_REPLY] = "checkpoint-reply",
    [COLO_MSG_VMSTATE_SEND] = "vmstate-send",
    [COLO_MSG_VMSTATE_SIZE] = "vmstate-size",
    [COLO_MSG_VMSTATE_RECEIVED] = "vmstate-received",
    [COLO_MSG_VMSTATE_LOADED] = "vmstate-loaded",
};

const char *colo_msg_name(uint32_t msg)
{
    return msg < COLO_MSG_MAX ? colo_msg_names[msg] : "unknown";
}

Colo *colo_new(void)
{
    return g_new0(Colo, 1);
}

void colo_free(Colo *co)
{
    if (co) {
        g_free(co->proxy_path);
    }
    g_free(co);
}

void colo_set_proxy(Migration *m, const char *path)
{
    g_free(m->colo->proxy_path);
    m->colo->proxy_path = g_strdup(path);
}

void colo_put_msg(MigChannel *c, uint32_t msg, uint64_t value)
{
    mig_put_u8(c, MIG_REC_COMMAND);
    mig_put_be16(c, MIG_CMD_COLO);
    mig_put_be16(c, COLO_MSG_LEN);
    mig_put_be32(c, msg);
    mig_put_be64(c, value);
}

void colo_rp_send(Migration *m, uint32_t msg, uint64_t value)
{
    uint8_t p[COLO_MSG_LEN];
    uint32_t be32 = GUINT32_TO_BE(msg);
    uint64_t be64 = GUINT64_TO_BE(value);

    memcpy(p, &be32, 4);
    memcpy(p + 4, &be64, 8);
    migration_rp_send(m, MIG_RP_COLO, p, sizeof(p));
}

bool colo_rp_message(Migration *m, const uint8_t *payload, uint16_t len)
{
    Colo *co = m->colo;
    uint32_t msg;
    uint64_t value;

    if (len != COLO_MSG_LEN || !co) {
        return false;
    }
    memcpy(&msg, payload, 4);
    memcpy(&value, payload + 4, 8);
    msg = GUINT32_FROM_BE(msg);
    value = GUINT64_FROM_BE(value);
    /* Only what a secondary sends; at most a checkpoint's worth may wait. */
    if (msg != COLO_MSG_CHECKPOINT_READY && msg != COLO_MSG_CHECKPOINT_REPLY &&
        msg != COLO_MSG_VMSTATE_RECEIVED && msg != COLO_MSG_VMSTATE_LOADED) {
        qb_log(LOG_ERR, "COLO: the secondary sent %s (%u) on the return path", colo_msg_name(msg), msg);
        return false;
    }
    g_mutex_lock(&m->lock);
    bool room = co->rp_count < G_N_ELEMENTS(co->rp_msg);
    if (room) {
        co->rp_msg[co->rp_count] = msg;
        co->rp_value[co->rp_count] = value;
        co->rp_count++;
        g_cond_broadcast(&m->cond);
    }
    g_mutex_unlock(&m->lock);
    if (!room) {
        qb_log(LOG_ERR, "COLO: the secondary sent more messages than a checkpoint has");
    }
    return room;
}

void colo_begin(Migration *m)
{
    Colo *co = m->colo;

    /* A survivor protected again starts a new COLO: nothing of the last.
     * The return path's queue was emptied before the stream began
     * (colo_rp_reset): the secondary's checkpoint-ready may be in it. */
    g_mutex_lock(&m->lock);
    co->failover = co->broken = co->requested = false;
    g_mutex_unlock(&m->lock);
}

void colo_rp_reset(Migration *m)
{
    g_mutex_lock(&m->lock);
    m->colo->rp_count = 0;
    g_mutex_unlock(&m->lock);
}

void colo_enter(Migration *m, ColoMode mode)
{
    g_mutex_lock(&m->lock);
    m->colo->mode = mode;
    m->colo->reason = COLO_EXIT_NONE;
    g_mutex_unlock(&m->lock);
    if (mode == COLO_MODE_PRIMARY) {
        migration_set_status(m, MIG_STATUS_COLO);
    } else {
        migration_incoming_set_status(m, MIG_STATUS_COLO);
    }
    qb_log(LOG_NOTICE, "COLO: %s", colo_mode_names[mode]);
}

void colo_leave(Migration *m)
{
    Colo *co = m->colo;

    g_mutex_lock(&m->lock);
    ColoMode mode = co->mode;
    co->last_mode = mode;
    co->mode = COLO_MODE_NONE;
    co->reason = co->failover ? COLO_EXIT_REQUEST : COLO_EXIT_ERROR;
    ColoExitReason reason = co->reason;
    g_mutex_unlock(&m->lock);

    colo_net_leave(m);
    qb_log(LOG_NOTICE, "COLO: %s leaves COLO (%s)", colo_mode_names[mode], colo_reason_names[reason]);
    JsonObject *data = json_object_new();
    json_object_set_string_member(data, "mode", colo_mode_names[mode]);
    json_object_set_string_member(data, "reason", colo_reason_names[reason]);
    m->host.ops->emit_event(m->host.vm, "COLO_EXIT", data);
}

bool colo_should_stop_locked(const Colo *co)
{
    return co->failover || co->quit;
}

void colo_wait_failover(Migration *m, const char *why)
{
    Colo *co = m->colo;
    JsonObject *data = json_object_new();

    qb_log(LOG_ERR, "COLO: %s; the guest runs on unprotected until x-colo-lost-heartbeat", why);
    colo_net_hold(m);
    g_mutex_lock(&m->lock);
    co->broken = true;
    json_object_set_string_member(data, "mode", colo_mode_names[co->mode]);
    g_mutex_unlock(&m->lock);
    /* colod decides the failover: at once, not at its next poll of
     * query-colo-status (the primary's proxy holds the guest's output
     * meanwhile). */
    json_object_set_string_member(data, "reason", why);
    m->host.ops->emit_event(m->host.vm, "COLO_BROKEN", data);
    g_mutex_lock(&m->lock);
    while (!colo_should_stop_locked(co)) {
        g_cond_wait(&m->cond, &m->lock);
    }
    g_mutex_unlock(&m->lock);
}

/* Straight from the COLO thread: a detour through the main loop would put
 * two thread wake-ups on each side of every checkpoint's pause. */
void colo_pause_guest(Migration *m)
{
    m->host.ops->pause_vcpus(m->host.vm);
}

void colo_resume_guest(Migration *m)
{
    m->host.ops->resume_vcpus(m->host.vm);
}

void colo_record(Migration *m, ColoTrigger trigger, uint64_t pause_us, uint64_t pages,
                        uint64_t bytes)
{
    Colo *co = m->colo;

    g_mutex_lock(&m->lock);
    co->pause_us[co->count % COLO_PAUSE_SAMPLES] = (uint32_t)MIN(pause_us, (uint64_t)UINT32_MAX);
    co->count++;
    if (trigger < COLO_TRIGGER__MAX) {
        co->by_trigger[trigger]++;
    }
    co->pause_last_us = pause_us;
    co->pause_max_us = MAX(co->pause_max_us, pause_us);
    co->last_pages = pages;
    co->last_bytes = bytes;
    uint64_t count = co->count;
    g_mutex_unlock(&m->lock);

    /* One small event per checkpoint, for colod and for measuring. */
    JsonObject *data = json_object_new();
    json_object_set_int_member(data, "count", (gint64)count);
    json_object_set_int_member(data, "pause-us", (gint64)pause_us);
    json_object_set_int_member(data, "pages", (gint64)pages);
    json_object_set_int_member(data, "bytes", (gint64)bytes);
    if (trigger < COLO_TRIGGER__MAX) {
        json_object_set_string_member(data, "reason", colo_trigger_names[trigger]);
    }
    m->host.ops->emit_event(m->host.vm, "COLO_CHECKPOINT", data);
}

/* ---- QMP ------------------------------------------------------------------ */

/* No thread may wait on a dead peer: whatever it blocks on ends now. */
static void colo_shutdown_channels(Migration *m)
{
    g_mutex_lock(&m->lock);
    if (m->src.out) {
        mig_channel_shutdown(m->src.out, ECANCELED);
    }
    if (m->src.rp) {
        mig_channel_shutdown(m->src.rp, ECANCELED);
    }
    multifd_send_shutdown(m->src.multifd, ECANCELED);
    MultifdRecv *mr = m->dst.multifd;
    g_mutex_unlock(&m->lock);
    if (m->dst.in) {
        mig_channel_shutdown(m->dst.in, ECANCELED);
    }
    multifd_recv_shutdown(mr);
}

bool colo_lost_heartbeat(Migration *m, GError **error)
{
    Colo *co = m->colo;

    g_mutex_lock(&m->lock);
    bool in_colo = co && co->mode != COLO_MODE_NONE;
    bool unusable = in_colo && co->unusable;
    if (in_colo && !unusable) {
        co->failover = true;
        g_cond_broadcast(&m->cond);
    }
    g_mutex_unlock(&m->lock);
    if (!in_colo) {
        g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC, "VM is not in COLO mode");
        return false;
    }
    if (unusable) {
        g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                    "this secondary cannot take over: a checkpoint failed halfway through its commit "
                    "and its guest is neither its own state nor the primary's");
        return false;
    }
    colo_shutdown_channels(m);
    qb_log(LOG_NOTICE, "COLO: failover requested (x-colo-lost-heartbeat)");
    return true;
}

bool colo_request_checkpoint(Migration *m, GError **error)
{
    Colo *co = m->colo;

    g_mutex_lock(&m->lock);
    bool primary = co && co->mode == COLO_MODE_PRIMARY;
    if (primary && !co->requested) {
        co->requested = true;
        co->request_trigger = COLO_TRIGGER_REQUEST;
        g_cond_broadcast(&m->cond);
    }
    g_mutex_unlock(&m->lock);
    if (!primary) {
        g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC, "VM is not the COLO primary");
    }
    return primary;
}

void colo_quit(Migration *m)
{
    if (!m->colo) {
        return;
    }
    g_mutex_lock(&m->lock);
    m->colo->quit = true;
    bool in_colo = m->colo->mode != COLO_MODE_NONE;
    g_cond_broadcast(&m->cond);
    g_mutex_unlock(&m->lock);
    if (in_colo) {
        /* The loop may be blocked writing to a peer that reads no more. */
        colo_shutdown_channels(m);
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static JsonObject *colo_query_checkpoints(const Colo *co)
{
    JsonObject *o = json_object_new();
    size_t n = MIN(co->count, (uint64_t)COLO_PAUSE_SAMPLES);
    uint32_t sorted[COLO_PAUSE_SAMPLES];

    memcpy(sorted, co->pause_us, n * sizeof(uint32_t));
    qsort(sorted, n, sizeof(uint32_t), cmp_u32);
    json_object_set_int_member(o, "count", (gint64)co->count);
    JsonObject *pause = json_object_new();
    json_object_set_int_member(pause, "p50", n ? sorted[(n - 1) / 2] : 0);
    json_object_set_int_member(pause, "p99", n ? sorted[(n * 99 + 99) / 100 - 1] : 0);
    json_object_set_int_member(pause, "max", (gint64)co->pause_max_us);
    json_object_set_int_member(pause, "last", (gint64)co->pause_last_us);
    json_object_set_object_member(o, "pause-us", pause);
    json_object_set_int_member(o, "last-pages", (gint64)co->last_pages);
    json_object_set_int_member(o, "last-bytes", (gint64)co->last_bytes);
    JsonObject *reasons = json_object_new();
    for (unsigned i = 0; i < COLO_TRIGGER__MAX; i++) {
        json_object_set_int_member(reasons, colo_trigger_names[i], (gint64)co->by_trigger[i]);
    }
    json_object_set_object_member(o, "reasons", reasons);
    return o;
}

JsonObject *colo_query(Migration *m)
{
    JsonObject *ret = json_object_new();
    Colo none = { 0 };

    g_mutex_lock(&m->lock);
    const Colo *co = m->colo ? m->colo : &none;
    json_object_set_string_member(ret, "mode", colo_mode_names[co->mode]);
    json_object_set_string_member(ret, "last-mode", colo_mode_names[co->last_mode]);
    json_object_set_string_member(ret, "reason", colo_reason_names[co->reason]);
    json_object_set_boolean_member(ret, "x-broken", co->broken);
    json_object_set_boolean_member(ret, "x-unusable", co->unusable);
    json_object_set_object_member(ret, "checkpoints", colo_query_checkpoints(co));
    /* A snapshot protect under way or done: COLO protects only from its
     * first checkpoint on (mode "primary"). */
    snapshot_query_locked(m, ret);
    JsonObject *proxy = colo_net_query_locked(co);
    if (proxy) {
        json_object_set_object_member(ret, "proxy", proxy);
    }
    g_mutex_unlock(&m->lock);
    return ret;
}
