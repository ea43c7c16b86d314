/* A two-node cluster of colod state machines for the tests: a virtual
 * clock, a fake membership (with partitions and per-side quorum), CPG's
 * total-order delivery (every message encoded and decoded on the way), and
 * a fake colo-vmm per node that carries out the actions. After every action
 * it checks the promise colod exists for: never do both nodes serve. */
#ifndef TESTS_COLOD_CLUSTER_SIM_H
#define TESTS_COLOD_CLUSTER_SIM_H

#include "cluster-fsm.h"

#include <glib.h>
#include <stdbool.h>

#define SIM_VM "web1"

typedef struct {
    uint32_t id;
    ClusterFsm *fsm;        /* NULL while its colod is not running */
    ColodStateRecord disk;  /* the state file */
    int side;               /* partition side (0 or 1) */
    bool fail_persist;      /* the next PERSIST fails */
    GString *trace;         /* actions since the last sim_take, less hellos and logs */
    /* the fake colo-vmm */
    VmmKind vmm;
    bool paused;
    bool in_colo;           /* primary or secondary in COLO (after protect, until failover) */
    bool broken;            /* its COLO broke (x-broken): holds output until failover */
    unsigned starts;        /* START_VMM count */
    bool deaf;              /* its colod receives nothing (hung) */
    bool unprotected;       /* colod's run-dir marker of `coloctl unprotect` */
} SimNode;

typedef struct {
    int64_t now;
    SimNode node[2];
    GQueue queue;           /* messages not yet delivered */
    bool partitioned;
    bool quorate[2];        /* per side */
    ColodTimeouts timeouts;
    unsigned delivered;
    bool hold;              /* sim_run delivers nothing (to interleave inputs) */
    bool allow_both;        /* do not check the promise (allow-split-brain tests) */
    bool managed;           /* colods created from now on run in managed mode */
    bool has_disks;         /* ... with a VM that has disks (no relocation by postcopy) */
} Sim;

/* Two nodes (ids 1 and 2) with these state files; colods not running. */
Sim *sim_new(ColodRole r0, uint64_t g0, ColodRole r1, uint64_t g1);
void sim_free(Sim *s);

/* Starts node @i's colod (from its state file) and feeds the membership. */
void sim_start(Sim *s, int i);
/* Only creates node @i's state machine: no membership yet. */
void sim_create(Sim *s, int i);
/* Node @i's colod dies; with @vmm_too its colo-vmm with it (the node). */
void sim_kill(Sim *s, int i, bool vmm_too);
/* Starts node @i's colod over the colo-vmm its killed predecessor left
 * (sim_kill without @vmm_too): it picks it up (cluster_fsm_adopt). */
void sim_start_adopt(Sim *s, int i);
/* Splits the nodes (each alone) or joins them; @q0/@q1 each side's
 * quorum verdict. Feeds membership to both. */
void sim_partition(Sim *s, bool partitioned, bool q0, bool q1);
/* Feeds the current membership to every running colod. */
void sim_membership(Sim *s);
/* Delivers every queued message (and what they cause). */
void sim_run(Sim *s);
/* Moves the virtual clock on by @ms, firing timers on the way. */
void sim_advance(Sim *s, int64_t ms);
void sim_vmm(Sim *s, int i, VmmEvent ev);
bool sim_admin(Sim *s, int i, AdminCommand cmd, GError **error);
/* Queues @m as sent by node @i's colod (its sender set to @i's id), to
 * test messages it would not send, then delivers. */
void sim_inject(Sim *s, int i, const CpgMsg *m);
/* Hands @m straight to node @to's colod, as if CPG delivered it (across
 * a partition too), and carries out what it causes. */
void sim_deliver_to(Sim *s, int to, const CpgMsg *m);
/* Node @i's trace since the last call (free with g_free). */
char *sim_take(Sim *s, int i);
/* Asserts node @i's trace equals @want, then clears it. */
#define sim_expect(s, i, want)                                                                               \
    do {                                                                                                     \
        g_autofree char *got_ = sim_take((s), (i));                                                          \
        g_assert_cmpstr(got_, ==, (want));                                                                   \
    } while (0)
/* Both nodes protected from a fresh pair: node @primary started by an
 * administrator after the tie. Clears the traces. */
void sim_protect_pair(Sim *s, int primary);
/* For a sim whose node 0 holds the newer copy: both started and ready,
 * node 0 protecting, node 1 syncing (the initial sync under way); the
 * actions so far taken. */
void sim_start_protecting(Sim *s);

ClusterState sim_state(Sim *s, int i);
/* Node @i's state file holds @role and @gen. */
void sim_assert_disk(Sim *s, int i, ColodRole role, uint64_t gen);
/* Node @i's last reason contains @piece. */
void sim_assert_reason(Sim *s, int i, const char *piece);
/* Whether node @i's VM serves clients now. */
bool sim_serves(Sim *s, int i);

#endif
