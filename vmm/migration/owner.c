/* A migration bound to the QMP client that started it (owner.h). */
#include "config.h"

#include "migration/owner.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <qb/qblog.h>

#include "migration/migration-priv.h"

/* What colod writes there too (colod/main.c): for the administrator who
 * finds the file. */
#define SOLE_COPY_TEXT "the VM runs only here: an unclean end of colod leaves it running\n"

struct MigOwner {
    Migration *m;
    int fd;                     /* a duplicate of the client's socket */
    char *file;
    GSource *watch;             /* the client's hang-up, on the main context */
    bool committing;            /* under m->lock */
};

static gboolean owner_hung_up(gint fd, GIOCondition cond, gpointer opaque)
{
    MigOwner *o = opaque;

    (void)fd;
    (void)cond;
    if (migration_cancel_uncommitted(o->m)) {
        qb_log(LOG_WARNING, "migration: the QMP client that started it is gone before the destination held a "
               "whole copy: cancelled, the guest runs on here (%s kept)", o->file);
    }
    return G_SOURCE_REMOVE;
}

MigOwner *mig_owner_new(Migration *m, const char *sole_copy_file, GError **error)
{
    int fd = m->host.ops->dup_qmp_caller ? m->host.ops->dup_qmp_caller(m->host.vm) : -1;

    if (fd < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "x-sole-copy-file binds the migration to a QMP socket client, and there is none");
        return NULL;
    }
    if (!g_path_is_absolute(sole_copy_file)) {
        close(fd);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "x-sole-copy-file must be an absolute path: %s", sole_copy_file);
        return NULL;
    }
    MigOwner *o = g_new0(MigOwner, 1);

    o->m = m;
    o->fd = fd;
    o->file = g_strdup(sole_copy_file);
    o->watch = g_unix_fd_source_new(fd, G_IO_HUP | G_IO_ERR);
    g_source_set_callback(o->watch, G_SOURCE_FUNC(owner_hung_up), o, NULL);
    g_source_attach(o->watch, m->host.ctx);
    return o;
}

/* POLLRDHUP: the peer closed (or shut down its side); poll() failing on a
 * valid descriptor cannot happen, and is taken as gone, the safe side. */
static bool owner_gone(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLRDHUP };
    int n;

    do {
        n = poll(&p, 1, 0);
    } while (n < 0 && errno == EINTR);
    return n != 0 && (n < 0 || (p.revents & (POLLRDHUP | POLLHUP | POLLERR)));
}

bool mig_owner_commit(Migration *m, GError **error)
{
    MigOwner *o = m->src.owner;

    if (!o) {
        return true;
    }
    g_mutex_lock(&m->lock);
    bool cancelled = g_atomic_int_get(&m->src.cancel) != 0;
    o->committing = !cancelled;
    g_mutex_unlock(&m->lock);
    if (cancelled) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "migration cancelled");
        return false;
    }
    /* Removed before the last look at the client: if it was still there
     * then, its end comes after the removal, and whoever looks for the file
     * after that end finds it gone. */
    if (g_unlink(o->file) < 0 && errno != ENOENT) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot remove %s (%s): the destination is not given a whole copy while the file says "
                    "the VM runs only here", o->file, g_strerror(errno));
        return false;
    }
    if (!owner_gone(o->fd)) {
        return true;
    }
    g_autoptr(GError) werr = NULL;
    if (!g_file_set_contents(o->file, SOLE_COPY_TEXT, -1, &werr)) {
        qb_log(LOG_ERR, "migration: %s not written back: %s", o->file, werr->message);
    }
    g_atomic_int_set(&m->src.cancel, 1);
    qb_log(LOG_WARNING, "migration: the QMP client that started it is gone: cancelled at the last moment, before the "
           "destination held a whole copy; the guest runs on here (%s written back)", o->file);
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "migration cancelled: its QMP client is gone");
    return false;
}

bool mig_owner_committing(const MigOwner *o)
{
    return o && o->committing;
}

void mig_owner_free(MigOwner *o)
{
    if (!o) {
        return;
    }
    g_source_destroy(o->watch);
    g_source_unref(o->watch);
    close(o->fd);
    g_free(o->file);
    g_free(o);
}
