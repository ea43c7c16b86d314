/* colod's state machine against everything at once: every message the
 * peer could send (every type, generation, flag, and every state, role and
 * colo-vmm a hello could claim), delivered in every state, in or out of
 * order; then random histories of failures, partitions, restarts and
 * commands. The simulated cluster (cluster-sim.c) fails the test as soon as
 * both nodes serve, or a state machine's belief about its colo-vmm differs
 * from what it made happen. */
#include "config.h"

#include "cluster-sim.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

#define P COLOD_ROLE_PRIMARY
#define N COLOD_ROLE_NONE

/* A cluster in which node *@who is in @target (every state reachable). */
static Sim *reach(ClusterState target, int *who)
{
    Sim *s;

    *who = 0;
    switch (target) {
    case CLUSTER_STARTING:
        s = sim_new(P, 1, N, 0);
        sim_create(s, 0);
        return s;
    case CLUSTER_WAIT_QUORUM:
        s = sim_new(P, 1, N, 0);
        s->quorate[0] = false;
        sim_start(s, 1);
        sim_start(s, 0);
        return s;
    case CLUSTER_WAIT_PEER:
        s = sim_new(P, 1, N, 0);
        sim_start(s, 0);
        return s;
    case CLUSTER_WAIT_ADMIN:
        s = sim_new(P, 1, N, 0);
        sim_start(s, 0);
        sim_advance(s, 30000);
        return s;
    case CLUSTER_IDLE:
    case CLUSTER_PRIMARY_STARTING:
        s = sim_new(P, 1, N, 0);
        sim_start(s, 0);
        sim_start(s, 1);
        *who = target == CLUSTER_IDLE;
        return s;
    case CLUSTER_PROTECT_REQUESTED:
    case CLUSTER_SECONDARY_STARTING:
    case CLUSTER_PROTECTING:
    case CLUSTER_SECONDARY_SYNCING:
        s = sim_new(P, 1, N, 0);
        sim_start(s, 0);
        sim_start(s, 1);
        sim_vmm(s, 0, VMM_EV_READY);
        if (target == CLUSTER_PROTECTING || target == CLUSTER_SECONDARY_SYNCING) {
            sim_vmm(s, 1, VMM_EV_READY);
        }
        *who = target == CLUSTER_SECONDARY_STARTING || target == CLUSTER_SECONDARY_SYNCING;
        return s;
    case CLUSTER_PRIMARY_ALONE:
        s = sim_new(N, 0, N, 0);
        sim_protect_pair(s, 0);
        g_assert_true(sim_admin(s, 0, ADMIN_UNPROTECT, NULL));
        return s;
    case CLUSTER_PRIMARY_PROTECTED:
    case CLUSTER_SECONDARY_PROTECTED:
        s = sim_new(N, 0, N, 0);
        sim_protect_pair(s, 0);
        *who = target == CLUSTER_SECONDARY_PROTECTED;
        return s;
    case CLUSTER_FAILOVER_CLAIMED:
        s = sim_new(N, 0, N, 0);
        sim_protect_pair(s, 0);
        s->node[1].deaf = true;
        sim_vmm(s, 0, VMM_EV_PEER_LOST);
        s->node[1].deaf = false;
        return s;
    case CLUSTER_PAUSED:
        s = sim_new(N, 0, N, 0);
        sim_protect_pair(s, 0);
        sim_partition(s, true, false, false);
        return s;
    case CLUSTER_STOPPED: {
        g_autoptr(GArray) acts = cluster_actions_new();

        s = sim_new(P, 1, N, 0);
        sim_start(s, 0);
        cluster_fsm_shutdown(s->node[0].fsm, true, acts);
        return s;
    }
    case CLUSTER_RELOCATE_REQUESTED:
    case CLUSTER_RELOCATING:
    case CLUSTER_RELOCATE_TARGET:
        /* Unprotected, then moved to the peer that stands by. */
        s = sim_new(N, 0, N, 0);
        sim_protect_pair(s, 0);
        g_assert_true(sim_admin(s, 0, ADMIN_UNPROTECT, NULL));
        g_assert_true(sim_admin(s, 0, ADMIN_SWITCHOVER, NULL));
        if (target == CLUSTER_RELOCATING) {
            sim_vmm(s, 1, VMM_EV_READY);
        }
        *who = target == CLUSTER_RELOCATE_TARGET;
        return s;
    case CLUSTER__MAX:
        break;
    }
    g_assert_not_reached();
}

static void test_reach_every_state(void)
{
    for (int st = 0; st < CLUSTER__MAX; st++) {
        int who;
        Sim *s = reach(st, &who);

        g_assert_cmpstr(cluster_state_name(sim_state(s, who)), ==, cluster_state_name(st));
        sim_free(s);
    }
}

