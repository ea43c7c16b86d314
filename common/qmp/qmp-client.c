/* The asynchronous QMP client (see qmp-client.h). Input goes through the
 * same splitter as the server's; output is buffered and written when the
 * socket takes it. The client holds a reference on itself while it runs a
 * callback, so a callback may free it. */
#include "config.h"

#include "common/qmp/qmp-args.h"
#include "common/qmp/qmp-client.h"
#include "common/qmp/qmp-priv.h"
#include "common/qmp/qmp-splitter.h"
#include "common/unix-socket.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <qb/qblog.h>

/* What a server may send in one text: events and replies are small, but
 * query results (stats, commands) grow. */
#define QMP_CLIENT_MAX_MESSAGE (16 * 1024 * 1024)
/* A unix connect that finds the backlog full is tried again this often. */
#define QMP_CLIENT_RETRY_MS 10

typedef enum {
    CLIENT_IDLE,        /* nothing yet */
    CLIENT_CONNECTING,  /* waiting for room in the listen backlog */
    CLIENT_GREETING,    /* waiting for {"QMP": ...} */
    CLIENT_NEGOTIATING, /* qmp_capabilities sent */
    CLIENT_READY,
    CLIENT_CLOSED,
} ClientState;

typedef struct {
    QmpClient *client;
    gint64 id;
    char *command;
    QmpClientReplyFunc fn;
    gpointer opaque;
    GSource *timer;
} Pending;

struct QmpClient {
    gint refs;
    GMainContext *ctx;
    ClientState state;
    char *path;
    int fd;
    GSource *io;               /* the socket */
    GSource *timer;            /* connect deadline, or a connect retry */
    gint64 connect_deadline;   /* monotonic µs */
    GSource *idle;             /* delivers errors of commands issued when closed */
    GQueue idle_failed;        /* Pending * for idle */
    QmpSplitter *splitter;
    GByteArray *out;
    JsonObject *greeting;
    gint64 next_id;
    gint64 caps_id;
    GHashTable *pending;       /* id (gint64 *) -> Pending * */
    bool freeing;              /* qmp_client_free(): no more callbacks */

    QmpClientReadyFunc ready;
    gpointer ready_opaque;
    QmpClientEventFunc event;
    gpointer event_opaque;
    QmpClientClosedFunc closed;
    gpointer closed_opaque;
};

static QmpClient *client_ref(QmpClient *c)
{
    c->refs++;
    return c;
}

static void pending_free(gpointer data)
{
    Pending *p = data;

    if (p->timer) {
        g_source_destroy(p->timer);
        g_source_unref(p->timer);
    }
    g_free(p->command);
    g_free(p);
}

static void client_unref(QmpClient *c)
{
    if (--c->refs) {
        return;
    }
    g_hash_table_destroy(c->pending);
    g_queue_clear_full(&c->idle_failed, pending_free);
    qmp_splitter_free(c->splitter);
    g_byte_array_unref(c->out);
    if (c->greeting) {
        json_object_unref(c->greeting);
    }
    g_main_context_unref(c->ctx);
    g_free(c->path);
    g_free(c);
}

static void source_clear(GSource **s)
{
    if (*s) {
        g_source_destroy(*s);
        g_source_unref(*s);
        *s = NULL;
    }
}

/* Runs @p's callback once and frees @p (already out of the table). */
static void pending_finish(QmpClient *c, Pending *p, JsonNode *ret, const GError *error)
{
    source_clear(&p->timer);
    if (p->fn) {
        p->fn(c, ret, error, p->opaque);
    }
    pending_free(p);
}

/* Oldest command first. */
static gint pending_cmp(gconstpointer a, gconstpointer b)
{
    gint64 x = ((const Pending *)a)->id, y = ((const Pending *)b)->id;

    return x < y ? -1 : x > y;
}

/* Ends the connection: fails what waits with @error, then tells the ready
 * callback (still connecting) or the closed handler (if @notify). */
static void client_shutdown(QmpClient *c, const GError *error, bool notify)
{
    ClientState was = c->state;
    GList *waiting;

    if (was == CLIENT_CLOSED) {
        return;
    }
    c->state = CLIENT_CLOSED;
    source_clear(&c->io);
    source_clear(&c->timer);
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    client_ref(c);
    waiting = g_hash_table_get_values(c->pending);
    g_hash_table_steal_all(c->pending);
    waiting = g_list_sort(waiting, pending_cmp);
    for (GList *l = waiting; l; l = l->next) {
        if (c->freeing) {
            pending_free(l->data);
        } else {
            pending_finish(c, l->data, NULL, error);
        }
    }
    g_list_free(waiting);
    if (was != CLIENT_READY && was != CLIENT_IDLE && c->ready) {
        QmpClientReadyFunc ready = c->ready;

        c->ready = NULL;
        ready(c, error, c->ready_opaque);
    } else if (was == CLIENT_READY && notify && c->closed) {
        c->closed(c, error, c->closed_opaque);
    }
    client_unref(c);
}

