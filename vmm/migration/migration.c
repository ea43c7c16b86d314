/* Migration state shared by both directions: statuses and their events,
 * query-migrate, the hand-off to the main thread. */
#include "config.h"

#include "migration/migration.h"

#include <string.h>
#include <unistd.h>

#include <gio/gio.h>
#include <qb/qblog.h>

#include "migration/migration-priv.h"
#include "migration/multifd.h"
#include "migration/owner.h"
#include "migration/postcopy.h"
#include "migration/snapshot.h"
#include "colo/colo.h"
#include "common/peer-filter.h"
#include "common/tls.h"
#include "migration/mig-tls.h"

static const char *const mig_status_names[] = {
    [MIG_STATUS_NONE] = "none",
    [MIG_STATUS_SETUP] = "setup",
    [MIG_STATUS_CANCELLING] = "cancelling",
    [MIG_STATUS_CANCELLED] = "cancelled",
    [MIG_STATUS_ACTIVE] = "active",
    [MIG_STATUS_POSTCOPY_ACTIVE] = "postcopy-active",
    [MIG_STATUS_POSTCOPY_PAUSED] = "postcopy-paused",
    [MIG_STATUS_COMPLETED] = "completed",
    [MIG_STATUS_FAILED] = "failed",
    [MIG_STATUS_DEVICE] = "device",
    [MIG_STATUS_COLO] = "colo",
};

const char *mig_status_name(MigStatus s)
{
    return mig_status_names[s];
}

Migration *migration_new(const MigrationHost *host)
{
    Migration *m = g_new0(Migration, 1);

    m->host = *host;
    g_mutex_init(&m->lock);
    g_mutex_init(&m->dst.rp_lock);
    g_cond_init(&m->cond);
    m->params.max_bandwidth = 128ULL << 20;
    m->params.downtime_limit = 300;
    m->params.multifd_channels = 2;
    m->params.max_postcopy_bandwidth = 0;
    m->params.x_checkpoint_delay = 20000;
    m->params.x_snapshot_copy_limit = 64ULL << 20;
    m->dst.listen_fd = -1;
    m->src.rp_shut_status = -1;
    m->colo = colo_new();
    m->tls = mig_tls_new();
    return m;
}

void migration_free(Migration *m)
{
    if (!m) {
        return;
    }
    migration_cancel(m);
    colo_quit(m);
    if (m->src.thread) {
        /* The thread may still need the main loop (to restart the VM). */
        while (!g_atomic_int_get(&m->src.thread_done)) {
            g_main_context_iteration(m->host.ctx, FALSE);
            g_usleep(1000);
        }
        g_thread_join(m->src.thread);
    }
    migration_incoming_cleanup(m);
    postcopy_free(m->postcopy, m->host.mem);
    snapshot_free(m->src.snapshot);
    mig_channel_free(m->src.out);
    mig_channel_free(m->src.rp);
    g_free(m->src.uri);
    g_free(m->src.error);
    g_free(m->dst.error);
    colo_peer_filter_free(m->dst.allowed_peer);
    colo_free(m->colo);
    colo_tls_creds_unref(m->src.tls);
    g_free(m->src.tls_hostname);
    mig_owner_free(m->src.owner);
    mig_tls_free(m->tls);
    g_cond_clear(&m->cond);
    g_mutex_clear(&m->dst.rp_lock);
    g_mutex_clear(&m->lock);
    g_free(m);
}

/* A finished outgoing migration leaves its channels and thread behind;
 * the next migrate starts from a clean slate. */
void migration_reset_outgoing(Migration *m)
{
    if (m->src.thread) {
        g_thread_join(m->src.thread);
        m->src.thread = NULL;
    }
    g_mutex_lock(&m->lock);
    mig_channel_free(m->src.out);
    mig_channel_free(m->src.rp);
    m->src.out = m->src.rp = NULL;
    postcopy_free(m->postcopy, m->host.mem);
    m->postcopy = NULL;
    g_clear_pointer(&m->src.snapshot, snapshot_free);
    g_clear_pointer(&m->src.uri, g_free);
    g_clear_pointer(&m->src.error, g_free);
    g_clear_pointer(&m->src.tls, colo_tls_creds_unref);
    g_clear_pointer(&m->src.tls_hostname, g_free);
    g_clear_pointer(&m->src.owner, mig_owner_free);
    g_atomic_int_set(&m->src.cancel, 0);
    g_atomic_int_set(&m->src.postcopy_requested, 0);
    m->src.rp_shut_status = -1;
    m->src.total_ms = m->src.downtime_ms = m->src.setup_us = 0;
    m->src.mbps_bits = 0;
    memset(&m->src.ram, 0, sizeof(m->src.ram));
    g_mutex_unlock(&m->lock);
}

void migration_emit_status(Migration *m, MigStatus status)
{
    if (!m->caps.events) {
        return;
    }
    JsonObject *data = json_object_new();
    json_object_set_string_member(data, "status", mig_status_name(status));
    m->host.ops->emit_event(m->host.vm, "MIGRATION", data);
}

void migration_set_status(Migration *m, MigStatus status)
{
    g_mutex_lock(&m->lock);
    m->src.status = status;
    g_cond_broadcast(&m->cond);
    g_mutex_unlock(&m->lock);
    migration_emit_status(m, status);
}

void migration_set_error(Migration *m, const char *message)
{
    g_mutex_lock(&m->lock);
    g_free(m->src.error);
    m->src.error = g_strdup(message);
    g_mutex_unlock(&m->lock);
}

typedef struct {
    Migration *m;
    GSourceFunc fn;
    GMutex lock;
    GCond cond;
    bool done;
} MainCall;

