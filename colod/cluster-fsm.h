/* colod's decision state machine. Pure: it does no I/O and reads the time
 * only through a ClusterClock, so tests drive it with a virtual clock and a
 * fake membership. Each input (membership, a CPG message, an event of the
 * local colo-vmm, an expired timer, an administrator's command, shutdown)
 * appends the actions the daemon must carry out, in order, to a
 * ClusterActions list. docs/colod.md describes the states and decisions.
 *
 * The daemon's side of the contract:
 *  - Execute the actions in order. If a PERSIST fails, skip the rest of
 *    that list and call cluster_fsm_persist_failed() with it.
 *  - Feed membership only when both corosync's CPG member list and the
 *    quorum state for the same ring are known (a peer that left and the
 *    loss of quorum must arrive together, else a partitioned node could
 *    fail over in the gap).
 *  - Pass every delivered CPG message, also its own (the order of two
 *    failover claims decides which one wins).
 *  - Call cluster_fsm_tick() at cluster_fsm_next_deadline(). */
#ifndef COLOD_CLUSTER_FSM_H
#define COLOD_CLUSTER_FSM_H

#include "colod-config.h"
#include "colod-types.h"
#include "cpg-msg.h"
#include "state-file.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define CLUSTER_FSM_ERROR (cluster_fsm_error_quark())
GQuark cluster_fsm_error_quark(void);

typedef struct {
    int64_t (*now_ms)(void *opaque); /* monotonic milliseconds */
    void *opaque;
} ClusterClock;

typedef enum {
    TIMER_PEER_WAIT,     /* start-up: the peer's hello */
    TIMER_PROTECT_ACK,   /* the answer to our protect request */
    TIMER_PROTECT_RETRY, /* next protect attempt */
    TIMER_CLAIM,         /* the answer to our failover claim */
    TIMER_RESTART_GRACE, /* a peer colod that said it restarts */
    TIMER_RELOCATE_ACK,  /* the answer to our relocate request */
    TIMER_SYNC_OUTCOME,  /* a secondary whose primary's colod left mid-sync */
    TIMER__MAX
} ClusterTimer;

typedef enum {
    ACT_START_VMM,      /* .vmm: start colo-vmm (and colo-proxy) as primary or secondary (-incoming);
                         * .relocation: a secondary that receives a relocation (no colo-proxy) */
    ACT_STOP_VMM,       /* kill colo-vmm and colo-proxy (their rules go too) */
    ACT_START_PROTECT,  /* primary: migrate with x-colo to the peer */
    ACT_CANCEL_PROTECT, /* primary: migrate_cancel (of a protect or a relocation) */
    ACT_FAILOVER,       /* x-colo-lost-heartbeat: leave COLO, run on alone */
    ACT_PAUSE,          /* stop: the guest stands still */
    ACT_RESUME,         /* cont */
    ACT_SEND,           /* .msg to the CPG group */
    ACT_PERSIST,        /* .role, .generation to the state file, durably */
    ACT_ARM_TIMER,      /* .timer in .ms (also known to cluster_fsm_next_deadline) */
    ACT_LOG,            /* .text, at .level (LOG_INFO, LOG_WARNING, LOG_ERR) */
    ACT_RELOCATE,       /* primary: migrate to the peer by postcopy (no x-colo) */
} ClusterActionType;

typedef struct {
    ClusterActionType type;
    VmmKind vmm;
    bool relocation;
    CpgMsg msg;
    ColodRole role;
    uint64_t generation;
    ClusterTimer timer;
    uint32_t ms;
    int level;
    char *text;
    /* PERSIST: what was true when it was decided, for
     * cluster_fsm_persist_failed() (the actions after it never ran). */
    struct {
        VmmKind vmm;
        bool paused;
        ColodRole role;
        uint64_t generation;
    } before;
} ClusterAction;

/* A list of ClusterAction: a GArray that frees the texts itself, so
 * g_autoptr(GArray) and g_array_unref() work too. */
