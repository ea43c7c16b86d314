/* QMP request handling: the command table, the checks of a request's
 * shape, dispatch, and the mapping of errors to QMP error classes, all in
 * QEMU's words (qapi/qmp-dispatch.c, monitor/qmp.c). */
#include "config.h"

#include "common/qmp/qmp-priv.h"

#include <string.h>
#include <qb/qblog.h>

G_DEFINE_QUARK(qmp-error-quark, qmp_error)

static const char *const qmp_error_classes[] = {
    [QMP_ERROR_GENERIC] = "GenericError",
    [QMP_ERROR_COMMAND_NOT_FOUND] = "CommandNotFound",
    [QMP_ERROR_DEVICE_NOT_FOUND] = "DeviceNotFound",
    [QMP_ERROR_DEVICE_NOT_ACTIVE] = "DeviceNotActive",
    [QMP_ERROR_KVM_MISSING_CAP] = "KVMMissingCap",
};

static void command_free(gpointer data)
{
    QmpCommand *cmd = data;

    g_free(cmd->name);
    g_free(cmd);
}

void qmp_commands_init(QmpServer *s)
{
    s->commands = g_ptr_array_new_with_free_func(command_free);
    s->command_index = g_hash_table_new(g_str_hash, g_str_equal);
}

void qmp_commands_fini(QmpServer *s)
{
    g_hash_table_destroy(s->command_index);
    g_ptr_array_free(s->commands, TRUE);
}

void qmp_server_set_gate(QmpServer *s, QmpGateFunc gate, gpointer opaque)
{
    s->gate = gate;
    s->gate_opaque = opaque;
}

void qmp_server_register(QmpServer *s, const char *name, QmpCommandFunc fn, gpointer opaque)
{
    qmp_server_register_in(s, name, QMP_STATES_ANY, fn, opaque);
}

void qmp_server_register_in(QmpServer *s, const char *name, uint32_t states, QmpCommandFunc fn,
                            gpointer opaque)
{
    QmpCommand *cmd = g_hash_table_lookup(s->command_index, name);

    g_return_if_fail(fn != NULL);
    if (!cmd) {
        cmd = g_new0(QmpCommand, 1);
        cmd->name = g_strdup(name);
        g_ptr_array_add(s->commands, cmd);
        g_hash_table_insert(s->command_index, cmd->name, cmd);
    }
    cmd->fn = fn;
    cmd->opaque = opaque;
    cmd->states = states;
}

char *qmp_json_line(JsonNode *node, size_t *len)
{
    g_autoptr(JsonGenerator) gen = json_generator_new();
    gsize n;
    char *text;

    json_generator_set_root(gen, node);
    text = json_generator_to_data(gen, &n);
    text = g_realloc(text, n + 3);
    memcpy(text + n, "\r\n", 3);
    *len = n + 2;
    return text;
}

static const char *qmp_error_class(const GError *error)
{
    if (error->domain == QMP_ERROR && error->code >= 0 &&
        (size_t)error->code < G_N_ELEMENTS(qmp_error_classes)) {
        return qmp_error_classes[error->code];
    }
    return qmp_error_classes[QMP_ERROR_GENERIC];
}

QmpErrorCode qmp_error_code_from_class(const char *cls)
{
    for (size_t i = 0; cls && i < G_N_ELEMENTS(qmp_error_classes); i++) {
        if (!strcmp(cls, qmp_error_classes[i])) {
            return (QmpErrorCode)i;
        }
    }
    return QMP_ERROR_GENERIC;
}

JsonNode *qmp_error_response(const GError *error)
{
    JsonObject *err = json_object_new();
    g_autoptr(JsonObject) rsp = json_object_new();
    /* A message may quote the client's input cut short, a character in
     * two (json-glib's parse errors do): JSON text must be UTF-8. */
    g_autofree char *desc = g_utf8_make_valid(error->message, -1);

    json_object_set_string_member(err, "class", qmp_error_class(error));
    json_object_set_string_member(err, "desc", desc);
    json_object_set_object_member(rsp, "error", err);
    return json_node_init_object(json_node_alloc(), rsp);
}

