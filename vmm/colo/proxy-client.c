/* colo-proxy's control socket, client side (see proxy-client.h): the
 * asynchronous QMP client (common/qmp/qmp-client.c) on a main context and
 * thread of its own, with blocking calls on top for the COLO threads. */
#include "config.h"

#include "colo/proxy-client.h"
#include "common/qmp/qmp-client.h"

#include <string.h>

#include <gio/gio.h>
#include <qb/qblog.h>

struct ProxyClient {
    GMainContext *ctx;
    GMainLoop *loop;
    GThread *thread;            /* runs ctx: the QMP client and the events */
    QmpClient *qmp;             /* only touched on thread */
    ProxyEventFn fn;
    ProxyClosedFn closed;
    void *opaque;

    GMutex call_lock;           /* one call at a time */
    GMutex lock;                /* the fields below */
    GCond cond;
    bool broken;
    bool done;                  /* the connect or call in progress ended */
    GError *error;              /* its error */
    JsonNode *ret;              /* a call's "return" value */
    char *role;                 /* from the greeting */
};

/* A call handed to the client's thread. */
typedef struct {
    ProxyClient *pc;
    char *command;
    JsonObject *args;           /* taken by qmp_client_execute */
    guint timeout_ms;
} ProxyCall;

static gpointer proxy_client_thread(gpointer opaque)
{
    ProxyClient *pc = opaque;

    g_main_context_push_thread_default(pc->ctx);
    g_main_loop_run(pc->loop);
    g_main_context_pop_thread_default(pc->ctx);
    return NULL;
}

/* Ends the connect or call in progress (with the lock). */
static void proxy_client_finish(ProxyClient *pc, JsonNode *ret, const GError *error)
{
    g_mutex_lock(&pc->lock);
    pc->done = true;
    pc->ret = ret ? json_node_copy(ret) : NULL;
    pc->error = error ? g_error_copy(error) : NULL;
    if (error && (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED) ||
                  g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED))) {
        pc->broken = true;
    }
    g_cond_broadcast(&pc->cond);
    g_mutex_unlock(&pc->lock);
}

/* Waits for the connect or call in progress; takes its outcome. */
static JsonNode *proxy_client_wait(ProxyClient *pc, GError **error)
{
    JsonNode *ret;

    g_mutex_lock(&pc->lock);
    /* The QMP client's own timeouts end every wait. */
    while (!pc->done) {
        g_cond_wait(&pc->cond, &pc->lock);
    }
    pc->done = false;
    ret = pc->ret;
    pc->ret = NULL;
    if (pc->error) {
        g_propagate_error(error, pc->error);
        pc->error = NULL;
    }
    g_mutex_unlock(&pc->lock);
    return ret;
}

static void proxy_client_on_event(QmpClient *c, const char *event, JsonObject *data, JsonObject *timestamp,
                                  gpointer opaque)
{
    ProxyClient *pc = opaque;

    pc->fn(pc->opaque, event, data);
}

static void proxy_client_on_closed(QmpClient *c, const GError *error, gpointer opaque)
{
    ProxyClient *pc = opaque;

    qb_log(LOG_WARNING, "colo-proxy: %s", error->message);
    g_mutex_lock(&pc->lock);
    pc->broken = true;
    g_mutex_unlock(&pc->lock);
    if (pc->closed) {
        pc->closed(pc->opaque, error->message);
    }
}

static void proxy_client_on_ready(QmpClient *c, const GError *error, gpointer opaque)
{
    ProxyClient *pc = opaque;
    JsonObject *greeting = error ? NULL : qmp_client_greeting(c);
    JsonNode *me = greeting ? json_object_get_member(greeting, "colo-proxy") : NULL;
    const char *role = me && JSON_NODE_HOLDS_OBJECT(me)
                           ? json_object_get_string_member_with_default(json_node_get_object(me), "role", "")
                           : "";

    g_mutex_lock(&pc->lock);
    pc->role = g_strdup(role ? role : "");
    g_mutex_unlock(&pc->lock);
    proxy_client_finish(pc, NULL, error);
}

typedef struct {
    ProxyClient *pc;
    char *path;
    guint timeout_ms;
} ProxyConnect;

static gboolean proxy_client_start(gpointer data)
{
    ProxyConnect *pcn = data;
    ProxyClient *pc = pcn->pc;

    pc->qmp = qmp_client_new(pc->ctx);
    qmp_client_set_event_handler(pc->qmp, proxy_client_on_event, pc);
    qmp_client_set_closed_handler(pc->qmp, proxy_client_on_closed, pc);
    qmp_client_connect(pc->qmp, pcn->path, pcn->timeout_ms, proxy_client_on_ready, pc);
    g_free(pcn->path);
    g_free(pcn);
    return G_SOURCE_REMOVE;
}

