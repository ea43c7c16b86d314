/* colo-proxy's control socket on the QMP library (see control.h). */
#include "config.h"

#include "control.h"

QmpServer *ctl_server_new(const char *path, const char *group, const struct ctl_command *table, void *opaque,
                          const char *role, GError **error)
{
    QmpServer *s = qmp_server_new(NULL, "colo-proxy", COLO_VERSION_MAJOR, COLO_VERSION_MINOR, COLO_VERSION_MICRO);
    JsonObject *me = json_object_new();

    json_object_set_string_member(me, "version", PACKAGE_VERSION);
    json_object_set_string_member(me, "role", role);
    qmp_server_set_greeting_member(s, "colo-proxy", json_node_init_object(json_node_alloc(), me));
    json_object_unref(me);
    qmp_server_set_limits(s, CTL_MAX_MESSAGE, 0);
    for (const struct ctl_command *c = table; c->name; c++) {
        qmp_server_register(s, c->name, c->fn, opaque);
    }
    if (!qmp_server_listen_unix_group(s, path, group, error)) {
        qmp_server_free(s);
        return NULL;
    }
    return s;
}

void ctl_server_emit(QmpServer *s, const char *event, JsonNode *data)
{
    JsonObject *obj = NULL;

    if (data && JSON_NODE_HOLDS_OBJECT(data)) {
        obj = json_object_ref(json_node_get_object(data));
    }
    if (data) {
        json_node_unref(data);
    }
    qmp_server_emit_event(s, event, obj);
}
