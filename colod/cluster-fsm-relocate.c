/* colod's state machine: relocation by postcopy (docs/colo.md,
 * "Relocation"). `switchover` without a protected pair moves the VM to the
 * peer that stands by: the peer starts colo-vmm -incoming (a relocation
 * target, without colo-proxy), the primary migrates without x-colo and
 * switches to postcopy at once, so its guest stops once, for about the
 * time it takes to send the device state, whatever the RAM size or dirty
 * rate. Afterwards the peer is the primary at a new generation and
 * protects the old primary as its secondary.
 *
 * The commit point is the start of postcopy. Before it, any failure leaves
 * the VM running where it ran (the target is dropped). After it, the
 * target runs the guest with pages only the source has: if either side is
 * lost, neither copy is whole, the VM is down and an administrator starts
 * it again (WAIT_RELOCATION_LOST); that is postcopy's known risk. */
#include "config.h"

#include "cluster-fsm-private.h"

#include <stdarg.h>
#include <string.h>
#include <syslog.h>

#define IN(s) (1u << (s))

bool fsm_in_relocation(const ClusterFsm *fsm)
{
    return fsm->state == CLUSTER_RELOCATE_REQUESTED || fsm->state == CLUSTER_RELOCATING ||
           fsm->state == CLUSTER_RELOCATE_TARGET;
}

static bool peer_in(const ClusterFsm *fsm, unsigned states)
{
    return fsm->peer_known && (states & IN(fsm->peer_state));
}

/* A VM with disks does not move by postcopy (colo-vmm copies disks only
 * with x-colo): it is protected first (in the protect-mode set), then its
 * secondary takes over as in the switchover of a protected pair. */
static bool switch_after_protect(ClusterFsm *fsm, ClusterActions *out)
{
    fsm->switch_when_protected = true;
    fsm->protect_enabled = true;
    fsm_say(fsm, out, LOG_INFO, "switchover: the VM has disks, which a move by postcopy does not carry: protecting "
            "it first, then the secondary takes over");
    if (fsm->state == CLUSTER_PRIMARY_ALONE) {
        fsm_disarm(fsm, TIMER_PROTECT_RETRY);
        fsm_maybe_protect(fsm, out);
    }
    return true;
}

void fsm_maybe_switch_when_protected(ClusterFsm *fsm, ClusterActions *out)
{
    CpgMsg *m;

    if (!fsm->switch_when_protected || fsm->state != CLUSTER_PRIMARY_PROTECTED ||
        !peer_in(fsm, IN(CLUSTER_SECONDARY_PROTECTED))) {
        return;
    }
    fsm->switch_when_protected = false;
    m = fsm_send(fsm, out, CPG_MSG_SWITCHOVER, fsm->p.peer_id);
    m->generation = fsm->generation;
    fsm_say(fsm, out, LOG_INFO, "switchover: protected, asked the secondary to take the VM");
}

/* The primary side: wanted now, requested once the peer stands by. */
static bool relocate_from_here(ClusterFsm *fsm, ClusterActions *out, GError **error)
{
    if (!fsm->peer_in_group || !fsm->peer_known) {
        return fsm_refuse(error, "switchover needs a protected VM, or a peer that stands by: the peer's colod is %s",
                      fsm->peer_in_group ? "not known yet (no hello)" : "not in the group");
    }
    if (fsm->paused) {
        return fsm_refuse(error, "the VM is paused here: it is not moved");
    }
    if (!peer_in(fsm, IN(CLUSTER_IDLE) | IN(CLUSTER_SECONDARY_STARTING) | IN(CLUSTER_SECONDARY_SYNCING))) {
        return fsm_refuse(error, "switchover needs a protected VM, or a peer that stands by (the peer is %s)",
                      cluster_state_name(fsm->peer_state));
    }
    if (fsm->p.has_disks) {
        return switch_after_protect(fsm, out);
    }
    fsm->relocate_wanted = true;
    if (fsm->state == CLUSTER_PROTECTING) {
        fsm_vmm_act(fsm, out, ACT_CANCEL_PROTECT);
    }
    if (fsm->state != CLUSTER_PRIMARY_ALONE) {
        /* The peer drops its secondary when it sees us alone, then stands
         * by, and its hello brings us to fsm_maybe_relocate(). */
        fsm_enter(fsm, out, CLUSTER_PRIMARY_ALONE, "switchover: the protection under way is dropped; the VM moves "
                  "to the peer by postcopy once it stands by");
        return true;
    }
    fsm_disarm(fsm, TIMER_PROTECT_RETRY);
    fsm_maybe_protect(fsm, out);
    if (fsm->state == CLUSTER_PRIMARY_ALONE) {
        fsm_say(fsm, out, LOG_INFO, "switchover: the VM moves to the peer by postcopy once it stands by");
    }
    return true;
}

