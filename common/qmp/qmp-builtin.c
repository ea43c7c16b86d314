/* The protocol-level commands every QMP server has: qmp_capabilities,
 * query-commands, query-version. */
#include "config.h"

#include "common/qmp/qmp-priv.h"

JsonNode *qmp_version_node(const QmpServer *s)
{
    JsonObject *qemu = json_object_new();
    g_autoptr(JsonObject) version = json_object_new();

    /* QEMU's member order. */
    json_object_set_int_member(qemu, "micro", s->micro);
    json_object_set_int_member(qemu, "minor", s->minor);
    json_object_set_int_member(qemu, "major", s->major);
    json_object_set_object_member(version, "qemu", qemu);
    json_object_set_string_member(version, "package", s->package);
    return json_node_init_object(json_node_alloc(), version);
}

/* Only "oob" exists as a capability in QEMU, and colo-vmm offers none. */
static bool builtin_check_enable(JsonObject *args, GError **error)
{
    static const char *const allowed[] = { "enable", NULL };
    JsonArray *enable = NULL;

    if (!qmp_args_check(args, allowed, error) ||
        !qmp_arg_array(args, "enable", false, &enable, error)) {
        return false;
    }
    for (guint i = 0; enable && i < json_array_get_length(enable); i++) {
        JsonNode *cap = json_array_get_element(enable, i);

        if (!JSON_NODE_HOLDS_VALUE(cap) || json_node_get_value_type(cap) != G_TYPE_STRING) {
            g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                        "Invalid parameter type for 'enable[%u]', expected: string", i);
            return false;
        }
        if (g_strcmp0(json_node_get_string(cap), "oob") == 0) {
            g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC, "Capability oob not available");
        } else {
            g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                        "Parameter 'enable[%u]' does not accept value '%s'", i,
                        json_node_get_string(cap));
        }
        return false;
    }
    return true;
}

static JsonNode *builtin_qmp_capabilities(JsonObject *args, gpointer opaque, GError **error)
{
    QmpServer *s = opaque;

    if (qmp_session_in_command_mode(s->current)) {
        g_set_error(error, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND,
                    "Capabilities negotiation is already complete, command ignored");
        return NULL;
    }
    if (!builtin_check_enable(args, error)) {
        return NULL;
    }
    qmp_session_enter_command_mode(s->current);
    return NULL;
}

static JsonNode *builtin_query_commands(JsonObject *args, gpointer opaque, GError **error)
{
    QmpServer *s = opaque;
    g_autoptr(JsonArray) list = json_array_new();

    if (!qmp_args_check(args, NULL, error)) {
        return NULL;
    }
    for (guint i = 0; i < s->commands->len; i++) {
        const QmpCommand *cmd = g_ptr_array_index(s->commands, i);
        JsonObject *info = json_object_new();

        json_object_set_string_member(info, "name", cmd->name);
        json_array_add_object_element(list, info);
    }
    return json_node_init_array(json_node_alloc(), list);
}

static JsonNode *builtin_query_version(JsonObject *args, gpointer opaque, GError **error)
{
    if (!qmp_args_check(args, NULL, error)) {
        return NULL;
    }
    return qmp_version_node(opaque);
}

void qmp_builtin_register(QmpServer *s)
{
    qmp_server_register(s, "qmp_capabilities", builtin_qmp_capabilities, s);
    qmp_server_register(s, "query-commands", builtin_query_commands, s);
    qmp_server_register(s, "query-version", builtin_query_version, s);
}
