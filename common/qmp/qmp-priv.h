/* Internals shared by the files of common/qmp/; not for command code, which
 * includes qmp-server.h only. */
#ifndef COLO_COMMON_QMP_PRIV_H
#define COLO_COMMON_QMP_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "common/qmp/qmp-server.h"

typedef struct QmpSession QmpSession;
typedef struct QmpConn QmpConn;

typedef struct {
    char *name;
    QmpCommandFunc fn;
    gpointer opaque;
    uint32_t states;            /* where it may run; QMP_STATES_ANY: anywhere */
} QmpCommand;

struct QmpServer {
    GMainContext *ctx;
    char *package;
    int major, minor, micro;

    GPtrArray *commands;       /* QmpCommand *, in registration order */
    GHashTable *command_index; /* name -> QmpCommand * */
    QmpSession *current;       /* the session whose command is running */
    QmpGateFunc gate;          /* asked before a command with a state set runs */
    gpointer gate_opaque;

    char *greeting_name;       /* an extra member of the greeting, or NULL */
    JsonNode *greeting_value;

    size_t max_message;
    size_t max_output;

    int listen_fd;
    char *listen_path;
    GSource *listen_source;
    GList *clients;            /* QmpConn *; dead ones until reaped */
    unsigned next_client_id;
    GSource *reap_source;

    GMutex event_lock;         /* guards event_queue */
    GQueue event_queue;        /* event lines (char *) from other threads */
    GSource *event_source;
};

/* --- qmp-session.c: one client's protocol state, independent of sockets. */

/* Writes one line to the client; false if the client is gone. */
typedef bool (*QmpSessionSendFunc)(const char *line, size_t len, gpointer opaque);

QmpSession *qmp_session_new(QmpServer *s, unsigned id, QmpSessionSendFunc send, gpointer opaque);
void qmp_session_free(QmpSession *sess);
/* Sends the greeting; false if the client is gone. */
bool qmp_session_greet(QmpSession *sess);
/* Handles input bytes: replies go out through the send function. Returns
 * false if the client went away meanwhile (the rest is dropped). */
bool qmp_session_feed(QmpSession *sess, const char *data, size_t len);
bool qmp_session_in_command_mode(const QmpSession *sess);
void qmp_session_enter_command_mode(QmpSession *sess);
size_t qmp_session_pending(const QmpSession *sess);
unsigned qmp_session_id(const QmpSession *sess);
void qmp_session_set_max_message(QmpSession *sess, size_t max_message);

/* --- qmp-dispatch.c: requests, the command table, errors. */

/* Runs one parsed request for @sess; returns the response (never NULL). */
JsonNode *qmp_dispatch(QmpServer *s, QmpSession *sess, JsonNode *request);
/* {"error": {"class": ..., "desc": ...}} for @error. */
JsonNode *qmp_error_response(const GError *error);
/* Compact JSON of @node followed by "\r\n", NUL-terminated; *len excludes the NUL. */
char *qmp_json_line(JsonNode *node, size_t *len);
void qmp_commands_init(QmpServer *s);
void qmp_commands_fini(QmpServer *s);

/* --- qmp-builtin.c: qmp_capabilities, query-commands, query-version. */

void qmp_builtin_register(QmpServer *s);
/* {"qemu": {"micro", "minor", "major"}, "package": ...} */
JsonNode *qmp_version_node(const QmpServer *s);

/* --- qmp-event.c */

void qmp_events_init(QmpServer *s);
void qmp_events_fini(QmpServer *s);
/* Writes every event queued by other threads, oldest first. */
void qmp_events_flush(QmpServer *s);

/* --- qmp-server.c */

/* Writes @line to every client in command mode. */
void qmp_server_broadcast(QmpServer *s, const char *line, size_t len);

#endif
