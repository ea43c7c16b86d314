/* One QMP client's protocol state: input splitting, parsing, negotiation
 * mode, replies. Knows nothing about sockets, so the fuzz target drives it
 * directly. */
#include "config.h"

#include "common/qmp/qmp-priv.h"
#include "common/qmp/qmp-splitter.h"

#include <string.h>

#include <qb/qblog.h>

struct QmpSession {
    QmpServer *server;
    unsigned id;
    QmpSplitter *splitter;
    JsonParser *parser;
    GHashTable *members;  /* JsonObject * -> members parsed so far, for duplicates */
    char *duplicate;      /* the first key found twice in one object, or NULL */
    bool command_mode;
    bool gone; /* the send function failed: drop everything */
    QmpSessionSendFunc send;
    gpointer opaque;
};

static bool session_send_line(QmpSession *sess, const char *line, size_t len)
{
    if (!sess->gone && !sess->send(line, len, sess->opaque)) {
        sess->gone = true;
    }
    return !sess->gone;
}

static bool session_send_node(QmpSession *sess, JsonNode *node)
{
    size_t len;
    g_autofree char *line = qmp_json_line(node, &len);

    return session_send_line(sess, line, len);
}

/* Sends @response with its "id" member spelt as @raw_id, the number exactly
 * as the client sent it: json-glib wraps integers beyond 64 bits and
 * rounds doubles, and a client matches replies by the id it wrote. */
static bool session_send_raw_id(QmpSession *sess, JsonNode *response, const char *raw_id)
{
    JsonObject *rsp = json_node_get_object(response);
    size_t len;

    json_object_remove_member(rsp, "id");
    g_autofree char *line = qmp_json_line(response, &len);
    /* line is "{...}\r\n" and the object holds "return" or "error". */
    g_autofree char *out = g_strdup_printf("%.*s,\"id\":%s}\r\n", (int)(len - 3), line, raw_id);
    return session_send_line(sess, out, strlen(out));
}

/* json-glib keeps the last of two equal keys without a word; QEMU refuses
 * such input, or a command could hide behind another. json-glib has set
 * the member when it tells us, so more members parsed than the object
 * holds means a key came twice. */
static void session_on_member(JsonParser *parser, JsonObject *object, const char *name,
                              gpointer opaque)
{
    QmpSession *sess = opaque;
    guint n = GPOINTER_TO_UINT(g_hash_table_lookup(sess->members, object)) + 1;

    g_hash_table_insert(sess->members, object, GUINT_TO_POINTER(n));
    if (n > json_object_get_size(object) && !sess->duplicate) {
        sess->duplicate = g_strdup(name);
    }
}

/* A short, printable excerpt of bad input for the log. */
static char *session_excerpt(const char *text, size_t len)
{
    g_autofree char *head = g_strndup(text, MIN(len, 60));
    g_autofree char *escaped = g_strescape(head, NULL);

    return g_strdup_printf("%s%s", escaped, len > 60 ? "..." : "");
}

static JsonNode *session_request_id(JsonNode *request)
{
    return JSON_NODE_HOLDS_OBJECT(request) ? json_object_get_member(json_node_get_object(request), "id")
                                           : NULL;
}

/* The id member's number as sent, if the request has a numeric id in
 * strict JSON syntax; else NULL (json-glib's value is exact enough). */
static char *session_raw_id(JsonNode *request, const char *text, size_t len)
{
    JsonNode *id = session_request_id(request);
    size_t start, id_len;

    if (!id || !JSON_NODE_HOLDS_VALUE(id) ||
        (json_node_get_value_type(id) != G_TYPE_INT64 && json_node_get_value_type(id) != G_TYPE_DOUBLE) ||
        !qmp_json_member_text(text, len, "id", &start, &id_len) ||
        !qmp_json_is_number(text + start, id_len)) {
        return NULL;
    }
    return g_strndup(text + start, id_len);
}

/* An integer json-glib could not hold (beyond int64 and uint64: it makes
 * -1 of it) anywhere but in the id, which only travels back as sent. */
static bool session_check_integers(JsonNode *request, const char *text, size_t len, GError **error)
{
    size_t id_start = 0, id_len = 0, start, tok_len;

    if (session_request_id(request)) {
        qmp_json_member_text(text, len, "id", &id_start, &id_len);
    }
    if (qmp_json_find_huge_integer(text, len, id_start, id_len, &start, &tok_len)) {
        g_autofree char *tok = session_excerpt(text + start, tok_len);

        g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                    "integer %s is out of range (QMP integers are 64-bit)", tok);
        return false;
    }
    return true;
}

/* Parses and runs one text; returns the response and, in *@raw_id, the
 * id to put in it as sent (or NULL). */