/* The messages a peer could send, as variations of each field. */
static GArray *peer_messages(void)
{
    static const uint64_t gens[] = { 0, 1, 2, 3, 4, G_MAXINT64 };
    GArray *msgs = g_array_new(FALSE, TRUE, sizeof(CpgMsg));

    for (size_t g = 0; g < G_N_ELEMENTS(gens); g++) {
        for (int t = 1; t < CPG_MSG__MAX; t++) {
            for (int flags = 0; flags < 4; flags++) {
                CpgMsg m = { .type = t, .sender = 0, .target = flags & 2 ? 1 : 0, .generation = gens[g] };

                m.accepted = m.restart = m.by_admin = flags & 1;
                m.unprotect = flags == 3;
                if (t == CPG_MSG_HELLO) {
                    continue;
                }
                g_array_append_val(msgs, m);
            }
        }
        for (int role = 0; role < COLOD_ROLE__MAX; role++) {
            for (int st = 0; st < CLUSTER__MAX; st++) {
                for (int vmm = 0; vmm < VMM__MAX; vmm++) {
                    CpgMsg m = { .type = CPG_MSG_HELLO, .generation = gens[g], .role = role, .state = st,
                                 .vmm = vmm, .paused = (st + vmm) % 2, .protect_enabled = true };

                    g_array_append_val(msgs, m);
                }
            }
        }
    }
    return msgs;
}

/* Every message in every state: delivered to the node in that state as
 * if the peer sent it (also where the peer could not have, across a
 * partition or after our own claim); then an hour passes. The simulation's
 * checks are the assertions; the count shows the matrix ran. */
static void test_every_message_in_every_state(void)
{
    g_autoptr(GArray) msgs = peer_messages();
    unsigned runs = 0;

    for (int st = 0; st < CLUSTER__MAX; st++) {
        for (guint k = 0; k < msgs->len; k++) {
            int who;
            Sim *s = reach(st, &who);
            CpgMsg m = g_array_index(msgs, CpgMsg, k);

            m.sender = s->node[!who].id;
            if (m.target) {
                m.target = s->node[who].id;
            }
            if (st == CLUSTER_STARTING) {
                /* No membership yet: it ignores everything. */
                g_autoptr(GArray) acts = cluster_actions_new();

                cluster_fsm_message(s->node[who].fsm, &m, acts);
                g_assert_cmpuint(acts->len, ==, 0 + (acts->len && cluster_action_at(acts, 0)->type == ACT_LOG));
            } else if (s->node[!who].fsm || st == CLUSTER_PAUSED) {
                sim_deliver_to(s, who, &m);
            } else {
                sim_deliver_to(s, who, &m);
                g_assert_cmpstr(cluster_state_name(sim_state(s, who)), ==, cluster_state_name(st));
            }
            sim_advance(s, 3600 * 1000);
            runs++;
            sim_free(s);
        }
    }
    g_test_message("%u deliveries", runs);
    g_assert_cmpuint(runs, ==, CLUSTER__MAX * msgs->len);
}

/* Every colo-vmm event and administrator command in every state. */
static void test_every_local_event_in_every_state(void)
{
    for (int st = 0; st < CLUSTER__MAX; st++) {
        for (int ev = 0; ev < VMM_EV__MAX + ADMIN__MAX; ev++) {
            int who;
            Sim *s = reach(st, &who);

            if (st == CLUSTER_STARTING) {
                sim_free(s);
                continue;
            }
            if (ev < VMM_EV__MAX) {
                /* An exit only of a colo-vmm that runs. */
                if (ev != VMM_EV_EXITED || s->node[who].vmm != VMM_NONE) {
                    sim_vmm(s, who, ev);
                }
            } else {
                g_autoptr(GError) err = NULL;

                if (!sim_admin(s, who, ev - VMM_EV__MAX, &err)) {
                    g_assert_nonnull(err);
                    g_assert_cmpuint(strlen(err->message), >, 10);
                }
            }
            sim_advance(s, 3600 * 1000);
            sim_free(s);
        }
    }
}

/* Random histories. Each step is one of: a node (colod and colo-vmm)
 * dies or comes back, a partition with quorum on at most one side, a heal,
 * a colo-vmm event fitting the node's state, a command, a state file that
 * fails, time passing. */
