/* The source side: the migration thread, from connect to completion. */
#include "config.h"

#include "migration/migration.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gio/gio.h>
#include <qb/qblog.h>

#include "colo/colo.h"
#include "migration/disk.h"
#include "migration/format.h"
#include "migration/mig-tls.h"
#include "migration/owner.h"
#include "common/tls.h"
#include "migration/migration-priv.h"
#include "migration/multifd.h"
#include "migration/snapshot.h"
#include "migration/transport.h"

/* Pages sent between checks of cancel and of a switch to postcopy: at most
 * about 50 ms worth at the bandwidth limit, so either is seen quickly. */
#define PASS_CHUNK_PAGES 4096
#define PASS_CHUNK_MIN   16

static uint64_t outgoing_chunk_pages(const Migration *m)
{
    uint64_t bw = m->params.max_bandwidth;

    if (!bw) {
        return PASS_CHUNK_PAGES;
    }
    return CLAMP(bw / 20 / GUEST_PAGE_SIZE, PASS_CHUNK_MIN, PASS_CHUNK_PAGES);
}

static bool outgoing_cancelled(Migration *m)
{
    return g_atomic_int_get(&m->src.cancel) != 0;
}

/* ---- device state -------------------------------------------------------- */

/* Every device section, then whether the guest was running. */
bool migration_save_devices(Migration *m, MigChannel *c, GError **error)
{
    const VmStateRegistry *reg = m->host.vmstate;

    for (guint i = 0; i < reg->entries->len; i++) {
        const VmStateEntry *e = &g_array_index(reg->entries, VmStateEntry, i);
        g_autoptr(GByteArray) buf = g_byte_array_new();
        StateWriter w = { buf };
        if (!e->ops->save(e->opaque, &w, error)) {
            g_prefix_error(error, "saving %s/%u: ", e->ops->id, e->instance);
            return false;
        }
        size_t idlen = strlen(e->ops->id);
        mig_put_u8(c, MIG_REC_DEVICE);
        mig_put_u8(c, (uint8_t)idlen);
        mig_put_bytes(c, e->ops->id, idlen);
        mig_put_be32(c, e->instance);
        mig_put_be32(c, e->ops->version);
        mig_put_be32(c, buf->len);
        mig_put_bytes(c, buf->data, buf->len);
    }
    mig_put_u8(c, MIG_REC_COMMAND);
    mig_put_be16(c, MIG_CMD_RUN_STATE);
    mig_put_be16(c, 1);
    mig_put_u8(c, m->src.was_running);
    return true;
}

uint8_t *migration_devices_chunk(Migration *m, uint16_t last_cmd, uint32_t *size, GError **error)
{
    /* Written through a channel like any stream, into memory. */
    int fd = memfd_create("colo-devices", MFD_CLOEXEC);

    if (fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "device state: %s", g_strerror(errno));
        return NULL;
    }
    MigChannel *pc = mig_channel_new(fd);
    uint8_t *buf = NULL;
    off_t len = -1;
    if (migration_save_devices(m, pc, error)) {
        if (last_cmd) {
            mig_put_u8(pc, MIG_REC_COMMAND);
            mig_put_be16(pc, last_cmd);
            mig_put_be16(pc, 0);
        }
        mig_put_u8(pc, MIG_REC_EOF);
        if (mig_flush(pc) == 0) {
            len = lseek(fd, 0, SEEK_END);
        }
        if (len < 0 || (uint64_t)len > MIG_MAX_PACKAGE) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "device state: %s",
                        len < 0 ? "cannot write it" : "too large");
        } else {
            buf = g_malloc((size_t)len + 1);
            if (pread(fd, buf, (size_t)len, 0) != len) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "device state: cannot read it back");
                g_clear_pointer(&buf, g_free);
            }
        }
    }
    mig_channel_free(pc);
    *size = (uint32_t)len;
    return buf;
}

/* ---- main-thread actions ------------------------------------------------- */

static gboolean main_stop_vm(gpointer opaque)
{
    Migration *m = opaque;
    const MigrationHost *h = &m->host;

    m->src.old_state = h->ops->run_state(h->vm);
    m->src.was_running = run_state_is_running(m->src.old_state);
    m->src.vm_stopped = true;
    /* Whatever it was (running, paused, prelaunch): finish-migrate, where
     * nothing may run it until the migration has ended. */
    h->ops->stop_force_state(h->vm, RUN_STATE_FINISH_MIGRATE);
    return G_SOURCE_REMOVE;
}

