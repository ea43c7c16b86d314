/* colod's state machine, read only: the status snapshot
 * (cluster-fsm-query.h). It reads the private state and changes nothing. */
#include "config.h"

#include "cluster-fsm-query.h"
#include "cluster-fsm-private.h"

#include <string.h>

void cluster_fsm_query(const ClusterFsm *fsm, ClusterFsmStatus *out)
{
    memset(out, 0, sizeof(*out));
    out->node_id = fsm->p.local_id;
    out->state = fsm->state;
    out->role = fsm->role;
    out->generation = fsm->generation;
    out->vmm = fsm->vmm;
    out->paused = fsm->paused;
    out->quorate = fsm->quorate;
    out->managed = fsm->p.managed;
    out->protect_enabled = fsm->protect_enabled;
    out->wait = fsm->state == CLUSTER_WAIT_ADMIN ? fsm->wait : WAIT_NONE;
    g_strlcpy(out->reason, fsm->reason, sizeof(out->reason));
    out->peer.node_id = fsm->p.peer_id;
    out->peer.present = fsm->peer_in_group;
    out->peer.known = fsm->peer_in_group && fsm->peer_known;
    if (out->peer.known) {
        out->peer.role = fsm->peer_role;
        out->peer.generation = fsm->peer_gen;
        out->peer.state = fsm->peer_state;
        out->peer.vmm = fsm->peer_vmm;
        out->peer.paused = fsm->peer_paused;
    }
}

bool cluster_fsm_status_running(const ClusterFsmStatus *st)
{
    return st->vmm == VMM_PRIMARY && !st->paused;
}
