/* The destination side: listen, accept one stream, load it, run. */
#include "config.h"

#include "migration/migration.h"

#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netdb.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib-unix.h>
#include <qb/qblog.h>

#include "migration/format.h"
#include "migration/migration-priv.h"
#include "migration/multifd.h"
#include "migration/postcopy.h"
#include "migration/transport.h"
#include "migration/mig-tls.h"
#include "common/tls.h"
#include "colo/colo.h"
#include "migration/disk.h"
#include "virtio/virtio-blk.h"
#include "dimm.h"
#include "common/peer-filter.h"

void migration_incoming_set_status(Migration *m, MigStatus status)
{
    g_mutex_lock(&m->lock);
    m->dst.status = status;
    g_mutex_unlock(&m->lock);
    migration_emit_status(m, status);
}

void migration_rp_send(Migration *m, uint16_t type, const void *data, uint16_t len)
{
    g_mutex_lock(&m->dst.rp_lock);
    if (m->dst.rp) {
        mig_put_be16(m->dst.rp, type);
        mig_put_be16(m->dst.rp, len);
        mig_put_bytes(m->dst.rp, data, len);
        mig_flush(m->dst.rp);
    }
    g_mutex_unlock(&m->dst.rp_lock);
}

static void incoming_rp_u32(Migration *m, uint16_t type, uint32_t value)
{
    uint32_t be = GUINT32_TO_BE(value);

    migration_rp_send(m, type, &be, sizeof(be));
}

static bool incoming_fail(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static bool incoming_fail(GError **error, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, msg);
    return false;
}

static bool incoming_device(Migration *m, MigChannel *c, GHashTable *seen, GError **error)
{
    char id[MIG_MAX_ID_LEN + 1];
    uint8_t idlen = mig_get_u8(c);

    mig_get_bytes(c, id, idlen);
    id[idlen] = '\0';
    uint32_t instance = mig_get_be32(c);
    uint32_t version = mig_get_be32(c);
    uint32_t len = mig_get_be32(c);
    if (mig_channel_error(c)) {
        return false;
    }
    const VmStateEntry *e = vmstate_find(m->host.vmstate, id, instance);
    if (!e) {
        return incoming_fail(error, "device state for unknown device '%s' instance %u", id, instance);
    }
    if (version < e->ops->min_version || version > e->ops->version) {
        return incoming_fail(error, "device '%s' state version %u, this colo-vmm loads %u..%u",
                             id, version, e->ops->min_version, e->ops->version);
    }
    if (len > MIG_MAX_DEVICE_LEN) {
        return incoming_fail(error, "device '%s' state of %u bytes is over the %u limit",
                             id, len, MIG_MAX_DEVICE_LEN);
    }
    g_autofree uint8_t *buf = g_malloc(len ? len : 1);
    mig_get_bytes(c, buf, len);
    if (mig_channel_error(c)) {
        return false;
    }
    StateReader r;
    state_reader_init(&r, buf, len);
    if (!e->ops->load(e->opaque, &r, version, error)) {
        g_prefix_error(error, "loading %s/%u: ", id, instance);
        return false;
    }
    g_hash_table_add(seen, (gpointer)e);
    return true;
}

/* Created by whichever thread needs it first: a channel or the sync command. */
static MultifdRecv *incoming_multifd(Migration *m)
{
    g_mutex_lock(&m->lock);
    if (!m->dst.multifd) {
        m->dst.multifd = multifd_recv_new(m);
    }
    MultifdRecv *mr = m->dst.multifd;
    g_mutex_unlock(&m->lock);
    return mr;
}

static bool incoming_records(Migration *m, MigChannel *c, GHashTable *seen, bool package,
                             GError **error);
static bool incoming_chunk(Migration *m, const uint8_t *buf, uint32_t size, GHashTable *seen,
                           bool package, GError **error);

/* A packaged chunk: all of it first, then its records from memory, so
 * that loading them (the device state before postcopy runs) never waits
 * for the network halfway. */
