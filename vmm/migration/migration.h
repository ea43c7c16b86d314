/* Live migration state, source and destination, with QEMU's names:
 * statuses, capabilities, parameters and the numbers query-migrate shows.
 *
 * Threads: the QMP commands run on the main thread; an outgoing migration
 * runs on its own thread ("migration"), which asks the main thread to stop
 * or resume the VM; the return path is read on "mig/rp"; an incoming
 * stream is loaded on "mig/incoming". */
#ifndef COLO_VMM_MIGRATION_MIGRATION_H
#define COLO_VMM_MIGRATION_MIGRATION_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "migration/channel.h"
#include "migration/disk.h"
#include "migration/host.h"
#include "migration/ram.h"
#include "runstate.h"

typedef enum MigStatus {
    MIG_STATUS_NONE,
    MIG_STATUS_SETUP,
    MIG_STATUS_CANCELLING,
    MIG_STATUS_CANCELLED,
    MIG_STATUS_ACTIVE,
    MIG_STATUS_POSTCOPY_ACTIVE,
    MIG_STATUS_POSTCOPY_PAUSED,
    MIG_STATUS_COMPLETED,
    MIG_STATUS_FAILED,
    MIG_STATUS_DEVICE,          /* final pass with the VM stopped */
    MIG_STATUS_COLO,            /* both sides run the guest, checkpointing */
} MigStatus;

typedef struct MigParams {
    uint64_t max_bandwidth;     /* bytes/s; QEMU's default 128 MiB/s */
    uint64_t downtime_limit;    /* ms; default 300 */
    uint32_t multifd_channels;  /* default 2 */
    uint64_t max_postcopy_bandwidth;    /* bytes/s, 0 = unlimited */
    uint64_t x_checkpoint_delay;        /* ms between COLO checkpoints; default 20000 */
    uint64_t x_snapshot_copy_limit;     /* bytes of pages a snapshot protect copies aside at most */
} MigParams;

typedef struct MigCaps {
    bool postcopy_ram;
    bool multifd;
    bool events;                /* MIGRATION events, off by default as in QEMU */
    bool x_colo;                /* enter COLO after the initial sync */
} MigCaps;

/* The outgoing side: this VMM is a migration's source (or COLO's primary). */
typedef struct MigSource {
    MigStatus status;
    char *error;                /* why it failed, for query-migrate */
    char *uri;
    GThread *thread;
    gint thread_done;           /* atomic: the thread has nothing left to do */
    gint cancel;                /* atomic: migrate_cancel asked */
    MigChannel *out;
    MigChannel *rp;             /* return path, read side */
    GThread *rp_thread;
    gint rp_shut_status;        /* -1: none yet; else the destination's status */
    uint32_t ping_seq, rp_pong; /* last PING sent, last PONG seen (under lock) */
    RamSave ram;
    DiskSave disks;             /* COLO's copy of the disks (x-colo) */
    int64_t start_us, setup_us, total_ms, downtime_ms;
    uint64_t mbps_bits;         /* last measured throughput, bits/s */
    bool was_running;
    RunState old_state;         /* the source's run state before the final phase */
    bool vm_stopped;            /* the migration stopped the VM and must restart it on failure */
    gint postcopy_requested;    /* atomic: migrate-start-postcopy */
    struct MultifdSend *multifd;    /* with the multifd capability */
    struct Snapshot *snapshot;  /* snapshot protect (x-colo with postcopy-ram), until the next migrate */
    struct ColoTlsCreds *tls;   /* tls-creds when migrate ran, or NULL */
    char *tls_hostname;         /* tls-hostname then ("" for the URI's host) */
    struct MigOwner *owner;     /* x-sole-copy-file (owner.h), until the next migrate */
} MigSource;

/* The incoming side: this VMM is a migration's destination (or COLO's secondary). */
typedef struct MigDest {
    MigStatus status;
    char *error;
    int listen_fd;
    GSource *listen_source;
    MigChannel *in;
    MigChannel *rp;             /* return path, write side */
    GMutex rp_lock;             /* several threads may send on the return path */
    GPtrArray *threads;         /* per extra connection (postcopy, multifd) */
    bool main_seen;
    RamStats stats;
    RamLoadState ram;
    bool source_running;
    bool colo_enabled;          /* the source sent ENABLE_COLO */
    struct MultifdRecv *multifd;
    struct ColoPeerFilter *allowed_peer;    /* x-allowed-peer; NULL: any source */
} MigDest;

typedef struct Migration {
    MigrationHost host;         /* all migration may use of the VM */
    MigCaps caps;
    MigParams params;
    GMutex lock;                /* both sides' status and error, the channels' lifetime */
    GCond cond;
    MigSource src;
    MigDest dst;
    struct Postcopy *postcopy;  /* either side, once postcopy is in play */
    struct Colo *colo;          /* COLO state, either side */
    struct MigTls *tls;         /* tls-creds-x509 objects, tls-creds, tls-hostname (main thread) */
} Migration;

Migration *migration_new(const MigrationHost *host);
void migration_free(Migration *m);

const char *mig_status_name(MigStatus s);

/* migrate URI (tcp:HOST:PORT or unix:PATH). With @sole_copy_file, bound
 * to the QMP client of the command running now (owner.h). Main thread. */
bool migration_start(Migration *m, const char *uri, const char *sole_copy_file, GError **error);
void migration_cancel(Migration *m);
JsonObject *migration_query(Migration *m);

/* -incoming URI / migrate-incoming URI: listen for one stream. Main thread. */
bool migration_incoming_listen(Migration *m, const char *uri, GError **error);

/* x-allowed-peer: the only address a TCP incoming migration is accepted
 * from (NULL or "": any); connections from elsewhere are closed, logged
 * and counted, and the listener stays for the real source. Main thread. */
bool migration_set_allowed_peer(Migration *m, const char *peer, GError **error);
const char *migration_allowed_peer(Migration *m);   /* "" for any */

/* May RAM be added now? Not while an incoming migration loads, nor once an
 * outgoing one has stopped the VM for its last phase or runs postcopy
 * (precopy takes it along). Main thread. */
bool migration_allows_memory_hotplug(Migration *m, GError **error);

/* Return path, destination side: any thread. */
void migration_rp_send(Migration *m, uint16_t type, const void *data, uint16_t len);

#endif
