/* sd_notify(3)'s protocol (see sd-notify.h). */
#include "config.h"

#include "common/sd-notify.h"

#include <errno.h>
#include <glib.h>
#include <qb/qblog.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

bool colo_sd_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    size_t len;
    socklen_t alen;
    int fd;
    bool ok;

    if (!path || (path[0] != '/' && path[0] != '@') || (len = strlen(path)) >= sizeof(addr.sun_path)) {
        return false;
    }
    memcpy(addr.sun_path, path, len);
    if (path[0] == '@') {
        addr.sun_path[0] = '\0';
    }
    alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/' ? 1 : 0));
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    ok = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr, alen) >= 0;
    if (!ok) {
        qb_log(LOG_DEBUG, "sd_notify %s: %s", state, g_strerror(errno));
    }
    close(fd);
    return ok;
}

uint64_t colo_sd_watchdog_usec(void)
{
    const char *usec = getenv("WATCHDOG_USEC");
    const char *pid = getenv("WATCHDOG_PID");
    guint64 v, p;

    if (!usec || !g_ascii_string_to_unsigned(usec, 10, 1, G_MAXUINT64, &v, NULL)) {
        return 0;
    }
    if (pid && (!g_ascii_string_to_unsigned(pid, 10, 1, G_MAXUINT32, &p, NULL) || (pid_t)p != getpid())) {
        return 0;
    }
    return v;
}