void migration_stop_vm(Migration *m)
{
    migration_call_main(m, main_stop_vm);
}

static gboolean main_after_failure(gpointer opaque)
{
    Migration *m = opaque;

    m->src.vm_stopped = false;
    m->host.ops->set_run_state(m->host.vm, m->src.old_state);
    return G_SOURCE_REMOVE;
}

static gboolean main_after_completion(gpointer opaque)
{
    Migration *m = opaque;

    m->src.vm_stopped = false;
    /* The guest lives on the destination now: stay stopped, as QEMU. */
    m->host.ops->set_run_state(m->host.vm, RUN_STATE_POSTMIGRATE);
    return G_SOURCE_REMOVE;
}

/* ---- the return path, source side ---------------------------------------- */

static gpointer rp_thread(gpointer opaque)
{
    Migration *m = opaque;
    MigChannel *c = m->src.rp;

    if (m->caps.postcopy_ram) {
        postcopy_thread_urgent();
    }
    while (!mig_channel_error(c)) {
        uint16_t type = mig_get_be16(c);
        uint16_t len = mig_get_be16(c);
        uint8_t payload[UINT16_MAX];

        mig_get_bytes(c, payload, len);
        if (mig_channel_error(c)) {
            break;
        }
        switch (type) {
        case MIG_RP_SHUT:
            if (len != 4) {
                goto bad;
            }
            g_mutex_lock(&m->lock);
            m->src.rp_shut_status = (gint)GUINT32_FROM_BE(*(uint32_t *)payload);
            g_cond_broadcast(&m->cond);
            g_mutex_unlock(&m->lock);
            return NULL;
        case MIG_RP_PONG:
            if (len != 4) {
                goto bad;
            }
            g_mutex_lock(&m->lock);
            m->src.rp_pong = GUINT32_FROM_BE(*(uint32_t *)payload);
            g_cond_broadcast(&m->cond);
            g_mutex_unlock(&m->lock);
            break;
        case MIG_RP_REQ_PAGES:
            if (!migration_postcopy_serve_request(m, payload, len)) {
                goto bad;
            }
            break;
        case MIG_RP_COLO:
            if (!colo_rp_message(m, payload, len)) {
                goto bad;
            }
            break;
        default:
            goto bad;
        }
    }
    goto out;
bad:
    qb_log(LOG_ERR, "migration: malformed message on the return path; giving up on it");
    mig_channel_set_error(c, EPROTO);
out:
    g_mutex_lock(&m->lock);
    if (m->src.rp_shut_status < 0) {
        m->src.rp_shut_status = -2;     /* the path broke before SHUT */
    }
    g_cond_broadcast(&m->cond);
    g_mutex_unlock(&m->lock);
    return NULL;
}

bool migration_wait_shut(Migration *m, GError **error)
{
    gint64 deadline = g_get_monotonic_time() + 60 * G_TIME_SPAN_SECOND;
    gint status;

    g_mutex_lock(&m->lock);
    while (m->src.rp_shut_status == -1 && !outgoing_cancelled(m) &&
           g_cond_wait_until(&m->cond, &m->lock, deadline)) {
    }
    status = m->src.rp_shut_status;
    g_mutex_unlock(&m->lock);
    if (status == 0) {
        return true;
    }
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s",
                status == -1 ? "no answer from the destination" :
                status == -2 ? "the return path broke before the destination answered" :
                "the destination failed to load the migration stream");
    return false;
}

/* ---- the thread ---------------------------------------------------------- */

static uint64_t outgoing_bandwidth(Migration *m, uint64_t bytes, int64_t us)
{
    if (us <= 0 || bytes == 0) {
        return m->params.max_bandwidth ? m->params.max_bandwidth : 1ULL << 30;
    }
    return bytes * G_USEC_PER_SEC / (uint64_t)us;
}

/* PING on the main stream and wait for its PONG: the destination has
 * loaded everything before it. */