ProxyClient *proxy_client_connect(const char *path, const char *role, int timeout_ms, ProxyEventFn fn,
                                  ProxyClosedFn closed, void *opaque, GError **error)
{
    ProxyClient *pc = g_new0(ProxyClient, 1);
    ProxyConnect *pcn = g_new0(ProxyConnect, 1);
    GError *local = NULL;

    pc->fn = fn;
    pc->closed = closed;
    pc->opaque = opaque;
    g_mutex_init(&pc->lock);
    g_mutex_init(&pc->call_lock);
    g_cond_init(&pc->cond);
    pc->ctx = g_main_context_new();
    pc->loop = g_main_loop_new(pc->ctx, FALSE);
    pc->thread = g_thread_new("colo-proxy", proxy_client_thread, pc);
    pcn->pc = pc;
    pcn->path = g_strdup(path);
    pcn->timeout_ms = (guint)MAX(timeout_ms, 1);
    g_main_context_invoke(pc->ctx, proxy_client_start, pcn);
    proxy_client_wait(pc, &local);
    if (local) {
        g_set_error(error, local->domain, local->code, "colo-proxy %s: %s", path, local->message);
        g_error_free(local);
        proxy_client_free(pc);
        return NULL;
    }
    if (strcmp(pc->role, role) != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "colo-proxy %s is a %s proxy, not a %s one", path,
                    pc->role[0] ? pc->role : "(unnamed)", role);
        proxy_client_free(pc);
        return NULL;
    }
    return pc;
}

static void proxy_client_on_reply(QmpClient *c, JsonNode *ret, const GError *error, gpointer opaque)
{
    ProxyCall *call = opaque;

    proxy_client_finish(call->pc, ret, error);
    g_free(call->command);
    g_free(call);
}

static gboolean proxy_client_send(gpointer data)
{
    ProxyCall *call = data;

    JsonObject *args = call->args;

    call->args = NULL;
    qmp_client_execute(call->pc->qmp, call->command, args, call->timeout_ms, proxy_client_on_reply, call);
    return G_SOURCE_REMOVE;
}

JsonObject *proxy_client_call(ProxyClient *pc, const char *command, int timeout_ms, GError **error)
{
    return proxy_client_call_args(pc, command, NULL, timeout_ms, error);
}

JsonObject *proxy_client_call_args(ProxyClient *pc, const char *command, JsonObject *args, int timeout_ms,
                                   GError **error)
{
    ProxyCall *call = g_new0(ProxyCall, 1);
    g_autoptr(GError) local = NULL;
    JsonObject *obj = NULL;
    JsonNode *ret;

    call->pc = pc;
    call->command = g_strdup(command);
    call->args = args;
    call->timeout_ms = (guint)MAX(timeout_ms, 1);
    g_mutex_lock(&pc->call_lock);
    g_main_context_invoke(pc->ctx, proxy_client_send, call);
    ret = proxy_client_wait(pc, &local);
    g_mutex_unlock(&pc->call_lock);
    if (!ret) {
        const char *why = g_error_matches(local, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) ? "no reply in time"
                          : pc->broken                                               ? "the socket broke"
                                                                                     : local->message;

        g_set_error(error, local->domain, local->code, "colo-proxy: %s: %s", command, why);
        return NULL;
    }
    if (JSON_NODE_HOLDS_OBJECT(ret)) {
        obj = json_object_ref(json_node_get_object(ret));
    } else {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "colo-proxy: %s: malformed reply", command);
    }
    json_node_unref(ret);
    return obj;
}

bool proxy_client_broken(ProxyClient *pc)
{
    g_mutex_lock(&pc->lock);
    bool broken = pc->broken;
    g_mutex_unlock(&pc->lock);
    return broken;
}

static gboolean proxy_client_stop(gpointer data)
{
    ProxyClient *pc = data;

    qmp_client_free(pc->qmp);
    pc->qmp = NULL;
    g_main_loop_quit(pc->loop);
    return G_SOURCE_REMOVE;
}

void proxy_client_free(ProxyClient *pc)
{
    if (!pc) {
        return;
    }
    g_main_context_invoke(pc->ctx, proxy_client_stop, pc);
    g_thread_join(pc->thread);
    g_main_loop_unref(pc->loop);
    g_main_context_unref(pc->ctx);
    if (pc->ret) {
        json_node_unref(pc->ret);
    }
    g_clear_error(&pc->error);
    g_free(pc->role);
    g_cond_clear(&pc->cond);
    g_mutex_clear(&pc->call_lock);
    g_mutex_clear(&pc->lock);
    g_free(pc);
}
