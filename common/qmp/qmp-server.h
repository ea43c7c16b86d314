/* The QMP server of colo-vmm: QEMU's QMP protocol (greeting, capabilities
 * negotiation, commands, errors, events) over unix sockets, so that anyone
 * who scripted QEMU can script colo-vmm. See docs/qmp.md.
 *
 * Threads: everything here runs on the thread that runs the server's
 * GMainContext, except qmp_server_emit_event(), which any thread may call. */
#ifndef COLO_COMMON_QMP_SERVER_H
#define COLO_COMMON_QMP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "common/qmp/qmp-args.h"

typedef struct QmpServer QmpServer;

#define QMP_ERROR (qmp_error_quark())
GQuark qmp_error_quark(void);

/* Error classes, reported as "GenericError", "CommandNotFound",
 * "DeviceNotFound", "DeviceNotActive", "KVMMissingCap". A handler's GError
 * from any other domain is reported as GenericError with its message. */
typedef enum {
    QMP_ERROR_GENERIC,
    QMP_ERROR_COMMAND_NOT_FOUND,
    QMP_ERROR_DEVICE_NOT_FOUND,
    QMP_ERROR_DEVICE_NOT_ACTIVE,
    QMP_ERROR_KVM_MISSING_CAP,
} QmpErrorCode;

/* The code of error class @cls ("DeviceNotFound"), QMP_ERROR_GENERIC for
 * one not in the list above; for clients. */
QmpErrorCode qmp_error_code_from_class(const char *cls);

/* Limits (defaults; see qmp_server_set_limits()). */
#define QMP_MAX_MESSAGE_SIZE (1024 * 1024)     /* one JSON text from a client */
#define QMP_MAX_NESTING      1024              /* as QEMU */
#define QMP_MAX_OUTPUT       (8 * 1024 * 1024) /* unsent output per client */

/* A command handler runs on the thread of the server's GMainContext. @args
 * is never NULL (an empty object when the client gave none) and stays owned
 * by the server. Returns the "return" value (the server takes ownership;
 * NULL with no error set means {}), or NULL with @error set. */
typedef JsonNode *(*QmpCommandFunc)(JsonObject *args, gpointer opaque, GError **error);

/* A server whose sockets are served by @ctx (NULL: the global default
 * context). @package and the version numbers go into the greeting and
 * query-version. Registers qmp_capabilities, query-commands, query-version. */
QmpServer *qmp_server_new(GMainContext *ctx, const char *package,
                          int major, int minor, int micro);

/* Listen on the unix socket @path (like QEMU's -qmp unix:PATH,server=on,
 * wait=off) with common/unix-socket.c: a stale socket file at @path is replaced; the file is removed
 * again by qmp_server_free(). One listening socket per server. The file
 * is 0600: only its owner may connect. */
bool qmp_server_listen_unix(QmpServer *s, const char *path, GError **error);

/* The same, but members of @group (name or number; NULL: owner only) may
 * connect too (the file 0660, that group's). */
bool qmp_server_listen_unix_group(QmpServer *s, const char *path, const char *group, GError **error);

/* Serve an already-connected stream socket @fd (the server owns it from now
 * on, also on failure) and send it the greeting. */
bool qmp_server_add_fd(QmpServer *s, int fd, GError **error);

/* Register command @name (a second registration of a name replaces the
 * first). Call on the server's thread. */
void qmp_server_register(QmpServer *s, const char *name, QmpCommandFunc fn, gpointer opaque);

/* States a command may run in, as a set of bits the server does not read
 * itself: before a command registered with a set other than
 * QMP_STATES_ANY runs, the server asks the gate, which refuses it with
 * @error when the present state is not in @states. */
#define QMP_STATES_ANY UINT32_MAX
typedef bool (*QmpGateFunc)(const char *command, uint32_t states, gpointer opaque, GError **error);
void qmp_server_set_gate(QmpServer *s, QmpGateFunc gate, gpointer opaque);
void qmp_server_register_in(QmpServer *s, const char *name, uint32_t states, QmpCommandFunc fn,
                            gpointer opaque);

/* Send event @event to every client in command mode, as
 * {"event": NAME, "data": {...}, "timestamp": {"seconds": S, "microseconds": U}}
 * with the time of this call. @data may be NULL: then, as in QEMU, the event
 * has no "data" member. Takes ownership of @data. Thread-safe: from the
 * server's own thread the event is written at once (so an event caused by a
 * command precedes its reply, as in QEMU); from other threads it is queued
 * to the server's context. Events from one thread keep their order. */
void qmp_server_emit_event(QmpServer *s, const char *event, JsonObject *data);

/* Add member @name with @value (taken) to the greeting, beside "QMP", for
 * a server that is not a VMM to say what it is (colo-proxy: its role).
 * QMP clients ignore members they do not know. */
void qmp_server_set_greeting_member(QmpServer *s, const char *name, JsonNode *value);

/* Override the limits: @max_message bytes per JSON text, @max_output bytes
 * of unsent output after which a client that does not read is dropped.
 * 0 keeps a value. For tests and tuning. */
void qmp_server_set_limits(QmpServer *s, size_t max_message, size_t max_output);

/* Inside a command handler: a duplicate (close-on-exec) of the socket of
 * the client that sent the command, or -1 (no socket client, or dup
 * failed). The caller owns it. It lets a command outlive its reply bound to
 * its client: the peer's close shows on it as POLLHUP/POLLRDHUP, and the
 * server shuts a socket down when it drops the client, so that shows too. */
int qmp_server_dup_caller(QmpServer *s);

/* Number of connected clients (for tests and status). */
unsigned qmp_server_client_count(QmpServer *s);

/* Close every client and the listening socket, remove the socket file, free
 * everything. Queued events and unsent replies are written first as far as
 * the sockets take them without blocking (so a SHUTDOWN event emitted just
 * before still reaches the clients). No other thread may emit events during
 * or after this call. */
void qmp_server_free(QmpServer *s);

#endif
