/* Copies of another process's descriptors (process-fd.h). */
#include "config.h"

#include "process-fd.h"

#include <errno.h>
#include <gio/gio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

int process_fd_copy(pid_t pid, int remote_fd, GError **error)
{
    int pidfd = pidfd_open(pid, 0);
    int fd;

    if (pidfd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "pidfd_open(%d): %s", (int)pid, strerror(errno));
        return -1;
    }
    /* pidfd_getfd's copies are close-on-exec, like every descriptor colod
     * holds. */
    fd = pidfd_getfd(pidfd, remote_fd, 0);
    close(pidfd);
    if (fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "pidfd_getfd(%d, %d): %s", (int)pid, remote_fd,
                    strerror(errno));
        return -1;
    }
    return fd;
}
