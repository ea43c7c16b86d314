/* colod's decision state machine (cluster-fsm.h; docs/colod.md): what
 * each membership change, message, colo-vmm event and timer means. Each
 * decision appends actions and a logged reason. Nothing here blocks,
 * sleeps or touches a file. */
#include "config.h"

#include "cluster-fsm-private.h"

#include <stdarg.h>
#include <string.h>
#include <syslog.h>

/* ---- facts ------------------------------------------------------------ */

static bool role_valid(ColodRole r)
{
    return r == COLOD_ROLE_PRIMARY || r == COLOD_ROLE_SECONDARY;
}

/* >0: our copy is newer, <0: the peer's, 0: no way to tell. A complete
 * copy beats an incomplete one; between complete copies the generation
 * decides. */
int fsm_compare_copies(const ClusterFsm *fsm)
{
    bool mine = role_valid(fsm->role), theirs = role_valid(fsm->peer_role);

    if (mine != theirs) {
        return mine ? 1 : -1;
    }
    if (!mine || fsm->generation == fsm->peer_gen) {
        return 0;
    }
    return fsm->generation > fsm->peer_gen ? 1 : -1;
}

/* Newest known plus one. Generations stay at most 2^63 - 1 (the state
 * file and the messages refuse more); one that reached it stays there,
 * which at worst makes a tie for an administrator, never a wrong guess. */
uint64_t fsm_next_generation(const ClusterFsm *fsm)
{
    uint64_t newest = MAX(fsm->generation, fsm->peer_gen);

    return newest < G_MAXINT64 ? newest + 1 : G_MAXINT64;
}

bool fsm_peer_runs_primary(const ClusterFsm *fsm)
{
    return fsm->peer_known && fsm->peer_vmm == VMM_PRIMARY;
}

#define IN(s) (1u << (s))
/* How long a secondary whose primary's colod left mid-sync waits for the
 * sync's outcome: the commit's last bytes are already on their way, and
 * loading them takes milliseconds; a stream that neither completes nor
 * breaks by then lost its primary's host. */
#define SYNC_OUTCOME_MS 3000u

/* Whether the peer's last hello named one of @states (IN() bits). */
static bool peer_in(const ClusterFsm *fsm, unsigned states)
{
    return fsm->peer_known && (states & IN(fsm->peer_state));
}

/* ---- decisions -------------------------------------------------------- */

void fsm_start_as_primary(ClusterFsm *fsm, ClusterActions *out, uint64_t gen, const char *why)
{
    fsm_persist(fsm, out, COLOD_ROLE_PRIMARY, gen);
    fsm_start_vmm(fsm, out, VMM_PRIMARY);
    fsm_enter(fsm, out, CLUSTER_PRIMARY_STARTING, "%s", why);
}

/* Managed mode: without a VM here colod only stands by, as a future
 * secondary or for pacemaker's promote; it never waits for an
 * administrator's choice (pacemaker makes it). */
static void managed_stand_by(ClusterFsm *fsm, ClusterActions *out, const char *why)
{
    if (fsm->state == CLUSTER_IDLE) {
        return;
    }
    if (fsm_peer_runs_primary(fsm)) {
        fsm_enter(fsm, out, CLUSTER_IDLE, "%s; managed: the peer runs the VM (generation %" G_GUINT64_FORMAT
              ", ours %" G_GUINT64_FORMAT "), standing by to become its secondary", why, fsm->peer_gen,
              fsm->generation);
    } else {
        fsm_enter(fsm, out, CLUSTER_IDLE, "%s; managed: standing by until pacemaker promotes a node", why);
    }
}

static void wait_for_peer(ClusterFsm *fsm, ClusterActions *out, const char *why)
{
    if (fsm->p.managed) {
        managed_stand_by(fsm, out, why);
        return;
    }
    if (fsm->state != CLUSTER_WAIT_PEER) {
        fsm_enter(fsm, out, CLUSTER_WAIT_PEER, "%s", why);
        fsm_arm(fsm, out, TIMER_PEER_WAIT, fsm->p.timeouts.peer_wait_ms);
    }
}

/* Without a VM here and with quorum: start as primary, stand by, or ask.
 * Never guesses: an unknown or equal generation waits for an administrator. */
static void decide_start(ClusterFsm *fsm, ClusterActions *out)
{
    int c;

    if (fsm->p.managed) {
        managed_stand_by(fsm, out, fsm->peer_known ? "the peer is known" : "the peer's hello is not known yet");
        return;
    }
    if (!fsm->peer_known) {
        if (fsm->state != CLUSTER_WAIT_ADMIN) {
            wait_for_peer(fsm, out, fsm->peer_in_group ? "waiting for the peer's hello"
                                                       : "the peer's colod is not in the group");
        }
        return;
    }
    c = fsm_compare_copies(fsm);
    if (fsm->peer_vmm == VMM_PRIMARY) {
        if (c > 0) {
            fsm_wait_admin(fsm, out, WAIT_STALE_PEER,
                       "the peer runs the VM from an older copy (generation %" G_GUINT64_FORMAT
                       ", ours %" G_GUINT64_FORMAT "): run 'coloctl protect' here to discard this node's copy "
                       "and become its secondary, or stop the peer's VM and run 'coloctl failover' here",
                       fsm->peer_gen, fsm->generation);
        } else if (fsm->state != CLUSTER_IDLE) {
            fsm_enter(fsm, out, CLUSTER_IDLE, "the peer runs the VM: standing by to become its secondary");
        }
        return;
    }
    if (fsm->peer_vmm == VMM_SECONDARY) {
        /* Its secondary has no primary here: it stops or takes over when it
         * sees our hello; decide after that (standing by meanwhile). */
        if (fsm->state != CLUSTER_IDLE) {
            wait_for_peer(fsm, out, "the peer runs a secondary without a primary: waiting for it to settle");
        }
        return;
    }
    if (fsm->wait == WAIT_VMM_EXITED || fsm->wait == WAIT_RELOCATION_LOST) {
        return; /* the VM went down here: an administrator restarts it */
    }
    if (c > 0) {
        g_autofree char *why = g_strdup_printf("this node holds the newest copy (%s, generation %" G_GUINT64_FORMAT
                                               "; the peer %s, %" G_GUINT64_FORMAT ")",
                                               colod_role_name(fsm->role), fsm->generation,
                                               colod_role_name(fsm->peer_role), fsm->peer_gen);

        fsm_start_as_primary(fsm, out, fsm->generation, why);
    } else if (c < 0) {
        if (fsm->state != CLUSTER_IDLE) {
            fsm_enter(fsm, out, CLUSTER_IDLE,
                  "the peer holds the newer copy (%s, generation %" G_GUINT64_FORMAT "; ours %s, %" G_GUINT64_FORMAT
                  "): standing by",
                  colod_role_name(fsm->peer_role), fsm->peer_gen, colod_role_name(fsm->role), fsm->generation);
        }
    } else if (fsm->wait != WAIT_TIE) {
        fsm_wait_admin(fsm, out, WAIT_TIE,
                   "both nodes hold %s copies of generation %" G_GUINT64_FORMAT " (%s here, %s there): "
                   "run 'coloctl failover' on the node that should start the VM",
                   role_valid(fsm->role) ? "complete" : "no complete", fsm->generation,
                   colod_role_name(fsm->role), colod_role_name(fsm->peer_role));
    }
}

