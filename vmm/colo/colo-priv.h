/* Internals shared by the primary's and the secondary's loops. */
#ifndef COLO_VMM_COLO_COLO_PRIV_H
#define COLO_VMM_COLO_COLO_PRIV_H

#include "colo/colo.h"
#include "migration/migration-priv.h"

const char *colo_msg_name(uint32_t msg);

/* A COLO message on the primary's stream (not flushed). */
void colo_put_msg(MigChannel *c, uint32_t msg, uint64_t value);
/* A COLO message on the secondary's return path (sent at once). */
void colo_rp_send(Migration *m, uint32_t msg, uint64_t value);

/* Before the initial sync's end: forget the last COLO's failover. */
void colo_begin(Migration *m);
/* COLO begins on this side: mode, migration status "colo". */
void colo_enter(Migration *m, ColoMode mode);
/* COLO is over on this side: mode none, COLO_EXIT. */
void colo_leave(Migration *m);
/* With the lock: leave the loop now? (failover asked or the VMM ends) */
bool colo_should_stop_locked(const Colo *co);
/* After a failure of the peer or the stream: run on and wait for
 * x-colo-lost-heartbeat (or the end of the VMM). Never decides alone:
 * colod (or an operator) knows whether the peer is gone. */
void colo_wait_failover(Migration *m, const char *why);

/* One checkpoint done: its pause of this side's guest, pages and bytes
 * (@trigger COLO_TRIGGER__MAX on the secondary, which does not know it). */
void colo_record(Migration *m, ColoTrigger trigger, uint64_t pause_us, uint64_t pages, uint64_t bytes);

/* The secondary's checkpoint loader, apart from its thread (for the fuzz
 * target): the RAM cache and the guest's own dirty tracking, then
 * checkpoints read from @c until it ends or breaks (always false, with
 * @error set for a malformed message). Freeing resumes a guest that a
 * half-received checkpoint had paused. */
typedef struct ColoSecondary ColoSecondary;
ColoSecondary *colo_secondary_new(Migration *m, GError **error);
bool colo_secondary_loop(ColoSecondary *s, MigChannel *c, GError **error);
void colo_secondary_free(ColoSecondary *s);

/* Stop-the-world of the guest for a checkpoint, from the loop's thread. */
void colo_pause_guest(Migration *m);
void colo_resume_guest(Migration *m);

/* The local colo-proxy (colo-net.c); each does nothing without
 * -colo-proxy. Called on the loop's thread without the lock. */
/* Connect to it (checks its role), before COLO begins. */
bool colo_net_connect(Migration *m, ColoMode mode, GError **error);
/* The primary's guest is paused for a checkpoint: the proxy reads what
 * the guest sent so far. */
bool colo_net_checkpoint_begin(Migration *m, GError **error);
/* The initial sync's checkpoint-begin, the guest stopped: the proxy, not
 * yet comparing, mirrored no input so far, and mirrors now what it saw
 * since @stopping_us (g_get_monotonic_time() before the stop began): it
 * reached the guest's tap after the stop, so is not in the copy. */
bool colo_net_sync_begin(Migration *m, int64_t stopping_us, GError **error);
/* The checkpoint is loaded on the secondary (or, on the secondary, loaded
 * here): the primary's proxy releases what it held, both advance the epoch.
 * The initial sync counts as a checkpoint too. */
bool colo_net_commit(Migration *m, GError **error);
/* COLO broke. The primary's proxy keeps every release back (even those
 * that need no compare) until failover, so a secondary that took over
 * meanwhile is the only one heard; the secondary's keeps its guest's
 * answers for a takeover from now on, and tells the primary's to release
 * nothing more on them (docs/colo-proxy.md). */
void colo_net_hold(Migration *m);
/* Leaving COLO: on failover the proxy releases and passes (primary) or
 * hands the guest's traffic out (secondary); then disconnect. */
void colo_net_leave(Migration *m);
/* COLO never began after the proxy was armed (colo_primary_sync_begin):
 * it releases and passes, as on failover; then disconnect. */
void colo_net_abandon(Migration *m);
/* query-colo-status "proxy", with the lock; NULL without a proxy. */
JsonObject *colo_net_query_locked(const Colo *co);

#endif