static bool incoming_package(Migration *m, MigChannel *c, uint32_t size, GHashTable *seen,
                             GError **error)
{
    if (size > MIG_MAX_PACKAGE) {
        return incoming_fail(error, "packaged chunk of %u bytes (at most %u)", size, MIG_MAX_PACKAGE);
    }
    g_autofree uint8_t *buf = g_malloc(size ? size : 1);
    mig_get_bytes(c, buf, size);
    if (mig_channel_error(c)) {
        return false;
    }
    return incoming_chunk(m, buf, size, seen, true, error);
}

/* Records from memory: a packaged chunk's (@package), or a COLO
 * checkpoint's device state, which must hold every device. */
static bool incoming_chunk(Migration *m, const uint8_t *buf, uint32_t size, GHashTable *seen,
                           bool package, GError **error)
{
    int fd = memfd_create("colo-package", MFD_CLOEXEC);
    if (fd < 0 || write(fd, buf, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET) != 0) {
        int err = errno;
        if (fd >= 0) {
            close(fd);
        }
        return incoming_fail(error, "cannot hold a packaged chunk: %s", g_strerror(err));
    }
    MigChannel *pc = mig_channel_new(fd);
    bool ok = incoming_records(m, pc, seen, package, error);
    if (ok && mig_bytes_read(pc) != size) {
        ok = incoming_fail(error, "%s: %" G_GUINT64_FORMAT " bytes after its end record",
                           package ? "packaged chunk" : "device state", size - mig_bytes_read(pc));
    }
    mig_channel_free(pc);
    return ok;
}

bool migration_load_devices_chunk(Migration *m, const uint8_t *buf, uint32_t size, GError **error)
{
    g_autoptr(GHashTable) seen = g_hash_table_new(NULL, NULL);

    return incoming_chunk(m, buf, size, seen, false, error);
}

static bool incoming_command(Migration *m, MigChannel *c, GHashTable *seen, bool in_package,
                             GError **error)
{
    uint16_t cmd = mig_get_be16(c);
    uint16_t len = mig_get_be16(c);
    uint8_t payload[UINT16_MAX];

    mig_get_bytes(c, payload, len);
    if (mig_channel_error(c)) {
        return false;
    }
    switch (cmd) {
    case MIG_CMD_OPEN_RETURN_PATH: {
        if (len != 0) {
            break;
        }
        /* The same connection (and TLS session), written by any thread. */
        g_autoptr(GError) dup_error = NULL;
        MigChannel *rp = mig_channel_dup(c, &dup_error);
        if (!rp) {
            return incoming_fail(error, "cannot open the return path: %s", dup_error->message);
        }
        g_mutex_lock(&m->dst.rp_lock);
        if (!m->dst.rp) {
            m->dst.rp = g_steal_pointer(&rp);
        }
        g_mutex_unlock(&m->dst.rp_lock);
        mig_channel_free(rp);
        return true;
    }
    case MIG_CMD_PING:
        if (len != 4) {
            break;
        }
        incoming_rp_u32(m, MIG_RP_PONG, GUINT32_FROM_BE(*(uint32_t *)payload));
        return true;
    case MIG_CMD_MULTIFD_SYNC:
        return multifd_recv_sync(incoming_multifd(m), payload, len, error);
    case MIG_CMD_RUN_STATE:
        if (len != 1 || payload[0] > 1) {
            break;
        }
        m->dst.source_running = payload[0];
        return true;
    case MIG_CMD_ENABLE_COLO:
        if (len != 0) {
            break;
        }
        if (!m->caps.x_colo) {
            return incoming_fail(error, "the source asks for COLO, but the capability x-colo is not set "
                                 "here (migrate-set-capabilities on the secondary too)");
        }
        m->dst.colo_enabled = true;
        return true;
    case MIG_CMD_PACKAGED:
        if (len != 4) {
            break;
        }
        if (in_package) {
            return incoming_fail(error, "a packaged chunk inside a packaged chunk");
        }
        return incoming_package(m, c, GUINT32_FROM_BE(*(uint32_t *)payload), seen, error);
    case MIG_CMD_POSTCOPY_ADVISE:
    case MIG_CMD_POSTCOPY_DISCARD:
    case MIG_CMD_POSTCOPY_LISTEN:
    case MIG_CMD_POSTCOPY_RUN:
    case MIG_CMD_POSTCOPY_END:
        return migration_incoming_postcopy_command(m, c, cmd, payload, len, error);
    default:
        return incoming_fail(error, "unknown migration command %u", cmd);
    }
    return incoming_fail(error, "migration command %u with a payload of %u bytes", cmd, len);
}