/* The primary asks the idle peer to start a secondary. */
void fsm_maybe_protect(ClusterFsm *fsm, ClusterActions *out)
{
    CpgMsg *m;
    uint64_t gen;

    if (fsm_maybe_relocate(fsm, out)) {
        return;
    }
    if (fsm->state != CLUSTER_PRIMARY_ALONE || !fsm->protect_enabled || !fsm->quorate || !fsm->peer_in_group ||
        !fsm->peer_known || fsm->peer_state != CLUSTER_IDLE || fsm->paused ||
        fsm->deadline[TIMER_PROTECT_RETRY] >= 0) {
        return;
    }
    gen = fsm_next_generation(fsm);
    fsm->pending_gen = gen;
    fsm_persist(fsm, out, COLOD_ROLE_PRIMARY, gen);
    m = fsm_send(fsm, out, CPG_MSG_PROTECT_REQUEST, fsm->p.peer_id);
    m->generation = gen;
    fsm_enter(fsm, out, CLUSTER_PROTECT_REQUESTED, "the peer stands by: protecting the VM (generation %" G_GUINT64_FORMAT ")",
          gen);
    fsm_arm(fsm, out, TIMER_PROTECT_ACK, fsm->p.timeouts.protect_ack_ms);
}

void fsm_protect_later(ClusterFsm *fsm, ClusterActions *out, const char *why)
{
    fsm_enter(fsm, out, CLUSTER_PRIMARY_ALONE, "%s; next protect attempt in %u ms", why,
          fsm->p.timeouts.protect_retry_ms);
    fsm_arm(fsm, out, TIMER_PROTECT_RETRY, fsm->p.timeouts.protect_retry_ms);
}

/* This node takes the VM alone, at a new generation written first. */
void fsm_failover(ClusterFsm *fsm, ClusterActions *out, uint64_t gen, const char *why)
{
    fsm_persist(fsm, out, COLOD_ROLE_PRIMARY, gen);
    fsm_vmm_act(fsm, out, ACT_FAILOVER);
    if (fsm->claim_unprotect) {
        fsm->protect_enabled = false;
        fsm->claim_unprotect = false;
    }
    fsm_enter(fsm, out, CLUSTER_PRIMARY_ALONE, "failover (generation %" G_GUINT64_FORMAT "): %s", gen, why);
}

/* Failover while the peer is still a member: claim, and release the VM
 * only once the peer answered (it stops its side first) or left. */
void fsm_claim(ClusterFsm *fsm, ClusterActions *out, bool by_admin, bool unprotect, const char *why)
{
    CpgMsg *m;

    fsm->pending_gen = fsm_next_generation(fsm);
    fsm->own_claim_seen = false;
    fsm->claim_unprotect = unprotect;
    m = fsm_send(fsm, out, CPG_MSG_FAILOVER_CLAIM, 0);
    m->generation = fsm->pending_gen;
    m->by_admin = by_admin;
    m->unprotect = unprotect;
    fsm_enter(fsm, out, CLUSTER_FAILOVER_CLAIMED, "%s: claimed the VM (generation %" G_GUINT64_FORMAT "), waiting for the peer",
          why, fsm->pending_gen);
    fsm_arm(fsm, out, TIMER_CLAIM, fsm->p.timeouts.claim_ms);
}

/* A secondary whose initial sync ended without COLO once the primary's
 * colod had gone: no primary to stand by for yet (managed: pacemaker
 * starts the next one). */
static void secondary_abandoned(ClusterFsm *fsm, ClusterActions *out, const char *why, const char *how)
{
    if (fsm->p.managed) {
        fsm_enter(fsm, out, CLUSTER_IDLE, "%s%s", why, how);
        return;
    }
    fsm_enter(fsm, out, CLUSTER_WAIT_PEER, "%s%s", why, how);
    fsm_arm(fsm, out, TIMER_PEER_WAIT, fsm->p.timeouts.peer_wait_ms);
}

/* The peer is gone (left the group, shut down, or its restart grace ran
 * out) and we have quorum. */
