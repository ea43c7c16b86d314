/* The control socket of colo-proxy, for colod (and colo-vmm): one JSON
 * object per line over a unix stream socket, in the style of QMP.
 *
 *   <- {"colo-proxy": {"version": "0.1.0", "role": "primary"}}
 *   -> {"execute": "checkpoint-commit", "id": 7}
 *   <- {"return": {"released": 12, "epoch": 4}, "id": 7}
 *   <- {"event": "CHECKPOINT_REQUEST", "data": {"reason": "payload", "epoch": 4}}
 *
 * Commands come from a table given by the caller; events go to every
 * connected client. */
#ifndef COLO_NETFILTER_CONTROL_H
#define COLO_NETFILTER_CONTROL_H

#include <glib.h>
#include <json-glib/json-glib.h>

#define CTL_MAX_LINE 65536

/* A command handler: returns the reply value (a new node) or NULL with
 * @error set. @args may be NULL. */
typedef JsonNode *(*ctl_handler)(void *opaque, JsonObject *args, GError **error);

struct ctl_command {
    const char *name;
    ctl_handler fn;
};

typedef struct ctl_server CtlServer;

/* Listen on @path (replacing a stale socket). @table ends with a NULL name.
 * @greeting (owned) is sent to every new client. */
CtlServer *ctl_server_new(const char *path, const struct ctl_command *table, void *opaque,
                          JsonNode *greeting, GError **error);
void ctl_server_free(CtlServer *s);

/* Send an event to every client; takes ownership of @data (may be NULL). */
void ctl_server_emit(CtlServer *s, const char *event, JsonNode *data);

unsigned int ctl_server_clients(const CtlServer *s);

#endif