bool fsm_relocate_admin(ClusterFsm *fsm, ClusterActions *out, bool from_peer, GError **error)
{
    CpgMsg *m;

    switch (fsm->state) {
    case CLUSTER_PRIMARY_ALONE:
    case CLUSTER_PROTECT_REQUESTED:
    case CLUSTER_PROTECTING:
        return relocate_from_here(fsm, out, error);
    case CLUSTER_IDLE:
    case CLUSTER_SECONDARY_STARTING:
    case CLUSTER_SECONDARY_SYNCING:
        if (from_peer) {
            break;
        }
        if (!fsm->peer_in_group || !fsm_peer_runs_primary(fsm) || fsm->peer_paused ||
            !peer_in(fsm, IN(CLUSTER_PRIMARY_ALONE) | IN(CLUSTER_PROTECT_REQUESTED) | IN(CLUSTER_PROTECTING))) {
            return fsm_refuse(error, "switchover needs a protected VM, or the VM running alone on the peer (state %s, "
                          "the peer %s)", cluster_state_name(fsm->state),
                          fsm->peer_known ? cluster_state_name(fsm->peer_state) : "unknown");
        }
        m = fsm_send(fsm, out, CPG_MSG_SWITCHOVER, fsm->p.peer_id);
        m->generation = fsm->generation;
        fsm_say(fsm, out, LOG_INFO, "switchover: asked the primary to move the VM here%s",
                fsm->p.has_disks ? " (protected first: it has disks)" : " by postcopy");
        return true;
    default:
        break;
    }
    return fsm_refuse(error, "switchover needs a protected VM, or the VM running alone on one node with the other "
                  "standing by (state %s)", cluster_state_name(fsm->state));
}

bool fsm_maybe_relocate(ClusterFsm *fsm, ClusterActions *out)
{
    CpgMsg *m;

    if (!fsm->relocate_wanted || fsm->state != CLUSTER_PRIMARY_ALONE) {
        return false;
    }
    if (!fsm->quorate || fsm->paused) {
        return true; /* quorum decides first; the pause ends the wish (fsm_enter) */
    }
    if (!fsm->peer_in_group || (fsm->peer_known && !peer_in(fsm, IN(CLUSTER_IDLE) | IN(CLUSTER_SECONDARY_STARTING) |
                                                                    IN(CLUSTER_SECONDARY_SYNCING)))) {
        fsm->relocate_wanted = false;
        fsm_say(fsm, out, LOG_WARNING, "switchover abandoned: the peer %s",
                fsm->peer_in_group ? cluster_state_name(fsm->peer_state) : "left the group");
        return false;
    }
    if (!peer_in(fsm, IN(CLUSTER_IDLE))) {
        return true; /* its secondary is being dropped: its next hello */
    }
    fsm->relocate_wanted = false;
    fsm->pending_gen = fsm_next_generation(fsm);
    m = fsm_send(fsm, out, CPG_MSG_RELOCATE_REQUEST, fsm->p.peer_id);
    m->generation = fsm->pending_gen;
    fsm_enter(fsm, out, CLUSTER_RELOCATE_REQUESTED, "switchover: the peer stands by, moving the VM there by "
              "postcopy (generation %" G_GUINT64_FORMAT ")", fsm->pending_gen);
    fsm_arm(fsm, out, TIMER_RELOCATE_ACK, fsm->p.timeouts.protect_ack_ms);
    return true;
}

/* After postcopy began, a lost side loses the VM: neither copy is whole. */
static void relocation_lost(ClusterFsm *fsm, ClusterActions *out, const char *why)
{
    if (fsm->vmm != VMM_NONE) {
        fsm_vmm_act(fsm, out, ACT_STOP_VMM);
    }
    fsm_wait_admin(fsm, out, WAIT_RELOCATION_LOST,
                   "%s after the relocation's postcopy phase began: neither node holds the whole VM any more, it is "
                   "down; make sure it runs nowhere, then run 'coloctl failover' on one node to start it again "
                   "(from boot)", why);
}

