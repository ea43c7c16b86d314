/* colod's state machine: administrators' commands, colod's own shutdown,
 * and the start-up rule against split brain. */
#include "config.h"

#include "cluster-fsm-private.h"

#include <stdarg.h>
#include <string.h>
#include <syslog.h>

/* ---- administrator ----------------------------------------------------- */

/* Failover or promote from a state without a protected VM here: start
 * the VM, or keep the paused one. @by names who asked, for the log. */
static bool take_vm_here(ClusterFsm *fsm, ClusterActions *out, const char *by, const char *peer_runs,
                         GError **error)
{
    g_autofree char *why = NULL;

    if (fsm_peer_runs_primary(fsm) && !fsm->peer_paused && fsm->peer_in_group) {
        return fsm_refuse(error, "%s", peer_runs);
    }
    if (fsm->role == COLOD_ROLE_SYNCING) {
        return fsm_refuse(error, "this node holds no complete copy of the VM (its initial sync did not finish)");
    }
    if (fsm->vmm == VMM_NONE) {
        why = g_strdup_printf("started here by %s", by);
        fsm_start_as_primary(fsm, out, fsm_next_generation(fsm), why);
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
    fsm_enter(fsm, out, CLUSTER_PRIMARY_ALONE, "%s kept this node's VM (generation %" G_GUINT64_FORMAT ")", by,
          fsm->generation);
    /* A peer that stands by said so before and says nothing more. */
    fsm_maybe_protect(fsm, out);
    return true;
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
        return take_vm_here(fsm, out, "an administrator",
                            "the peer runs the VM: use switchover (or stop the peer's VM first)", error);
    default:
        return fsm_refuse(error, "failover does not apply in state %s", cluster_state_name(fsm->state));
    }
}

/* Managed mode: pacemaker makes this node the primary. Idempotent. */
static bool admin_promote(ClusterFsm *fsm, ClusterActions *out, GError **error)
{
    switch (fsm->state) {
    case CLUSTER_PRIMARY_STARTING:
    case CLUSTER_PRIMARY_ALONE:
    case CLUSTER_PROTECT_REQUESTED:
    case CLUSTER_PROTECTING:
    case CLUSTER_PRIMARY_PROTECTED:
    case CLUSTER_FAILOVER_CLAIMED:
        fsm_say(fsm, out, LOG_INFO, "promote: this node is the primary already (%s)", cluster_state_name(fsm->state));
        return true;
    case CLUSTER_SECONDARY_PROTECTED:
        /* A primary still in the group stops its side first (the claim);
         * one that is gone was fenced or died: take over at once. */
        if (fsm->peer_in_group) {
            fsm_claim(fsm, out, true, false, "promoted by pacemaker while the primary is a member");
        } else {
            fsm_failover(fsm, out, fsm_next_generation(fsm), "promoted by pacemaker, the primary is gone");
        }
        return true;
    case CLUSTER_SECONDARY_STARTING:
    case CLUSTER_SECONDARY_SYNCING:
        return fsm_refuse(error, "this node's initial sync has not finished: it holds no complete copy of the VM");
    case CLUSTER_WAIT_PEER:
    case CLUSTER_WAIT_ADMIN:
    case CLUSTER_IDLE:
        break;
    default:
        return fsm_refuse(error, "promote does not apply in state %s", cluster_state_name(fsm->state));
    }
    /* Pacemaker's promotion scores come from the generation; this guards
     * against a promotion before the scores settled. */
    if (fsm->peer_in_group && !fsm_peer_runs_primary(fsm) && fsm->peer_known && fsm_compare_copies(fsm) < 0) {
        return fsm_refuse(error, "the peer holds the newer copy (generation %" G_GUINT64_FORMAT ", ours %" G_GUINT64_FORMAT
                             "): promote the peer", fsm->peer_gen, fsm->generation);
    }
    return take_vm_here(fsm, out, "pacemaker", "the peer runs the VM as primary: demote it first", error);
}

/* Managed mode: pacemaker takes the primary role away; the VM stops here
 * (a secondary takes over only when pacemaker promotes it). Idempotent. */
static bool admin_demote(ClusterFsm *fsm, ClusterActions *out)
{
    bool primary = fsm->vmm == VMM_PRIMARY || fsm->state == CLUSTER_FAILOVER_CLAIMED ||
                   (fsm->state >= CLUSTER_PRIMARY_STARTING && fsm->state <= CLUSTER_PRIMARY_PROTECTED);

    if (!primary && fsm->state != CLUSTER_WAIT_ADMIN) {
        fsm_say(fsm, out, LOG_INFO, "demote: this node is not the primary (%s)", cluster_state_name(fsm->state));
        return true;
    }
    if (fsm->state == CLUSTER_PROTECTING) {
        fsm_vmm_act(fsm, out, ACT_CANCEL_PROTECT);
    }
    if (fsm->vmm != VMM_NONE) {
        fsm_vmm_act(fsm, out, ACT_STOP_VMM);
    }
    if (fsm->quorate) {
        fsm_enter(fsm, out, CLUSTER_IDLE, "demoted by pacemaker: the VM stopped here, standing by");
    } else {
        fsm_enter(fsm, out, CLUSTER_WAIT_QUORUM, "demoted by pacemaker: the VM stopped here; no quorum");
    }
    return true;
}

