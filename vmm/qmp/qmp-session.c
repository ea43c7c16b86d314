/* One QMP client's protocol state: input splitting, parsing, negotiation
 * mode, replies. Knows nothing about sockets, so the fuzz target drives it
 * directly. */
#include "config.h"

#include "qmp/qmp-priv.h"
#include "qmp/qmp-splitter.h"

#include <qb/qblog.h>

struct QmpSession {
    QmpServer *server;
    unsigned id;
    QmpSplitter *splitter;
    JsonParser *parser;
    bool command_mode;
    bool gone; /* the send function failed: drop everything */
    QmpSessionSendFunc send;
    gpointer opaque;
};

static bool session_send_node(QmpSession *sess, JsonNode *node)
{
    size_t len;
    g_autofree char *line = qmp_json_line(node, &len);

    if (!sess->gone && !sess->send(line, len, sess->opaque)) {
        sess->gone = true;
    }
    return !sess->gone;
}

/* A short, printable excerpt of bad input for the log. */
static char *session_excerpt(const char *text, size_t len)
{
    g_autofree char *head = g_strndup(text, MIN(len, 60));
    g_autofree char *escaped = g_strescape(head, NULL);

    return g_strdup_printf("%s%s", escaped, len > 60 ? "..." : "");
}

static JsonNode *session_handle_text(QmpSession *sess, const char *text, size_t len)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) request = NULL;

    /* json-glib would accept invalid UTF-8 inside strings. */
    if (!g_utf8_validate_len(text, len, NULL)) {
        g_set_error(&error, QMP_ERROR, QMP_ERROR_GENERIC,
                    "JSON parse error, invalid UTF-8 sequence in input");
    } else if (!json_parser_load_from_data(sess->parser, text, (gssize)len, &error)) {
        g_prefix_error(&error, "JSON parse error, ");
    } else if (!(request = json_parser_steal_root(sess->parser))) {
        /* json-glib skips comments: "//" alone is a document without a value. */
        g_set_error(&error, QMP_ERROR, QMP_ERROR_GENERIC, "JSON parse error, expecting value");
    }
    if (!request) {
        g_autofree char *excerpt = session_excerpt(text, len);

        qb_log(LOG_WARNING, "qmp: client %u: bad input \"%s\": %s", sess->id, excerpt,
               error->message);
        return qmp_error_response(error);
    }
    return qmp_dispatch(sess->server, sess, request);
}

static bool session_on_text(const char *text, size_t len, const GError *error, gpointer opaque)
{
    QmpSession *sess = opaque;
    g_autoptr(JsonNode) response = NULL;

    if (sess->gone) {
        return false;
    }
    if (error) {
        qb_log(LOG_WARNING, "qmp: client %u: bad input: %s", sess->id, error->message);
        response = qmp_error_response(error);
    } else {
        response = session_handle_text(sess, text, len);
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