static void on_request(ClusterFsm *fsm, const CpgMsg *m, ClusterActions *out)
{
    CpgMsg *ack;

    if (fsm->state == CLUSTER_IDLE && fsm->quorate && !fsm->p.managed && !fsm->p.has_disks &&
        fsm_peer_runs_primary(fsm) && !fsm->peer_paused && m->generation > fsm->generation &&
        m->generation > fsm->peer_gen) {
        fsm->pending_gen = m->generation;
        fsm->reloc_ready = false;
        /* Incomplete until the guest runs here: never the newest copy. */
        fsm_persist(fsm, out, COLOD_ROLE_SYNCING, m->generation);
        fsm_start_relocation_target(fsm, out);
        fsm_enter(fsm, out, CLUSTER_RELOCATE_TARGET, "the peer moves the VM here by postcopy (generation %"
                  G_GUINT64_FORMAT "): starting colo-vmm -incoming", m->generation);
        return;
    }
    if (fsm->state == CLUSTER_RELOCATE_TARGET && m->generation == fsm->pending_gen) {
        fsm_say(fsm, out, LOG_INFO, "repeated relocate request ignored");
        return;
    }
    ack = fsm_send(fsm, out, CPG_MSG_RELOCATE_ACK, m->sender);
    ack->generation = m->generation;
    ack->accepted = false;
    fsm_say(fsm, out, LOG_WARNING, "relocate request (generation %" G_GUINT64_FORMAT ") refused in state %s (ours %"
            G_GUINT64_FORMAT "%s)", m->generation, cluster_state_name(fsm->state), fsm->generation,
            fsm->p.has_disks ? ", the VM has disks" : !fsm->quorate ? ", no quorum" : "");
}

static void on_ack(ClusterFsm *fsm, const CpgMsg *m, ClusterActions *out)
{
    if (fsm->state != CLUSTER_RELOCATE_REQUESTED || m->generation != fsm->pending_gen) {
        fsm_say(fsm, out, LOG_INFO, "relocate answer (generation %" G_GUINT64_FORMAT ") out of order in state %s: "
                "ignored", m->generation, cluster_state_name(fsm->state));
        return;
    }
    if (!m->accepted) {
        fsm_protect_later(fsm, out, "the peer refused the relocation: the VM runs on here");
        return;
    }
    fsm->reloc_postcopy = false;
    fsm_vmm_act(fsm, out, ACT_RELOCATE);
    fsm_enter(fsm, out, CLUSTER_RELOCATING, "the peer's colo-vmm waits: migrating the VM there by postcopy");
}

void fsm_relocate_message(ClusterFsm *fsm, const CpgMsg *m, ClusterActions *out)
{
    if (m->type == CPG_MSG_RELOCATE_REQUEST) {
        on_request(fsm, m, out);
    } else {
        on_ack(fsm, m, out);
    }
}

/* The source's colo-vmm. */
static bool source_event(ClusterFsm *fsm, VmmEvent ev, ClusterActions *out)
{
    switch (ev) {
    case VMM_EV_POSTCOPY:
        if (!fsm->reloc_postcopy) {
            fsm->reloc_postcopy = true;
            fsm->paused = true; /* its guest stopped for good */
            fsm_enter(fsm, out, CLUSTER_RELOCATING, "postcopy: the VM runs on the peer now; this node only sends "
                      "it the rest of the memory (the move can no longer be undone)");
        }
        return true;
    case VMM_EV_MIGRATED:
        fsm_vmm_act(fsm, out, ACT_STOP_VMM);
        fsm->peer_gen = MAX(fsm->peer_gen, fsm->pending_gen);
        if (!fsm->quorate) {
            fsm_enter(fsm, out, CLUSTER_WAIT_QUORUM, "relocated: the VM runs on the peer; no quorum here");
        } else {
            fsm_enter(fsm, out, CLUSTER_IDLE, "relocated: the VM runs on the peer (generation %" G_GUINT64_FORMAT
                      "); standing by to become its secondary", fsm->pending_gen);
        }
        return true;
    case VMM_EV_PROTECT_FAILED:
    case VMM_EV_PEER_LOST:
        if (fsm->reloc_postcopy) {
            relocation_lost(fsm, out, "the migration broke");
        } else {
            fsm_protect_later(fsm, out, "the relocation failed before postcopy: the VM runs on here");
        }
        return true;
    case VMM_EV_EXITED:
        if (!fsm->reloc_postcopy) {
            return false; /* the VM went down here: as any exit */
        }
        fsm->vmm = VMM_NONE;
        fsm->paused = false;
        relocation_lost(fsm, out, "this node's colo-vmm exited");
        return true;
    default:
        return false;
    }
}

