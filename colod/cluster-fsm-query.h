/* A read-only snapshot of colod's decision state machine, for status
 * (colod's control socket, coloctl status): everything the state machine
 * knows about this node and the peer, copied at one moment. */
#ifndef COLOD_CLUSTER_FSM_QUERY_H
#define COLOD_CLUSTER_FSM_QUERY_H

#include "cluster-fsm.h"

typedef struct {
    uint32_t node_id;
    ClusterState state;
    ColodRole role;      /* as last persisted */
    uint64_t generation; /* as last persisted */
    VmmKind vmm;         /* what colod's colo-vmm runs as */
    bool paused;
    bool quorate;
    bool managed;        /* pacemaker decides who is primary (promote, demote) */
    bool protect_enabled;
    WaitReason wait;     /* WAIT_NONE unless in wait-admin */
    char reason[256];    /* the last decision's reason */
    struct {
        uint32_t node_id;
        bool present;    /* its colod is a member of the CPG group */
        bool known;      /* it said hello since it joined: the fields below */
        ColodRole role;
        uint64_t generation;
        ClusterState state;
        VmmKind vmm;
        bool paused;
    } peer;
} ClusterFsmStatus;

void cluster_fsm_query(const ClusterFsm *fsm, ClusterFsmStatus *out);

/* Whether the guest serves here: colo-vmm runs as the primary, not paused. */
bool cluster_fsm_status_running(const ClusterFsmStatus *st);

#endif