static bool outgoing_ping_wait(Migration *m, GError **error)
{
    uint32_t value = ++m->src.ping_seq;
    gint64 deadline = g_get_monotonic_time() + 60 * G_TIME_SPAN_SECOND;

    mig_put_u8(m->src.out, MIG_REC_COMMAND);
    mig_put_be16(m->src.out, MIG_CMD_PING);
    mig_put_be16(m->src.out, 4);
    mig_put_be32(m->src.out, value);
    if (mig_flush(m->src.out)) {
        return false;
    }
    g_mutex_lock(&m->lock);
    while (m->src.rp_pong != value && m->src.rp_shut_status == -1 && !outgoing_cancelled(m) &&
           g_cond_wait_until(&m->cond, &m->lock, deadline)) {
    }
    bool ok = m->src.rp_pong == value;
    g_mutex_unlock(&m->lock);
    if (!ok) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "the destination did not confirm it loaded the stream so far");
    }
    return ok;
}

/* Refresh the dirty bitmap. With multifd, first make sure every page sent
 * so far has landed, since the next pass may resend one on another channel.
 * RAM added meanwhile is described on the main stream first; multifd pages
 * of it wait until the destination has it (their channels do not wait for
 * the main stream). */
static bool outgoing_sync(Migration *m, GError **error)
{
    if (m->src.multifd && !multifd_send_sync(m->src.multifd, m->src.out)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE, "a multifd channel broke");
        return false;
    }
    if (!ram_save_sync(&m->src.ram, error)) {
        return false;
    }
    if (ram_save_announce(&m->src.ram, m->src.out) && m->src.multifd) {
        return outgoing_ping_wait(m, error);
    }
    return true;
}

static uint64_t outgoing_bytes(Migration *m)
{
    return mig_bytes_written(m->src.out) + multifd_send_bytes(m->src.multifd);
}

static uint64_t outgoing_send(Migration *m, uint64_t max_pages)
{
    if (m->src.multifd) {
        return multifd_send_pass(m->src.multifd, &m->src.ram, max_pages, &m->src.cancel);
    }
    return ram_save_pass(&m->src.ram, m->src.out, max_pages, &m->src.cancel);
}

static bool outgoing_precopy(Migration *m, GError **error)
{
    RamSave *rs = &m->src.ram;
    MigChannel *c = m->src.out;

    for (;;) {
        /* COLO copies the disks too: what the guest rewrote since the
         * last pass, the whole of each disk on the first. */
        if (m->caps.x_colo && !disk_save_pass(&m->src.disks, c, error)) {
            return false;
        }
        if (!outgoing_sync(m, error)) {
            return false;
        }
        uint64_t t0 = outgoing_bytes(m);
        int64_t start = g_get_monotonic_time();
        /* Send in chunks, checking between them whether what is left fits in
         * the downtime limit at the speed just measured. */
        while (ram_save_remaining(rs)) {
            outgoing_send(m, outgoing_chunk_pages(m) * (m->src.multifd ? m->params.multifd_channels : 1));
            if (mig_flush(c) || outgoing_cancelled(m)) {
                return false;
            }
            if (migration_postcopy_requested(m)) {
                return true;
            }
        }
        if (!outgoing_sync(m, error)) {
            return false;
        }
        uint64_t bw = outgoing_bandwidth(m, outgoing_bytes(m) - t0, g_get_monotonic_time() - start);
        m->src.mbps_bits = bw * 8;
        uint64_t left = ram_save_remaining(rs) * GUEST_PAGE_SIZE;
        if (left <= bw * m->params.downtime_limit / 1000) {
            return true;
        }
        qb_log(LOG_DEBUG, "migration: %" G_GUINT64_FORMAT " KiB dirty after a pass, %"
               G_GUINT64_FORMAT " KiB fit in %" G_GUINT64_FORMAT " ms", left >> 10,
               bw * m->params.downtime_limit / 1000 >> 10, m->params.downtime_limit);
    }
}