static void peer_gone(ClusterFsm *fsm, ClusterActions *out, const char *why)
{
    if (fsm->p.managed && fsm->state == CLUSTER_SECONDARY_PROTECTED) {
        fsm_say(fsm, out, LOG_WARNING, "%s: the primary is lost; managed: this node takes over only when "
                                       "pacemaker promotes it (after fencing the peer)", why);
        return;
    }
    switch (fsm->state) {
    case CLUSTER_PRIMARY_PROTECTED:
    case CLUSTER_SECONDARY_PROTECTED:
        fsm_failover(fsm, out, fsm_next_generation(fsm), why);
        break;
    case CLUSTER_FAILOVER_CLAIMED:
        fsm_failover(fsm, out, fsm->pending_gen, why);
        break;
    case CLUSTER_PROTECT_REQUESTED:
        fsm_enter(fsm, out, CLUSTER_PRIMARY_ALONE, "%s: protection abandoned", why);
        break;
    case CLUSTER_PROTECTING:
        fsm_vmm_act(fsm, out, ACT_CANCEL_PROTECT);
        fsm_enter(fsm, out, CLUSTER_PRIMARY_ALONE, "%s: initial sync cancelled", why);
        break;
    case CLUSTER_SECONDARY_SYNCING:
        if (!fsm->p.managed) {
            /* The primary's colo-vmm may have sent the last of the copy
             * before its colod ended (it commits only while its colod is
             * there: migrate's x-sole-copy-file); then its unit kills it,
             * and this copy is the only one. Its outcome comes soon: COLO
             * begins, or the stream breaks (cancelled, or cut). */
            if (!fsm->sync_orphaned) {
                fsm->sync_orphaned = true;
                fsm_arm(fsm, out, TIMER_SYNC_OUTCOME, SYNC_OUTCOME_MS);
                fsm_say(fsm, out, LOG_WARNING, "%s during the initial sync: waiting up to %u ms for it to "
                        "complete (then this node takes over) or to fail", why, SYNC_OUTCOME_MS);
            }
            break;
        }
        /* fall through */
    case CLUSTER_SECONDARY_STARTING:
        fsm_vmm_act(fsm, out, ACT_STOP_VMM);
        secondary_abandoned(fsm, out, why, " before the initial sync completed: secondary stopped");
        break;
    case CLUSTER_IDLE:
        wait_for_peer(fsm, out, why);
        break;
    case CLUSTER_RELOCATE_REQUESTED:
    case CLUSTER_RELOCATING:
    case CLUSTER_RELOCATE_TARGET:
        fsm_relocate_peer_gone(fsm, out, why);
        break;
    default:
        fsm_say(fsm, out, LOG_INFO, "%s", why);
        break;
    }
}

/* The peer's VM is gone while ours runs (its hello says so). */
static void peer_vm_gone(ClusterFsm *fsm, ClusterActions *out)
{
    g_autofree char *why = g_strdup_printf("the peer's colod reports no VM (%s)", cluster_state_name(fsm->peer_state));

    peer_gone(fsm, out, why);
    /* The hello that said so may be the peer's last for a while (it stands
     * by): protect it now, no later hello will. */
    fsm_maybe_protect(fsm, out);
}

/* The peer serves the VM at a newer generation: our copy is stale. */
static void yield_to_peer(ClusterFsm *fsm, ClusterActions *out, const char *why)
{
    if (fsm->vmm != VMM_NONE) {
        fsm_vmm_act(fsm, out, ACT_STOP_VMM);
    }
    fsm_enter(fsm, out, CLUSTER_IDLE, "%s: this node's VM stopped, standing by to become the secondary", why);
}

static void split_brain(ClusterFsm *fsm, ClusterActions *out)
{
    if (!fsm->paused) {
        fsm_vmm_act(fsm, out, ACT_PAUSE);
    }
    fsm_wait_admin(fsm, out, WAIT_SPLIT_BRAIN,
               "split brain: both nodes run the VM as primary (generation %" G_GUINT64_FORMAT " here, %" G_GUINT64_FORMAT
               " there); VM paused: run 'coloctl failover' on the node to keep, the other's copy is discarded",
               fsm->generation, fsm->peer_gen);
}

static void react_to_peer(ClusterFsm *fsm, ClusterActions *out);

/* Quorum is back while paused and the peer's hello is known. */
static void resolve_pause(ClusterFsm *fsm, ClusterActions *out)
{
    ClusterState back = fsm->paused_from;

    if (fsm->peer_gen > fsm->generation && role_valid(fsm->peer_role)) {
        g_autofree char *why = g_strdup_printf("the peer went on while this node had no quorum (generation %"
                                               G_GUINT64_FORMAT ", ours %" G_GUINT64_FORMAT ")",
                                               fsm->peer_gen, fsm->generation);

        yield_to_peer(fsm, out, why);
        return;
    }
    /* Both hold a primary: only a strictly newer paused one may resume
     * (the other yields to it); else an administrator chooses. */
    if (fsm->vmm == VMM_PRIMARY && fsm_peer_runs_primary(fsm) &&
        !(fsm->peer_paused && fsm->generation > fsm->peer_gen)) {
        split_brain(fsm, out);
        return;
    }
    /* An initial sync does not survive the pause: start it again. */
    if (back == CLUSTER_SECONDARY_STARTING || back == CLUSTER_SECONDARY_SYNCING) {
        fsm_vmm_act(fsm, out, ACT_STOP_VMM);
        fsm_enter(fsm, out, CLUSTER_IDLE, "quorum is back: the interrupted initial sync is dropped, standing by");
        return;
    }
    fsm_vmm_act(fsm, out, ACT_RESUME);
    if (back == CLUSTER_PROTECTING) {
        fsm_vmm_act(fsm, out, ACT_CANCEL_PROTECT);
    }
    if (back == CLUSTER_PROTECTING || back == CLUSTER_PROTECT_REQUESTED) {
        back = CLUSTER_PRIMARY_ALONE;
    }
    if (back == CLUSTER_FAILOVER_CLAIMED || back == CLUSTER_PAUSED || back == CLUSTER_WAIT_ADMIN) {
        back = fsm->vmm == VMM_PRIMARY ? CLUSTER_PRIMARY_ALONE : CLUSTER_SECONDARY_PROTECTED;
    }
    fsm_enter(fsm, out, back, "quorum is back and the peer did not go on without us (generation %" G_GUINT64_FORMAT
          "): VM resumed", fsm->peer_gen);
    /* What the peer said while we were paused counts now. */
    if (fsm->peer_known) {
        react_to_peer(fsm, out);
    }
}

