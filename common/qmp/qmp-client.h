/* An asynchronous QMP client on a GLib main context, for colod, coloctl
 * and colo-vmm's colo-proxy client: connect to a unix socket, read the
 * greeting, negotiate capabilities, then run commands, each with a timeout
 * and a callback that gets the result or a GError, and receive events.
 * A disconnect fails every command still waiting and is reported once.
 *
 * Threads: everything runs on the thread that runs @ctx; call the
 * functions there too. Callbacks may call any function of the client,
 * qmp_client_free() included. */
#ifndef COLO_COMMON_QMP_CLIENT_H
#define COLO_COMMON_QMP_CLIENT_H

#include <stdbool.h>
#include <glib.h>
#include <json-glib/json-glib.h>

typedef struct QmpClient QmpClient;

/* Connected and negotiated (@error NULL; the greeting is then in
 * qmp_client_greeting()), or the connection attempt failed. */
typedef void (*QmpClientReadyFunc)(QmpClient *c, const GError *error, gpointer opaque);

/* A command's outcome: its "return" value (borrowed, never NULL on
 * success), or @error: the server's error (QMP_ERROR domain, the code from
 * its class, the message its "desc"), G_IO_ERROR_TIMED_OUT, or
 * G_IO_ERROR_CONNECTION_CLOSED / G_IO_ERROR_NOT_CONNECTED. */
typedef void (*QmpClientReplyFunc)(QmpClient *c, JsonNode *ret, const GError *error, gpointer opaque);

/* An event: its name, its "data" (NULL if it had none) and "timestamp"
 * (NULL if missing), both borrowed. */
typedef void (*QmpClientEventFunc)(QmpClient *c, const char *event, JsonObject *data, JsonObject *timestamp,
                                   gpointer opaque);

/* The connection ended after it was ready: @error says why. */
typedef void (*QmpClientClosedFunc)(QmpClient *c, const GError *error, gpointer opaque);

/* A client served by @ctx (NULL: the global default context). */
QmpClient *qmp_client_new(GMainContext *ctx);

void qmp_client_set_event_handler(QmpClient *c, QmpClientEventFunc fn, gpointer opaque);
void qmp_client_set_closed_handler(QmpClient *c, QmpClientClosedFunc fn, gpointer opaque);

/* Connect to the unix socket @path; @ready runs once, when the greeting
 * was read and qmp_capabilities accepted, or on failure (no such socket,
 * not QMP, negotiation refused, nothing within @timeout_ms). Commands may
 * be queued with qmp_client_execute() meanwhile; they go out after the
 * negotiation. One connection per client. */
void qmp_client_connect(QmpClient *c, const char *path, guint timeout_ms, QmpClientReadyFunc ready,
                        gpointer opaque);

/* The greeting (borrowed), once ready; else NULL. */
JsonObject *qmp_client_greeting(QmpClient *c);

bool qmp_client_is_ready(QmpClient *c);

/* Run @command with @args (taken; NULL: none). @fn runs exactly once, from
 * the main context (never from inside this call): with the result, or an
 * error after @timeout_ms (0: no timeout), or when the connection ends. A
 * reply after the timeout is dropped. */
void qmp_client_execute(QmpClient *c, const char *command, JsonObject *args, guint timeout_ms,
                        QmpClientReplyFunc fn, gpointer opaque);

/* Close the connection: waiting commands fail with
 * G_IO_ERROR_CONNECTION_CLOSED, the closed handler is not called. */
void qmp_client_close(QmpClient *c);

/* Close and free; no callback runs any more (waiting commands never hear
 * back). Safe from inside a callback. NULL is fine. */
void qmp_client_free(QmpClient *c);

#endif
