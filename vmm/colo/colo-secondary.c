/* The secondary's side of COLO: its guest runs from the initial sync on;
 * each checkpoint's pages go into the RAM cache, and at commit every page
 * either side dirtied since the last checkpoint is copied from the cache
 * into the guest before the primary's device state loads. */
#include "config.h"

#include "colo/colo-priv.h"

#include <errno.h>

#include <gio/gio.h>
#include <qb/qblog.h>

#include "colo/colo-disk.h"
#include "colo/ram-cache.h"
#include "colo/ram-populate.h"
#include "migration/multifd.h"

struct ColoSecondary {
    Migration *m;
    RamCache cache;
    RamSave own;                /* the secondary guest's own writes */
    ColoDiskSecondary disks;
    bool paused;                /* between REPLY and LOADED */
    gint64 paused_at;
    uint64_t pages;             /* received in this checkpoint */
    uint64_t pages_at;          /* pages loaded in all at VMSTATE_SEND */
    uint64_t bytes_at;          /* stream position at VMSTATE_SEND */
    bool receiving;             /* between VMSTATE_SEND and VMSTATE_SIZE */
    bool unusable;              /* a commit failed halfway: the guest stays paused */
    RamPopulate *populate;      /* the guest's RAM faulted in ahead of the commits */
} Secondary;

/* Pages loaded so far, over every channel (multifd ones add atomically). */
static uint64_t colo_pages_loaded(Migration *m)
{
    return __atomic_load_n(&m->dst.stats.normal, __ATOMIC_RELAXED) +
           __atomic_load_n(&m->dst.stats.duplicate, __ATOMIC_RELAXED);
}

static bool colo_fail(GError **error, const char *why, uint32_t msg)
{
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "COLO: %s (%s)", why, colo_msg_name(msg));
    return false;
}

/* The primary's state arrived whole: commit it. Nothing here waits on the
 * network, so a failover asked meanwhile is honoured once it is loaded. */
static bool colo_commit(ColoSecondary *s, const uint8_t *state, uint32_t size, GError **error)
{
    Migration *m = s->m;

    if (!ram_save_sync(&s->own, error)) {
        return false;
    }
    uint64_t pages = ram_cache_commit(&s->cache, s->own.bmap);
    s->own.dirty = 0;
    if (!colo_disk_commit(&s->disks, error)) {
        return false;
    }
    if (!migration_load_devices_chunk(m, state, size, error)) {
        /* Half a device state cannot run as a replica of anything. */
        g_prefix_error(error, "COLO: the secondary's guest is inconsistent now: ");
        return false;
    }
    qb_log(LOG_DEBUG, "COLO: checkpoint committed, %" G_GUINT64_FORMAT " pages", pages);
    return true;
}

static bool colo_on_msg(ColoSecondary *s, MigChannel *c, uint32_t msg, uint64_t value, GError **error)
{
    Migration *m = s->m;

    switch (msg) {
    case COLO_MSG_CHECKPOINT_REQUEST:
        if (s->paused) {
            return colo_fail(error, "a checkpoint request inside a checkpoint", msg);
        }
        colo_pause_guest(m);
        s->paused = true;
        s->paused_at = g_get_monotonic_time();
        s->pages = 0;
        colo_rp_send(m, COLO_MSG_CHECKPOINT_REPLY, 0);
        return true;
    case COLO_MSG_VMSTATE_SEND:
        if (!s->paused || s->receiving) {
            return colo_fail(error, "state sent out of turn", msg);
        }
        s->receiving = true;
        s->bytes_at = mig_bytes_read(c);
        s->pages_at = colo_pages_loaded(m);
        return true;
    case COLO_MSG_VMSTATE_SIZE: {
        if (!s->receiving) {
            return colo_fail(error, "state size out of turn", msg);
        }
        if (value > MIG_MAX_PACKAGE) {
            return colo_fail(error, "device state larger than the limit", msg);
        }
        s->pages = colo_pages_loaded(m) - s->pages_at;
        g_autofree uint8_t *state = g_malloc(value ? value : 1);
        mig_get_bytes(c, state, value);
        if (mig_channel_error(c)) {
            return false;
        }
        s->receiving = false;
        colo_rp_send(m, COLO_MSG_VMSTATE_RECEIVED, 0);
        if (!colo_commit(s, state, (uint32_t)value, error)) {
            s->unusable = true;
            return false;
        }
        if (!colo_net_commit(m, error)) {
            return false;
        }
        colo_resume_guest(m);
        s->paused = false;
        colo_rp_send(m, COLO_MSG_VMSTATE_LOADED, 0);
        colo_record(m, COLO_TRIGGER__MAX, (uint64_t)(g_get_monotonic_time() - s->paused_at), s->pages,
                    mig_bytes_read(c) - s->bytes_at);
        return true;
    }
    default:
        return colo_fail(error, "unexpected message from the primary", msg);
    }
}