static void quorum_lost(ClusterFsm *fsm, ClusterActions *out, bool peer_was_in)
{
    if (fsm->vmm == VMM_NONE) {
        if (fsm->state != CLUSTER_WAIT_QUORUM) {
            fsm_enter(fsm, out, CLUSTER_WAIT_QUORUM, "no quorum: nothing starts here until quorum");
        }
        return;
    }
    if (fsm->state == CLUSTER_PAUSED || fsm->state == CLUSTER_WAIT_ADMIN) {
        return; /* paused already, and waiting for an administrator stays */
    }
    if (fsm_in_relocation(fsm)) {
        fsm_relocate_quorum_lost(fsm, out, peer_was_in);
        return;
    }
    fsm->paused_from = fsm->state;
    fsm->peer_at_pause = peer_was_in;
    if (!fsm->paused) {
        fsm_vmm_act(fsm, out, ACT_PAUSE);
    }
    fsm_enter(fsm, out, CLUSTER_PAUSED,
          "quorum lost: VM paused so that it cannot serve while the other side may (it resumes when quorum is back)");
}

static void quorum_back(ClusterFsm *fsm, ClusterActions *out)
{
    if (fsm->state == CLUSTER_PAUSED) {
        if (fsm->peer_known) {
            resolve_pause(fsm, out);
        } else if (!fsm->peer_in_group) {
            if (fsm->peer_at_pause) {
                fsm_wait_admin(fsm, out, WAIT_PEER_MISSING,
                           "quorum is back but the peer, a member when quorum was lost, is not: it may have run "
                           "the VM meanwhile; VM stays paused: run 'coloctl failover' to resume it here");
            } else {
                fsm_vmm_act(fsm, out, ACT_RESUME);
                fsm_enter(fsm, out, fsm->paused_from, "quorum is back, no peer to have gone on: VM resumed");
            }
        }
        /* else: the peer is a member; its hello decides. */
        return;
    }
    if (fsm->state == CLUSTER_STARTING || fsm->state == CLUSTER_WAIT_QUORUM) {
        decide_start(fsm, out);
    }
}

void cluster_fsm_membership(ClusterFsm *fsm, const uint32_t *members, size_t n_members, bool quorate,
                            ClusterActions *out)
{
    bool was_in = fsm->peer_in_group, now_in = false, was_quorate = fsm->quorate;

    for (size_t i = 0; i < n_members; i++) {
        now_in |= members[i] == fsm->p.peer_id;
    }
    fsm->peer_in_group = now_in;
    fsm->quorate = quorate;
    if (was_in != now_in) {
        fsm->peer_known = false;
        fsm_say(fsm, out, LOG_INFO, "the peer's colod (node %u) %s the group%s", fsm->p.peer_id,
            now_in ? "joined" : "left", quorate ? "" : " (no quorum)");
    }
    if (now_in && !was_in) {
        fsm_disarm(fsm, TIMER_RESTART_GRACE);
        fsm->peer_restarting = false;
        fsm_send_hello(fsm, out); /* the newcomer learns us */
    }
    if (fsm->state == CLUSTER_STOPPED) {
        return;
    }
    if (!quorate) {
        quorum_lost(fsm, out, was_in);
        return;
    }
    if (!was_quorate || fsm->state == CLUSTER_STARTING || fsm->state == CLUSTER_PAUSED) {
        quorum_back(fsm, out);
    }
    if (was_in && !now_in && fsm->state != CLUSTER_PAUSED) {
        if (fsm->peer_restarting) {
            fsm_say(fsm, out, LOG_INFO, "the peer's colod restarts: waiting %u ms for it, its VM runs on",
                fsm->p.timeouts.restart_grace_ms);
            fsm_arm(fsm, out, TIMER_RESTART_GRACE, fsm->p.timeouts.restart_grace_ms);
        } else {
            peer_gone(fsm, out, "the peer's colod left the group");
        }
    }
}

/* ---- messages --------------------------------------------------------- */

static void on_protect_request(ClusterFsm *fsm, const CpgMsg *m, ClusterActions *out)
{
    CpgMsg *ack;

    if (fsm->state == CLUSTER_IDLE && fsm->quorate && fsm_peer_runs_primary(fsm) && m->generation > fsm->generation &&
        m->generation > fsm->peer_gen) {
        fsm->pending_gen = m->generation;
        fsm_persist(fsm, out, COLOD_ROLE_SYNCING, m->generation);
        fsm_start_vmm(fsm, out, VMM_SECONDARY);
        fsm_enter(fsm, out, CLUSTER_SECONDARY_STARTING,
              "the peer protects the VM (generation %" G_GUINT64_FORMAT "): starting the secondary", m->generation);
        return;
    }
    if ((fsm->state == CLUSTER_SECONDARY_STARTING || fsm->state == CLUSTER_SECONDARY_SYNCING) &&
        m->generation == fsm->pending_gen) {
        fsm_say(fsm, out, LOG_INFO, "repeated protect request ignored");
        return;
    }
    ack = fsm_send(fsm, out, CPG_MSG_PROTECT_ACK, m->sender);
    ack->generation = m->generation;
    ack->accepted = false;
    fsm_say(fsm, out, LOG_WARNING,
        "protect request (generation %" G_GUINT64_FORMAT ") refused in state %s (ours %" G_GUINT64_FORMAT "%s)",
        m->generation, cluster_state_name(fsm->state), fsm->generation,
        !fsm->quorate ? ", no quorum" : !fsm_peer_runs_primary(fsm) ? ", the peer is not known as primary" : "");
}