/* The target's colo-vmm. */
static bool target_event(ClusterFsm *fsm, VmmEvent ev, ClusterActions *out)
{
    CpgMsg *ack;

    switch (ev) {
    case VMM_EV_READY:
        fsm->reloc_ready = true;
        ack = fsm_send(fsm, out, CPG_MSG_RELOCATE_ACK, fsm->p.peer_id);
        ack->generation = fsm->pending_gen;
        ack->accepted = true;
        fsm_say(fsm, out, LOG_INFO, "colo-vmm -incoming waits for the VM");
        return true;
    case VMM_EV_POSTCOPY:
    case VMM_EV_MIGRATED:
        if (!fsm->reloc_ready) {
            return false; /* a colo-vmm that never answered migrated nothing */
        }
        if (!fsm->reloc_postcopy) {
            /* Its guest runs here from now on, at the new generation. */
            fsm->reloc_postcopy = true;
            fsm->vmm = VMM_PRIMARY;
            fsm_persist(fsm, out, COLOD_ROLE_PRIMARY, fsm->pending_gen);
            if (ev == VMM_EV_POSTCOPY) {
                fsm_enter(fsm, out, CLUSTER_RELOCATE_TARGET, "postcopy: the VM runs here now (generation %"
                          G_GUINT64_FORMAT "); the pages it lacks come from the peer", fsm->pending_gen);
                return true;
            }
        }
        if (ev == VMM_EV_POSTCOPY) {
            return true;
        }
        if (!fsm->quorate) {
            fsm->paused_from = CLUSTER_PRIMARY_ALONE;
            fsm->peer_at_pause = fsm->peer_in_group;
            fsm_vmm_act(fsm, out, ACT_PAUSE);
            fsm_enter(fsm, out, CLUSTER_PAUSED, "relocated here without quorum: VM paused");
            return true;
        }
        fsm_enter(fsm, out, CLUSTER_PRIMARY_ALONE, "relocated: the VM runs here (generation %" G_GUINT64_FORMAT ")",
                  fsm->generation);
        fsm_maybe_protect(fsm, out);
        return true;
    case VMM_EV_PROTECT_FAILED:
    case VMM_EV_PEER_LOST:
        if (fsm->reloc_postcopy) {
            relocation_lost(fsm, out, "the migration broke");
            return true;
        }
        fsm_vmm_act(fsm, out, ACT_STOP_VMM);
        fsm_enter(fsm, out, CLUSTER_IDLE, "the relocation failed: this node's colo-vmm stopped, the VM runs on the "
                  "peer");
        return true;
    case VMM_EV_EXITED:
        fsm->vmm = VMM_NONE;
        fsm->paused = false;
        if (fsm->reloc_postcopy) {
            relocation_lost(fsm, out, "this node's colo-vmm exited");
        } else {
            fsm_enter(fsm, out, CLUSTER_IDLE, "the relocation target's colo-vmm exited: the VM runs on the peer");
        }
        return true;
    default:
        return false;
    }
}

bool fsm_relocate_vmm_event(ClusterFsm *fsm, VmmEvent ev, ClusterActions *out)
{
    switch (fsm->state) {
    case CLUSTER_RELOCATING:
        return source_event(fsm, ev, out);
    case CLUSTER_RELOCATE_TARGET:
        return target_event(fsm, ev, out);
    default:
        return false;
    }
}

void fsm_relocate_peer_gone(ClusterFsm *fsm, ClusterActions *out, const char *why)
{
    if (fsm->reloc_postcopy) {
        relocation_lost(fsm, out, why);
        return;
    }
    switch (fsm->state) {
    case CLUSTER_RELOCATING:
        fsm_vmm_act(fsm, out, ACT_CANCEL_PROTECT);
        /* fall through */
    case CLUSTER_RELOCATE_REQUESTED:
        fsm_enter(fsm, out, CLUSTER_PRIMARY_ALONE, "%s: relocation abandoned before postcopy, the VM runs on here",
                  why);
        break;
    case CLUSTER_RELOCATE_TARGET:
        fsm_vmm_act(fsm, out, ACT_STOP_VMM);
        fsm_enter(fsm, out, CLUSTER_WAIT_PEER, "%s before the relocation's postcopy phase: target stopped", why);
        fsm_arm(fsm, out, TIMER_PEER_WAIT, fsm->p.timeouts.peer_wait_ms);
        break;
    default:
        break;
    }
}