typedef GArray ClusterActions;
ClusterActions *cluster_actions_new(void);
void cluster_actions_clear(ClusterActions *acts);
void cluster_actions_free(ClusterActions *acts);
#define cluster_action_at(acts, i) (&g_array_index((acts), ClusterAction, (i)))

typedef enum {
    VMM_EV_READY,          /* the started colo-vmm answers QMP */
    VMM_EV_EXITED,         /* colo-vmm exited (or was killed after a QMP timeout) */
    VMM_EV_PEER_LOST,      /* COLO broke (query-colo-status x-broken, COLO_EXIT error) */
    VMM_EV_PROTECT_DONE,   /* COLO entered (both sides) */
    VMM_EV_PROTECT_FAILED, /* the initial sync (or a relocation) failed; in a relocation's
                            * postcopy phase also postcopy-paused */
    VMM_EV_POSTCOPY,       /* a relocation's postcopy phase began (MIGRATION postcopy-active) */
    VMM_EV_MIGRATED,       /* a relocation completed (MIGRATION completed), on either side */
    VMM_EV__MAX
} VmmEvent;

typedef enum {
    ADMIN_FAILOVER,   /* make this node the primary */
    ADMIN_SWITCHOVER, /* hand the primary role to the healthy secondary, or move the VM
                       * to a peer that stands by (relocation by postcopy) */
    ADMIN_PROTECT,    /* allow (and start) protection */
    ADMIN_UNPROTECT,  /* drop the secondary, run alone, do not re-protect */
    ADMIN_PROMOTE,    /* managed mode: become the primary (start the VM or take over) */
    ADMIN_DEMOTE,     /* managed mode: give the primary role up (the VM stops here) */
    ADMIN__MAX
} AdminCommand;

/* Why a node waits for an administrator. */
typedef enum {
    WAIT_NONE = 0,
    WAIT_UNKNOWN,        /* the peer's generation is not known */
    WAIT_TIE,            /* both nodes hold the same generation */
    WAIT_STALE_PEER,     /* the peer runs the VM from an older generation than ours */
    WAIT_SPLIT_BRAIN,    /* both nodes ran the VM as primary */
    WAIT_PEER_MISSING,   /* quorum back, but the peer that was there is not */
    WAIT_VMM_EXITED,     /* the VM's colo-vmm exited: not restarted blindly */
    WAIT_PERSIST_FAILED, /* the state file could not be written */
    WAIT_RELOCATION_LOST, /* a relocation broke in postcopy: the VM is down */
} WaitReason;

typedef struct {
    uint32_t local_id; /* corosync node id of this node */
    uint32_t peer_id;
    ColodTimeouts timeouts;
    /* Managed mode (pacemaker, ha/colo): who is primary is decided outside,
     * through ADMIN_PROMOTE and ADMIN_DEMOTE only; a lost peer is reported,
     * never failed over to on its own. Protection stays colod's. */
    bool managed;
    /* The VM has disks ([vm] vmm-args with -drive): colo-vmm carries disks
     * only with x-colo, so it is never relocated by postcopy. */
    bool has_disks;
} ClusterFsmParams;

typedef struct ClusterFsm ClusterFsm;

/* @persisted: the state file's content. @clock is copied. */
ClusterFsm *cluster_fsm_new(const ClusterFsmParams *params, const ColodStateRecord *persisted,
                            const ClusterClock *clock);
void cluster_fsm_free(ClusterFsm *fsm);

/* Membership: @members the node ids with a colod in the CPG group,
 * @quorate votequorum's verdict for the same ring. */
void cluster_fsm_membership(ClusterFsm *fsm, const uint32_t *members, size_t n_members, bool quorate,
                            ClusterActions *out);
/* A decoded message delivered by CPG (also our own). */
void cluster_fsm_message(ClusterFsm *fsm, const CpgMsg *msg, ClusterActions *out);
void cluster_fsm_vmm_event(ClusterFsm *fsm, VmmEvent ev, ClusterActions *out);
/* Fires the timers whose deadline passed. */
void cluster_fsm_tick(ClusterFsm *fsm, ClusterActions *out);
/* The PERSIST action @failed failed; the rest of its list was not carried
 * out. */
