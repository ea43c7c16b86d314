/* Unix stream sockets (see unix-socket.h). */
#include "config.h"

#include "common/unix-socket.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <gio/gio.h>

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

int colo_unix_listen(const char *path, bool nonblock, GError **error)
{
    struct sockaddr_un addr;
    int fd;

    if (!unix_addr(path, &addr, error)) {
        return -1;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        unix_set_errno_error(error, errno, "cannot remove the old socket", path);
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    /* SOMAXCONN: a burst of clients (colod, coloctl, scripts) waits in the
     * backlog instead of being refused while the main loop is busy. */
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, SOMAXCONN) < 0) {
        int err = errno;

        unix_set_errno_error(error, err, "cannot listen on", path);
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
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