/* MIG_CMD_MULTIFD_SYNC inside a checkpoint: the pages that came over the
 * multifd channels are all in the cache once it returns. */
static bool colo_multifd_sync(ColoSecondary *s, MigChannel *c, uint16_t len, GError **error)
{
    uint8_t payload[12];

    if (len != sizeof(payload)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "COLO: multifd sync of %u bytes", len);
        return false;
    }
    mig_get_bytes(c, payload, sizeof(payload));
    if (mig_channel_error(c)) {
        return false;
    }
    if (!s->receiving) {
        return colo_fail(error, "multifd sync outside a checkpoint", COLO_MSG_MAX);
    }
    if (!s->m->dst.multifd) {
        return colo_fail(error, "multifd sync, but no multifd channel came", COLO_MSG_MAX);
    }
    return multifd_recv_sync(s->m->dst.multifd, payload, len, error);
}

bool colo_secondary_loop(ColoSecondary *s, MigChannel *c, GError **error)
{
    Migration *m = s->m;

    for (;;) {
        uint8_t kind = mig_get_u8(c);
        if (mig_channel_error(c)) {
            return false;
        }
        if (kind == MIG_REC_RAM) {
            if (!s->receiving) {
                return colo_fail(error, "pages outside a checkpoint", COLO_MSG_MAX);
            }
            if (!ram_load(m->host.mem, c, &m->dst.stats, NULL, ram_cache_place, &s->cache, error)) {
                return false;
            }
            continue;
        }
        if (kind == MIG_REC_DISK) {
            if (!s->receiving) {
                return colo_fail(error, "disk writes outside a checkpoint", COLO_MSG_MAX);
            }
            if (!colo_disk_receive(&s->disks, c, error)) {
                return false;
            }
            continue;
        }
        if (kind != MIG_REC_COMMAND) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        "COLO: record type 0x%02x in the checkpoint stream", kind);
            return false;
        }
        uint16_t cmd = mig_get_be16(c);
        uint16_t len = mig_get_be16(c);
        if (cmd == MIG_CMD_MULTIFD_SYNC) {
            if (!colo_multifd_sync(s, c, len, error)) {
                return false;
            }
            continue;
        }
        uint32_t msg = mig_get_be32(c);
        uint64_t value = mig_get_be64(c);
        if (mig_channel_error(c)) {
            return false;
        }
        if (cmd != MIG_CMD_COLO || len != COLO_MSG_LEN) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        "COLO: command %u of %u bytes in the checkpoint stream", cmd, len);
            return false;
        }
        if (!colo_on_msg(s, c, msg, value, error)) {
            return false;
        }
    }
}

static gboolean main_colo_start_guest(gpointer opaque)
{
    Migration *m = opaque;

    m->host.ops->run(m->host.vm);
    return G_SOURCE_REMOVE;
}