static void client_fail(QmpClient *c, GQuark domain, int code, const char *fmt, ...) G_GNUC_PRINTF(4, 5);

static void client_fail(QmpClient *c, GQuark domain, int code, const char *fmt, ...)
{
    g_autoptr(GError) error = NULL;
    va_list ap;

    va_start(ap, fmt);
    error = g_error_new_valist(domain, code, fmt, ap);
    va_end(ap);
    qb_log(LOG_DEBUG, "qmp client %s: %s", c->path ? c->path : "-", error->message);
    client_shutdown(c, error, true);
}

static void client_update_io(QmpClient *c);

static void client_flush(QmpClient *c)
{
    ssize_t n;

    /* Nothing goes out before qmp_capabilities. */
    if (!c->out->len || c->fd < 0 || c->state < CLIENT_NEGOTIATING) {
        return;
    }
    n = send(c->fd, c->out->data, c->out->len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            client_fail(c, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, "write failed: %s", g_strerror(errno));
        }
        return;
    }
    g_byte_array_remove_range(c->out, 0, (guint)n);
    client_update_io(c);
}

static void client_send_request(QmpClient *c, const char *command, JsonObject *args, gint64 id)
{
    g_autoptr(JsonObject) req = json_object_new();
    g_autoptr(JsonNode) node = NULL;
    g_autofree char *line = NULL;
    size_t len;

    json_object_set_string_member(req, "execute", command);
    if (args) {
        json_object_set_object_member(req, "arguments", json_object_ref(args));
    }
    json_object_set_int_member(req, "id", id);
    node = json_node_init_object(json_node_alloc(), req);
    line = qmp_json_line(node, &len);
    g_byte_array_append(c->out, (const guint8 *)line, (guint)len);
}

static GError *client_reply_error(JsonObject *err)
{
    const char *cls = "GenericError";
    const char *desc = "(no description)";

    /* A member of another type keeps the default (json-glib would give NULL). */
    (void)qmp_arg_string(err, "class", false, &cls, NULL);
    (void)qmp_arg_string(err, "desc", false, &desc, NULL);

    return g_error_new_literal(QMP_ERROR, qmp_error_code_from_class(cls), desc);
}

static void client_on_reply(QmpClient *c, JsonObject *msg)
{
    JsonNode *id = json_object_get_member(msg, "id");
    JsonNode *ret = json_object_get_member(msg, "return");
    JsonNode *err = json_object_get_member(msg, "error");
    gint64 key;
    Pending *p;

    if (!id || !JSON_NODE_HOLDS_VALUE(id) || json_node_get_value_type(id) != G_TYPE_INT64) {
        qb_log(LOG_DEBUG, "qmp client %s: a reply without our id, ignored", c->path);
        return;
    }
    key = json_node_get_int(id);
    if (key == c->caps_id && c->state == CLIENT_NEGOTIATING) {
        if (!ret) {
            g_autoptr(GError) e = err && JSON_NODE_HOLDS_OBJECT(err) ? client_reply_error(json_node_get_object(err))
                                                                     : NULL;

            client_fail(c, QMP_ERROR, QMP_ERROR_GENERIC, "capabilities negotiation refused: %s",
                        e ? e->message : "malformed reply");
            return;
        }
        c->state = CLIENT_READY;
        source_clear(&c->timer);
        if (c->ready) {
            QmpClientReadyFunc ready = c->ready;

            c->ready = NULL;
            ready(c, NULL, c->ready_opaque);
        }
        return;
    }
    if (!g_hash_table_steal_extended(c->pending, &key, NULL, (gpointer *)&p)) {
        /* The reply of a command that timed out. */
        return;
    }
    if (ret) {
        pending_finish(c, p, ret, NULL);
    } else {
        g_autoptr(GError) e = err && JSON_NODE_HOLDS_OBJECT(err)
                                  ? client_reply_error(json_node_get_object(err))
                                  : g_error_new(QMP_ERROR, QMP_ERROR_GENERIC, "%s: malformed reply", p->command);

        pending_finish(c, p, NULL, e);
    }
}