static void on_protect_ack(ClusterFsm *fsm, const CpgMsg *m, ClusterActions *out)
{
    if (fsm->state != CLUSTER_PROTECT_REQUESTED || m->generation != fsm->pending_gen) {
        fsm_say(fsm, out, LOG_INFO, "protect answer (generation %" G_GUINT64_FORMAT ") out of order in state %s: ignored",
            m->generation, cluster_state_name(fsm->state));
        return;
    }
    if (!m->accepted) {
        fsm_protect_later(fsm, out, "the peer refused to protect");
        return;
    }
    fsm_vmm_act(fsm, out, ACT_START_PROTECT);
    fsm_enter(fsm, out, CLUSTER_PROTECTING, "the peer's secondary is ready: initial sync");
}

static void on_claim(ClusterFsm *fsm, const CpgMsg *m, ClusterActions *out)
{
    CpgMsg *ack;

    if (m->sender == fsm->p.local_id) {
        if (fsm->state == CLUSTER_FAILOVER_CLAIMED && m->generation == fsm->pending_gen) {
            fsm->own_claim_seen = true;
        }
        return;
    }
    if (!fsm->quorate) {
        fsm_say(fsm, out, LOG_WARNING, "the peer's failover claim ignored: no quorum here");
        return;
    }
    if (fsm->state == CLUSTER_FAILOVER_CLAIMED && fsm->own_claim_seen) {
        fsm_say(fsm, out, LOG_INFO, "the peer's failover claim came after ours: ignored (it yields to ours)");
        return;
    }
    /* A claim is newer than every copy its sender knows of. One that is
     * not newer than the VM we run comes from a node that missed our
     * failover (frozen, then thawed): its copy is behind what clients got
     * from us. Refused; our hello (the VM, our generation) makes it yield. */
    if (fsm->vmm == VMM_PRIMARY && m->generation <= fsm->generation) {
        fsm_say(fsm, out, LOG_WARNING,
                "the peer's failover claim (generation %" G_GUINT64_FORMAT ") refused: this node runs the VM at "
                "generation %" G_GUINT64_FORMAT ", the peer's copy is older",
                m->generation, fsm->generation);
        fsm_send_hello(fsm, out);
        return;
    }
    /* Stop our side before answering: the peer serves only after the ack. */
    if (fsm->vmm != VMM_NONE) {
        fsm_vmm_act(fsm, out, ACT_STOP_VMM);
    }
    fsm->peer_gen = MAX(fsm->peer_gen, m->generation);
    ack = fsm_send(fsm, out, CPG_MSG_FAILOVER_ACK, m->sender);
    ack->generation = m->generation;
    fsm_enter(fsm, out, CLUSTER_IDLE, "the peer claimed the VM (generation %" G_GUINT64_FORMAT "%s%s): standing by",
          m->generation, m->by_admin ? ", by an administrator" : "", m->unprotect ? ", unprotected" : "");
}

static void on_claim_ack(ClusterFsm *fsm, const CpgMsg *m, ClusterActions *out)
{
    if (fsm->state != CLUSTER_FAILOVER_CLAIMED || m->generation != fsm->pending_gen) {
        fsm_say(fsm, out, LOG_INFO, "failover answer (generation %" G_GUINT64_FORMAT ") out of order in state %s: ignored",
            m->generation, cluster_state_name(fsm->state));
        return;
    }
    fsm_failover(fsm, out, fsm->pending_gen, "the peer stopped its side");
}

static void on_shutdown(ClusterFsm *fsm, const CpgMsg *m, ClusterActions *out)
{
    if (m->restart) {
        fsm->peer_restarting = true;
        fsm_say(fsm, out, LOG_INFO, "the peer's colod restarts; its VM runs on");
        return;
    }
    fsm->peer_vmm = VMM_NONE;
    fsm->peer_known = false;
    if (fsm->quorate && fsm->state != CLUSTER_PAUSED) {
        peer_gone(fsm, out, "the peer's colod shut down with its VM");
    }
}

void cluster_fsm_message(ClusterFsm *fsm, const CpgMsg *m, ClusterActions *out)
{
    if (fsm->state == CLUSTER_STOPPED) {
        return;
    }
    if (m->sender == fsm->p.local_id) {
        if (m->type == CPG_MSG_FAILOVER_CLAIM) {
            on_claim(fsm, m, out);
        }
        return;
    }
    if (m->sender != fsm->p.peer_id) {
        fsm_say(fsm, out, LOG_WARNING, "%s from node %u, not the configured peer (%u): ignored",
            cpg_msg_type_name(m->type), m->sender, fsm->p.peer_id);
        return;
    }
    if (m->target != 0 && m->target != fsm->p.local_id) {
        return;
    }
    if (!fsm->peer_in_group) {
        fsm_say(fsm, out, LOG_INFO, "%s from the peer before its join: ignored", cpg_msg_type_name(m->type));
        return;
    }
    switch (m->type) {
    case CPG_MSG_HELLO:
        fsm->peer_known = true;
        fsm->peer_gen = m->generation;
        fsm->peer_role = m->role;
        fsm->peer_state = m->state;
        fsm->peer_vmm = m->vmm;
        fsm->peer_paused = m->paused;
        react_to_peer(fsm, out);
        break;
    case CPG_MSG_PROTECT_REQUEST:
        on_protect_request(fsm, m, out);
        break;
    case CPG_MSG_PROTECT_ACK:
        on_protect_ack(fsm, m, out);
        break;
    case CPG_MSG_FAILOVER_CLAIM:
        on_claim(fsm, m, out);
        break;
    case CPG_MSG_FAILOVER_ACK:
        on_claim_ack(fsm, m, out);
        break;
    case CPG_MSG_SWITCHOVER:
        if (fsm->state == CLUSTER_SECONDARY_PROTECTED && fsm->quorate && !fsm->p.managed) {
            fsm_claim(fsm, out, true, false, "switchover requested by the primary");
        } else if (fsm->quorate && !fsm->p.managed &&
                   (fsm->state == CLUSTER_PRIMARY_ALONE || fsm->state == CLUSTER_PROTECT_REQUESTED ||
                    fsm->state == CLUSTER_PROTECTING)) {
            g_autoptr(GError) err = NULL;

            if (!fsm_relocate_admin(fsm, out, true, &err)) {
                fsm_say(fsm, out, LOG_WARNING, "the peer's switchover request refused: %s", err->message);
            }
        } else {
            fsm_say(fsm, out, LOG_WARNING, "switchover request ignored in state %s", cluster_state_name(fsm->state));
        }
        break;
    case CPG_MSG_SHUTDOWN:
        on_shutdown(fsm, m, out);
        break;
    case CPG_MSG_RELOCATE_REQUEST:
    case CPG_MSG_RELOCATE_ACK:
        fsm_relocate_message(fsm, m, out);
        break;
    default:
        g_assert_not_reached();
    }
}

