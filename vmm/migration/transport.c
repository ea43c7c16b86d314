#include "config.h"

#include "migration/transport.h"
#include "common/unix-socket.h"

#include <errno.h>
#include <stddef.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gio/gio.h>

typedef struct {
    bool is_unix;
    char *host;
    char *port;
    char *path;
} MigUri;

static void mig_uri_clear(MigUri *u)
{
    g_free(u->host);
    g_free(u->port);
    g_free(u->path);
}

/* getaddrinfo() takes a numeric port modulo 65536 (99999 becomes 34463):
 * range-check numbers here. Names (such as a service name) are left to it. */
static bool mig_uri_check_port(const char *uri, const char *port, GError **error)
{
    guint64 value;

    if (strspn(port, "0123456789") != strlen(port)) {
        return true;
    }
    if (!g_ascii_string_to_unsigned(port, 10, 1, 65535, &value, NULL)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "'%s': port %s is out of range (1 to 65535)", uri, port);
        return false;
    }
    return true;
}

static bool mig_uri_parse(const char *uri, MigUri *u, GError **error)
{
    memset(u, 0, sizeof(*u));
    if (g_str_has_prefix(uri, "unix:")) {
        u->is_unix = true;
        u->path = g_strdup(uri + 5);
        if (!*u->path || strlen(u->path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "'%s': the unix socket path is empty or too long", uri);
            return false;
        }
        return true;
    }
    if (g_str_has_prefix(uri, "tcp:")) {
        const char *hp = uri + 4;
        const char *colon = strrchr(hp, ':');
        if (colon && colon > hp && colon[1]) {
            /* [v6addr]:port */
            if (hp[0] == '[' && colon[-1] == ']') {
                u->host = g_strndup(hp + 1, (gsize)(colon - hp - 2));
            } else {
                u->host = g_strndup(hp, (gsize)(colon - hp));
            }
            u->port = g_strdup(colon + 1);
            return mig_uri_check_port(uri, u->port, error);
        }
    }
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "invalid migration URI '%s' (use tcp:HOST:PORT or unix:PATH)", uri);
    return false;
}

bool transport_check_uri(const char *uri, GError **error)
{
    MigUri u;
    bool ok = mig_uri_parse(uri, &u, error);

    mig_uri_clear(&u);
    return ok;
}

char *transport_uri_host(const char *uri)
{
    MigUri u;
    char *host = NULL;

    if (mig_uri_parse(uri, &u, NULL) && !u.is_unix && u.host && *u.host) {
        host = g_steal_pointer(&u.host);
    }
    mig_uri_clear(&u);
    return host;
}

static void transport_tune(int fd, bool is_unix)
{
    int one = 1, buf = 4 << 20;

    if (!is_unix) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
}

static int transport_open(const char *uri, bool listening, GError **error)
{
    MigUri u;
    int fd = -1;

    if (!mig_uri_parse(uri, &u, error)) {
        return -1;
    }
    if (u.is_unix) {
        fd = listening ? colo_unix_listen(u.path, false, error) : colo_unix_connect(u.path, false, error);
    } else {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = listening ? AI_PASSIVE : 0 };
        struct addrinfo *res = NULL;
        int rc = getaddrinfo(*u.host ? u.host : NULL, u.port, &hints, &res);
        if (rc) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s: %s", uri, gai_strerror(rc));
        } else {
            int err = 0;
            for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
                fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
                if (fd < 0) {
                    err = errno;
                    continue;
                }
                int one = 1;
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                if (listening ? bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 16) < 0
                              : connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                    err = errno;
                    close(fd);
                    fd = -1;
                }
            }
            if (fd < 0) {
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "%s %s: %s",
                            listening ? "cannot listen on" : "cannot connect to", uri, g_strerror(err));
            }
            freeaddrinfo(res);
        }
    }
    if (fd >= 0 && !listening) {
        transport_tune(fd, u.is_unix);
    }
    mig_uri_clear(&u);
    return fd;
}

int transport_connect(const char *uri, GError **error)
{
    return transport_open(uri, false, error);
}

int transport_listen(const char *uri, GError **error)
{
    return transport_open(uri, true, error);
}

void transport_close_listener(int fd)
{
    struct sockaddr_un addr;
    socklen_t len = sizeof(addr);

    if (fd < 0) {
        return;
    }
    /* The bound path, as the kernel has it; abstract sockets (leading NUL)
     * have no file. */
    if (getsockname(fd, (struct sockaddr *)&addr, &len) == 0 && addr.sun_family == AF_UNIX &&
        len > offsetof(struct sockaddr_un, sun_path) && addr.sun_path[0]) {
        size_t n = MIN((size_t)len - offsetof(struct sockaddr_un, sun_path), sizeof(addr.sun_path));
        g_autofree char *path = g_strndup(addr.sun_path, n);

        unlink(path);
    }
    close(fd);
}
