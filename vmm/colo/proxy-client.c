/* colo-proxy's control socket, client side (see proxy-client.h). */
#include "config.h"

#include "colo/proxy-client.h"
#include "common/unix-socket.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gio/gio.h>
#include <qb/qblog.h>

/* Longer lines are not what colo-proxy sends: the socket is dropped. */
#define PROXY_MAX_LINE (1 << 20)

struct ProxyClient {
    int fd;
    GThread *reader;
    ProxyEventFn fn;
    void *opaque;

    GMutex lock;                /* the fields below */
    GCond cond;
    GMutex call_lock;           /* one call at a time */
    bool greeted, broken;
    char *role;
    gint64 next_id, waiting_id;
    JsonNode *reply;            /* the reply to waiting_id */
};

static void proxy_client_set_broken(ProxyClient *pc)
{
    g_mutex_lock(&pc->lock);
    pc->broken = true;
    g_cond_broadcast(&pc->cond);
    g_mutex_unlock(&pc->lock);
}

static void proxy_client_line(ProxyClient *pc, const char *line)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonNode *root;

    if (!json_parser_load_from_data(parser, line, -1, NULL) || !(root = json_parser_get_root(parser)) ||
        !JSON_NODE_HOLDS_OBJECT(root)) {
        qb_log(LOG_WARNING, "colo-proxy sent a line that is no JSON object, ignored");
        return;
    }
    JsonObject *o = json_node_get_object(root);
    if (json_object_has_member(o, "event")) {
        JsonNode *data = json_object_get_member(o, "data");
        const char *name = json_object_get_string_member_with_default(o, "event", "");
        pc->fn(pc->opaque, name ? name : "", data && JSON_NODE_HOLDS_OBJECT(data) ? json_node_get_object(data) : NULL);
        return;
    }
    g_mutex_lock(&pc->lock);
    if (json_object_has_member(o, "colo-proxy")) {
        JsonNode *g = json_object_get_member(o, "colo-proxy");
        g_free(pc->role);
        const char *role = JSON_NODE_HOLDS_OBJECT(g)
                               ? json_object_get_string_member_with_default(json_node_get_object(g), "role", "")
                               : NULL;
        pc->role = g_strdup(role ? role : "");
        pc->greeted = true;
        g_cond_broadcast(&pc->cond);
    } else if (json_object_get_int_member_with_default(o, "id", -1) == pc->waiting_id && !pc->reply) {
        pc->reply = json_node_ref(root);
        g_cond_broadcast(&pc->cond);
    }
    /* Anything else is the late reply of a call that timed out. */
    g_mutex_unlock(&pc->lock);
}

static gpointer proxy_client_read(gpointer opaque)
{
    ProxyClient *pc = opaque;
    g_autoptr(GString) in = g_string_new(NULL);
    char buf[4096];

    for (;;) {
        ssize_t n = recv(pc->fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        g_string_append_len(in, buf, n);
        char *nl;
        while ((nl = memchr(in->str, '\n', in->len))) {
            *nl = '\0';
            proxy_client_line(pc, in->str);
            g_string_erase(in, 0, nl - in->str + 1);
        }
        if (in->len > PROXY_MAX_LINE) {
            qb_log(LOG_ERR, "colo-proxy sent a line over %d bytes: closing its socket", PROXY_MAX_LINE);
            break;
        }
    }
    proxy_client_set_broken(pc);
    return NULL;
}

static bool proxy_client_greeted(const ProxyClient *pc)
{
    return pc->greeted;
}

static bool proxy_client_replied(const ProxyClient *pc)
{
    return pc->reply != NULL;
}

/* With the lock: wait until @ready, the socket broke or @deadline passed
 * (monotonic µs). */
static bool proxy_client_wait(ProxyClient *pc, bool (*ready)(const ProxyClient *), gint64 deadline)
{
    while (!ready(pc) && !pc->broken) {
        if (!g_cond_wait_until(&pc->cond, &pc->lock, deadline)) {
            break;
        }
    }
    return ready(pc);
}

ProxyClient *proxy_client_connect(const char *path, const char *role, int timeout_ms, ProxyEventFn fn,
                                  void *opaque, GError **error)
{
    int fd = colo_unix_connect(path, error);

    if (fd < 0) {
        g_prefix_error(error, "colo-proxy: ");
        return NULL;
    }
    ProxyClient *pc = g_new0(ProxyClient, 1);
    pc->fd = fd;
    pc->fn = fn;
    pc->opaque = opaque;
    pc->waiting_id = -1;
    g_mutex_init(&pc->lock);
    g_mutex_init(&pc->call_lock);
    g_cond_init(&pc->cond);
    pc->reader = g_thread_new("colo-proxy", proxy_client_read, pc);

    g_mutex_lock(&pc->lock);
    bool greeted = proxy_client_wait(pc, proxy_client_greeted,
                                     g_get_monotonic_time() + (gint64)timeout_ms * G_TIME_SPAN_MILLISECOND);
    bool right = greeted && !strcmp(pc->role, role);
    g_mutex_unlock(&pc->lock);
    if (right) {
        /* QMP's negotiation: commands are refused before it. */
        g_autoptr(JsonObject) ok = proxy_client_call(pc, "qmp_capabilities", timeout_ms, error);

        if (!ok) {
            proxy_client_free(pc);
            return NULL;
        }
        return pc;
    }
    if (greeted) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "colo-proxy %s is a %s proxy, not a %s one", path,
                    pc->role[0] ? pc->role : "(unnamed)", role);
    } else {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "colo-proxy %s: no greeting within %d ms", path,
                    timeout_ms);
    }
    proxy_client_free(pc);
    return NULL;
}