ColoSecondary *colo_secondary_new(Migration *m, GError **error)
{
    ColoSecondary *s = g_new0(ColoSecondary, 1);

    s->m = m;
    if (!ram_cache_init(&s->cache, m->host.mem, error)) {
        g_free(s);
        return NULL;
    }
    if (!ram_save_setup(&s->own, m->host.mem, m->host.kvm, error)) {
        ram_cache_fini(&s->cache);
        g_free(s);
        return NULL;
    }
    ram_save_clear(&s->own);    /* guest and cache are equal now */
    if (!colo_disk_secondary_start(&s->disks, m->host.disks, error)) {
        ram_save_cleanup(&s->own);
        ram_cache_fini(&s->cache);
        g_free(s);
        return NULL;
    }
    if (m->dst.multifd) {
        /* Checkpoint pages on the multifd channels go to the cache too. */
        multifd_recv_set_place(m->dst.multifd, ram_cache_place, &s->cache);
    }
    return s;
}

void colo_secondary_free(ColoSecondary *s)
{
    ram_populate_stop(s->populate);
    if (s->paused && !s->unusable) {
        /* A checkpoint that had not arrived whole is dropped: the guest goes
         * on from its own state, which the cache never touched. */
        colo_resume_guest(s->m);
    }
    g_autoptr(GError) error = NULL;
    if (s->unusable) {
        /* Its own writes are as unusable as its memory: the overlays stay
         * on top, the images untouched. */
        g_clear_pointer(&s->disks.overlays, g_ptr_array_unref);
    } else if (!colo_disk_secondary_stop(&s->disks, &error)) {
        qb_log(LOG_ERR, "COLO: %s", error->message);
    }
    if (s->m->dst.multifd) {
        /* No channel may place a page in the cache once it is gone. */
        multifd_recv_drain(s->m->dst.multifd);
        multifd_recv_set_place(s->m->dst.multifd, NULL, NULL);
    }
    ram_save_cleanup(&s->own);
    ram_cache_fini(&s->cache);
    g_free(s);
}

bool colo_secondary_run(Migration *m, GError **error)
{
    g_autoptr(GError) local = NULL;

    colo_begin(m);
    ColoSecondary *s = colo_secondary_new(m, error);

    if (!s) {
        return false;
    }
    /* For the proxy the initial sync is a checkpoint (its epoch advances). */
    if (!colo_net_connect(m, COLO_MODE_SECONDARY, error) || !colo_net_commit(m, error)) {
        colo_net_leave(m);
        colo_secondary_free(s);
        return false;
    }
    migration_call_main(m, main_colo_start_guest);
    colo_enter(m, COLO_MODE_SECONDARY);
    colo_rp_send(m, COLO_MSG_CHECKPOINT_READY, 0);
    s->populate = ram_populate_start(m->host.mem);

    colo_secondary_loop(s, m->dst.in, &local);     /* returns only when the stream ends */
    if (s->unusable) {
        g_mutex_lock(&m->lock);
        m->colo->unusable = true;
        g_mutex_unlock(&m->lock);
        qb_log(LOG_CRIT, "COLO: %s; this secondary's guest stays paused and cannot take over",
               local ? local->message : "commit failed");
    }
    g_mutex_lock(&m->lock);
    bool stop = colo_should_stop_locked(m->colo);
    g_mutex_unlock(&m->lock);
    if (stop) {
        colo_secondary_free(s);
    } else {
        int err = mig_channel_error(m->dst.in);
        g_mutex_lock(&m->lock);
        bool proxy_lost = m->colo->proxy_lost;
        g_mutex_unlock(&m->lock);
        g_autofree char *why = proxy_lost ? g_strdup("colo-proxy closed its control socket")
                               : local    ? g_strdup(local->message)
                                          : g_strdup_printf("the stream from the primary broke (%s)", g_strerror(-err));
        colo_secondary_free(s);
        colo_wait_failover(m, why);
    }
    colo_leave(m);
    return true;
}
