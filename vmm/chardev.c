#include "config.h"

#include <gio/gio.h>

#include "chardev.h"
#include "common/unix-socket.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib-unix.h>
#include <qb/qblog.h>

typedef enum { CHARDEV_NULL, CHARDEV_STDIO, CHARDEV_FILE, CHARDEV_UNIX_SERVER } ChardevKind;

struct Chardev {
    ChardevKind kind;
    GMainContext *ctx;
    GMutex lock;                /* out_fd, in_fd: writers run on vCPU threads */
    int out_fd;
    int in_fd;
    int listen_fd;
    char *path;                 /* unix socket path, removed on free */
    GSource *in_watch;
    GSource *listen_watch;
    ChardevInputFunc input_fn;
    void *input_opaque;
    uint8_t pending[256];       /* read but not yet taken by the receiver */
    size_t pending_len;
};

static void chardev_watch_input(Chardev *chr);

static GSource *chardev_watch(Chardev *chr, int fd, GIOCondition cond, GUnixFDSourceFunc fn)
{
    GSource *src = g_unix_fd_source_new(fd, cond);

    g_source_set_callback(src, (GSourceFunc)(void (*)(void))fn, chr, NULL);
    g_source_attach(src, chr->ctx);
    return src;
}

static void chardev_unwatch(GSource **src)
{
    if (*src) {
        g_source_destroy(*src);
        g_source_unref(*src);
        *src = NULL;
    }
}

static void chardev_drop_client(Chardev *chr)
{
    g_mutex_lock(&chr->lock);
    chardev_unwatch(&chr->in_watch);
    if (chr->kind == CHARDEV_UNIX_SERVER && chr->out_fd >= 0) {
        close(chr->out_fd);
        qb_log(LOG_DEBUG, "serial: client left %s", chr->path);
    }
    chr->out_fd = chr->kind == CHARDEV_UNIX_SERVER ? -1 : chr->out_fd;
    chr->in_fd = -1;
    chr->pending_len = 0;
    g_mutex_unlock(&chr->lock);
}

/* Hands buffered input to the receiver; false if it had no room for all. */
static bool chardev_deliver(Chardev *chr)
{
    if (!chr->input_fn) {
        chr->pending_len = 0;
        return true;
    }
    size_t taken = chr->input_fn(chr->input_opaque, chr->pending, chr->pending_len);
    taken = MIN(taken, chr->pending_len);
    memmove(chr->pending, chr->pending + taken, chr->pending_len - taken);
    chr->pending_len -= taken;
    return chr->pending_len == 0;
}

static gboolean chardev_on_input(gint fd, GIOCondition cond, gpointer opaque)
{
    Chardev *chr = opaque;
    ssize_t n = read(fd, chr->pending, sizeof(chr->pending));

    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        chardev_drop_client(chr);
        return G_SOURCE_REMOVE;
    }
    if (n < 0) {
        return G_SOURCE_CONTINUE;
    }
    chr->pending_len = (size_t)n;
    if (!chardev_deliver(chr)) {
        /* Receiver full: stop reading until chardev_input_ready(). */
        chardev_unwatch(&chr->in_watch);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static void chardev_watch_input(Chardev *chr)
{
    if (chr->in_fd >= 0 && !chr->in_watch) {
        chr->in_watch = chardev_watch(chr, chr->in_fd, G_IO_IN | G_IO_HUP | G_IO_ERR, chardev_on_input);
    }
}

static gboolean chardev_on_accept(gint fd, GIOCondition cond, gpointer opaque)
{
    Chardev *chr = opaque;
    int client = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (client < 0) {
        return G_SOURCE_CONTINUE;
    }
    g_mutex_lock(&chr->lock);
    bool busy = chr->out_fd >= 0;
    g_mutex_unlock(&chr->lock);
    if (busy) {
        /* One client at a time, as QEMU's socket chardev. */
        close(client);
        return G_SOURCE_CONTINUE;
    }
    g_mutex_lock(&chr->lock);
    chr->out_fd = client;
    chr->in_fd = client;
    g_mutex_unlock(&chr->lock);
    chardev_watch_input(chr);
    qb_log(LOG_DEBUG, "serial: client connected to %s", chr->path);
    return G_SOURCE_CONTINUE;
}

static bool chardev_open_unix(Chardev *chr, const char *arg, GError **error)
{
    g_auto(GStrv) parts = g_strsplit(arg, ",", -1);
    bool server = false, wait = true;

    if (!parts[0] || !parts[0][0]) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "unix: needs a socket path");
        return false;
    }
    for (unsigned i = 1; parts[i]; i++) {
        const char *o = parts[i];
        if (!strcmp(o, "server") || !strcmp(o, "server=on")) {
            server = true;
        } else if (!strcmp(o, "server=off")) {
            server = false;
        } else if (!strcmp(o, "nowait") || !strcmp(o, "wait=off")) {
            wait = false;
        } else if (!strcmp(o, "wait=on")) {
            wait = true;
        } else {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "unknown unix socket option '%s' (known: server=on|off, wait=on|off)", o);
            return false;
        }
    }
    if (!server) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "unix:%s: only server=on is supported", parts[0]);
        return false;
    }
    if (!colo_unix_path_check(parts[0], error)) {
        return false;
    }
    chr->path = g_strdup(parts[0]);
    chr->listen_fd = colo_unix_listen(parts[0], false, error);
    if (chr->listen_fd < 0) {
        return false;
    }
    if (wait) {
        qb_log(LOG_INFO, "serial: waiting for a client on %s", parts[0]);
        chardev_on_accept(chr->listen_fd, G_IO_IN, chr);
    }
    g_unix_set_fd_nonblocking(chr->listen_fd, TRUE, NULL);
    chr->listen_watch = chardev_watch(chr, chr->listen_fd, G_IO_IN, chardev_on_accept);
    return true;
}