/* Both run the VM as primary, but not as equals: a newer copy on the peer
 * (even paused) wins and ours stops; an older one on the peer stops on
 * our hello (this rule on its side), so ours runs on. Returns false for
 * the same generation (a split brain for an administrator). */
static bool peer_stale_primary(ClusterFsm *fsm, ClusterActions *out)
{
    if (!fsm_peer_runs_primary(fsm) || fsm->peer_gen == fsm->generation) {
        return false;
    }
    if (fsm->peer_gen > fsm->generation) {
        yield_to_peer(fsm, out, "the peer runs the VM at a newer generation");
    } else {
        fsm_say(fsm, out, LOG_WARNING,
                "the peer runs the VM from an older copy (generation %" G_GUINT64_FORMAT ", ours %" G_GUINT64_FORMAT
                "): it stands down, this node runs on", fsm->peer_gen, fsm->generation);
    }
    return true;
}

/* A hello told us the peer's state: what it means for ours. */
static void react_to_peer(ClusterFsm *fsm, ClusterActions *out)
{
    bool peer_primary = fsm_peer_runs_primary(fsm) && !fsm->peer_paused;

    if (!fsm->quorate) {
        return; /* remembered; quorum decides first */
    }
    switch (fsm->state) {
    case CLUSTER_WAIT_PEER:
    case CLUSTER_IDLE:
        decide_start(fsm, out);
        break;
    case CLUSTER_WAIT_ADMIN:
        if (fsm->vmm == VMM_NONE) {
            if ((fsm->wait != WAIT_VMM_EXITED && fsm->wait != WAIT_RELOCATION_LOST) || peer_primary) {
                decide_start(fsm, out);
            }
        } else if (fsm->wait == WAIT_PEER_MISSING) {
            resolve_pause(fsm, out); /* the missing peer is back: it tells */
        } else if (peer_primary && fsm->peer_gen > fsm->generation) {
            yield_to_peer(fsm, out, "the peer runs the VM at a newer generation");
        }
        break;
    case CLUSTER_PAUSED:
        resolve_pause(fsm, out);
        break;
    case CLUSTER_PRIMARY_STARTING:
    case CLUSTER_PRIMARY_ALONE:
        if (peer_stale_primary(fsm, out)) {
            break;
        } else if (peer_primary) {
            split_brain(fsm, out);
        } else {
            fsm_maybe_protect(fsm, out);
        }
        break;
    case CLUSTER_PROTECT_REQUESTED:
        if (peer_stale_primary(fsm, out)) {
            break;
        } else if (peer_primary) {
            split_brain(fsm, out);
        } else if (!peer_in(fsm, IN(CLUSTER_SECONDARY_STARTING) | IN(CLUSTER_SECONDARY_SYNCING))) {
            /* Its hello before our request was IDLE; any hello since
             * reflects the request, and IDLE again means it gave up. */
            fsm_protect_later(fsm, out, "the peer no longer stands by");
        }
        break;
    case CLUSTER_PROTECTING:
        if (!peer_in(fsm, IN(CLUSTER_SECONDARY_STARTING) | IN(CLUSTER_SECONDARY_SYNCING) |
                                IN(CLUSTER_SECONDARY_PROTECTED))) {
            fsm_vmm_act(fsm, out, ACT_CANCEL_PROTECT);
            fsm_protect_later(fsm, out, "the peer's secondary went away during the initial sync");
        }
        break;
    case CLUSTER_PRIMARY_PROTECTED:
    case CLUSTER_SECONDARY_PROTECTED:
    case CLUSTER_FAILOVER_CLAIMED:
        fsm_maybe_switch_when_protected(fsm, out);
        if (fsm->peer_vmm == VMM_NONE) {
            peer_vm_gone(fsm, out);
        } else if (fsm_peer_runs_primary(fsm) && fsm->peer_gen > fsm->generation) {
            /* Paused or not: its copy is newer than ours. */
            yield_to_peer(fsm, out, "the peer runs the VM alone at a newer generation");
        } else if (fsm->state == CLUSTER_SECONDARY_PROTECTED && peer_primary &&
                   peer_in(fsm, IN(CLUSTER_PRIMARY_ALONE) | IN(CLUSTER_PROTECT_REQUESTED))) {
            /* Its side of the initial sync failed after ours completed: it
             * runs on outside COLO and protects again only a peer that
             * stands by. */
            fsm_vmm_act(fsm, out, ACT_STOP_VMM);
            fsm_enter(fsm, out, CLUSTER_IDLE, "the primary runs alone (%s): this secondary is out of date, stopped",
                  cluster_state_name(fsm->peer_state));
        }
        break;
    case CLUSTER_SECONDARY_STARTING:
    case CLUSTER_SECONDARY_SYNCING:
        if (!peer_in(fsm, IN(CLUSTER_PROTECT_REQUESTED) | IN(CLUSTER_PROTECTING) | IN(CLUSTER_PRIMARY_PROTECTED))) {
            fsm_vmm_act(fsm, out, ACT_STOP_VMM);
            fsm_enter(fsm, out, CLUSTER_IDLE, "the peer abandoned the protection (%s): secondary stopped",
                  cluster_state_name(fsm->peer_state));
        }
        break;
    case CLUSTER_RELOCATE_REQUESTED:
    case CLUSTER_RELOCATING:
    case CLUSTER_RELOCATE_TARGET:
        fsm_relocate_react(fsm, out);
        break;
    case CLUSTER_STARTING:
    case CLUSTER_WAIT_QUORUM:
    case CLUSTER_STOPPED:
    case CLUSTER__MAX:
        break;
    }
}