/* Checks the members of a request: "execute" (a string), "arguments" (an
 * object), "id" (anything), nothing else. */
static bool dispatch_check_request(JsonObject *req, const char **name, GError **error)
{
    g_autoptr(GList) members = json_object_get_members(req);

    *name = NULL;
    for (GList *m = members; m; m = m->next) {
        const char *member = m->data;
        JsonNode *value = json_object_get_member(req, member);

        if (!strcmp(member, "execute")) {
            if (!JSON_NODE_HOLDS_VALUE(value) || json_node_get_value_type(value) != G_TYPE_STRING) {
                g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                            "QMP input member 'execute' must be a string");
                return false;
            }
            *name = json_node_get_string(value);
        } else if (!strcmp(member, "arguments")) {
            if (!JSON_NODE_HOLDS_OBJECT(value)) {
                g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                            "QMP input member 'arguments' must be an object");
                return false;
            }
        } else if (strcmp(member, "id") != 0) {
            /* "exec-oob" lands here too: no out-of-band capability. */
            g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC, "QMP input member '%s' is unexpected",
                        member);
            return false;
        }
    }
    if (!*name) {
        g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC, "QMP input lacks member 'execute'");
        return false;
    }
    return true;
}

/* Runs command @name; returns its result or NULL with @error set. */
static JsonNode *dispatch_run(QmpServer *s, QmpSession *sess, const char *name,
                              JsonObject *args, GError **error)
{
    QmpCommand *cmd;
    JsonNode *ret;
    GError *local = NULL;

    if (!qmp_session_in_command_mode(sess) && strcmp(name, "qmp_capabilities") != 0) {
        g_set_error(error, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND,
                    "Expecting capabilities negotiation with 'qmp_capabilities'");
        return NULL;
    }
    cmd = g_hash_table_lookup(s->command_index, name);
    if (!cmd) {
        g_set_error(error, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND,
                    "The command %s has not been found", name);
        return NULL;
    }
    if (cmd->states != QMP_STATES_ANY && s->gate &&
        !s->gate(name, cmd->states, s->gate_opaque, error)) {
        return NULL;
    }

    s->current = sess;
    ret = cmd->fn(args, cmd->opaque, &local);
    s->current = NULL;

    if (local) {
        if (ret) {
            qb_log(LOG_ERR, "qmp: command %s returned a value and an error", name);
            json_node_unref(ret);
        }
        g_propagate_error(error, local);
        return NULL;
    }
    if (!ret) {
        ret = json_node_new(JSON_NODE_OBJECT);
        json_node_take_object(ret, json_object_new());
    }
    return ret;
}

JsonNode *qmp_dispatch(QmpServer *s, QmpSession *sess, JsonNode *request)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) rsp = NULL;
    g_autoptr(JsonObject) no_args = NULL;
    JsonObject *req = NULL;
    JsonObject *args;
    JsonNode *id = NULL;
    JsonNode *ret = NULL;
    const char *name;

    if (!JSON_NODE_HOLDS_OBJECT(request)) {
        g_set_error(&error, QMP_ERROR, QMP_ERROR_GENERIC, "QMP input must be a JSON object");
        return qmp_error_response(error);
    }
    req = json_node_get_object(request);
    id = json_object_get_member(req, "id");

    if (dispatch_check_request(req, &name, &error)) {
        JsonNode *args_node = json_object_get_member(req, "arguments");

        args = args_node ? json_node_get_object(args_node) : (no_args = json_object_new());
        ret = dispatch_run(s, sess, name, args, &error);
    }

    if (error) {
        g_autoptr(JsonNode) err = qmp_error_response(error);

        rsp = json_object_ref(json_node_get_object(err));
        qb_log(LOG_DEBUG, "qmp: client %u: %s: %s", qmp_session_id(sess), qmp_error_class(error),
               error->message);
    } else {
        rsp = json_object_new();
        json_object_set_member(rsp, "return", ret);
    }
    /* As QEMU: the id comes back even when the request was malformed. */
    if (id) {
        json_object_set_member(rsp, "id", json_node_copy(id));
    }
    return json_node_init_object(json_node_alloc(), rsp);
}
