/* The QMP server: the listening unix socket, one connection per client with
 * buffered non-blocking output, and the server object itself. The protocol
 * is in qmp-session.c and qmp-dispatch.c.
 *
 * A client is never freed from inside its own callbacks: a failing client
 * is marked dead, its fd closed and its source destroyed at once, and the
 * memory is reaped from an idle source. */
#include "config.h"

#include "common/qmp/qmp-priv.h"
#include "common/unix-socket.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <glib-unix.h>
#include <qb/qblog.h>

/* Stop reading a client's requests while this much output waits for it. */
#define QMP_INPUT_PAUSE (256 * 1024)

struct QmpConn {
    QmpServer *server;
    unsigned id;
    int fd;
    GSource *source;
    gpointer fd_tag;
    QmpSession *session;
    GByteArray *out;
    bool input_paused;
    bool dead;
};

typedef struct {
    GSource base;
    QmpConn *client;
} ClientSource;

static void client_close(QmpConn *c)
{
    if (c->dead) {
        return;
    }
    c->dead = true;
    g_source_destroy(c->source);
    /* A command may hold a duplicate of the socket (qmp_server_dup_caller):
     * the client must still see its connection end. */
    shutdown(c->fd, SHUT_RDWR);
    close(c->fd);
    c->fd = -1;
}

static void server_reap_now(QmpServer *s)
{
    for (GList *l = s->clients, *next; l; l = next) {
        QmpConn *c = l->data;

        next = l->next;
        if (c->dead) {
            s->clients = g_list_delete_link(s->clients, l);
            qmp_session_free(c->session);
            g_source_unref(c->source);
            g_byte_array_unref(c->out);
            g_free(c);
        }
    }
}

static gboolean server_reap(gpointer data)
{
    QmpServer *s = data;

    server_reap_now(s);
    g_source_unref(s->reap_source);
    s->reap_source = NULL;
    return G_SOURCE_REMOVE;
}

/* Closes @c now and frees it soon. */
static void client_drop(QmpConn *c)
{
    QmpServer *s = c->server;

    client_close(c);
    if (!s->reap_source) {
        s->reap_source = g_idle_source_new();
        g_source_set_callback(s->reap_source, server_reap, s, NULL);
        g_source_attach(s->reap_source, s->ctx);
    }
}

static void client_update_events(QmpConn *c)
{
    GIOCondition cond = c->out->len ? G_IO_OUT : 0;

    if (!c->input_paused) {
        cond |= G_IO_IN;
    }
    g_source_modify_unix_fd(c->source, c->fd_tag, cond);
}