/* Stop the VM, send the rest and the devices, wait for the destination. */
static bool outgoing_complete(Migration *m, GError **error)
{
    MigChannel *c = m->src.out;

    int64_t stopping = g_get_monotonic_time();
    migration_stop_vm(m);
    int64_t stopped = g_get_monotonic_time();
    migration_set_status(m, MIG_STATUS_DEVICE);
    if (m->caps.x_colo && !colo_primary_sync_begin(m, stopping, error)) {
        return false;
    }
    if (!outgoing_sync(m, error)) {
        return false;
    }
    outgoing_send(m, 0);
    if (m->caps.x_colo && !disk_save_pass(&m->src.disks, c, error)) {
        return false;
    }
    /* Every page in place on the destination before any device state. */
    if (m->src.multifd && !multifd_send_sync(m->src.multifd, c)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE, "a multifd channel broke");
        return false;
    }
    if (!migration_save_devices(m, c, error)) {
        return false;
    }
    /* The end record makes the destination's copy whole. With an owner,
     * everything before it is in the destination's hands first: a source
     * killed right after its commit (the file says the copy is elsewhere
     * now) must leave only the end record to send, not the device state
     * and the last pages still queued here. */
    if (m->src.owner && mig_drain(c)) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(-mig_channel_error(c)),
                    "migration stream broke before the commit: %s", g_strerror(-mig_channel_error(c)));
        return false;
    }
    if (!mig_owner_commit(m, error)) {
        return false;
    }
    mig_put_u8(c, MIG_REC_EOF);
    if (mig_flush(c)) {
        return false;
    }
    /* A COLO secondary answers READY instead of SHUT (colo_primary_run). */
    if (!m->caps.x_colo && !migration_wait_shut(m, error)) {
        return false;
    }
    m->src.downtime_ms = (g_get_monotonic_time() - stopped) / 1000;
    return true;
}

/* Snapshot protect (snapshot.h): one pause to take the snapshot, every
 * page of it streamed once, the disks, then the final phase as for precopy
 * with the pages written since the snapshot, and COLO. The final phase is
 * the first checkpoint in all but name: like checkpoints it takes the
 * link's full speed. */
static bool outgoing_snapshot(Migration *m, GError **error)
{
    if (!snapshot_start(m, error) || !snapshot_stream(m, error)) {
        return false;
    }
    snapshot_stop(m);
    /* The guest stops only once the secondary has loaded the snapshot:
     * its pause is the pages written since, not the secondary's backlog. */
    if (!disk_save_pass(&m->src.disks, m->src.out, error) || !outgoing_ping_wait(m, error)) {
        return false;
    }
    mig_set_rate_limit(m->src.out, 0);
    return outgoing_complete(m, error) && colo_primary_run(m, error);
}

static void outgoing_hello(MigChannel *c, uint8_t kind, uint8_t index)
{
    mig_put_be32(c, MIG_MAGIC);
    mig_put_be32(c, MIG_VERSION);
    mig_put_u8(c, kind);
    mig_put_u8(c, index);
}

static void outgoing_header(Migration *m)
{
    MigChannel *c = m->src.out;

    outgoing_hello(c, MIG_CHANNEL_MAIN, 0);
    ram_save_blocks(&m->src.ram, c);
    mig_put_u8(c, MIG_REC_COMMAND);
    mig_put_be16(c, MIG_CMD_OPEN_RETURN_PATH);
    mig_put_be16(c, 0);
    if (m->caps.postcopy_ram && !migration_snapshot_selected(m)) {
        migration_postcopy_advise(m, c);
    }
    if (m->caps.x_colo) {
        mig_put_u8(c, MIG_REC_COMMAND);
        mig_put_be16(c, MIG_CMD_ENABLE_COLO);
        mig_put_be16(c, 0);
    }
}

/* The channel for demanded postcopy pages, opened up front so that a fault
 * never waits for a connect. */
static bool outgoing_connect_demand(Migration *m, GError **error)
{
    MigChannel *c = mig_tls_connect(m->src.uri, m->src.tls, m->src.tls_hostname, error);

    if (!c) {
        return false;
    }
    outgoing_hello(c, MIG_CHANNEL_POSTCOPY, 0);
    if (mig_flush(c)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE, "postcopy channel: %s",
                    g_strerror(-mig_channel_error(c)));
        mig_channel_free(c);
        return false;
    }
    migration_postcopy_set_demand_channel(m, c);
    return true;
}

