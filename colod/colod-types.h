/* Names shared by colod's modules: the role a node keeps on disk, the
 * coordinator's states, and what kind of colo-vmm a node runs. */
#ifndef COLOD_TYPES_H
#define COLOD_TYPES_H

#include <stdint.h>

/* The last role, persisted with the generation. NONE and SYNCING mean this
 * node holds no complete copy of the VM: it never wins the start-up
 * comparison and is never made primary by colod on its own. */
typedef enum {
    COLOD_ROLE_NONE = 0,  /* never held the VM (fresh node) */
    COLOD_ROLE_PRIMARY,   /* ran the VM, alone or protected */
    COLOD_ROLE_SECONDARY, /* a complete replica, in COLO */
    COLOD_ROLE_SYNCING,   /* an initial sync was under way: incomplete */
    COLOD_ROLE__MAX
} ColodRole;

/* The coordinator's states (docs/colod.md describes each). */
typedef enum {
    CLUSTER_STARTING = 0,     /* no membership yet */
    CLUSTER_WAIT_QUORUM,      /* no quorum, no VM here */
    CLUSTER_WAIT_PEER,        /* quorate, waiting for the peer's hello */
    CLUSTER_WAIT_ADMIN,       /* a decision colod must not guess */
    CLUSTER_IDLE,             /* standby: ready to become the secondary */
    CLUSTER_PRIMARY_STARTING, /* colo-vmm starting as primary */
    CLUSTER_PRIMARY_ALONE,    /* the VM runs here, unprotected */
    CLUSTER_PROTECT_REQUESTED,/* asked the peer to start a secondary */
    CLUSTER_PROTECTING,       /* initial sync (migrate with x-colo) */
    CLUSTER_PRIMARY_PROTECTED,
    CLUSTER_SECONDARY_STARTING, /* colo-vmm -incoming starting */
    CLUSTER_SECONDARY_SYNCING,  /* receiving the initial sync */
    CLUSTER_SECONDARY_PROTECTED,
    CLUSTER_FAILOVER_CLAIMED, /* claimed the VM, waiting for the peer's ack */
    CLUSTER_PAUSED,           /* quorum lost: the VM stands still here */
    CLUSTER_STOPPED,          /* colod is shutting down */
    /* Relocation by postcopy (cluster-fsm-relocate.c); after the others, so
     * that the values already on the wire keep their meaning. */
    CLUSTER_RELOCATE_REQUESTED, /* asked the peer to start a relocation target */
    CLUSTER_RELOCATING,       /* migrating the VM to the peer by postcopy */
    CLUSTER_RELOCATE_TARGET,  /* colo-vmm -incoming receiving the VM */
    CLUSTER__MAX
} ClusterState;

/* What the local colo-vmm is, as far as colod knows. */
typedef enum {
    VMM_NONE = 0,
    VMM_PRIMARY,
    VMM_SECONDARY,
    VMM__MAX
} VmmKind;

const char *colod_role_name(ColodRole role);
const char *cluster_state_name(ClusterState state);
const char *vmm_kind_name(VmmKind kind);

#endif
