/* The control socket of colo-proxy, for colod and colo-vmm: QMP
 * (common/qmp/, docs/qmp.md) with colo-proxy's own commands
 * (docs/colo-proxy.md). The greeting names the proxy and its role beside
 * the usual "QMP" member; a client negotiates with qmp_capabilities first:
 *
 *   <- {"QMP": {"version": {...,"package": "colo-proxy"}, "capabilities": []},
 *       "colo-proxy": {"version": "0.1.0", "role": "primary"}}
 *   -> {"execute": "qmp_capabilities"}
 *   <- {"return": {}}
 *   -> {"execute": "checkpoint-commit", "id": 7}
 *   <- {"return": {"released": 12, "epoch": 4}, "id": 7}
 *   <- {"event": "CHECKPOINT_REQUEST", "data": {"reason": "payload", "epoch": 4},
 *       "timestamp": {"seconds": ..., "microseconds": ...}}
 *
 * Output to a client is buffered (a client that does not read is paused,
 * then dropped past the server's output limit); a client dropped while its
 * own command runs is freed only after it, from the main loop. */
#ifndef COLO_NETFILTER_CONTROL_H
#define COLO_NETFILTER_CONTROL_H

#include <glib.h>
#include <json-glib/json-glib.h>

#include "common/qmp/qmp-server.h"

/* A request is one JSON text of at most this many bytes. */
#define CTL_MAX_MESSAGE 65536

struct ctl_command {
    const char *name;
    QmpCommandFunc fn;
};

/* Listen on @path (replacing a stale socket) in the default main context;
 * @table ends with a NULL name and its handlers get @opaque. @role goes
 * into the greeting. The socket is 0600, or 0660 for @group (NULL: none). */
QmpServer *ctl_server_new(const char *path, const char *group, const struct ctl_command *table, void *opaque,
                          const char *role, GError **error);

/* Send an event to every negotiated client; takes ownership of @data (a
 * JSON object node, or NULL). */
void ctl_server_emit(QmpServer *s, const char *event, JsonNode *data);

#endif