/* ---- the local colo-vmm ------------------------------------------------ */

/* The initial sync ended without COLO: the primary runs on, or its colod
 * had left (sync_orphaned). */
static void sync_failed(ClusterFsm *fsm, ClusterActions *out, const char *why)
{
    if (fsm->sync_orphaned) {
        secondary_abandoned(fsm, out, why, " after the primary's colod left");
    } else {
        fsm_enter(fsm, out, CLUSTER_IDLE, "%s", why);
    }
}

static void vmm_exited(ClusterFsm *fsm, ClusterActions *out)
{
    ClusterState s = fsm->state;

    fsm->vmm = VMM_NONE;
    fsm->paused = false;
    switch (s) {
    case CLUSTER_PRIMARY_PROTECTED:
        fsm_enter(fsm, out, CLUSTER_IDLE, "colo-vmm exited: the secondary takes over");
        break;
    case CLUSTER_SECONDARY_SYNCING:
        sync_failed(fsm, out, "the secondary's colo-vmm exited: the primary runs on");
        break;
    case CLUSTER_SECONDARY_STARTING:
    case CLUSTER_SECONDARY_PROTECTED:
        fsm_enter(fsm, out, CLUSTER_IDLE, "the secondary's colo-vmm exited: the primary runs on");
        break;
    case CLUSTER_PAUSED:
        fsm_enter(fsm, out, CLUSTER_WAIT_QUORUM, "colo-vmm exited while paused without quorum");
        break;
    case CLUSTER_STOPPED:
        break;
    default:
        fsm_wait_admin(fsm, out, WAIT_VMM_EXITED,
                   "colo-vmm exited in state %s: the VM is down and is not restarted blindly; "
                   "run 'coloctl failover' to start it here", cluster_state_name(s));
        break;
    }
}

void cluster_fsm_vmm_event(ClusterFsm *fsm, VmmEvent ev, ClusterActions *out)
{
    ClusterState s = fsm->state;

    if (fsm_relocate_vmm_event(fsm, ev, out)) {
        return;
    }
    if (ev == VMM_EV_EXITED) {
        vmm_exited(fsm, out);
    } else if (ev == VMM_EV_READY && s == CLUSTER_PRIMARY_STARTING) {
        fsm_enter(fsm, out, CLUSTER_PRIMARY_ALONE, "colo-vmm runs the VM");
        fsm_maybe_protect(fsm, out);
    } else if (ev == VMM_EV_READY && s == CLUSTER_SECONDARY_STARTING) {
        CpgMsg *ack = fsm_send(fsm, out, CPG_MSG_PROTECT_ACK, fsm->p.peer_id);

        ack->generation = fsm->pending_gen;
        ack->accepted = true;
        fsm_enter(fsm, out, CLUSTER_SECONDARY_SYNCING, "the secondary's colo-vmm waits for the initial sync");
    } else if (ev == VMM_EV_PROTECT_DONE && s == CLUSTER_PROTECTING) {
        fsm_enter(fsm, out, CLUSTER_PRIMARY_PROTECTED, "COLO runs: the VM is protected");
        fsm_maybe_switch_when_protected(fsm, out);
    } else if (ev == VMM_EV_PROTECT_DONE && s == CLUSTER_SECONDARY_SYNCING) {
        bool orphaned = fsm->sync_orphaned;

        fsm_persist(fsm, out, COLOD_ROLE_SECONDARY, fsm->pending_gen);
        fsm_enter(fsm, out, CLUSTER_SECONDARY_PROTECTED, "COLO runs: this node holds a complete replica");
        if (orphaned && !fsm->peer_in_group && fsm->quorate) {
            fsm_failover(fsm, out, fsm_next_generation(fsm),
                         "the initial sync completed after the primary's colod left (its colo-vmm, having "
                         "committed, is stopped by its unit)");
        }
    } else if ((ev == VMM_EV_PROTECT_FAILED || ev == VMM_EV_PEER_LOST) && s == CLUSTER_PROTECTING) {
        fsm_vmm_act(fsm, out, ACT_CANCEL_PROTECT);
        fsm_protect_later(fsm, out, "the initial sync failed");
    } else if ((ev == VMM_EV_PROTECT_FAILED || ev == VMM_EV_PEER_LOST) && s == CLUSTER_SECONDARY_SYNCING) {
        fsm_vmm_act(fsm, out, ACT_STOP_VMM);
        sync_failed(fsm, out, "the initial sync failed: secondary stopped");
    } else if ((ev == VMM_EV_PROTECT_DONE || ev == VMM_EV_PEER_LOST) && fsm->vmm == VMM_PRIMARY &&
               (s == CLUSTER_PRIMARY_ALONE || s == CLUSTER_PROTECT_REQUESTED) && !fsm->colo_told_off) {
        /* A protect cancelled while colo-vmm entered COLO (the peer's colod
         * left in the sync's last moment: migrate_cancel came too late).
         * Its COLO runs, or broke and waits for x-colo-lost-heartbeat;
         * either way no protect can start until it ends. */
        fsm_say(fsm, out, LOG_NOTICE, "colo-vmm entered COLO after its protect was cancelled: told to leave it");
        fsm_vmm_act(fsm, out, ACT_FAILOVER);
    } else if (ev == VMM_EV_PEER_LOST && s == CLUSTER_PRIMARY_PROTECTED) {
        if (fsm->peer_in_group) {
            fsm_claim(fsm, out, false, false, "colo-vmm lost the secondary");
        } else if (fsm->quorate) {
            fsm_failover(fsm, out, fsm_next_generation(fsm), "colo-vmm lost the secondary, whose colod is gone");
        }
    } else if (ev == VMM_EV_PEER_LOST && s == CLUSTER_SECONDARY_PROTECTED) {
        if (fsm->p.managed) {
            fsm_say(fsm, out, LOG_WARNING, "colo-vmm lost the primary; managed: this node takes over only when "
                                           "pacemaker promotes it");
        } else if (fsm->peer_in_group) {
            fsm_say(fsm, out, LOG_WARNING, "colo-vmm lost the primary, whose colod is still a member: "
                                       "waiting for it to decide (or for it to leave)");
        } else if (fsm->quorate) {
            fsm_failover(fsm, out, fsm_next_generation(fsm), "colo-vmm lost the primary, whose colod is gone");
        }
    } else {
        fsm_say(fsm, out, LOG_INFO, "colo-vmm event %s in state %s: nothing to do", vmm_event_name(ev),
            cluster_state_name(s));
    }
}

