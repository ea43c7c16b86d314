/* COLO inside colo-vmm (docs/colo.md): after the initial sync of a
 * migration with the x-colo capability, the source (primary) and the
 * destination (secondary) both run the guest, and the primary checkpoints
 * its state into the secondary (seed 003's protocol: REQUEST, REPLY,
 * VMSTATE_SEND, VMSTATE_SIZE, RECEIVED, LOADED). x-colo-lost-heartbeat on
 * either side leaves COLO and runs on alone.
 *
 * Threads: the checkpoint loop runs on the migration's thread ("migration"
 * on the primary, "mig/incoming" on the secondary); QMP commands on the
 * main thread; the primary's return path is read on "mig/rp". Everything
 * here is guarded by the Migration's lock. */
#ifndef COLO_VMM_COLO_COLO_H
#define COLO_VMM_COLO_COLO_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <json-glib/json-glib.h>

struct Migration;

typedef enum ColoMode {
    COLO_MODE_NONE,
    COLO_MODE_PRIMARY,
    COLO_MODE_SECONDARY,
} ColoMode;

/* QEMU's COLOExitReason. */
typedef enum ColoExitReason {
    COLO_EXIT_NONE,
    COLO_EXIT_REQUEST,          /* x-colo-lost-heartbeat */
    COLO_EXIT_ERROR,            /* the peer or the stream failed */
    COLO_EXIT_PROCESSING,       /* leaving now */
} ColoExitReason;

typedef enum ColoTrigger {
    COLO_TRIGGER_PERIODIC,      /* x-checkpoint-delay passed */
    COLO_TRIGGER_REQUEST,       /* x-colo-checkpoint */
    /* colo-proxy's CHECKPOINT_REQUEST (colo-net.c maps its reasons) */
    COLO_TRIGGER_MISMATCH,      /* the guests' output differs */
    COLO_TRIGGER_STALE,         /* a packet was held too long */
    COLO_TRIGGER_QUEUE_FULL,    /* the proxy's queue or tables are full */
    COLO_TRIGGER__MAX,
} ColoTrigger;

#define COLO_PAUSE_SAMPLES 1024  /* the primary's last pauses, for p50/p99 */

typedef struct Colo {
    ColoMode mode, last_mode;
    ColoExitReason reason;
    bool failover;              /* x-colo-lost-heartbeat asked */
    bool broken;                /* the peer or stream failed: waiting for failover */
    bool unusable;              /* secondary: a checkpoint failed halfway through its
                                 * commit; its guest must never run as a primary */
    bool quit;                  /* the VMM ends: leave without failover */
    bool requested;             /* x-colo-checkpoint or the proxy asked */
    ColoTrigger request_trigger;
    uint32_t request_epoch;     /* the proxy's epoch of its request */
    /* Return-path messages not yet taken by the primary's loop. */
    uint32_t rp_msg[4];
    uint64_t rp_value[4];
    unsigned rp_count;

    /* Metrics (query-colo-status "checkpoints"). */
    uint64_t count;
    uint64_t by_trigger[COLO_TRIGGER__MAX];
    uint32_t pause_us[COLO_PAUSE_SAMPLES];
    uint64_t pause_max_us, pause_last_us;
    uint64_t last_pages, last_bytes;

    /* The local colo-proxy (-colo-proxy PATH; colo-net.c). */
    char *proxy_path;
    struct ProxyClient *proxy;  /* connected while in COLO */
    uint32_t proxy_epoch;       /* after our last commit */
    uint64_t proxy_requests;    /* CHECKPOINT_REQUEST events taken */
    uint64_t proxy_stale;       /* ... ignored: from an epoch already committed */
    bool proxy_failed_over;
    bool proxy_lost;            /* secondary: the proxy closed its socket, COLO ended for it */
    bool proxy_silent;          /* a call to the proxy got no reply in time (COLO thread only) */
} Colo;

Colo *colo_new(void);
void colo_free(Colo *co);

/* Both sides. The primary's initial sync enters its final phase: the VM
 * has just stopped (its stop began at @stopping_us, g_get_monotonic_time).
 * The proxy mirrors the clients' input since then: it is not in the copy
 * about to be sent. */
bool colo_primary_sync_begin(struct Migration *m, int64_t stopping_us, GError **error);
/* The primary's loop, after the initial sync has been sent with the VM
 * stopped; returns once COLO is over, with the VM running on. False with
 * @error if COLO never began (no READY from the secondary). */
bool colo_primary_run(struct Migration *m, GError **error);
/* The initial sync failed after colo_primary_sync_begin: the VM runs on
 * alone, so the proxy passes its traffic instead of holding it. */
void colo_primary_abandon(struct Migration *m);
/* The secondary's loop, after the initial sync has loaded; returns once
 * COLO is over, with the guest running on as a primary. False with @error
 * if COLO could not begin. */
bool colo_secondary_run(struct Migration *m, GError **error);

/* The primary's return-path reader hands over a MIG_RP_COLO payload. */
bool colo_rp_message(struct Migration *m, const uint8_t *payload, uint16_t len);
/* Primary, before the return path opens for a new protection: nothing a
 * last COLO left in its queue. (Not at COLO's start: the secondary's first
 * message may arrive before the primary's COLO thread runs.) */
void colo_rp_reset(struct Migration *m);

/* QMP (main thread). */
bool colo_lost_heartbeat(struct Migration *m, GError **error);
bool colo_request_checkpoint(struct Migration *m, GError **error);
JsonObject *colo_query(struct Migration *m);
/* The VMM ends: a loop waiting for failover gives up. */
void colo_quit(struct Migration *m);
/* -colo-proxy PATH: the local colo-proxy's control socket, connected when
 * COLO begins (main thread, before any migration). */
void colo_set_proxy(struct Migration *m, const char *path);

#endif