static gpointer outgoing_thread(gpointer opaque)
{
    Migration *m = opaque;
    g_autoptr(GError) error = NULL;
    bool ok = false, colo = false;
    MigChannel *ch = mig_tls_connect(m->src.uri, m->src.tls, m->src.tls_hostname, &error);

    if (!ch) {
        goto out;
    }
    if (m->src.tls) {
        qb_log(LOG_INFO, "migration to %s: TLS with %s %s", m->src.uri, mig_channel_tls_peer(ch),
               mig_channel_tls_desc(ch));
    }
    /* The return path: the same connection (and TLS session), read by its own thread. */
    MigChannel *rp = mig_channel_dup(ch, &error);
    colo_rp_reset(m);
    g_mutex_lock(&m->lock);
    m->src.out = ch;
    m->src.rp = rp;
    g_mutex_unlock(&m->lock);
    if (!rp) {
        goto out;
    }
    if (outgoing_cancelled(m)) {
        goto out;
    }
    mig_set_rate_limit(m->src.out, m->params.max_bandwidth);
    if (!ram_save_setup(&m->src.ram, m->host.mem, m->host.kvm, &error)) {
        goto out;
    }
    outgoing_header(m);
    if (mig_flush(m->src.out)) {
        goto out;
    }
    if (m->caps.postcopy_ram && !migration_snapshot_selected(m) && !outgoing_connect_demand(m, &error)) {
        goto out;
    }
    if (m->caps.multifd) {
        MultifdSend *ms = multifd_send_new(m->src.uri, m->src.tls, m->src.tls_hostname,
                                           m->params.multifd_channels, m->params.max_bandwidth,
                                           &m->src.ram.stats, &error);
        if (!ms) {
            goto out;
        }
        g_mutex_lock(&m->lock);     /* migrate_cancel reaches it under the lock */
        m->src.multifd = ms;
        g_mutex_unlock(&m->lock);
    }
    m->src.rp_thread = g_thread_new("mig/rp", rp_thread, m);
    m->src.setup_us = g_get_monotonic_time() - m->src.start_us;
    migration_set_status(m, MIG_STATUS_ACTIVE);

    if (migration_snapshot_selected(m)) {
        ok = outgoing_snapshot(m, &error);
        colo = ok;
    } else if (!outgoing_precopy(m, &error)) {
        goto out;
    } else if (migration_postcopy_requested(m)) {
        ok = migration_postcopy_run(m, &error);
    } else {
        ok = outgoing_complete(m, &error);
        colo = ok && m->caps.x_colo;
        ok = ok && (!colo || colo_primary_run(m, &error));
    }

out:
    /* A failed snapshot protect leaves the guest running unprotected, and
     * no page may stay write-protected behind it. */
    snapshot_stop(m);
    if (!ok && !error) {
        int err = m->src.out ? mig_channel_error(m->src.out) : 0;
        g_set_error(&error, G_IO_ERROR, g_io_error_from_errno(-err), "migration stream: %s",
                    err ? g_strerror(-err) : "failed");
    }
    if (!ok) {
        multifd_send_shutdown(m->src.multifd, ECANCELED);
    }
    m->src.ram.stats.transferred = m->src.out ? outgoing_bytes(m) : 0;
    g_mutex_lock(&m->lock);
    MultifdSend *ms = m->src.multifd;
    m->src.multifd = NULL;
    g_mutex_unlock(&m->lock);
    multifd_send_free(ms);
    ram_save_cleanup(&m->src.ram);
    disk_save_cleanup(&m->src.disks);   /* COLO took them over already if it ran */
    m->src.total_ms = (g_get_monotonic_time() - m->src.start_us) / 1000;
    if (m->src.rp) {
        mig_channel_shutdown(m->src.rp, ECANCELED);
    }
    if (m->src.rp_thread) {
        g_thread_join(m->src.rp_thread);
        m->src.rp_thread = NULL;
    }
    if (!ok && m->src.status == MIG_STATUS_POSTCOPY_ACTIVE) {
        /* The destination already runs the guest: ours must not resume. */
        qb_log(LOG_ERR, "postcopy to %s broke: %s; both sides wait (postcopy-paused)", m->src.uri,
               error->message);
        migration_set_error(m, error->message);
        migration_set_status(m, MIG_STATUS_POSTCOPY_PAUSED);
    } else if (ok && colo) {
        /* COLO is over and the guest runs on here (failover). */
        qb_log(LOG_INFO, "migration to %s: COLO ended, the guest runs here", m->src.uri);
        migration_set_status(m, MIG_STATUS_COMPLETED);
    } else if (ok) {
        migration_call_main(m, main_after_completion);
        qb_log(LOG_INFO, "migration to %s completed: %" G_GINT64_FORMAT " ms, downtime %"
               G_GINT64_FORMAT " ms", m->src.uri, m->src.total_ms, m->src.downtime_ms);
        migration_set_status(m, MIG_STATUS_COMPLETED);
    } else {
        if (m->caps.x_colo) {
            colo_primary_abandon(m);    /* before the guest runs again */
        }
        if (m->src.vm_stopped) {
            migration_call_main(m, main_after_failure);
        }
        if (outgoing_cancelled(m)) {
            qb_log(LOG_INFO, "migration to %s cancelled", m->src.uri);
            migration_set_status(m, MIG_STATUS_CANCELLED);
        } else {
            qb_log(LOG_ERR, "migration to %s failed: %s", m->src.uri, error->message);
            migration_set_error(m, error->message);
            migration_set_status(m, MIG_STATUS_FAILED);
        }
    }
    g_atomic_int_set(&m->src.thread_done, 1);
    return NULL;
}

