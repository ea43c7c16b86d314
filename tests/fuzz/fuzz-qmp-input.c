/* libFuzzer target: untrusted bytes from a QMP client through the splitter,
 * the JSON parser and the dispatcher (negotiation, request checks,
 * argument helpers), split into pieces as the first byte says. Every
 * line the server writes back must be one valid JSON object ending in
 * "\r\n"; anything else aborts. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/qmp/qmp-priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static JsonParser *check_parser;

static bool fuzz_send(const char *line, size_t len, gpointer opaque)
{
    g_autoptr(GError) error = NULL;
    JsonObject *obj;
    unsigned kinds;

    if (len < 3 || memcmp(line + len - 2, "\r\n", 2) != 0 || memchr(line, '\n', len - 1)) {
        abort();
    }
    if (!json_parser_load_from_data(check_parser, line, (gssize)len - 2, &error) ||
        !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(check_parser))) {
        abort();
    }
    obj = json_node_get_object(json_parser_get_root(check_parser));
    kinds = json_object_has_member(obj, "QMP") + json_object_has_member(obj, "return") +
            json_object_has_member(obj, "error");
    if (kinds != 1) {
        abort();
    }
    return true;
}

/* fuzz-echo: checks every kind of argument helper, returns its arguments. */
static JsonNode *cmd_echo(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { "i", "s", "b", "n", "o", "a", NULL };
    gint64 i = 0;
    const char *s = NULL;
    bool b = false;
    double n = 0;
    JsonObject *o = NULL;
    JsonArray *a = NULL;

    if (!qmp_args_check(args, allowed, error) || !qmp_arg_int(args, "i", false, &i, error) ||
        !qmp_arg_string(args, "s", false, &s, error) || !qmp_arg_bool(args, "b", false, &b, error) ||
        !qmp_arg_number(args, "n", false, &n, error) ||
        !qmp_arg_object(args, "o", false, &o, error) ||
        !qmp_arg_array(args, "a", false, &a, error)) {
        return NULL;
    }
    return json_node_init_object(json_node_alloc(), args);
}

static JsonNode *cmd_fail(JsonObject *args, gpointer opaque, GError **error)
{
    g_set_error(error, QMP_ERROR, QMP_ERROR_DEVICE_NOT_ACTIVE, "not active");
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static QmpServer *server;
    QmpSession *sess;
    size_t chunk;

    if (!server) {
        server = qmp_server_new(NULL, "fuzz", 1, 2, 3);
        /* Small limits so that fuzzing reaches them. */
        qmp_server_set_limits(server, 512, 0);
        qmp_server_register(server, "fuzz-echo", cmd_echo, NULL);
        qmp_server_register(server, "fuzz-fail", cmd_fail, NULL);
        check_parser = json_parser_new();
    }
    if (size == 0) {
        return 0;
    }
    chunk = data[0] ? data[0] : size;
    data++;
    size--;

    sess = qmp_session_new(server, 1, fuzz_send, NULL);
    qmp_session_greet(sess);
    for (size_t off = 0; off < size; off += chunk) {
        qmp_session_feed(sess, (const char *)data + off, MIN(chunk, size - off));
    }
    qmp_session_free(sess);
    return 0;
}
