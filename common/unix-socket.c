/* Unix stream sockets (see unix-socket.h). */
#include "config.h"

#include "common/unix-socket.h"

#include <errno.h>
#include <grp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

bool colo_unix_path_check(const char *path, GError **error)
{
    struct sockaddr_un addr;

    if (!path || !*path || strlen(path) >= sizeof(addr.sun_path)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "UNIX socket path '%s' is empty or too long (at most %zu bytes)", path ? path : "",
                    sizeof(addr.sun_path) - 1);
        return false;
    }
    return true;
}

static bool unix_addr(const char *path, struct sockaddr_un *addr, GError **error)
{
    if (!colo_unix_path_check(path, error)) {
        return false;
    }
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    strcpy(addr->sun_path, path);
    return true;
}

static void unix_set_errno_error(GError **error, int err, const char *what, const char *path)
{
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "%s %s: %s", what, path, g_strerror(err));
}

bool colo_group_lookup(const char *group, gid_t *gid, GError **error)
{
    struct group *gr = NULL, gbuf;
    char buf[4096];
    guint64 num;

    if (group && g_ascii_string_to_unsigned(group, 10, 0, G_MAXUINT32 - 1, &num, NULL)) {
        *gid = (gid_t)num;
        return true;
    }
    if (!group || !*group || getgrnam_r(group, &gbuf, buf, sizeof(buf), &gr) != 0 || !gr) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no group '%s'", group ? group : "");
        return false;
    }
    *gid = gr->gr_gid;
    return true;
}

/* Gives @path to @gid with @mode (0660 or 0750). */
static bool give_to_group(const char *path, gid_t gid, mode_t mode, GError **error)
{
    if (chown(path, (uid_t)-1, gid) < 0 || chmod(path, mode) < 0) {
        unix_set_errno_error(error, errno, "cannot give to its group:", path);
        return false;
    }
    return true;
}

int colo_unix_listen_group(const char *path, bool nonblock, const char *group, GError **error)
{
    struct sockaddr_un addr;
    gid_t gid = 0;
    int fd;

    if (!unix_addr(path, &addr, error) || (group && !colo_group_lookup(group, &gid, error))) {
        return -1;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        unix_set_errno_error(error, errno, "cannot remove the old socket", path);
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    /* Linux creates the file with the socket inode's mode less the umask:
     * fchmod() before bind() makes it 0600 at once, with no moment in
     * which another user could connect (a umask is per process, so setting
     * one here would race the VMM's other threads).
     * SOMAXCONN: a burst of clients (colod, coloctl, scripts) waits in the
     * backlog instead of being refused while the main loop is busy. */
    if (fd < 0 || fchmod(fd, 0600) < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        unix_set_errno_error(error, errno, "cannot listen on", path);
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    /* The group's rights before listen(): whoever is accepted first sees
     * the socket as it stays. */
    if (group && !give_to_group(path, gid, 0660, error)) {
        close(fd);
        unlink(path);
        return -1;
    }
    if (listen(fd, SOMAXCONN) < 0) {
        unix_set_errno_error(error, errno, "cannot listen on", path);
        close(fd);
        unlink(path);
        return -1;
    }
    return fd;
}

int colo_unix_listen(const char *path, bool nonblock, GError **error)
{
    return colo_unix_listen_group(path, nonblock, NULL, error);
}

bool colo_run_dir_prepare(const char *dir, const char *group, GError **error)
{
    gid_t gid = 0;

    if (group && !colo_group_lookup(group, &gid, error)) {
        return false;
    }
    if (g_mkdir_with_parents(dir, 0711) < 0) {
        unix_set_errno_error(error, errno, "cannot create", dir);
        return false;
    }
    if (group) {
        return give_to_group(dir, gid, 0750, error);
    }
    if (chmod(dir, 0700) < 0) {
        unix_set_errno_error(error, errno, "cannot set the mode of", dir);
        return false;
    }
    return true;
}

int colo_unix_connect(const char *path, bool nonblock, GError **error)
{
    struct sockaddr_un addr;
    int fd;

    if (!unix_addr(path, &addr, error)) {
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int err = errno;

        unix_set_errno_error(error, err, "cannot connect to", path);
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}