static bool errno_is_transient(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* Writes as much buffered output as the socket takes. */
static void client_flush(QmpConn *c)
{
    ssize_t n;

    if (!c->out->len) {
        return;
    }
    n = send(c->fd, c->out->data, c->out->len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
        if (!errno_is_transient()) {
            qb_log(LOG_DEBUG, "qmp: client %u: write failed: %s", c->id, strerror(errno));
            client_drop(c);
        }
        return;
    }
    g_byte_array_remove_range(c->out, 0, (guint)n);
    if (c->input_paused && c->out->len < QMP_INPUT_PAUSE / 2) {
        c->input_paused = false;
    }
    client_update_events(c);
}

static bool client_send(const char *line, size_t len, gpointer opaque)
{
    QmpConn *c = opaque;
    QmpServer *s = c->server;

    if (c->dead) {
        return false;
    }
    if (!c->out->len) {
        ssize_t n = send(c->fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0 && !errno_is_transient()) {
            qb_log(LOG_DEBUG, "qmp: client %u: write failed: %s", c->id, strerror(errno));
            client_drop(c);
            return false;
        }
        if (n > 0) {
            line += n;
            len -= (size_t)n;
        }
    }
    if (!len) {
        return true;
    }
    if (c->out->len + len > s->max_output) {
        qb_log(LOG_WARNING, "qmp: client %u does not read (%u bytes unsent), dropping it", c->id,
               c->out->len);
        client_drop(c);
        return false;
    }
    g_byte_array_append(c->out, (const guint8 *)line, (guint)len);
    client_update_events(c);
    return true;
}

static void client_read(QmpConn *c)
{
    char buf[16384];
    ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

    if (n < 0) {
        if (!errno_is_transient()) {
            qb_log(LOG_DEBUG, "qmp: client %u: read failed: %s", c->id, strerror(errno));
            client_drop(c);
        }
        return;
    }
    if (n == 0) {
        size_t pending = qmp_session_pending(c->session);

        if (pending) {
            qb_log(LOG_DEBUG, "qmp: client %u disconnected in the middle of a request "
                   "(%zu bytes dropped)", c->id, pending);
        } else {
            qb_log(LOG_DEBUG, "qmp: client %u disconnected", c->id);
        }
        client_drop(c);
        return;
    }
    if (!qmp_session_feed(c->session, buf, (size_t)n) || c->dead) {
        return;
    }
    if (c->out->len >= QMP_INPUT_PAUSE) {
        /* Backpressure: a client that sends requests without reading the
         * replies waits for them; a stuck one hits max_output. */
        c->input_paused = true;
        client_update_events(c);
    }
}

static gboolean client_source_dispatch(GSource *source, GSourceFunc cb, gpointer data)
{
    QmpConn *c = ((ClientSource *)source)->client;
    GIOCondition cond = g_source_query_unix_fd(source, c->fd_tag);

    if (cond & G_IO_OUT) {
        client_flush(c);
    }
    if (c->dead) {
        return G_SOURCE_CONTINUE;
    }
    if (!c->input_paused && (cond & (G_IO_IN | G_IO_HUP | G_IO_ERR))) {
        client_read(c);
    } else if (cond & (G_IO_HUP | G_IO_ERR)) {
        qb_log(LOG_DEBUG, "qmp: client %u hung up", c->id);
        client_drop(c);
    }
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs client_source_funcs = {
    .dispatch = client_source_dispatch,
};

static void client_new(QmpServer *s, int fd)
{
    QmpConn *c = g_new0(QmpConn, 1);

    c->server = s;
    c->id = ++s->next_client_id;
    c->fd = fd;
    c->out = g_byte_array_new();
    c->session = qmp_session_new(s, c->id, client_send, c);
    c->source = g_source_new(&client_source_funcs, sizeof(ClientSource));
    ((ClientSource *)c->source)->client = c;
    g_source_set_name(c->source, "qmp-client");
    c->fd_tag = g_source_add_unix_fd(c->source, fd, G_IO_IN);
    g_source_attach(c->source, s->ctx);
    s->clients = g_list_append(s->clients, c);
    qb_log(LOG_DEBUG, "qmp: client %u connected", c->id);
    qmp_session_greet(c->session);
}

bool qmp_server_add_fd(QmpServer *s, int fd, GError **error)
{
    int type = 0;
    socklen_t optlen = sizeof(type);

    if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &optlen) < 0 || type != SOCK_STREAM) {
        g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC, "QMP needs a stream socket (fd %d)", fd);
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    if (!g_unix_set_fd_nonblocking(fd, TRUE, error)) {
        close(fd);
        return false;
    }
    client_new(s, fd);
    return true;
}

static gboolean server_accept(gint fd, GIOCondition cond, gpointer data)
{
    QmpServer *s = data;

    for (;;) {
        int client = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (client < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                qb_log(LOG_WARNING, "qmp: accept on %s failed: %s", s->listen_path,
                       strerror(errno));
            }
            break;
        }
        client_new(s, client);
    }
    return G_SOURCE_CONTINUE;
}

bool qmp_server_listen_unix(QmpServer *s, const char *path, GError **error)
{
    return qmp_server_listen_unix_group(s, path, NULL, error);
}