Chardev *chardev_new(const char *spec, GMainContext *ctx, GError **error)
{
    Chardev *chr = g_new0(Chardev, 1);

    g_mutex_init(&chr->lock);
    chr->ctx = ctx;
    chr->out_fd = chr->in_fd = chr->listen_fd = -1;

    if (!strcmp(spec, "none") || !strcmp(spec, "null")) {
        chr->kind = CHARDEV_NULL;
    } else if (!strcmp(spec, "stdio")) {
        chr->kind = CHARDEV_STDIO;
        chr->out_fd = STDOUT_FILENO;
        chr->in_fd = STDIN_FILENO;
    } else if (g_str_has_prefix(spec, "file:")) {
        chr->kind = CHARDEV_FILE;
        chr->out_fd = open(spec + 5, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (chr->out_fd < 0) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                        "cannot open serial output file %s: %s", spec + 5, g_strerror(errno));
            goto fail;
        }
    } else if (g_str_has_prefix(spec, "unix:")) {
        chr->kind = CHARDEV_UNIX_SERVER;
        if (!chardev_open_unix(chr, spec + 5, error)) {
            goto fail;
        }
    } else {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "unknown character device '%s' (use stdio, file:PATH, "
                    "unix:PATH,server=on,wait=off or none)", spec);
        goto fail;
    }
    return chr;

fail:
    chardev_free(chr);
    return NULL;
}

void chardev_free(Chardev *chr)
{
    if (!chr) {
        return;
    }
    chardev_unwatch(&chr->listen_watch);
    if (chr->kind == CHARDEV_UNIX_SERVER || chr->kind == CHARDEV_FILE) {
        chardev_drop_client(chr);
        if (chr->kind == CHARDEV_FILE && chr->out_fd >= 0) {
            close(chr->out_fd);
        }
    } else {
        chardev_unwatch(&chr->in_watch);
    }
    if (chr->listen_fd >= 0) {
        close(chr->listen_fd);
        unlink(chr->path);
    }
    g_free(chr->path);
    g_mutex_clear(&chr->lock);
    g_free(chr);
}

bool chardev_is_stdio(const Chardev *chr)
{
    return chr->kind == CHARDEV_STDIO;
}

void chardev_write(Chardev *chr, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    g_mutex_lock(&chr->lock);
    while (len && chr->out_fd >= 0) {
        ssize_t n = chr->kind == CHARDEV_UNIX_SERVER
                    ? send(chr->out_fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL)
                    : write(chr->out_fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;      /* a full or broken line loses the rest, as a UART would */
        }
        p += n;
        len -= (size_t)n;
    }
    g_mutex_unlock(&chr->lock);
}

void chardev_set_input(Chardev *chr, ChardevInputFunc fn, void *opaque)
{
    chr->input_fn = fn;
    chr->input_opaque = opaque;
    chardev_watch_input(chr);
}

static gboolean chardev_resume_input(gpointer opaque)
{
    Chardev *chr = opaque;

    if (chr->pending_len && !chardev_deliver(chr)) {
        return G_SOURCE_REMOVE;
    }
    chardev_watch_input(chr);
    return G_SOURCE_REMOVE;
}

void chardev_input_ready(Chardev *chr)
{
    g_main_context_invoke(chr->ctx, chardev_resume_input, chr);
}