static void random_step(Sim *s, GRand *r)
{
    int i = g_rand_int_range(r, 0, 2);
    SimNode *n = &s->node[i];
    ClusterState st = sim_state(s, i);

    switch (g_rand_int_range(r, 0, 10)) {
    case 0: {
        ClusterSoleCopy sole = n->fsm ? cluster_fsm_sole_copy(n->fsm) : CLUSTER_SOLE_COPY_NO;

        bool peer_syncing = s->node[!i].fsm && sim_state(s, !i) == CLUSTER_SECONDARY_SYNCING &&
                            s->node[!i].vmm != VMM_NONE;

        if (sole == CLUSTER_SOLE_COPY_UNTIL_COMMIT && g_rand_boolean(r)) {
            /* After colo-vmm's commit: the marker is gone, the unit kills
             * the VM, and the secondary's copy is whole: COLO begins there. */
            sim_kill(s, i, true);
            if (peer_syncing) {
                sim_vmm(s, !i, VMM_EV_PROTECT_DONE);
            }
        } else if (sole != CLUSTER_SOLE_COPY_NO && g_rand_boolean(r)) {
            /* An unclean end under colod@.service: the sole copy runs on
             * (its marker), colod is back RestartSec later and picks it up.
             * While protecting, colo-vmm had not committed (else it would
             * have removed the marker and been killed): it cancels the
             * sync, and the secondary's incoming colo-vmm ends. */
            sim_kill(s, i, false);
            if (sole == CLUSTER_SOLE_COPY_UNTIL_COMMIT && peer_syncing) {
                sim_vmm(s, !i, VMM_EV_EXITED);
            }
            sim_advance(s, 5000);
            sim_start_adopt(s, i);
        } else if (n->fsm) {
            sim_kill(s, i, true);
        }
        break;
    }
    case 1:
        if (!n->fsm) {
            sim_start(s, i);
        }
        break;
    case 2: {
        int q = g_rand_int_range(r, 0, 3); /* side 0, side 1, neither */

        sim_partition(s, true, q == 0, q == 1);
        break;
    }
    case 3:
        sim_partition(s, false, true, g_rand_boolean(r));
        break;
    case 4:
        if (!n->fsm) {
            break;
        }
        if (st == CLUSTER_PRIMARY_STARTING || st == CLUSTER_SECONDARY_STARTING) {
            sim_vmm(s, i, VMM_EV_READY);
        } else if (st == CLUSTER_PROTECTING && sim_state(s, !i) == CLUSTER_SECONDARY_SYNCING &&
                   g_rand_boolean(r)) {
            /* COLO begins on both sides. */
            sim_vmm(s, !i, VMM_EV_PROTECT_DONE);
            if (sim_state(s, i) == CLUSTER_PROTECTING) {
                sim_vmm(s, i, VMM_EV_PROTECT_DONE);
            }
        } else if (st == CLUSTER_PROTECTING || st == CLUSTER_SECONDARY_SYNCING) {
            sim_vmm(s, i, VMM_EV_PROTECT_FAILED);
        } else if (st == CLUSTER_RELOCATE_TARGET && n->vmm == VMM_SECONDARY &&
                   sim_state(s, !i) == CLUSTER_RELOCATE_REQUESTED) {
            sim_vmm(s, i, VMM_EV_READY);
        } else if (st == CLUSTER_RELOCATING || st == CLUSTER_RELOCATE_TARGET) {
            /* The move's steps on this side, in any order with the other's. */
            static const VmmEvent evs[] = { VMM_EV_POSTCOPY, VMM_EV_MIGRATED, VMM_EV_PROTECT_FAILED };

            sim_vmm(s, i, evs[g_rand_int_range(r, 0, G_N_ELEMENTS(evs))]);
        } else if (n->in_colo) {
            sim_vmm(s, i, VMM_EV_PEER_LOST);
        }
        break;
    case 5:
        if (n->fsm && n->vmm != VMM_NONE && g_rand_int_range(r, 0, 4) == 0) {
            sim_vmm(s, i, VMM_EV_EXITED);
        }
        break;
    case 6:
        if (n->fsm) {
            /* The commands of colod on its own (promote and demote are
             * managed mode's: test-cluster-managed.c). */
            sim_admin(s, i, g_rand_int_range(r, 0, ADMIN_PROMOTE), NULL);
        }
        break;
    case 7:
        n->fail_persist = g_rand_int_range(r, 0, 8) == 0;
        break;
    default:
        sim_advance(s, g_rand_int_range(r, 0, 40000));
        break;
    }
}