/* ---- timers ----------------------------------------------------------- */

static void timer_fired(ClusterFsm *fsm, ClusterTimer t, ClusterActions *out)
{
    switch (t) {
    case TIMER_PEER_WAIT:
        if (fsm->state == CLUSTER_WAIT_PEER) {
            fsm_wait_admin(fsm, out, WAIT_UNKNOWN,
                       "no hello from the peer's colod in %u ms: its generation is unknown, so this node does not "
                       "start the VM on its own; it decides as soon as the peer appears, or run 'coloctl failover' "
                       "to start the VM here", fsm->p.timeouts.peer_wait_ms);
        }
        break;
    case TIMER_PROTECT_ACK:
        if (fsm->state == CLUSTER_PROTECT_REQUESTED) {
            fsm_protect_later(fsm, out, "no answer to the protect request");
        }
        break;
    case TIMER_PROTECT_RETRY:
        fsm_maybe_protect(fsm, out);
        break;
    case TIMER_CLAIM:
        if (fsm->state == CLUSTER_FAILOVER_CLAIMED && fsm->quorate && fsm_peer_runs_primary(fsm) &&
            fsm->peer_gen >= fsm->pending_gen) {
            /* Our claim was refused: the peer took over while we could
             * not hear it, and our copy is behind. */
            yield_to_peer(fsm, out, "the peer runs the VM at a generation as new as our claim's");
        } else if (fsm->state == CLUSTER_FAILOVER_CLAIMED && fsm->quorate) {
            fsm_failover(fsm, out, fsm->pending_gen,
                        "the peer, still a member, did not answer the claim in time: its colod drives nothing");
        }
        break;
    case TIMER_RESTART_GRACE:
        if (!fsm->peer_in_group && fsm->peer_restarting) {
            fsm->peer_restarting = false;
            if (fsm->quorate && fsm->state != CLUSTER_PAUSED) {
                peer_gone(fsm, out, "the peer's colod did not come back after its restart");
            }
        }
        break;
    case TIMER_RELOCATE_ACK:
        fsm_relocate_timeout(fsm, out);
        break;
    case TIMER_SYNC_OUTCOME:
        if (fsm->state == CLUSTER_SECONDARY_SYNCING && fsm->sync_orphaned) {
            fsm_vmm_act(fsm, out, ACT_STOP_VMM);
            secondary_abandoned(fsm, out, "the initial sync neither completed nor failed after the primary's colod left",
                                ": secondary stopped");
        }
        break;
    case TIMER__MAX:
        g_assert_not_reached();
    }
}

void cluster_fsm_tick(ClusterFsm *fsm, ClusterActions *out)
{
    int64_t now = fsm->clock.now_ms(fsm->clock.opaque);

    for (int t = 0; t < TIMER__MAX; t++) {
        if (fsm->deadline[t] >= 0 && fsm->deadline[t] <= now) {
            fsm->deadline[t] = -1;
            if (fsm->state != CLUSTER_STOPPED) {
                timer_fired(fsm, t, out);
            }
        }
    }
}

int64_t cluster_fsm_next_deadline(const ClusterFsm *fsm)
{
    int64_t next = -1;

    for (int t = 0; t < TIMER__MAX; t++) {
        if (fsm->deadline[t] >= 0 && (next < 0 || fsm->deadline[t] < next)) {
            next = fsm->deadline[t];
        }
    }
    return next;
}

void cluster_fsm_persist_failed(ClusterFsm *fsm, const ClusterAction *failed, const char *why,
                                ClusterActions *out)
{
    /* Back to what is true: the disk and colo-vmm as they were. */
    fsm->vmm = failed->before.vmm;
    fsm->paused = failed->before.paused;
    fsm->role = failed->before.role;
    fsm->generation = failed->before.generation;
    if (fsm->vmm != VMM_NONE && !fsm->paused) {
        fsm_vmm_act(fsm, out, ACT_PAUSE);
    }
    fsm_wait_admin(fsm, out, WAIT_PERSIST_FAILED,
               "the state file could not be written (%s): the generation is not durable, so the VM is %s; "
               "fix the state directory and run 'coloctl failover'", why,
               fsm->vmm != VMM_NONE ? "paused" : "not started");
}

