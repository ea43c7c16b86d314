/* colod's control socket (coloctl(8), docs/colod.md): QMP on a unix
 * socket (common/qmp's server; default /run/colo/VM/colod.sock, 0600, or
 * 0660 with [vm] socket-group),
 * with colod's commands: query-status, the administrator's commands of
 * the state machine (failover, switchover, protect, unprotect; promote
 * and demote in managed mode), set
 * {key, value} for runtime settings, and events when colod's state
 * changes (COLOD_STATE, COLOD_QUORUM, COLOD_PEER). A command the state
 * machine refuses comes back as a QMP error with its reason. */
#ifndef COLOD_CONTROL_H
#define COLOD_CONTROL_H

#include "cluster-fsm.h"
#include "proxy-driver.h"
#include "vmm-driver.h"

#include <glib.h>
#include <json-glib/json-glib.h>

typedef struct ColodControl ColodControl;

/* Carries out what the state machine appended for a command (colod's
 * executor; it calls colod_control_update() when done). */
typedef void (*ColodControlExecFunc)(ClusterActions *acts, gpointer opaque);

typedef struct {
    const char *vm_name;
    ClusterFsm *fsm;
    VmmDriver *vmm;              /* NULL: no colo-vmm driver (tests) */
    ProxyDriver *proxy;          /* NULL: no colo-proxy driver (tests) */
    int log_level;               /* the threshold colod logs at now */
    const char *socket_group;    /* may connect too ([vm] socket-group); NULL: root only */
    ColodControlExecFunc execute;
    gpointer opaque;
} ColodControlParams;

/* The default path of the VM's control socket. Free with g_free. */
char *colod_control_default_path(const char *vm_name);

/* Listens on @path (its directory made 0700 if missing); NULL with @error
 * if the socket cannot be created. @params is copied. */
ColodControl *colod_control_new(const ColodControlParams *params, const char *path, GError **error);
/* Closes every client and removes the socket file. NULL is fine. */
void colod_control_free(ColodControl *ctl);

/* After each input of the state machine: sends the events of what changed
 * since the last call. */
void colod_control_update(ColodControl *ctl);

/* A newly started colo-vmm answers QMP: it gets the settings made with
 * `set` (before anything else is asked of it). */
void colod_control_vmm_ready(ColodControl *ctl);

/* What query-status returns (the JSON shape of coloctl --json status). */
JsonObject *colod_control_status(ColodControl *ctl);

/* control-status.c: query-status's object; takes @settings. */
JsonObject *colod_control_status_build(const char *vm_name, const ClusterFsm *fsm, VmmDriver *vmm,
                                       ProxyDriver *proxy, JsonObject *settings);

#endif
