/* Names of colod's shared enums, for logs, status and messages. */
#include "config.h"

#include "colod-types.h"

#include <glib.h>

const char *colod_role_name(ColodRole role)
{
    static const char *const names[COLOD_ROLE__MAX] = {
        [COLOD_ROLE_NONE] = "none",
        [COLOD_ROLE_PRIMARY] = "primary",
        [COLOD_ROLE_SECONDARY] = "secondary",
        [COLOD_ROLE_SYNCING] = "syncing",
    };

    return (unsigned)role < G_N_ELEMENTS(names) ? names[role] : "invalid";
}

const char *cluster_state_name(ClusterState state)
{
    static const char *const names[CLUSTER__MAX] = {
        [CLUSTER_STARTING] = "starting",
        [CLUSTER_WAIT_QUORUM] = "wait-quorum",
        [CLUSTER_WAIT_PEER] = "wait-peer",
        [CLUSTER_WAIT_ADMIN] = "wait-admin",
        [CLUSTER_IDLE] = "idle",
        [CLUSTER_PRIMARY_STARTING] = "primary-starting",
        [CLUSTER_PRIMARY_ALONE] = "primary-alone",
        [CLUSTER_PROTECT_REQUESTED] = "protect-requested",
        [CLUSTER_PROTECTING] = "protecting",
        [CLUSTER_PRIMARY_PROTECTED] = "primary-protected",
        [CLUSTER_SECONDARY_STARTING] = "secondary-starting",
        [CLUSTER_SECONDARY_SYNCING] = "secondary-syncing",
        [CLUSTER_SECONDARY_PROTECTED] = "secondary-protected",
        [CLUSTER_FAILOVER_CLAIMED] = "failover-claimed",
        [CLUSTER_PAUSED] = "paused",
        [CLUSTER_STOPPED] = "stopped",
        [CLUSTER_RELOCATE_REQUESTED] = "relocate-requested",
        [CLUSTER_RELOCATING] = "relocating",
        [CLUSTER_RELOCATE_TARGET] = "relocate-target",
    };

    return (unsigned)state < G_N_ELEMENTS(names) ? names[state] : "invalid";
}

const char *vmm_kind_name(VmmKind kind)
{
    static const char *const names[VMM__MAX] = {
        [VMM_NONE] = "none",
        [VMM_PRIMARY] = "primary",
        [VMM_SECONDARY] = "secondary",
    };

    return (unsigned)kind < G_N_ELEMENTS(names) ? names[kind] : "invalid";
}