/* Every registered device must have had its section. */
static bool incoming_check_complete(Migration *m, GHashTable *seen, GError **error)
{
    const VmStateRegistry *reg = m->host.vmstate;

    for (guint i = 0; i < reg->entries->len; i++) {
        const VmStateEntry *e = &g_array_index(reg->entries, VmStateEntry, i);
        if (!g_hash_table_contains(seen, e)) {
            g_set_error(error, VMSTATE_ERROR, VMSTATE_ERROR_MISSING,
                        "the stream ended without state for %s/%u", e->ops->id, e->instance);
            return false;
        }
    }
    return true;
}

bool migration_read_hello(MigChannel *c, uint8_t *kind, uint8_t *index, GError **error)
{
    uint32_t magic = mig_get_be32(c);
    uint32_t version = mig_get_be32(c);

    *kind = mig_get_u8(c);
    *index = mig_get_u8(c);
    if (mig_channel_error(c)) {
        return incoming_fail(error, "migration connection closed before its hello (%s)",
                             g_strerror(-mig_channel_error(c)));
    }
    if (magic != MIG_MAGIC) {
        return incoming_fail(error, "not a colo-vmm migration stream (magic 0x%08x)", magic);
    }
    if (version != MIG_VERSION) {
        return incoming_fail(error, "migration stream version %u, this colo-vmm reads %u",
                             version, MIG_VERSION);
    }
    if (*kind > MIG_CHANNEL_MULTIFD) {
        return incoming_fail(error, "unknown migration channel kind %u", *kind);
    }
    return true;
}

/* A pc-dimm of the source: the same here, before any page of it. */
static bool incoming_memory_device(Migration *m, MigChannel *c, GError **error)
{
    RamDeviceRecord rec;
    GuestMemory *mem = m->host.mem;

    if (!ram_read_device_record(c, &rec, error)) {
        return false;
    }
    if (migration_incoming_postcopy_listening(m)) {
        return incoming_fail(error, "pc-dimm %s arrived after postcopy began", rec.id);
    }
    unsigned before = guest_memory_nr_blocks(mem);
    if (!dimms_plug_incoming(m->host.dimms, rec.id, rec.memdev, rec.slot, rec.addr, rec.size, error)) {
        g_prefix_error(error, "the source has pc-dimm %s: ", rec.id);
        return false;
    }
    for (unsigned i = before; i < guest_memory_nr_blocks(mem); i++) {
        ram_load_state_add_block(&m->dst.ram, mem, i);
    }
    return true;
}

/* COLO's initial sync copies the disks: straight onto the image, which no
 * guest uses yet. */
static bool incoming_disk(Migration *m, MigChannel *c, GError **error)
{
    uint8_t disk;
    uint64_t offset;
    g_autofree uint8_t *data = NULL;
    uint32_t len;

    if (!m->dst.colo_enabled) {
        return incoming_fail(error, "a disk record in a migration without COLO");
    }
    if (!disk_read_record(c, m->host.disks, &disk, &offset, &data, &len, error)) {
        return false;
    }
    int r = block_pwrite(virtio_blk_node(m->host.disks->pdata[disk]), offset, data, len);
    if (r < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(-r), "writing disk %u: %s", disk, g_strerror(-r));
        return false;
    }
    return true;
}

/* Records until an end record: the stream's (every device must have had
 * its section by then) or, with @package, the packaged chunk's. */
