/* Argument helpers for QMP command handlers (see qmp-args.h). */
#include "config.h"

#include "common/qmp/qmp-args.h"
#include "common/qmp/qmp-server.h"

typedef enum { ARG_INT, ARG_STRING, ARG_BOOL, ARG_NUMBER, ARG_OBJECT, ARG_ARRAY } ArgKind;

/* The type names QEMU's input visitor uses in its messages. */
static const char *const arg_kind_names[] = {
    [ARG_INT] = "integer", [ARG_STRING] = "string", [ARG_BOOL] = "boolean",
    [ARG_NUMBER] = "number", [ARG_OBJECT] = "object", [ARG_ARRAY] = "array",
};

static bool node_is_value(JsonNode *node, GType type)
{
    return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == type;
}

static bool arg_kind_matches(JsonNode *node, ArgKind kind)
{
    switch (kind) {
    case ARG_INT:
        return node_is_value(node, G_TYPE_INT64);
    case ARG_STRING:
        return node_is_value(node, G_TYPE_STRING);
    case ARG_BOOL:
        return node_is_value(node, G_TYPE_BOOLEAN);
    case ARG_NUMBER:
        return node_is_value(node, G_TYPE_INT64) || node_is_value(node, G_TYPE_DOUBLE);
    case ARG_OBJECT:
        return JSON_NODE_HOLDS_OBJECT(node);
    case ARG_ARRAY:
        return JSON_NODE_HOLDS_ARRAY(node);
    }
    return false;
}

/* True with *node set when the argument is present and of @kind, true with
 * *node NULL when it is optional and absent, false with @error otherwise. */
static bool arg_get(JsonObject *args, const char *name, bool required, ArgKind kind,
                    JsonNode **node, GError **error)
{
    *node = json_object_get_member(args, name);
    if (!*node) {
        if (required) {
            g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC, "Parameter '%s' is missing", name);
            return false;
        }
        return true;
    }
    if (!arg_kind_matches(*node, kind)) {
        g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Invalid parameter type for '%s', expected: %s", name, arg_kind_names[kind]);
        *node = NULL;
        return false;
    }
    return true;
}

bool qmp_args_check(JsonObject *args, const char *const allowed[], GError **error)
{
    g_autoptr(GList) members = json_object_get_members(args);

    for (GList *m = members; m; m = m->next) {
        const char *name = m->data;

        if (!allowed || !g_strv_contains(allowed, name)) {
            g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC, "Parameter '%s' is unexpected", name);
            return false;
        }
    }
    return true;
}

bool qmp_arg_int(JsonObject *args, const char *name, bool required, gint64 *out, GError **error)
{
    JsonNode *node;

    if (!arg_get(args, name, required, ARG_INT, &node, error)) {
        return false;
    }
    if (node) {
        *out = json_node_get_int(node);
    }
    return true;
}

bool qmp_arg_string(JsonObject *args, const char *name, bool required, const char **out,
                    GError **error)
{
    JsonNode *node;

    if (!arg_get(args, name, required, ARG_STRING, &node, error)) {
        return false;
    }
    if (node) {
        *out = json_node_get_string(node);
    }
    return true;
}

bool qmp_arg_bool(JsonObject *args, const char *name, bool required, bool *out, GError **error)
{
    JsonNode *node;

    if (!arg_get(args, name, required, ARG_BOOL, &node, error)) {
        return false;
    }
    if (node) {
        *out = json_node_get_boolean(node);
    }
    return true;
}

bool qmp_arg_number(JsonObject *args, const char *name, bool required, double *out,
                    GError **error)
{
    JsonNode *node;

    if (!arg_get(args, name, required, ARG_NUMBER, &node, error)) {
        return false;
    }
    if (node) {
        *out = json_node_get_value_type(node) == G_TYPE_INT64 ? (double)json_node_get_int(node)
                                                              : json_node_get_double(node);
    }
    return true;
}

bool qmp_arg_object(JsonObject *args, const char *name, bool required, JsonObject **out,
                    GError **error)
{
    JsonNode *node;

    if (!arg_get(args, name, required, ARG_OBJECT, &node, error)) {
        return false;
    }
    if (node) {
        *out = json_node_get_object(node);
    }
    return true;
}

bool qmp_arg_array(JsonObject *args, const char *name, bool required, JsonArray **out,
                   GError **error)
{
    JsonNode *node;

    if (!arg_get(args, name, required, ARG_ARRAY, &node, error)) {
        return false;
    }
    if (node) {
        *out = json_node_get_array(node);
    }
    return true;
}