static gboolean main_call_run(gpointer opaque)
{
    MainCall *call = opaque;

    call->fn(call->m);
    g_mutex_lock(&call->lock);
    call->done = true;
    g_cond_signal(&call->cond);
    g_mutex_unlock(&call->lock);
    return G_SOURCE_REMOVE;
}

void migration_call_main(Migration *m, GSourceFunc fn)
{
    MainCall call = { .m = m, .fn = fn };

    g_mutex_init(&call.lock);
    g_cond_init(&call.cond);
    g_main_context_invoke(m->host.ctx, main_call_run, &call);
    g_mutex_lock(&call.lock);
    while (!call.done) {
        g_cond_wait(&call.cond, &call.lock);
    }
    g_mutex_unlock(&call.lock);
    g_cond_clear(&call.cond);
    g_mutex_clear(&call.lock);
}

static JsonObject *migration_query_ram(const RamStats *st, uint64_t remaining, uint64_t total,
                                       uint64_t mbps_bits)
{
    JsonObject *ram = json_object_new();

    json_object_set_int_member(ram, "transferred", (gint64)st->transferred);
    json_object_set_int_member(ram, "remaining", (gint64)remaining);
    json_object_set_int_member(ram, "total", (gint64)total);
    json_object_set_int_member(ram, "duplicate", (gint64)st->duplicate);
    json_object_set_int_member(ram, "normal", (gint64)st->normal);
    json_object_set_int_member(ram, "normal-bytes", (gint64)(st->normal * GUEST_PAGE_SIZE));
    json_object_set_int_member(ram, "dirty-sync-count", (gint64)st->dirty_sync_count);
    json_object_set_int_member(ram, "postcopy-requests", (gint64)st->postcopy_requests);
    json_object_set_int_member(ram, "page-size", GUEST_PAGE_SIZE);
    json_object_set_double_member(ram, "mbps", (double)mbps_bits / 1e6);
    return ram;
}

/* query-migrate: the outgoing migration if there is one, else the incoming. */
JsonObject *migration_query(Migration *m)
{
    JsonObject *ret = json_object_new();

    g_mutex_lock(&m->lock);
    MigStatus status = m->src.status != MIG_STATUS_NONE ? m->src.status : m->dst.status;
    if (status == MIG_STATUS_NONE) {
        g_mutex_unlock(&m->lock);
        return ret;     /* QEMU answers {} before any migration */
    }
    json_object_set_string_member(ret, "status", mig_status_name(status));
    if (m->src.status != MIG_STATUS_NONE) {
        bool finished = status == MIG_STATUS_COMPLETED || status == MIG_STATUS_FAILED ||
                        status == MIG_STATUS_CANCELLED;
        int64_t total = finished ? m->src.total_ms : (g_get_monotonic_time() - m->src.start_us) / 1000;
        RamStats st = m->src.ram.stats;
        if (m->src.out && !finished) {
            st.transferred = mig_bytes_written(m->src.out) + multifd_send_bytes(m->src.multifd);
        }
        json_object_set_int_member(ret, "total-time", total);
        json_object_set_int_member(ret, "setup-time", m->src.setup_us / 1000);
        if (status == MIG_STATUS_COMPLETED) {
            json_object_set_int_member(ret, "downtime", m->src.downtime_ms);
        } else if (!finished) {
            json_object_set_int_member(ret, "expected-downtime", (gint64)m->params.downtime_limit);
        }
        json_object_set_object_member(ret, "ram",
            migration_query_ram(&st, ram_save_remaining(&m->src.ram) * GUEST_PAGE_SIZE,
                                guest_memory_total_size(m->host.mem), m->src.mbps_bits));
        if (m->src.error && status == MIG_STATUS_FAILED) {
            json_object_set_string_member(ret, "error-desc", m->src.error);
        }
        migration_query_postcopy(m, ret);
        snapshot_query_locked(m, ret);
    } else {
        if (m->dst.error && status == MIG_STATUS_FAILED) {
            json_object_set_string_member(ret, "error-desc", m->dst.error);
        }
        json_object_set_object_member(ret, "ram",
            migration_query_ram(&m->dst.stats, 0, guest_memory_total_size(m->host.mem), 0));
        migration_query_postcopy(m, ret);
    }
    g_mutex_unlock(&m->lock);
    return ret;
}

bool migration_allows_memory_hotplug(Migration *m, GError **error)
{
    g_mutex_lock(&m->lock);
    MigStatus out = m->src.status, in = m->dst.status;
    g_mutex_unlock(&m->lock);

    if (out == MIG_STATUS_COLO || in == MIG_STATUS_COLO) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY,
                    "memory hotplug is not possible in COLO (leave COLO, add the DIMM, protect again)");
        return false;
    }
    if (m->host.ops->run_state(m->host.vm) == RUN_STATE_INMIGRATE || in == MIG_STATUS_SETUP || in == MIG_STATUS_ACTIVE ||
        in == MIG_STATUS_POSTCOPY_ACTIVE || in == MIG_STATUS_POSTCOPY_PAUSED) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY,
                    "memory hotplug is not possible while an incoming migration is loading");
        return false;
    }
    if (m->src.vm_stopped || out == MIG_STATUS_DEVICE || out == MIG_STATUS_POSTCOPY_ACTIVE ||
        out == MIG_STATUS_POSTCOPY_PAUSED || out == MIG_STATUS_CANCELLING) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY,
                    "memory hotplug is not possible while the migration is in status '%s' "
                    "(precopy takes added RAM along; postcopy and the final phase do not)",
                    mig_status_name(m->src.vm_stopped && out == MIG_STATUS_ACTIVE ? MIG_STATUS_DEVICE : out));
        return false;
    }
    return true;
}