bool migration_start(Migration *m, const char *uri, const char *sole_copy_file, GError **error)
{
    if (!transport_check_uri(uri, error)) {
        return false;
    }
    g_mutex_lock(&m->lock);
    bool busy = m->src.status == MIG_STATUS_SETUP || m->src.status == MIG_STATUS_ACTIVE ||
                m->src.status == MIG_STATUS_DEVICE || m->src.status == MIG_STATUS_CANCELLING ||
                m->src.status == MIG_STATUS_POSTCOPY_ACTIVE || m->src.status == MIG_STATUS_POSTCOPY_PAUSED ||
                m->src.status == MIG_STATUS_COLO;
    g_mutex_unlock(&m->lock);
    if (busy) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY,
                    "There's a migration process in progress");
        return false;
    }
    if (m->dst.status == MIG_STATUS_COLO) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY, "The VM is a COLO secondary");
        return false;
    }
    if (m->dst.status != MIG_STATUS_NONE && m->dst.status != MIG_STATUS_COMPLETED) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY,
                    "Guest is waiting for an incoming migration");
        return false;
    }
    if (m->caps.multifd && m->caps.postcopy_ram) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "multifd and postcopy-ram cannot be used together");
        return false;
    }
    g_autoptr(GError) tls_error = NULL;
    ColoTlsCreds *tls = mig_tls_creds(m->tls, false, &tls_error);
    if (tls_error) {
        g_propagate_error(error, g_steal_pointer(&tls_error));
        return false;
    }
    migration_reset_outgoing(m);
    if (sole_copy_file && !(m->src.owner = mig_owner_new(m, sole_copy_file, error))) {
        colo_tls_creds_unref(tls);
        return false;
    }
    m->src.tls = tls;
    m->src.tls_hostname = g_strdup(mig_tls_hostname(m->tls));
    if (m->caps.x_colo) {
        disk_save_setup(&m->src.disks, m->host.disks);
    }
    m->src.uri = g_strdup(uri);
    m->src.start_us = g_get_monotonic_time();
    g_atomic_int_set(&m->src.thread_done, 0);
    migration_set_status(m, MIG_STATUS_SETUP);
    m->src.thread = g_thread_new("migration", outgoing_thread, m);
    return true;
}

static bool outgoing_cancel(Migration *m, bool uncommitted_only)
{
    g_mutex_lock(&m->lock);
    bool running = m->src.status == MIG_STATUS_SETUP || m->src.status == MIG_STATUS_ACTIVE ||
                   m->src.status == MIG_STATUS_DEVICE;
    if (running && uncommitted_only && mig_owner_committing(m->src.owner)) {
        running = false;
    }
    if (running) {
        g_atomic_int_set(&m->src.cancel, 1);
        m->src.status = MIG_STATUS_CANCELLING;
        if (m->src.out) {
            mig_channel_shutdown(m->src.out, ECANCELED);
        }
        multifd_send_shutdown(m->src.multifd, ECANCELED);
        g_cond_broadcast(&m->cond);
    }
    g_mutex_unlock(&m->lock);
    if (running) {
        migration_emit_status(m, MIG_STATUS_CANCELLING);
    }
    return running;
}

void migration_cancel(Migration *m)
{
    outgoing_cancel(m, false);
}

bool migration_cancel_uncommitted(Migration *m)
{
    return outgoing_cancel(m, true);
}