static bool incoming_records(Migration *m, MigChannel *c, GHashTable *seen, bool package,
                             GError **error)
{
    while (!mig_channel_error(c)) {
        uint8_t kind = mig_get_u8(c);
        bool ok;
        if (mig_channel_error(c)) {
            break;
        }
        switch (kind) {
        case MIG_REC_RAM_BLOCKS:
            ok = ram_load_blocks(m->host.mem, c, error);
            break;
        case MIG_REC_MEMORY_DEVICE:
            ok = incoming_memory_device(m, c, error);
            break;
        case MIG_REC_RAM:
            ok = migration_incoming_ram(m, c, error);
            break;
        case MIG_REC_DEVICE:
            ok = incoming_device(m, c, seen, error);
            break;
        case MIG_REC_DISK:
            ok = incoming_disk(m, c, error);
            break;
        case MIG_REC_COMMAND:
            ok = incoming_command(m, c, seen, package, error);
            break;
        case MIG_REC_EOF:
            return package || incoming_check_complete(m, seen, error);
        default:
            return incoming_fail(error, "unknown record type 0x%02x in the migration stream", kind);
        }
        if (!ok) {
            if (error && !*error) {
                break;
            }
            return false;
        }
    }
    int err = mig_channel_error(c);
    if (!err) {
        return incoming_fail(error, "a record of the migration stream could not be loaded");
    }
    return incoming_fail(error, "%s %s (%s)", package ? "packaged chunk" : "migration stream",
                         err == -EIO ? "ended before its end record" : "broke",
                         g_strerror(-err));
}

bool migration_incoming_load(Migration *m, MigChannel *c, GError **error)
{
    g_autoptr(GHashTable) seen = g_hash_table_new(NULL, NULL);

    return incoming_records(m, c, seen, false, error);
}

void migration_incoming_start_guest(Migration *m)
{
    const MigrationHost *h = &m->host;

    /* As QEMU: run if the source ran and nobody said -S or stop since (cont
     * during the load says run); else wait paused for cont. */
    if (h->ops->run_state(h->vm) != RUN_STATE_INMIGRATE) {
        return;     /* postcopy started it already */
    }
    if (m->dst.source_running && h->ops->autostart(h->vm)) {
        h->ops->run(h->vm);
    } else {
        h->ops->set_run_state(h->vm, RUN_STATE_PAUSED);
    }
}

/* Closes the listening socket (a unix socket's file goes with it). */
static void incoming_stop_listening(Migration *m)
{
    if (m->dst.listen_source) {
        g_source_destroy(m->dst.listen_source);
        g_clear_pointer(&m->dst.listen_source, g_source_unref);
    }
    transport_close_listener(m->dst.listen_fd);
    m->dst.listen_fd = -1;
}

static gboolean main_incoming_done(gpointer opaque)
{
    Migration *m = opaque;

    /* No more connections for this migration. */
    incoming_stop_listening(m);

    if (m->dst.status == MIG_STATUS_COMPLETED) {
        /* As QEMU: run if the source was running, else stay paused; and
         * tell the network where the guest is now. */
        migration_incoming_start_guest(m);
        m->host.ops->announce(m->host.vm);
    } else if (m->dst.status == MIG_STATUS_POSTCOPY_PAUSED) {
        /* The guest runs here and the newest pages are on the source: vCPUs
         * touching a missing page stay blocked rather than read garbage. */
        qb_log(LOG_ERR, "postcopy broke: %s; the guest waits for pages (postcopy-paused)", m->dst.error);
    } else {
        /* Guest memory is half-loaded: nothing here can run. A COLO
         * initial sync (precopy or snapshot) that broke never made this
         * a replica: the source runs on unprotected, nothing is lost. */
        if (m->dst.colo_enabled) {
            qb_log(LOG_ERR, "COLO initial sync failed: %s; discarding the partial copy (never a secondary, "
                   "nothing was protected yet); exiting", m->dst.error);
        } else {
            qb_log(LOG_ERR, "incoming migration failed: %s; exiting", m->dst.error);
        }
        m->host.ops->terminate(m->host.vm, 1);
    }
    return G_SOURCE_REMOVE;
}

static void incoming_main(Migration *m)
{
    g_autoptr(GError) error = NULL;
    bool ok = migration_incoming_load(m, m->dst.in, &error);

    if (ok && m->dst.colo_enabled) {
        /* Instead of SHUT, the secondary's READY: COLO until failover. */
        ok = colo_secondary_run(m, &error);
        if (ok) {
            migration_incoming_set_status(m, MIG_STATUS_COMPLETED);
            g_main_context_invoke(m->host.ctx, main_incoming_done, m);
            return;
        }
    }
    if (!ok && !error) {
        g_set_error_literal(&error, G_IO_ERROR, G_IO_ERROR_FAILED, "load failed");
    }
    bool paused = !ok && migration_incoming_in_postcopy(m);
    /* Tell the source either way; it resumes its VM on failure. */
    incoming_rp_u32(m, MIG_RP_SHUT, ok ? 0 : (uint32_t)EINVAL);
    g_mutex_lock(&m->lock);
    if (!ok) {
        g_free(m->dst.error);
        m->dst.error = g_strdup(error->message);
    }
    g_mutex_unlock(&m->lock);
    migration_incoming_set_status(m, ok ? MIG_STATUS_COMPLETED : paused ? MIG_STATUS_POSTCOPY_PAUSED : MIG_STATUS_FAILED);
    if (ok) {
        qb_log(LOG_INFO, "incoming migration completed");
    }
    g_main_context_invoke(m->host.ctx, main_incoming_done, m);
}