void fsm_relocate_react(ClusterFsm *fsm, ClusterActions *out)
{
    if (fsm->reloc_postcopy) {
        /* Only the loss of the other half matters now, and on the source
         * the target's end: it leaves relocate-target only once every page
         * arrived, so the source is done even if its own colo-vmm's end
         * was not heard. A source standing by after its end changes
         * nothing for the target. */
        if (peer_in(fsm, IN(CLUSTER_WAIT_ADMIN)) && fsm->peer_vmm == VMM_NONE) {
            relocation_lost(fsm, out, "the peer lost the VM");
        } else if (fsm->state == CLUSTER_RELOCATING && fsm->peer_known && fsm->peer_vmm == VMM_PRIMARY &&
                   !peer_in(fsm, IN(CLUSTER_RELOCATE_TARGET))) {
            source_event(fsm, VMM_EV_MIGRATED, out);
        }
        return;
    }
    switch (fsm->state) {
    case CLUSTER_RELOCATE_REQUESTED:
        /* Its hello before our request said idle; any since reflects it. */
        if (!peer_in(fsm, IN(CLUSTER_IDLE) | IN(CLUSTER_RELOCATE_TARGET))) {
            fsm_protect_later(fsm, out, "the peer no longer stands by: relocation abandoned");
        }
        break;
    case CLUSTER_RELOCATING:
        if (!peer_in(fsm, IN(CLUSTER_RELOCATE_TARGET))) {
            fsm_vmm_act(fsm, out, ACT_CANCEL_PROTECT);
            fsm_protect_later(fsm, out, "the peer's relocation target went away before postcopy");
        }
        break;
    case CLUSTER_RELOCATE_TARGET:
        if (!peer_in(fsm, IN(CLUSTER_RELOCATE_REQUESTED) | IN(CLUSTER_RELOCATING)) &&
                   !(peer_in(fsm, IN(CLUSTER_IDLE)) && fsm->peer_vmm == VMM_NONE)) {
            /* (A source that stands by handed the VM over: our own
             * colo-vmm's end may come after its hello.) */
            fsm_vmm_act(fsm, out, ACT_STOP_VMM);
            fsm_enter(fsm, out, CLUSTER_IDLE, "the peer abandoned the relocation (%s): target stopped",
                      cluster_state_name(fsm->peer_state));
        }
        break;
    default:
        break;
    }
}

void fsm_relocate_quorum_lost(ClusterFsm *fsm, ClusterActions *out, bool peer_was_in)
{
    if (fsm->reloc_postcopy) {
        /* Only the target can run the VM now (the source cannot resume):
         * stopping the move would lose it. Its end decides (quorum or not). */
        fsm_say(fsm, out, LOG_WARNING, "quorum lost in the relocation's postcopy phase: the move goes on, only the "
                "target can run the VM");
        return;
    }
    if (fsm->state == CLUSTER_RELOCATE_TARGET) {
        fsm_vmm_act(fsm, out, ACT_STOP_VMM);
        fsm_enter(fsm, out, CLUSTER_WAIT_QUORUM, "quorum lost before the relocation's postcopy phase: target stopped");
        return;
    }
    if (fsm->state == CLUSTER_RELOCATING) {
        fsm_vmm_act(fsm, out, ACT_CANCEL_PROTECT);
    }
    fsm->paused_from = CLUSTER_PRIMARY_ALONE;
    fsm->peer_at_pause = peer_was_in;
    fsm_vmm_act(fsm, out, ACT_PAUSE);
    fsm_enter(fsm, out, CLUSTER_PAUSED, "quorum lost: relocation abandoned, VM paused so that it cannot serve while "
              "the other side may");
}

void fsm_relocate_timeout(ClusterFsm *fsm, ClusterActions *out)
{
    if (fsm->state == CLUSTER_RELOCATE_REQUESTED) {
        fsm_protect_later(fsm, out, "no answer to the relocate request (a peer colod without relocation refuses it)");
    }
}
