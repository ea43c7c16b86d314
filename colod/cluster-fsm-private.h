/* Inside colod's decision state machine: the state shared by its three
 * files (cluster-fsm-actions.c: the action list and state changes;
 * cluster-fsm.c: the decisions; cluster-fsm-admin.c: commands and
 * shutdown). Not for other modules. */
#ifndef COLOD_CLUSTER_FSM_PRIVATE_H
#define COLOD_CLUSTER_FSM_PRIVATE_H

#include "cluster-fsm.h"

struct ClusterFsm {
    ClusterFsmParams p;
    ClusterClock clock;
    ClusterState state;
    WaitReason wait;
    char reason[256];

    ColodRole role;      /* as last persisted */
    uint64_t generation; /* as last persisted */
    VmmKind vmm;
    bool paused;
    bool quorate;
    bool protect_enabled;

    bool peer_in_group;  /* the peer's colod is a CPG member */
    bool peer_known;     /* a hello since it joined */
    uint64_t peer_gen;
    ColodRole peer_role;
    ClusterState peer_state;
    VmmKind peer_vmm;
    bool peer_paused;
    bool peer_restarting; /* it said SHUTDOWN restart */

    uint64_t pending_gen;   /* of our protect request / claim, or the one accepted */
    bool own_claim_seen;    /* our claim came back from CPG */
    bool claim_unprotect;
    ClusterState paused_from;
    bool peer_at_pause;     /* the peer was a member when quorum went */
    bool relocate_wanted;   /* switchover: relocate once the peer stands by */
    bool reloc_postcopy;    /* the relocation under way reached postcopy */
    bool reloc_ready;       /* the relocation target's colo-vmm answered */
    bool switch_when_protected; /* switchover of a VM with disks: protect, then hand over */
    bool sync_orphaned;     /* secondary-syncing, the primary's colod gone (TIMER_SYNC_OUTCOME) */
    bool colo_told_off;     /* x-colo-lost-heartbeat sent since the last protect began */

    int64_t deadline[TIMER__MAX]; /* -1: not armed */
};

/* Sets @error to the command's refusal; returns false. */
bool fsm_refuse(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Appends a log action (the text also becomes the current reason). */
void fsm_say(ClusterFsm *fsm, ClusterActions *out, int level, const char *fmt, ...) G_GNUC_PRINTF(4, 5);
void fsm_arm(ClusterFsm *fsm, ClusterActions *out, ClusterTimer t, uint32_t ms);
void fsm_disarm(ClusterFsm *fsm, ClusterTimer t);
/* Appends a PERSIST and takes its values as this node's. */
void fsm_persist(ClusterFsm *fsm, ClusterActions *out, ColodRole role, uint64_t gen);
/* Appends a colo-vmm action and what it does to our view of colo-vmm. */
void fsm_vmm_act(ClusterFsm *fsm, ClusterActions *out, ClusterActionType type);
void fsm_start_vmm(ClusterFsm *fsm, ClusterActions *out, VmmKind kind);
/* colo-vmm -incoming for a relocation (a secondary without colo-proxy). */
void fsm_start_relocation_target(ClusterFsm *fsm, ClusterActions *out);
CpgMsg *fsm_send(ClusterFsm *fsm, ClusterActions *out, CpgMsgType type, uint32_t target);
void fsm_send_hello(ClusterFsm *fsm, ClusterActions *out);
/* Moves to @state, logs why, cancels the old state's timers, announces. */
void fsm_enter(ClusterFsm *fsm, ClusterActions *out, ClusterState state, const char *fmt, ...) G_GNUC_PRINTF(4, 5);
void fsm_wait_admin(ClusterFsm *fsm, ClusterActions *out, WaitReason why, const char *fmt, ...) G_GNUC_PRINTF(4, 5);

/* Decisions (cluster-fsm.c) that commands take too. */
uint64_t fsm_next_generation(const ClusterFsm *fsm);
bool fsm_peer_runs_primary(const ClusterFsm *fsm);
void fsm_start_as_primary(ClusterFsm *fsm, ClusterActions *out, uint64_t gen, const char *why);
void fsm_maybe_protect(ClusterFsm *fsm, ClusterActions *out);
void fsm_claim(ClusterFsm *fsm, ClusterActions *out, bool by_admin, bool unprotect, const char *why);
void fsm_failover(ClusterFsm *fsm, ClusterActions *out, uint64_t gen, const char *why);
/* >0: our copy is newer, <0: the peer's, 0: no way to tell. */
int fsm_compare_copies(const ClusterFsm *fsm);
void fsm_protect_later(ClusterFsm *fsm, ClusterActions *out, const char *why);

/* Relocation by postcopy (cluster-fsm-relocate.c). */
bool fsm_in_relocation(const ClusterFsm *fsm);
/* switchover without a protected pair; @from_peer: the peer asked. */
bool fsm_relocate_admin(ClusterFsm *fsm, ClusterActions *out, bool from_peer, GError **error);
/* Requests the relocation if one is wanted and the peer stands by;
 * returns whether it did (or must wait for it). */
bool fsm_maybe_relocate(ClusterFsm *fsm, ClusterActions *out);
void fsm_relocate_message(ClusterFsm *fsm, const CpgMsg *m, ClusterActions *out);
/* Returns false if @ev is not the relocation's (the state is not one of
 * it). */
bool fsm_relocate_vmm_event(ClusterFsm *fsm, VmmEvent ev, ClusterActions *out);
void fsm_relocate_peer_gone(ClusterFsm *fsm, ClusterActions *out, const char *why);
void fsm_relocate_react(ClusterFsm *fsm, ClusterActions *out);
void fsm_relocate_quorum_lost(ClusterFsm *fsm, ClusterActions *out, bool peer_was_in);
void fsm_relocate_timeout(ClusterFsm *fsm, ClusterActions *out);
/* A switchover waiting for protection: the secondary takes over now if
 * the pair is protected. */
void fsm_maybe_switch_when_protected(ClusterFsm *fsm, ClusterActions *out);

#endif