bool qmp_server_listen_unix_group(QmpServer *s, const char *path, const char *group, GError **error)
{
    int fd;

    if (s->listen_fd >= 0) {
        g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC, "QMP server already listens on %s",
                    s->listen_path);
        return false;
    }
    fd = colo_unix_listen_group(path, true, group, error);
    if (fd < 0) {
        g_prefix_error(error, "QMP socket: ");
        return false;
    }
    s->listen_fd = fd;
    s->listen_path = g_strdup(path);
    s->listen_source = g_unix_fd_source_new(fd, G_IO_IN);
    g_source_set_callback(s->listen_source, G_SOURCE_FUNC(server_accept), s, NULL);
    g_source_attach(s->listen_source, s->ctx);
    return true;
}

void qmp_server_broadcast(QmpServer *s, const char *line, size_t len)
{
    for (GList *l = s->clients; l; l = l->next) {
        QmpConn *c = l->data;

        if (!c->dead && qmp_session_in_command_mode(c->session)) {
            client_send(line, len, c);
        }
    }
}

QmpServer *qmp_server_new(GMainContext *ctx, const char *package, int major, int minor, int micro)
{
    QmpServer *s = g_new0(QmpServer, 1);

    s->ctx = g_main_context_ref(ctx ? ctx : g_main_context_default());
    s->package = g_strdup(package);
    s->major = major;
    s->minor = minor;
    s->micro = micro;
    s->max_message = QMP_MAX_MESSAGE_SIZE;
    s->max_output = QMP_MAX_OUTPUT;
    s->listen_fd = -1;
    qmp_commands_init(s);
    qmp_builtin_register(s);
    qmp_events_init(s);
    return s;
}

void qmp_server_set_greeting_member(QmpServer *s, const char *name, JsonNode *value)
{
    g_free(s->greeting_name);
    if (s->greeting_value) {
        json_node_unref(s->greeting_value);
    }
    s->greeting_name = g_strdup(name);
    s->greeting_value = value;
}

void qmp_server_set_limits(QmpServer *s, size_t max_message, size_t max_output)
{
    if (max_message) {
        s->max_message = max_message;
        for (GList *l = s->clients; l; l = l->next) {
            qmp_session_set_max_message(((QmpConn *)l->data)->session, max_message);
        }
    }
    if (max_output) {
        s->max_output = max_output;
    }
}

int qmp_server_dup_caller(QmpServer *s)
{
    for (GList *l = s->clients; s->current && l; l = l->next) {
        QmpConn *c = l->data;

        if (c->session == s->current && !c->dead) {
            return fcntl(c->fd, F_DUPFD_CLOEXEC, 3);
        }
    }
    return -1;
}

unsigned qmp_server_client_count(QmpServer *s)
{
    unsigned n = 0;

    for (GList *l = s->clients; l; l = l->next) {
        n += !((QmpConn *)l->data)->dead;
    }
    return n;
}

void qmp_server_free(QmpServer *s)
{
    if (!s) {
        return;
    }
    /* Last words (a SHUTDOWN event, the reply to quit) still go out if the
     * sockets take them without blocking. */
    qmp_events_flush(s);
    for (GList *l = s->clients; l; l = l->next) {
        QmpConn *c = l->data;

        if (!c->dead) {
            client_flush(c);
        }
        client_close(c);
    }
    if (s->reap_source) {
        g_source_destroy(s->reap_source);
        g_source_unref(s->reap_source);
    }
    server_reap_now(s);
    if (s->listen_source) {
        g_source_destroy(s->listen_source);
        g_source_unref(s->listen_source);
        close(s->listen_fd);
        unlink(s->listen_path);
        g_free(s->listen_path);
    }
    qmp_events_fini(s);
    qmp_commands_fini(s);
    g_free(s->greeting_name);
    if (s->greeting_value) {
        json_node_unref(s->greeting_value);
    }
    g_main_context_unref(s->ctx);
    g_free(s->package);
    g_free(s);
}