/* The fake colo-vmms do what they were asked, until nothing changes. */
static void settle(Sim *s)
{
    for (int round = 0; round < 40; round++) {
        ClusterState before[2] = { sim_state(s, 0), sim_state(s, 1) };
        bool moved = false;

        for (int i = 0; i < 2; i++) {
            ClusterState st = sim_state(s, i);

            if (st == CLUSTER_PRIMARY_STARTING || st == CLUSTER_SECONDARY_STARTING) {
                sim_vmm(s, i, VMM_EV_READY);
                moved = true;
            } else if (st == CLUSTER_PROTECTING && sim_state(s, !i) == CLUSTER_SECONDARY_SYNCING) {
                sim_vmm(s, !i, VMM_EV_PROTECT_DONE);
                sim_vmm(s, i, VMM_EV_PROTECT_DONE);
                moved = true;
            } else if (st == CLUSTER_RELOCATE_TARGET && s->node[i].vmm == VMM_SECONDARY &&
                       sim_state(s, !i) == CLUSTER_RELOCATE_REQUESTED) {
                sim_vmm(s, i, VMM_EV_READY);
                moved = true;
            } else if (st == CLUSTER_RELOCATING && sim_state(s, !i) == CLUSTER_RELOCATE_TARGET) {
                /* The move completes: postcopy, then the end on both sides. */
                sim_vmm(s, i, VMM_EV_POSTCOPY);
                sim_vmm(s, !i, VMM_EV_POSTCOPY);
                sim_vmm(s, !i, VMM_EV_MIGRATED);
                if (sim_state(s, i) == CLUSTER_RELOCATING) {
                    sim_vmm(s, i, VMM_EV_MIGRATED);
                }
                moved = true;
            }
        }
        sim_advance(s, 60000);
        if (!moved && sim_state(s, 0) == before[0] && sim_state(s, 1) == before[1]) {
            return;
        }
    }
}

static void test_random_histories(void)
{
    unsigned seeds = g_test_slow() ? 20000 : 2000;
    unsigned protected = 0;
    unsigned ends[CLUSTER__MAX + 1][CLUSTER__MAX + 1] = { { 0 } };

    const char *only = g_getenv("SIM_SEED"); /* to replay one history */

    for (unsigned seed = 1; seed <= seeds; seed++) {
        GRand *r;

        if (only && seed != (unsigned)atoi(only)) {
            continue;
        }
        r = g_rand_new_with_seed(seed);
        Sim *s = sim_new(N, 0, N, 0);

        s->has_disks = seed % 3 == 0; /* switchover then protects rather than moves */
        sim_protect_pair(s, 0);
        for (int step = 0; step < 60; step++) {
            random_step(s, r);
        }
        /* Afterwards: everyone up, healed, quorate, time for retries. */
        sim_partition(s, false, true, true);
        for (int i = 0; i < 2; i++) {
            if (!s->node[i].fsm) {
                sim_start(s, i);
            }
        }
        settle(s);
        protected += sim_state(s, 0) == CLUSTER_PRIMARY_PROTECTED || sim_state(s, 1) == CLUSTER_PRIMARY_PROTECTED ||
                     sim_state(s, 0) == CLUSTER_PROTECTING || sim_state(s, 1) == CLUSTER_PROTECTING;
        ends[sim_state(s, 0)][sim_state(s, 1)]++;
        /* Liveness: a history ends protected, or waiting for an
         * administrator, or with protection turned off by one. */
        if (sim_state(s, 0) != CLUSTER_WAIT_ADMIN && sim_state(s, 1) != CLUSTER_WAIT_ADMIN) {
            int p = sim_state(s, 0) == CLUSTER_PRIMARY_PROTECTED || sim_state(s, 0) == CLUSTER_PRIMARY_ALONE ? 0 : 1;

            if (sim_state(s, p) != CLUSTER_PRIMARY_PROTECTED && cluster_fsm_protect_enabled(s->node[p].fsm)) {
                g_error("seed %u ends in %s / %s", seed, cluster_state_name(sim_state(s, 0)),
                        cluster_state_name(sim_state(s, 1)));
            }
        }
        if (g_getenv("SIM_VERBOSE")) {
            g_printerr("seed %u ends %s / %s (%s; %s)\n", seed, cluster_state_name(sim_state(s, 0)),
                       cluster_state_name(sim_state(s, 1)), cluster_fsm_reason(s->node[0].fsm),
                       cluster_fsm_reason(s->node[1].fsm));
        }
        sim_free(s);
        g_rand_free(r);
    }
    g_test_message("%u of %u histories end protected or protecting", protected, seeds);
    for (int a = 0; a <= CLUSTER__MAX; a++) {
        for (int b = 0; b <= CLUSTER__MAX; b++) {
            if (ends[a][b]) {
                g_test_message("  %5u end in %s / %s", ends[a][b], cluster_state_name(a), cluster_state_name(b));
            }
        }
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/colod/fsm-matrix/reach-every-state", test_reach_every_state);
    g_test_add_func("/colod/fsm-matrix/every-message-in-every-state", test_every_message_in_every_state);
    g_test_add_func("/colod/fsm-matrix/every-local-event-in-every-state", test_every_local_event_in_every_state);
    g_test_add_func("/colod/fsm-matrix/random-histories", test_random_histories);
    return g_test_run();
}
