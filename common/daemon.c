#include "config.h"

#include <gio/gio.h>

#include "common/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct DaemonNotify {
    int fd;
};

DaemonNotify *daemon_start(GError **error)
{
    int fds[2];

    if (pipe2(fds, O_CLOEXEC) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "pipe: %s", g_strerror(errno));
        return NULL;
    }
    pid_t pid = fork();
    if (pid < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "fork: %s", g_strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return NULL;
    }
    if (pid > 0) {
        char status = 1;
        close(fds[1]);
        while (read(fds[0], &status, 1) < 0 && errno == EINTR) {
        }
        /* EOF without a word: the child died during start-up. */
        _exit(status == 0 ? 0 : 1);
    }
    close(fds[0]);
    setsid();
    DaemonNotify *notify = g_new(DaemonNotify, 1);
    notify->fd = fds[1];
    return notify;
}

static void daemon_send(DaemonNotify *notify, char status)
{
    while (write(notify->fd, &status, 1) < 0 && errno == EINTR) {
    }
    close(notify->fd);
    g_free(notify);
}

void daemon_ready(DaemonNotify *notify)
{
    int null = open("/dev/null", O_RDWR);

    if (chdir("/") < 0) {
        /* Nothing relies on the working directory; keep going. */
    }
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        if (null > STDERR_FILENO) {
            close(null);
        }
    }
    daemon_send(notify, 0);
}

void daemon_failed(DaemonNotify *notify)
{
    daemon_send(notify, 1);
}

bool daemon_write_pidfile(const char *path, GError **error)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

    if (fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot open pid file %s: %s", path, g_strerror(errno));
        return false;
    }
    if (lockf(fd, F_TLOCK, 0) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot lock pid file %s: %s (another instance uses it?)", path,
                    g_strerror(errno));
        close(fd);
        return false;
    }
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || write(fd, buf, (size_t)len) != len) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot write pid file %s: %s", path, g_strerror(errno));
        close(fd);
        return false;
    }
    /* fd stays open: the lock lasts as long as the process. */
    return true;
}