typedef struct {
    Migration *m;
    MigChannel *c;
    ColoTlsCreds *tls;          /* tls-creds at accept, or NULL */
    char peer[INET6_ADDRSTRLEN + 8];
} IncomingConn;

/* Every accepted connection starts here: its hello says what it carries. */
static gpointer incoming_connection_thread(gpointer opaque)
{
    IncomingConn *conn = opaque;
    Migration *m = conn->m;
    MigChannel *c = conn->c;
    g_autoptr(GError) error = NULL;
    uint8_t kind, index;

    if (conn->tls) {
        /* A peer that fails the handshake is refused and logged, and the
         * listener waits on for the real source: a stranger cannot end
         * the incoming migration this way. */
        bool ok = mig_channel_start_tls(c, conn->tls, NULL, &error);
        colo_tls_creds_unref(conn->tls);
        if (!ok) {
            qb_log(LOG_WARNING, "incoming migration: refused a connection from %s: %s", conn->peer,
                   error->message);
            mig_channel_free(c);
            g_free(conn);
            return NULL;
        }
        qb_log(LOG_INFO, "incoming migration: TLS with %s (%s) %s", conn->peer, mig_channel_tls_peer(c),
               mig_channel_tls_desc(c));
    }
    g_free(conn);
    bool hello = migration_read_hello(c, &kind, &index, &error);
    /* The hello had its time limit (see incoming_on_accept); the stream has none. */
    struct timeval none = { 0, 0 };
    setsockopt(mig_channel_fd(c), SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
    if (!hello) {
        qb_log(LOG_WARNING, "incoming migration: dropping a connection: %s", error->message);
        if (!m->dst.main_seen) {
            /* The first connection was not a migration: that is the failure. */
            g_mutex_lock(&m->lock);
            m->dst.main_seen = true;
            g_free(m->dst.error);
            m->dst.error = g_strdup(error->message);
            g_mutex_unlock(&m->lock);
            migration_incoming_set_status(m, MIG_STATUS_FAILED);
            g_main_context_invoke(m->host.ctx, main_incoming_done, m);
        }
        mig_channel_free(c);
        return NULL;
    }
    switch (kind) {
    case MIG_CHANNEL_MAIN:
        g_mutex_lock(&m->lock);
        bool first = !m->dst.in;
        if (first) {
            m->dst.in = c;
            m->dst.main_seen = true;
        }
        g_mutex_unlock(&m->lock);
        if (!first) {
            qb_log(LOG_WARNING, "incoming migration: a second main channel, dropped");
            mig_channel_free(c);
            return NULL;
        }
        migration_incoming_set_status(m, MIG_STATUS_ACTIVE);
        qb_log(LOG_INFO, "incoming migration: connected");
        incoming_main(m);
        return NULL;
    case MIG_CHANNEL_POSTCOPY:
        migration_postcopy_set_demand_channel(m, c);
        return migration_postcopy_demand_thread(m);
    default:    /* MIG_CHANNEL_MULTIFD, as migration_read_hello checked */
        multifd_recv_channel(incoming_multifd(m), c, index);
        return NULL;
    }
}

bool migration_set_allowed_peer(Migration *m, const char *peer, GError **error)
{
    ColoPeerFilter *f = NULL;

    if (peer && *peer && !(f = colo_peer_filter_new(peer, "incoming migration", error))) {
        return false;
    }
    colo_peer_filter_free(m->dst.allowed_peer);
    m->dst.allowed_peer = f;
    return true;
}

const char *migration_allowed_peer(Migration *m)
{
    const char *p = colo_peer_filter_peer(m->dst.allowed_peer);

    return p ? p : "";
}

static gboolean incoming_on_accept(gint fd, GIOCondition cond, gpointer opaque)
{
    Migration *m = opaque;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int sock = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);

    if (sock < 0) {
        return G_SOURCE_CONTINUE;
    }
    /* A stranger is closed before a byte is read: its garbage as the first
     * connection would otherwise fail (and end) the whole incoming
     * migration. Unix sockets are guarded by their file's mode. */
    if ((ss.ss_family == AF_INET || ss.ss_family == AF_INET6) &&
        !colo_peer_filter_accept(m->dst.allowed_peer, (struct sockaddr *)&ss)) {
        close(sock);
        return G_SOURCE_CONTINUE;
    }
    g_autoptr(GError) tls_error = NULL;
    ColoTlsCreds *tls = mig_tls_creds(m->tls, true, &tls_error);
    if (tls_error) {
        /* No plaintext fallback: misconfigured TLS refuses everyone. */
        qb_log(LOG_ERR, "incoming migration: refused a connection: %s", tls_error->message);
        close(sock);
        return G_SOURCE_CONTINUE;
    }
    int buf = 4 << 20, one = 1;
    struct timeval hello_timeout = { 10, 0 };
    setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    /* Return-path messages are small and urgent (page requests): no Nagle.
     * Fails harmlessly on a unix socket. */
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &hello_timeout, sizeof(hello_timeout));
    IncomingConn *conn = g_new0(IncomingConn, 1);
    conn->m = m;
    conn->c = mig_channel_new(sock);
    conn->tls = tls;
    if (ss.ss_family == AF_UNIX ||
        getnameinfo((struct sockaddr *)&ss, sl, conn->peer, sizeof(conn->peer), NULL, 0, NI_NUMERICHOST)) {
        g_strlcpy(conn->peer, "a local client", sizeof(conn->peer));
    }
    g_ptr_array_add(m->dst.threads, g_thread_new("mig/incoming", incoming_connection_thread, conn));
    return G_SOURCE_CONTINUE;
}

