/* The primary's side of COLO: after the initial sync, the checkpoint loop.
 * Each checkpoint: REQUEST, wait for the secondary's REPLY (its guest is
 * paused), pause ours, send VMSTATE_SEND, the dirty pages, VMSTATE_SIZE
 * and the device state, wait for RECEIVED and LOADED, run on. */
#include "config.h"

#include "colo/colo-priv.h"

#include <errno.h>
#include <string.h>

#include <gio/gio.h>
#include <qb/qblog.h>

#include "colo/colo-disk.h"
#include "migration/multifd.h"

/* A secondary that does not answer within this long is taken as failed:
 * the primary's guest runs on instead of waiting for colod. */
#define COLO_ANSWER_TIMEOUT_US (10 * G_TIME_SPAN_SECOND)

/* The next message from the secondary, which must be @expect. */
static bool colo_wait_msg(Migration *m, uint32_t expect, uint64_t *value, GError **error)
{
    Colo *co = m->colo;
    gint64 deadline = g_get_monotonic_time() + COLO_ANSWER_TIMEOUT_US;
    const char *why = NULL;

    g_mutex_lock(&m->lock);
    while (!co->rp_count) {
        if (colo_should_stop_locked(co)) {
            why = "failover requested";
        } else if (m->src.rp_shut_status != -1) {
            why = "the return path broke";
        } else if (!g_cond_wait_until(&m->cond, &m->lock, deadline)) {
            why = "no answer from the secondary";
        }
        if (why) {
            g_mutex_unlock(&m->lock);
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "COLO: waiting for %s: %s",
                        colo_msg_name(expect), why);
            return false;
        }
    }
    uint32_t msg = co->rp_msg[0];
    *value = co->rp_value[0];
    co->rp_count--;
    memmove(co->rp_msg, co->rp_msg + 1, co->rp_count * sizeof(co->rp_msg[0]));
    memmove(co->rp_value, co->rp_value + 1, co->rp_count * sizeof(co->rp_value[0]));
    g_mutex_unlock(&m->lock);
    if (msg != expect) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "COLO: expected %s from the secondary, got %s",
                    colo_msg_name(expect), colo_msg_name(msg));
        return false;
    }
    return true;
}

/* Wait for the next checkpoint's trigger; false when COLO is to end.
 * *@gone: the return path broke meanwhile (the secondary died or left
 * COLO and shut the stream): no checkpoint, the loop waits for failover
 * now rather than at the next checkpoint. */
static bool colo_wait_trigger(Migration *m, gint64 *next, ColoTrigger *trigger, bool *gone)
{
    Colo *co = m->colo;
    bool go = false;

    g_mutex_lock(&m->lock);
    while (!colo_should_stop_locked(co)) {
        if (m->src.rp_shut_status != -1) {
            *gone = true;
            go = true;
            break;
        }
        if (co->requested) {
            co->requested = false;
            *trigger = co->request_trigger;
            go = true;
            break;
        }
        if (!g_cond_wait_until(&m->cond, &m->lock, *next)) {
            *trigger = COLO_TRIGGER_PERIODIC;
            go = true;
            break;
        }
    }
    g_mutex_unlock(&m->lock);
    return go;
}

/* One checkpoint. The primary's guest stands still only while its dirty
 * pages and device state are copied aside; it runs on while they travel,
 * with its network held (so nothing it sends after the copy leaves before
 * the secondary has loaded the copy). */
typedef struct {
    RamCapture ram;             /* the dirty pages of the checkpoint under way */
    ColoDiskPrimary disks;      /* the disk writes of its epoch */
} Capture;

