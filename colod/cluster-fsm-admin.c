/* colod's state machine: administrators' commands, colod's own shutdown,
 * and the start-up rule against split brain. */
#include "config.h"

#include "cluster-fsm-private.h"

#include <stdarg.h>
#include <string.h>
#include <syslog.h>

/* ---- administrator ----------------------------------------------------- */

static bool refuse(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static bool refuse(GError **error, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error_literal(error, CLUSTER_FSM_ERROR, 0, msg);
    return false;
}

static bool admin_failover(ClusterFsm *fsm, ClusterActions *out, GError **error)
{
    switch (fsm->state) {
    case CLUSTER_SECONDARY_PROTECTED:
        fsm_claim(fsm, out, true, false, "failover requested by an administrator");
        return true;
    case CLUSTER_WAIT_PEER:
    case CLUSTER_WAIT_ADMIN:
    case CLUSTER_IDLE:
        break;
    default:
        return refuse(error, "failover does not apply in state %s", cluster_state_name(fsm->state));
    }
    if (fsm_peer_runs_primary(fsm) && !fsm->peer_paused && fsm->peer_in_group) {
        return refuse(error, "the peer runs the VM: use switchover (or stop the peer's VM first)");
    }
    if (fsm->role == COLOD_ROLE_SYNCING) {
        return refuse(error, "this node holds no complete copy of the VM (its initial sync did not finish)");
    }
    if (fsm->vmm == VMM_NONE) {
        fsm_start_as_primary(fsm, out, fsm_next_generation(fsm), "started here by an administrator");
        return true;
    }
    /* A paused VM here (split brain, quorum back without the peer, state
     * file error): this one is kept. x-colo-lost-heartbeat is harmless
     * outside COLO and leaves a secondary's COLO otherwise. */
    fsm_persist(fsm, out, COLOD_ROLE_PRIMARY, fsm_next_generation(fsm));
    fsm_vmm_act(fsm, out, ACT_FAILOVER);
    if (fsm->paused) {
        fsm_vmm_act(fsm, out, ACT_RESUME);
    }
    fsm_enter(fsm, out, CLUSTER_PRIMARY_ALONE, "an administrator kept this node's VM (generation %" G_GUINT64_FORMAT ")",
          fsm->generation);
    return true;
}

bool cluster_fsm_admin(ClusterFsm *fsm, AdminCommand cmd, ClusterActions *out, GError **error)
{
    CpgMsg *m;

    if (fsm->state == CLUSTER_STOPPED) {
        return refuse(error, "colod is shutting down");
    }
    if (!fsm->quorate && cmd != ADMIN_UNPROTECT) {
        return refuse(error, "no quorum: this node must not change who serves the VM");
    }
    switch (cmd) {
    case ADMIN_FAILOVER:
        return admin_failover(fsm, out, error);
    case ADMIN_SWITCHOVER:
        if (fsm->state == CLUSTER_SECONDARY_PROTECTED) {
            fsm_claim(fsm, out, true, false, "switchover requested by an administrator");
        } else if (fsm->state == CLUSTER_PRIMARY_PROTECTED) {
            m = fsm_send(fsm, out, CPG_MSG_SWITCHOVER, fsm->p.peer_id);
            m->generation = fsm->generation;
            fsm_say(fsm, out, LOG_INFO, "switchover: asked the secondary to take the VM");
        } else {
            return refuse(error, "switchover needs a protected VM (state %s)", cluster_state_name(fsm->state));
        }
        return true;
    case ADMIN_PROTECT:
        fsm->protect_enabled = true;
        if (fsm->state == CLUSTER_WAIT_ADMIN && fsm->wait == WAIT_STALE_PEER) {
            fsm_enter(fsm, out, CLUSTER_IDLE, "an administrator discards this node's copy: standing by");
        } else if (fsm->state == CLUSTER_PRIMARY_ALONE) {
            fsm_disarm(fsm, TIMER_PROTECT_RETRY);
            fsm_say(fsm, out, LOG_INFO, "protection enabled by an administrator");
            fsm_maybe_protect(fsm, out);
        } else {
            fsm_say(fsm, out, LOG_INFO, "protection enabled by an administrator");
        }
        return true;
    case ADMIN_UNPROTECT:
        if (fsm->state >= CLUSTER_SECONDARY_STARTING && fsm->state <= CLUSTER_SECONDARY_PROTECTED) {
            return refuse(error, "unprotect is for the primary; this node is the secondary");
        }
        if (fsm->state == CLUSTER_PRIMARY_PROTECTED) {
            if (!fsm->quorate) {
                return refuse(error, "no quorum: this node must not change who serves the VM");
            }
            fsm_claim(fsm, out, true, true, "unprotect requested by an administrator");
            return true;
        }
        fsm->protect_enabled = false;
        if (fsm->state == CLUSTER_PROTECTING) {
            fsm_vmm_act(fsm, out, ACT_CANCEL_PROTECT);
        }
        if (fsm->state == CLUSTER_PROTECTING || fsm->state == CLUSTER_PROTECT_REQUESTED) {
            fsm_enter(fsm, out, CLUSTER_PRIMARY_ALONE, "unprotected by an administrator");
        } else {
            fsm_say(fsm, out, LOG_INFO, "protection disabled by an administrator");
            fsm_send_hello(fsm, out);
        }
        return true;
    case ADMIN__MAX:
        break;
    }
    g_assert_not_reached();
}

void cluster_fsm_shutdown(ClusterFsm *fsm, bool restart, ClusterActions *out)
{
    CpgMsg *m;

    if (fsm->state == CLUSTER_STOPPED) {
        return;
    }
    /* The VM stops before the peer hears of it, so the peer never serves
     * while ours still does. */
    if (!restart && fsm->vmm != VMM_NONE) {
        fsm_vmm_act(fsm, out, ACT_STOP_VMM);
    }
    m = fsm_send(fsm, out, CPG_MSG_SHUTDOWN, 0);
    m->restart = restart;
    for (int t = 0; t < TIMER__MAX; t++) {
        fsm_disarm(fsm, t);
    }
    fsm_say(fsm, out, LOG_INFO, "%s -> stopped: colod %s", cluster_state_name(fsm->state),
        restart ? "restarts, the VM runs on" : "stops with the VM");
    fsm->state = CLUSTER_STOPPED;
}

bool cluster_quorum_policy_check(bool two_node, bool qdevice, bool allow_split_brain, GError **error)
{
    if (!two_node || qdevice) {
        return true;
    }
    if (allow_split_brain) {
        return true;
    }
    return refuse(error, "corosync runs two_node without a quorum device: after a partition both nodes would "
                         "keep quorum and both would serve the VM. Add corosync-qdevice (with corosync-qnetd on a "
                         "third host) or set allow-split-brain=true in the VM's file (unsafe)");
}