static void client_on_message(QmpClient *c, JsonObject *msg)
{
    if (c->state == CLIENT_GREETING) {
        if (!json_object_has_member(msg, "QMP")) {
            client_fail(c, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s is no QMP server (no greeting)", c->path);
            return;
        }
        c->greeting = json_object_ref(msg);
        c->state = CLIENT_NEGOTIATING;
        c->caps_id = ++c->next_id;
        /* The negotiation goes before the commands queued meanwhile. */
        {
            g_autoptr(GByteArray) queued = c->out;

            c->out = g_byte_array_new();
            client_send_request(c, "qmp_capabilities", NULL, c->caps_id);
            g_byte_array_append(c->out, queued->data, queued->len);
        }
        client_flush(c);
        return;
    }
    if (json_object_has_member(msg, "event")) {
        JsonNode *name = json_object_get_member(msg, "event");
        JsonNode *data = json_object_get_member(msg, "data");
        JsonNode *ts = json_object_get_member(msg, "timestamp");

        /* Found by fuzz-qmp-client: "event": null has no name. */
        if (!JSON_NODE_HOLDS_VALUE(name) || json_node_get_value_type(name) != G_TYPE_STRING) {
            qb_log(LOG_WARNING, "qmp client %s: an event without a name, ignored", c->path);
            return;
        }
        if (c->event) {
            c->event(c, json_node_get_string(name),
                     data && JSON_NODE_HOLDS_OBJECT(data) ? json_node_get_object(data) : NULL,
                     ts && JSON_NODE_HOLDS_OBJECT(ts) ? json_node_get_object(ts) : NULL, c->event_opaque);
        }
        return;
    }
    client_on_reply(c, msg);
}

static bool client_on_text(const char *text, size_t len, const GError *error, gpointer opaque)
{
    QmpClient *c = opaque;
    g_autoptr(JsonParser) parser = NULL;
    g_autoptr(GError) perr = NULL;
    JsonNode *root;

    if (c->state == CLIENT_CLOSED) {
        return false;
    }
    if (error) {
        client_fail(c, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "bad input from the server: %s", error->message);
        return false;
    }
    parser = json_parser_new();
    if (!json_parser_load_from_data(parser, text, (gssize)len, &perr) || !(root = json_parser_get_root(parser)) ||
        !JSON_NODE_HOLDS_OBJECT(root)) {
        client_fail(c, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "the server sent no JSON object: %s",
                    perr ? perr->message : "not an object");
        return false;
    }
    client_on_message(c, json_node_get_object(root));
    return c->state != CLIENT_CLOSED;
}

static void client_read(QmpClient *c)
{
    char buf[16384];
    ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            client_fail(c, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, "read failed: %s", g_strerror(errno));
        }
        return;
    }
    if (n == 0) {
        client_fail(c, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, "the server closed the connection");
        return;
    }
    qmp_splitter_feed(c->splitter, buf, (size_t)n);
}

static gboolean client_on_io(gint fd, GIOCondition cond, gpointer data)
{
    QmpClient *c = client_ref(data);

    if (cond & G_IO_OUT) {
        client_flush(c);
    }
    if (c->state != CLIENT_CLOSED && (cond & (G_IO_IN | G_IO_HUP | G_IO_ERR))) {
        client_read(c);
    }
    client_unref(c);
    return G_SOURCE_CONTINUE;
}

static void client_update_io(QmpClient *c)
{
    if (c->io) {
        g_source_destroy(c->io);
        g_source_unref(c->io);
    }
    c->io = g_unix_fd_source_new(c->fd, G_IO_IN | (c->out->len && c->state >= CLIENT_NEGOTIATING ? G_IO_OUT : 0));
    g_source_set_callback(c->io, G_SOURCE_FUNC(client_on_io), c, NULL);
    g_source_attach(c->io, c->ctx);
}

static gboolean client_on_deadline(gpointer data)
{
    QmpClient *c = data;

    client_ref(c);
    client_fail(c, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "%s: no QMP greeting and negotiation in time", c->path);
    client_unref(c);
    return G_SOURCE_REMOVE;
}

static GSource *client_timer(QmpClient *c, guint ms, GSourceFunc fn, gpointer data)
{
    GSource *s = g_timeout_source_new(ms);

    g_source_set_callback(s, fn, data, NULL);
    g_source_attach(s, c->ctx);
    return s;
}

static gboolean client_try_connect(gpointer data);

static void client_start_connect(QmpClient *c)
{
    g_autoptr(GError) error = NULL;
    gint64 left_ms;

    c->fd = colo_unix_connect(c->path, true, &error);
    if (c->fd >= 0) {
        c->state = CLIENT_GREETING;
        left_ms = MAX(0, (c->connect_deadline - g_get_monotonic_time()) / 1000);
        c->timer = client_timer(c, (guint)left_ms, client_on_deadline, c);
        client_update_io(c);
        return;
    }
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK) &&
        g_get_monotonic_time() < c->connect_deadline) {
        /* The server's backlog is full: it is busy, try again soon. */
        c->timer = client_timer(c, QMP_CLIENT_RETRY_MS, client_try_connect, c);
        return;
    }
    client_shutdown(c, error, true);
}

