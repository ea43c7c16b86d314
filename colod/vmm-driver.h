/* colod's hands on colo-vmm: start it as primary or as secondary
 * (-incoming), stop it, protect (migrate with x-colo), cancel, fail over
 * (x-colo-lost-heartbeat), pause and resume, over QMP (common/qmp's
 * asynchronous client), every command with the configured timeout. What
 * colo-vmm does comes back as the state machine's VmmEvents: READY once
 * its QMP answers, EXITED when it exits (or was killed because a command
 * timed out: the hang escape), PROTECT_DONE / PROTECT_FAILED from its
 * MIGRATION events (and POSTCOPY / MIGRATED in a relocation), PEER_LOST from COLO_EXIT with an error or
 * query-colo-status saying x-broken. colo-proxy is proxy-driver.c's. */
#ifndef COLOD_VMM_DRIVER_H
#define COLOD_VMM_DRIVER_H

#include "cluster-fsm.h"

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>

typedef struct VmmDriver VmmDriver;

/* @detail: a few words for the log (the exit status, the error). */
typedef void (*VmmDriverEventFunc)(VmmEvent ev, const char *detail, void *opaque);

typedef struct {
    const char *vmm_path;   /* the colo-vmm binary */
    char **vmm_argv;        /* the VM's arguments ([vm] vmm-args) */
    const char *run_dir;    /* for the QMP socket (made if missing) */
    const char *socket_group; /* the QMP socket's group (0660), NULL: 0600 */
    const char *incoming;   /* the secondary's -incoming URI */
    const char *allowed_peer; /* the only source it accepts (x-allowed-peer), NULL: any */
    const char *peer_uri;   /* where the primary migrates to */
    const char *proxy_path; /* colo-proxy's control socket (-colo-proxy), or NULL */
    const char *tls_dir;    /* TLS certificates for migration ([tls] dir), or NULL */
    guint qmp_ms;           /* each QMP command's timeout */
    guint poll_ms;          /* query-colo-status while in COLO */
    bool die_with_colod;    /* tests: colo-vmm gets SIGKILL when we end (colod
                             * itself leaves it running: a restarted colod
                             * is to pick it up) */
} VmmDriverParams;

/* @params is copied. */
VmmDriver *vmm_driver_new(const VmmDriverParams *params, VmmDriverEventFunc fn, void *opaque);
void vmm_driver_free(VmmDriver *d);

/* Each carries out one ClusterAction; failures come back as events (a
 * colo-vmm that does not start: EXITED; a command refused: logged, and
 * for migrate PROTECT_FAILED). */
void vmm_driver_start(VmmDriver *d, VmmKind kind);
/* colo-vmm -incoming that receives a relocation: its MIGRATION events
 * postcopy-active and completed come back as POSTCOPY and MIGRATED. */
void vmm_driver_start_relocation_target(VmmDriver *d);
void vmm_driver_stop(VmmDriver *d);
/* The initial sync; with @sole_copy_file (colod's marker, which exists),
 * colo-vmm removes the file at its commit and cancels the sync if this
 * colod is gone before (migrate's x-sole-copy-file). */
void vmm_driver_protect(VmmDriver *d, const char *sole_copy_file);
void vmm_driver_cancel_protect(VmmDriver *d);
/* Relocation by postcopy: migrate without x-colo, with postcopy-ram, and
 * migrate-start-postcopy at once; POSTCOPY, MIGRATED or PROTECT_FAILED
 * (failed, postcopy-paused) follow. */
void vmm_driver_relocate(VmmDriver *d);
/* protect-mode: snapshot (x-colo with postcopy-ram, issue 12's snapshot
 * protect) or precopy (x-colo alone), for each protect from now on. */
void vmm_driver_set_snapshot_protect(VmmDriver *d, bool snapshot);
bool vmm_driver_snapshot_protect(VmmDriver *d);
void vmm_driver_failover(VmmDriver *d);
void vmm_driver_pause(VmmDriver *d);
void vmm_driver_resume(VmmDriver *d);

/* Takes over the colo-vmm an earlier colod of this VM left running (its
 * pid file names a live colo-vmm whose QMP answers) without touching its
 * guest: what it runs in @kind, @in_colo, @paused. Returns false if there
 * is none or it cannot be driven (vmm_driver_start() then kills it).
 * Blocks for at most a few QMP timeouts: call it before the main loop. */
bool vmm_driver_adopt(VmmDriver *d, VmmKind *kind, bool *in_colo, bool *paused);
/* Forgets colo-vmm without stopping it (colod restarts, the VM runs on). */
void vmm_driver_detach(VmmDriver *d);

/* The running colo-vmm's pid, or 0. */
GPid vmm_driver_pid(VmmDriver *d);

/* Its last query-colo-status result (borrowed), or NULL. */
JsonObject *vmm_driver_colo_status(VmmDriver *d);

/* Runs @command (@args taken) on the running colo-vmm; a failure is
 * logged only. */
void vmm_driver_execute(VmmDriver *d, const char *command, JsonObject *args);

#endif