void cluster_fsm_persist_failed(ClusterFsm *fsm, const ClusterAction *failed, const char *why,
                                ClusterActions *out);
/* Returns false and sets @error (nothing appended) if the command does not
 * apply in this state. */
bool cluster_fsm_admin(ClusterFsm *fsm, AdminCommand cmd, ClusterActions *out, GError **error);
/* colod stops: @restart keeps the VM running (colod restarts and picks it
 * up), else colo-vmm is stopped first. */
void cluster_fsm_shutdown(ClusterFsm *fsm, bool restart, ClusterActions *out);

/* colod found its VM's colo-vmm running, left by an earlier colod that was
 * killed or restarted, and took it over untouched: @vmm what it runs,
 * @in_colo whether COLO runs, @paused whether its guest stands still. Only
 * before the first membership; the state follows from what runs (a paused
 * one waits for quorum and the peer as after a loss of quorum). */
void cluster_fsm_adopt(ClusterFsm *fsm, VmmKind vmm, bool in_colo, bool paused, ClusterActions *out);

/* Before the first membership: an administrator's `coloctl unprotect`
 * outlives the colod that took it (colod keeps a run-dir marker while
 * protection is off): this colod does not protect either, until
 * `coloctl protect`. */
void cluster_fsm_keep_unprotected(ClusterFsm *fsm);

/* Earliest armed timer, or -1. */
int64_t cluster_fsm_next_deadline(const ClusterFsm *fsm);

ClusterState cluster_fsm_state(const ClusterFsm *fsm);
ColodRole cluster_fsm_role(const ClusterFsm *fsm);
uint64_t cluster_fsm_generation(const ClusterFsm *fsm);
VmmKind cluster_fsm_vmm(const ClusterFsm *fsm);
bool cluster_fsm_paused(const ClusterFsm *fsm);
bool cluster_fsm_quorate(const ClusterFsm *fsm);
bool cluster_fsm_protect_enabled(const ClusterFsm *fsm);
bool cluster_fsm_managed(const ClusterFsm *fsm);
WaitReason cluster_fsm_wait_reason(const ClusterFsm *fsm);
/* The last decision's reason, for status and logs. */
const char *cluster_fsm_reason(const ClusterFsm *fsm);
/* Is this node's VM the only copy there is? YES: it runs (or starts) here
 * as a primary and no secondary can have a complete replica, so a peer
 * that loses this colod cannot take over (standalone mode only: under
 * pacemaker, pacemaker decides). Then an unclean end of colod must leave
 * the VM running for the next colod to pick up (colod@.service's
 * ExecStopPost reads colod's marker of it), not kill the last copy.
 * UNTIL_COMMIT (protecting): so it is until colo-vmm commits the initial
 * sync, the instant the secondary may hold a whole copy; colo-vmm removes
 * the marker then, and cancels the sync instead if colod is gone
 * (migrate's x-sole-copy-file). */
typedef enum {
    CLUSTER_SOLE_COPY_NO,
    CLUSTER_SOLE_COPY_YES,
    CLUSTER_SOLE_COPY_UNTIL_COMMIT,
} ClusterSoleCopy;
ClusterSoleCopy cluster_fsm_sole_copy(const ClusterFsm *fsm);

const char *cluster_timer_name(ClusterTimer timer);
const char *vmm_event_name(VmmEvent ev);
const char *admin_command_name(AdminCommand cmd);
const char *wait_reason_name(WaitReason why);

/* The start-up rule against split brain: a two-node cluster whose nodes
 * each have quorum alone (votequorum two_node) needs a quorum device;
 * without one colod refuses to start unless @managed (pacemaker's fencing
 * breaks the tie) or @allow_split_brain. */
bool cluster_quorum_policy_check(bool two_node, bool qdevice, bool allow_split_brain, bool managed,
                                 GError **error);

#endif