static gboolean client_try_connect(gpointer data)
{
    QmpClient *c = client_ref(data);

    g_source_unref(c->timer);
    c->timer = NULL;
    client_start_connect(c);
    client_unref(c);
    return G_SOURCE_REMOVE;
}

void qmp_client_connect(QmpClient *c, const char *path, guint timeout_ms, QmpClientReadyFunc ready,
                        gpointer opaque)
{
    g_return_if_fail(c->state == CLIENT_IDLE);
    c->path = g_strdup(path);
    c->ready = ready;
    c->ready_opaque = opaque;
    c->connect_deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    c->state = CLIENT_CONNECTING;
    /* From the main context, so @ready never runs inside this call. */
    c->timer = client_timer(c, 0, client_try_connect, c);
}

QmpClient *qmp_client_new(GMainContext *ctx)
{
    QmpClient *c = g_new0(QmpClient, 1);

    c->refs = 1;
    c->ctx = g_main_context_ref(ctx ? ctx : g_main_context_default());
    c->fd = -1;
    c->out = g_byte_array_new();
    c->splitter = qmp_splitter_new(QMP_CLIENT_MAX_MESSAGE, QMP_MAX_NESTING, client_on_text, c);
    c->pending = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, pending_free);
    g_queue_init(&c->idle_failed);
    return c;
}

void qmp_client_set_event_handler(QmpClient *c, QmpClientEventFunc fn, gpointer opaque)
{
    c->event = fn;
    c->event_opaque = opaque;
}

void qmp_client_set_closed_handler(QmpClient *c, QmpClientClosedFunc fn, gpointer opaque)
{
    c->closed = fn;
    c->closed_opaque = opaque;
}

JsonObject *qmp_client_greeting(QmpClient *c)
{
    return c->state == CLIENT_READY ? c->greeting : NULL;
}

bool qmp_client_is_ready(QmpClient *c)
{
    return c->state == CLIENT_READY;
}

static gboolean command_on_timeout(gpointer data)
{
    Pending *p = data;
    QmpClient *c = client_ref(p->client);
    g_autoptr(GError) error = g_error_new(G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "%s: no reply in time", p->command);

    g_hash_table_steal(c->pending, &p->id);
    g_source_unref(p->timer);
    p->timer = NULL;
    pending_finish(c, p, NULL, error);
    client_unref(c);
    return G_SOURCE_REMOVE;
}

/* Commands issued on a closed client fail from the main context. */
static gboolean client_on_idle(gpointer data)
{
    QmpClient *c = client_ref(data);
    Pending *p;

    g_source_unref(c->idle);
    c->idle = NULL;
    while ((p = g_queue_pop_head(&c->idle_failed))) {
        g_autoptr(GError) error = g_error_new(G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED, "%s: not connected",
                                              p->command);

        pending_finish(c, p, NULL, error);
    }
    client_unref(c);
    return G_SOURCE_REMOVE;
}

void qmp_client_execute(QmpClient *c, const char *command, JsonObject *args, guint timeout_ms,
                        QmpClientReplyFunc fn, gpointer opaque)
{
    Pending *p = g_new0(Pending, 1);

    p->client = c;
    p->command = g_strdup(command);
    p->fn = fn;
    p->opaque = opaque;
    if (c->state == CLIENT_IDLE || c->state == CLIENT_CLOSED) {
        g_queue_push_tail(&c->idle_failed, p);
        if (!c->idle) {
            c->idle = g_idle_source_new();
            g_source_set_callback(c->idle, client_on_idle, c, NULL);
            g_source_attach(c->idle, c->ctx);
        }
    } else {
        p->id = ++c->next_id;
        g_hash_table_insert(c->pending, &p->id, p);
        if (timeout_ms) {
            p->timer = client_timer(c, timeout_ms, command_on_timeout, p);
        }
        client_send_request(c, command, args, p->id);
        /* Before the greeting, requests wait behind the negotiation. */
        client_flush(c);
    }
    if (args) {
        json_object_unref(args);
    }
}

void qmp_client_close(QmpClient *c)
{
    g_autoptr(GError) error = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, "connection closed");

    client_shutdown(c, error, false);
}

void qmp_client_free(QmpClient *c)
{
    if (!c) {
        return;
    }
    c->freeing = true;
    c->ready = NULL;
    c->event = NULL;
    c->closed = NULL;
    qmp_client_close(c);
    source_clear(&c->idle);
    g_queue_clear_full(&c->idle_failed, pending_free);
    g_queue_init(&c->idle_failed);
    client_unref(c);
}