bool migration_incoming_listen(Migration *m, const char *uri, GError **error)
{
    if (m->host.ops->run_state(m->host.vm) != RUN_STATE_INMIGRATE) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "'-incoming' was not specified on the command line");
        return false;
    }
    if (m->dst.listen_fd >= 0 || m->dst.main_seen) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY,
                    "The incoming migration has already been started");
        return false;
    }
    m->dst.listen_fd = transport_listen(uri, error);
    if (m->dst.listen_fd < 0) {
        return false;
    }
    m->dst.threads = g_ptr_array_new();
    /* Before any loader thread exists: they all read it, and only now is
     * it known which pages the fresh VM has written (kernel, tables). */
    ram_load_state_init(&m->dst.ram, m->host.mem);
    m->dst.listen_source = g_unix_fd_source_new(m->dst.listen_fd, G_IO_IN);
    g_source_set_callback(m->dst.listen_source, (GSourceFunc)(void (*)(void))incoming_on_accept, m, NULL);
    g_source_attach(m->dst.listen_source, m->host.ctx);
    migration_incoming_set_status(m, MIG_STATUS_SETUP);
    qb_log(LOG_INFO, "waiting for an incoming migration on %s", uri);
    return true;
}

void migration_incoming_cleanup(Migration *m)
{
    if (m->dst.in) {
        mig_channel_shutdown(m->dst.in, ECANCELED);
    }
    migration_incoming_postcopy_cleanup(m);
    multifd_recv_shutdown(m->dst.multifd);
    for (guint i = 0; m->dst.threads && i < m->dst.threads->len; i++) {
        g_thread_join(g_ptr_array_index(m->dst.threads, i));
    }
    g_clear_pointer(&m->dst.threads, g_ptr_array_unref);
    multifd_recv_free(m->dst.multifd);
    m->dst.multifd = NULL;
    incoming_stop_listening(m);
    mig_channel_free(m->dst.in);
    m->dst.in = NULL;
    mig_channel_free(m->dst.rp);
    m->dst.rp = NULL;
    ram_load_state_clear(&m->dst.ram);
}