static JsonNode *session_handle_text(QmpSession *sess, const char *text, size_t len,
                                     char **raw_id)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) request = NULL;

    *raw_id = NULL;
    g_hash_table_remove_all(sess->members);
    g_clear_pointer(&sess->duplicate, g_free);
    /* json-glib would accept invalid UTF-8 inside strings. */
    if (!g_utf8_validate_len(text, len, NULL)) {
        g_set_error(&error, QMP_ERROR, QMP_ERROR_GENERIC,
                    "JSON parse error, invalid UTF-8 sequence in input");
    } else if (!json_parser_load_from_data(sess->parser, text, (gssize)len, &error)) {
        g_prefix_error(&error, "JSON parse error, ");
    } else if (sess->duplicate) {
        g_autofree char *key = session_excerpt(sess->duplicate, strlen(sess->duplicate));

        /* QEMU's words, and which key. */
        g_set_error(&error, QMP_ERROR, QMP_ERROR_GENERIC, "JSON parse error, duplicate key '%s'", key);
    } else if (!(request = json_parser_steal_root(sess->parser))) {
        /* json-glib skips comments: "//" alone is a document without a value. */
        g_set_error(&error, QMP_ERROR, QMP_ERROR_GENERIC, "JSON parse error, expecting value");
    }
    g_hash_table_remove_all(sess->members);
    if (!request) {
        g_autofree char *excerpt = session_excerpt(text, len);

        qb_log(LOG_WARNING, "qmp: client %u: bad input \"%s\": %s", sess->id, excerpt,
               error->message);
        return qmp_error_response(error);
    }
    *raw_id = session_raw_id(request, text, len);
    if (!session_check_integers(request, text, len, &error)) {
        JsonNode *response = qmp_error_response(error);
        JsonNode *id = session_request_id(request);

        /* The request was read: its id comes back, as for any bad request. */
        if (id) {
            json_object_set_member(json_node_get_object(response), "id", json_node_copy(id));
        }
        return response;
    }
    return qmp_dispatch(sess->server, sess, request);
}

static bool session_on_text(const char *text, size_t len, const GError *error, gpointer opaque)
{
    QmpSession *sess = opaque;
    g_autoptr(JsonNode) response = NULL;
    g_autofree char *raw_id = NULL;

    if (sess->gone) {
        return false;
    }
    if (error) {
        qb_log(LOG_WARNING, "qmp: client %u: bad input: %s", sess->id, error->message);
        response = qmp_error_response(error);
    } else {
        response = session_handle_text(sess, text, len, &raw_id);
    }
    if (raw_id && json_object_has_member(json_node_get_object(response), "id")) {
        return session_send_raw_id(sess, response, raw_id);
    }
    return session_send_node(sess, response);
}

QmpSession *qmp_session_new(QmpServer *s, unsigned id, QmpSessionSendFunc send, gpointer opaque)
{
    QmpSession *sess = g_new0(QmpSession, 1);

    sess->server = s;
    sess->id = id;
    sess->splitter = qmp_splitter_new(s->max_message, QMP_MAX_NESTING, session_on_text, sess);
    sess->parser = json_parser_new();
    sess->members = g_hash_table_new(NULL, NULL);
    g_signal_connect(sess->parser, "object-member", G_CALLBACK(session_on_member), sess);
    sess->send = send;
    sess->opaque = opaque;
    return sess;
}

void qmp_session_free(QmpSession *sess)
{
    if (!sess) {
        return;
    }
    if (sess->server->current == sess) {
        sess->server->current = NULL;
    }
    qmp_splitter_free(sess->splitter);
    g_object_unref(sess->parser);
    g_hash_table_unref(sess->members);
    g_free(sess->duplicate);
    g_free(sess);
}

bool qmp_session_greet(QmpSession *sess)
{
    g_autoptr(JsonObject) qmp = json_object_new();
    g_autoptr(JsonObject) greeting = json_object_new();
    g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);

    json_object_set_member(qmp, "version", qmp_version_node(sess->server));
    /* No optional capabilities: colo-vmm has no out-of-band execution. */
    json_object_set_array_member(qmp, "capabilities", json_array_new());
    json_object_set_object_member(greeting, "QMP", json_object_ref(qmp));
    if (sess->server->greeting_name) {
        json_object_set_member(greeting, sess->server->greeting_name,
                               json_node_copy(sess->server->greeting_value));
    }
    json_node_set_object(node, greeting);
    return session_send_node(sess, node);
}

bool qmp_session_feed(QmpSession *sess, const char *data, size_t len)
{
    return !sess->gone && qmp_splitter_feed(sess->splitter, data, len) && !sess->gone;
}

bool qmp_session_in_command_mode(const QmpSession *sess)
{
    return sess->command_mode;
}

void qmp_session_enter_command_mode(QmpSession *sess)
{
    sess->command_mode = true;
}

size_t qmp_session_pending(const QmpSession *sess)
{
    return qmp_splitter_pending(sess->splitter);
}

unsigned qmp_session_id(const QmpSession *sess)
{
    return sess->id;
}

void qmp_session_set_max_message(QmpSession *sess, size_t max_message)
{
    qmp_splitter_set_max_size(sess->splitter, max_message);
}
