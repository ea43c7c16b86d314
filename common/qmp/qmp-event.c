/* QMP events. Any thread may emit: the event line is built at once (so its
 * timestamp is the time of the call) and either written directly, on the
 * server's own thread, or queued to a GSource of the server's context. */
#include "config.h"

#include "common/qmp/qmp-priv.h"

#include <string.h>

/* Writes every queued event, oldest first. Server thread only. */
void qmp_events_flush(QmpServer *s)
{
    GQueue pending = G_QUEUE_INIT;
    char *line;

    g_mutex_lock(&s->event_lock);
    pending = s->event_queue;
    g_queue_init(&s->event_queue);
    g_mutex_unlock(&s->event_lock);

    while ((line = g_queue_pop_head(&pending))) {
        qmp_server_broadcast(s, line, strlen(line));
        g_free(line);
    }
}

typedef struct {
    GSource base;
    QmpServer *server;
} EventSource;

static gboolean event_source_dispatch(GSource *source, GSourceFunc cb, gpointer data)
{
    /* Disarm before draining: an emit racing with us re-arms afterwards. */
    g_source_set_ready_time(source, -1);
    qmp_events_flush(((EventSource *)source)->server);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs event_source_funcs = {
    .dispatch = event_source_dispatch,
};

void qmp_events_init(QmpServer *s)
{
    GSource *source = g_source_new(&event_source_funcs, sizeof(EventSource));

    ((EventSource *)source)->server = s;
    g_mutex_init(&s->event_lock);
    g_queue_init(&s->event_queue);
    g_source_set_name(source, "qmp-events");
    g_source_set_ready_time(source, -1);
    g_source_attach(source, s->ctx);
    s->event_source = source;
}

void qmp_events_fini(QmpServer *s)
{
    g_source_destroy(s->event_source);
    g_source_unref(s->event_source);
    g_queue_clear_full(&s->event_queue, g_free);
    g_mutex_clear(&s->event_lock);
}

void qmp_server_emit_event(QmpServer *s, const char *event, JsonObject *data)
{
    gint64 now = g_get_real_time();
    JsonObject *timestamp = json_object_new();
    g_autoptr(JsonObject) msg = json_object_new();
    g_autoptr(JsonNode) node = NULL;
    size_t len;
    char *line;

    json_object_set_string_member(msg, "event", event);
    if (data) {
        json_object_set_object_member(msg, "data", data);
    }
    json_object_set_int_member(timestamp, "seconds", now / G_USEC_PER_SEC);
    json_object_set_int_member(timestamp, "microseconds", now % G_USEC_PER_SEC);
    json_object_set_object_member(msg, "timestamp", timestamp);
    node = json_node_init_object(json_node_alloc(), msg);
    line = qmp_json_line(node, &len);

    if (g_main_context_is_owner(s->ctx)) {
        qmp_events_flush(s); /* keep the order of earlier events from other threads */
        qmp_server_broadcast(s, line, len);
        g_free(line);
        return;
    }
    g_mutex_lock(&s->event_lock);
    g_queue_push_tail(&s->event_queue, line);
    g_mutex_unlock(&s->event_lock);
    g_source_set_ready_time(s->event_source, 0);
}
