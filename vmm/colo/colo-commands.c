#include "config.h"

#include "colo/colo-commands.h"

#include "colo/colo.h"

static JsonNode *cmd_query_colo_status(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { NULL };

    if (!qmp_args_check(args, allowed, error)) {
        return NULL;
    }
    JsonNode *node = json_node_new(JSON_NODE_OBJECT);
    json_node_take_object(node, colo_query(opaque));
    return node;
}

static JsonNode *cmd_x_colo_lost_heartbeat(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { NULL };

    if (qmp_args_check(args, allowed, error)) {
        colo_lost_heartbeat(opaque, error);
    }
    return NULL;
}

static JsonNode *cmd_x_colo_checkpoint(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { NULL };

    if (qmp_args_check(args, allowed, error)) {
        colo_request_checkpoint(opaque, error);
    }
    return NULL;
}

void colo_commands_register(QmpServer *qmp, Migration *m)
{
    qmp_server_register(qmp, "query-colo-status", cmd_query_colo_status, m);
    qmp_server_register(qmp, "x-colo-lost-heartbeat", cmd_x_colo_lost_heartbeat, m);
    qmp_server_register(qmp, "x-colo-checkpoint", cmd_x_colo_checkpoint, m);
}