bool cluster_fsm_admin(ClusterFsm *fsm, AdminCommand cmd, ClusterActions *out, GError **error)
{
    CpgMsg *m;

    if (fsm->state == CLUSTER_STOPPED) {
        return fsm_refuse(error, "colod is shutting down");
    }
    if (!fsm->p.managed && (cmd == ADMIN_PROMOTE || cmd == ADMIN_DEMOTE)) {
        return fsm_refuse(error, "%s is for managed mode ([cluster] managed = true, under pacemaker): use failover or "
                             "switchover", admin_command_name(cmd));
    }
    if (fsm->p.managed && (cmd == ADMIN_FAILOVER || cmd == ADMIN_SWITCHOVER)) {
        return fsm_refuse(error, "managed mode: pacemaker decides who is primary; move the promoted role with pacemaker "
                             "(e.g. pcs resource move --promoted), not with %s", admin_command_name(cmd));
    }
    /* Demoting only ever stops the VM here: safe without quorum too. */
    if (!fsm->quorate && cmd != ADMIN_UNPROTECT && cmd != ADMIN_DEMOTE) {
        return fsm_refuse(error, "no quorum: this node must not change who serves the VM");
    }
    switch (cmd) {
    case ADMIN_FAILOVER:
        return admin_failover(fsm, out, error);
    case ADMIN_PROMOTE:
        return admin_promote(fsm, out, error);
    case ADMIN_DEMOTE:
        return admin_demote(fsm, out);
    case ADMIN_SWITCHOVER:
        if (fsm->state == CLUSTER_SECONDARY_PROTECTED) {
            fsm_claim(fsm, out, true, false, "switchover requested by an administrator");
        } else if (fsm->state == CLUSTER_PRIMARY_PROTECTED) {
            m = fsm_send(fsm, out, CPG_MSG_SWITCHOVER, fsm->p.peer_id);
            m->generation = fsm->generation;
            fsm_say(fsm, out, LOG_INFO, "switchover: asked the secondary to take the VM");
        } else {
            return fsm_relocate_admin(fsm, out, false, error);
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
            return fsm_refuse(error, "unprotect is for the primary; this node is the secondary");
        }
        /* A switchover still waiting (for the peer, or for protection) is
         * dropped too. */
        fsm->relocate_wanted = false;
        fsm->switch_when_protected = false;
        if (fsm->state == CLUSTER_PRIMARY_PROTECTED) {
            if (!fsm->quorate) {
                return fsm_refuse(error, "no quorum: this node must not change who serves the VM");
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

void cluster_fsm_adopt(ClusterFsm *fsm, VmmKind vmm, bool in_colo, bool paused, ClusterActions *out)
{
    ClusterState s;

    if (fsm->state != CLUSTER_STARTING || vmm == VMM_NONE || vmm >= VMM__MAX || (vmm == VMM_SECONDARY && !in_colo)) {
        return;
    }
    s = vmm == VMM_SECONDARY ? CLUSTER_SECONDARY_PROTECTED : in_colo ? CLUSTER_PRIMARY_PROTECTED : CLUSTER_PRIMARY_ALONE;
    fsm->vmm = vmm;
    fsm->paused = paused;
    /* The earlier colod saw COLO begin but died before it wrote so. */
    if (vmm == VMM_SECONDARY && fsm->role == COLOD_ROLE_SYNCING) {
        fsm_persist(fsm, out, COLOD_ROLE_SECONDARY, fsm->generation);
    }
    if (paused) {
        /* Paused for a reason this colod does not know (no quorum): the
         * peer may have gone on meanwhile, so it is resolved as a pause. */
        fsm->paused_from = s;
        fsm->peer_at_pause = true;
        fsm_enter(fsm, out, CLUSTER_PAUSED, "picked up the paused colo-vmm (%s%s) left by an earlier colod: "
                  "it stays paused until quorum and the peer decide", vmm_kind_name(vmm), in_colo ? ", in COLO" : "");
        return;
    }
    fsm_enter(fsm, out, s, "picked up the running colo-vmm (%s%s) left by an earlier colod: the VM runs on untouched",
              vmm_kind_name(vmm), in_colo ? ", in COLO" : "");
}

void cluster_fsm_keep_unprotected(ClusterFsm *fsm)
{
    if (fsm->state == CLUSTER_STARTING) {
        fsm->protect_enabled = false;
    }
}

bool cluster_quorum_policy_check(bool two_node, bool qdevice, bool allow_split_brain, bool managed,
                                 GError **error)
{
    if (!two_node || qdevice || managed) {
        return true;
    }
    if (allow_split_brain) {
        return true;
    }
    return fsm_refuse(error, "corosync runs two_node without a quorum device: after a partition both nodes would "
                         "keep quorum and both would serve the VM. Add corosync-qdevice (with corosync-qnetd on a "
                         "third host), let pacemaker with fencing manage the VM (managed = true), or set "
                         "allow-split-brain=true in the VM's file (unsafe)");
}