/* Write all of @line before @deadline; the socket is non-blocking for us. */
static bool proxy_client_send(ProxyClient *pc, const char *line, gint64 deadline)
{
    size_t len = strlen(line), off = 0;

    while (off < len) {
        ssize_t n = send(pc->fd, line + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0) {
            off += (size_t)n;
            continue;
        }
        if (errno == EINTR) {
            continue;
        }
        gint64 left_ms = (deadline - g_get_monotonic_time()) / G_TIME_SPAN_MILLISECOND;
        struct pollfd p = { .fd = pc->fd, .events = POLLOUT };
        if (errno != EAGAIN || left_ms <= 0 || poll(&p, 1, (int)left_ms) <= 0) {
            return false;
        }
    }
    return true;
}

JsonObject *proxy_client_call(ProxyClient *pc, const char *command, int timeout_ms, GError **error)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * G_TIME_SPAN_MILLISECOND;
    JsonObject *ret = NULL;

    g_mutex_lock(&pc->call_lock);
    g_mutex_lock(&pc->lock);
    gint64 id = ++pc->next_id;
    pc->waiting_id = id;
    bool broken = pc->broken;
    g_mutex_unlock(&pc->lock);

    g_autofree char *line = g_strdup_printf("{\"execute\": \"%s\", \"id\": %" G_GINT64_FORMAT "}\n", command, id);
    if (broken || !proxy_client_send(pc, line, deadline)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE, "colo-proxy: %s: the socket is broken", command);
        proxy_client_set_broken(pc);
        goto out;
    }
    g_mutex_lock(&pc->lock);
    proxy_client_wait(pc, proxy_client_replied, deadline);
    JsonNode *reply = pc->reply;
    pc->reply = NULL;
    pc->waiting_id = -1;
    broken = pc->broken;
    g_mutex_unlock(&pc->lock);
    if (!reply) {
        g_set_error(error, G_IO_ERROR, broken ? G_IO_ERROR_BROKEN_PIPE : G_IO_ERROR_TIMED_OUT,
                    "colo-proxy: %s: %s", command, broken ? "the socket broke" : "no reply in time");
        goto out;
    }
    JsonObject *o = json_node_get_object(reply);
    JsonNode *r = json_object_get_member(o, "return");
    if (r && JSON_NODE_HOLDS_OBJECT(r)) {
        ret = json_object_ref(json_node_get_object(r));
    } else {
        JsonNode *e = json_object_get_member(o, "error");
        const char *desc = e && JSON_NODE_HOLDS_OBJECT(e)
                               ? json_object_get_string_member_with_default(json_node_get_object(e), "desc", NULL)
                               : NULL;
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "colo-proxy: %s: %s", command,
                    desc ? desc : "malformed reply");
    }
    json_node_unref(reply);
out:
    g_mutex_unlock(&pc->call_lock);
    return ret;
}

bool proxy_client_broken(ProxyClient *pc)
{
    g_mutex_lock(&pc->lock);
    bool broken = pc->broken;
    g_mutex_unlock(&pc->lock);
    return broken;
}

void proxy_client_free(ProxyClient *pc)
{
    if (!pc) {
        return;
    }
    shutdown(pc->fd, SHUT_RDWR);    /* the reader's recv returns 0 */
    g_thread_join(pc->reader);
    close(pc->fd);
    if (pc->reply) {
        json_node_unref(pc->reply);
    }
    g_free(pc->role);
    g_cond_clear(&pc->cond);
    g_mutex_clear(&pc->call_lock);
    g_mutex_clear(&pc->lock);
    g_free(pc);
}