static bool colo_checkpoint(Migration *m, ColoTrigger trigger, Capture *cap, GError **error)
{
    MigChannel *c = m->src.out;
    MultifdSend *ms = m->src.multifd;
    RamSave *rs = &m->src.ram;
    g_autofree uint8_t *state = NULL;
    uint64_t value, pages = 0, bytes0 = mig_bytes_written(c) + multifd_send_bytes(ms);
    uint32_t size = 0;
    bool ok = false;

    colo_put_msg(c, COLO_MSG_CHECKPOINT_REQUEST, 0);
    if (mig_flush(c) || !colo_wait_msg(m, COLO_MSG_CHECKPOINT_REPLY, &value, error)) {
        goto out;
    }
    /* The pause counts from the request to stop, not from when the last
     * vCPU has stopped: the first one may stop at once (an upper bound, as
     * QEMU's figure from the reply to vm_start). */
    gint64 paused = g_get_monotonic_time();
    colo_pause_guest(m);
    bool captured = ram_save_sync(rs, error);
    if (captured) {
        pages = ram_save_capture(rs, &cap->ram);
        colo_disk_capture(&cap->disks);
        state = migration_devices_chunk(m, 0, &size, error);
        captured = state != NULL;
    }
    if (captured) {
        m->host.ops->hold_network(m->host.vm);
    }
    colo_resume_guest(m);
    uint64_t pause_us = (uint64_t)(g_get_monotonic_time() - paused);
    if (!captured) {
        goto out;
    }
    /* The guest's output since the copy stays in the VMM (network held):
     * the proxy already has all of this epoch's, the guest need not wait. */
    ok = colo_net_checkpoint_begin(m, error);

    colo_put_msg(c, COLO_MSG_VMSTATE_SEND, 0);
    bool sent = true;
    if (ms) {
        sent = multifd_send_capture(ms, &cap->ram);
    } else {
        ram_capture_send(rs, &cap->ram, c);
    }
    colo_disk_send(&cap->disks, c);
    /* The secondary takes the device state only once every channel's
     * pages are in (and the copies may be reused only then). */
    sent = sent && (!ms || multifd_send_sync(ms, c));
    if (!sent && ok) {
        g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE, "COLO: a multifd channel broke");
        ok = false;
    }
    colo_put_msg(c, COLO_MSG_VMSTATE_SIZE, size);
    mig_put_bytes(c, state, size);
    ok = ok && sent && !mig_flush(c) && colo_wait_msg(m, COLO_MSG_VMSTATE_RECEIVED, &value, error) &&
         colo_wait_msg(m, COLO_MSG_VMSTATE_LOADED, &value, error) && colo_net_commit(m, error);
    /* The secondary holds this state now (or is gone), and the proxy sent
     * out this epoch's packets: what the guest sent since the copy may meet
     * the secondary's output. */
    m->host.ops->release_network(m->host.vm);
    if (ok) {
        colo_record(m, trigger, pause_us, pages, mig_bytes_written(c) + multifd_send_bytes(ms) - bytes0);
    }
out:
    if (!ok && error && !*error) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE, "COLO: the stream to the secondary: %s",
                    g_strerror(-mig_channel_error(c)));
    }
    return ok;
}

static gboolean main_colo_run_vm(gpointer opaque)
{
    Migration *m = opaque;

    /* The initial sync stopped it in finish-migrate: back to what it was. */
    m->src.vm_stopped = false;
    m->host.ops->set_run_state(m->host.vm, m->src.old_state);
    return G_SOURCE_REMOVE;
}

bool colo_primary_sync_begin(Migration *m, int64_t stopping_us, GError **error)
{
    colo_begin(m);
    /* Input that reached the guest's tap since the stop is not in the
     * copy: the secondary must get it, as after any checkpoint's copy.
     * Until COLO runs, its proxy keeps it in its guest's tap. */
    return colo_net_connect(m, COLO_MODE_PRIMARY, error) && colo_net_sync_begin(m, stopping_us, error);
}

void colo_primary_abandon(Migration *m)
{
    colo_net_abandon(m);
}

bool colo_primary_run(Migration *m, GError **error)
{
    Colo *co = m->colo;
    uint64_t value;

    if (!colo_wait_msg(m, COLO_MSG_CHECKPOINT_READY, &value, error)) {
        return false;
    }
    /* Checkpoints are the latency path of every held packet: no limit. */
    mig_set_rate_limit(m->src.out, 0);
    multifd_send_set_rate_limit(m->src.multifd, 0);
    /* The guest still stands still: the disks' copy is complete, from now
     * on their writes go with the checkpoints. */
    Capture cap = { 0 };
    disk_save_cleanup(&m->src.disks);
    colo_disk_primary_start(&cap.disks, m->host.disks);
    /* For the proxy the initial sync is a checkpoint (its begin was at the
     * stop, colo_primary_sync_begin): what the guest sent before it
     * stopped is in the secondary now. */
    g_autoptr(GError) net_error = NULL;
    bool net_ok = colo_net_commit(m, &net_error);
    migration_call_main(m, main_colo_run_vm);
    colo_enter(m, COLO_MODE_PRIMARY);   /* both guests run now */
    if (!net_ok) {
        colo_wait_failover(m, net_error->message);
    }

    while (net_ok) {
        gint64 next = g_get_monotonic_time() + (gint64)m->params.x_checkpoint_delay * G_TIME_SPAN_MILLISECOND;
        ColoTrigger trigger;
        bool gone = false;
        g_autoptr(GError) local = NULL;

        if (!colo_wait_trigger(m, &next, &trigger, &gone)) {
            break;
        }
        if (gone) {
            colo_wait_failover(m, "the secondary is gone (its return path broke)");
            break;
        }
        if (!colo_checkpoint(m, trigger, &cap, &local)) {
            g_mutex_lock(&m->lock);
            bool stop = colo_should_stop_locked(co);
            g_mutex_unlock(&m->lock);
            if (!stop) {
                colo_wait_failover(m, local->message);
            }
            break;
        }
    }
    ram_capture_free(&cap.ram);
    colo_disk_primary_stop(&cap.disks);
    colo_leave(m);
    return true;
}
