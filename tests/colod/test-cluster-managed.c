/* colod's state machine in managed mode (pacemaker, ha/colo): who is
 * primary comes only from promote and demote; a lost peer is reported and
 * not failed over to; protection stays colod's. Driven through the
 * simulated cluster (cluster-sim.c), which fails any test in which both
 * nodes serve. Traces list each node's actions (hellos and logs left out). */
#include "config.h"

#include "cluster-sim.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

#define P COLOD_ROLE_PRIMARY
#define S COLOD_ROLE_SECONDARY
#define N COLOD_ROLE_NONE

static Sim *managed_sim(ColodRole r0, uint64_t g0, ColodRole r1, uint64_t g1)
{
    Sim *s = sim_new(r0, g0, r1, g1);

    s->managed = true;
    return s;
}

static void assert_refused(Sim *s, int i, AdminCommand cmd, const char *piece)
{
    g_autoptr(GError) err = NULL;

    g_assert_false(sim_admin(s, i, cmd, &err));
    g_assert_nonnull(err);
    if (!strstr(err->message, piece)) {
        g_error("%s on node %d refused with \"%s\", which lacks \"%s\"", admin_command_name(cmd), i, err->message,
                piece);
    }
}

static void assert_reason(Sim *s, int i, const char *piece)
{
    const char *r = cluster_fsm_reason(s->node[i].fsm);

    if (!strstr(r, piece)) {
        g_error("node %d's reason \"%s\" lacks \"%s\"", i, r, piece);
    }
}

/* The fake colo-vmms answer until the pair is protected. */
static void complete_protect(Sim *s, int primary)
{
    int sec = !primary;

    if (sim_state(s, primary) == CLUSTER_PRIMARY_STARTING) {
        sim_vmm(s, primary, VMM_EV_READY);
    }
    g_assert_cmpint(sim_state(s, primary), ==, CLUSTER_PROTECT_REQUESTED);
    g_assert_cmpint(sim_state(s, sec), ==, CLUSTER_SECONDARY_STARTING);
    sim_vmm(s, sec, VMM_EV_READY);
    g_assert_cmpint(sim_state(s, primary), ==, CLUSTER_PROTECTING);
    sim_vmm(s, sec, VMM_EV_PROTECT_DONE);
    sim_vmm(s, primary, VMM_EV_PROTECT_DONE);
    g_assert_cmpint(sim_state(s, primary), ==, CLUSTER_PRIMARY_PROTECTED);
    g_assert_cmpint(sim_state(s, sec), ==, CLUSTER_SECONDARY_PROTECTED);
}

/* A fresh managed pair, node @primary promoted and protected (generation
 * 2). Clears the traces. */
static Sim *managed_pair(int primary)
{
    Sim *s = managed_sim(N, 0, N, 0);

    sim_start(s, 0);
    sim_start(s, 1);
    g_assert_true(sim_admin(s, primary, ADMIN_PROMOTE, NULL));
    complete_protect(s, primary);
    g_free(sim_take(s, 0));
    g_free(sim_take(s, 1));
    return s;
}

/* Nothing starts on its own, not even the newest copy; no tie waits for
 * an administrator; promote starts the VM, protection follows alone. */
static void test_start_waits_for_promote(void)
{
    Sim *s = managed_sim(N, 0, N, 0);

    sim_start(s, 0);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_IDLE);
    assert_reason(s, 0, "standing by until pacemaker promotes a node");
    sim_start(s, 1);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_IDLE);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_IDLE);
    sim_advance(s, 3600 * 1000);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_IDLE);
    sim_expect(s, 0, "");
    sim_expect(s, 1, "");
    g_assert_true(cluster_fsm_managed(s->node[0].fsm));
    assert_refused(s, 0, ADMIN_FAILOVER, "pacemaker decides who is primary");
    assert_refused(s, 0, ADMIN_SWITCHOVER, "pacemaker decides who is primary");
    g_assert_true(sim_admin(s, 0, ADMIN_PROMOTE, NULL));
    sim_expect(s, 0, "persist primary 1, start primary");
    /* Promote again (pacemaker retries): nothing more. */
    g_assert_true(sim_admin(s, 0, ADMIN_PROMOTE, NULL));
    sim_expect(s, 0, "");
    sim_vmm(s, 0, VMM_EV_READY);
    sim_expect(s, 0, "persist primary 2, send protect-request");
    sim_expect(s, 1, "persist syncing 2, start secondary");
    /* The syncing secondary cannot be promoted. */
    assert_refused(s, 1, ADMIN_PROMOTE, "initial sync has not finished");
    complete_protect(s, 0);
    g_assert_true(sim_serves(s, 0));
    /* Demote of the unpromoted secondary: nothing to do. */
    g_free(sim_take(s, 1));
    g_assert_true(sim_admin(s, 1, ADMIN_DEMOTE, NULL));
    sim_expect(s, 1, "");
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_PROTECTED);
    sim_free(s);

    /* With the newest copy at node 0, still nothing starts alone; a
     * promote of the older copy is refused while the newer is there. */
    s = managed_sim(P, 5, S, 4);
    sim_start(s, 1);
    sim_start(s, 0);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_IDLE);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_IDLE);
    sim_expect(s, 0, "");
    assert_refused(s, 1, ADMIN_PROMOTE, "the peer holds the newer copy (generation 5, ours 4)");
    g_assert_true(sim_admin(s, 0, ADMIN_PROMOTE, NULL));
    sim_expect(s, 0, "persist primary 6, start primary");
    sim_free(s);
}

/* The primary node dies: the secondary reports it and waits; pacemaker's
 * promote takes over at a new generation; the node coming back becomes
 * the secondary. */
static void test_primary_dies_promote(void)
{
    Sim *s = managed_pair(0);

    sim_kill(s, 0, true);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_PROTECTED);
    assert_reason(s, 1, "takes over only when pacemaker promotes it");
    sim_vmm(s, 1, VMM_EV_PEER_LOST);
    sim_advance(s, 3600 * 1000);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_PROTECTED);
    sim_expect(s, 1, "");
    g_assert_false(sim_serves(s, 1));
    g_assert_true(sim_admin(s, 1, ADMIN_PROMOTE, NULL));
    sim_expect(s, 1, "persist primary 3, failover");
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_PRIMARY_ALONE);
    g_assert_true(sim_serves(s, 1));
    /* The old primary comes back: it stands by and is protected. */
    sim_start(s, 0);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_SECONDARY_STARTING);
    assert_refused(s, 0, ADMIN_PROMOTE, "initial sync has not finished");
    complete_protect(s, 1);
    g_assert_cmpuint(s->node[0].disk.generation, ==, 4);
    g_assert_cmpint(s->node[0].disk.role, ==, S);
    sim_free(s);
}

/* The secondary node dies: the primary runs on alone (colod's, not a
 * change of who is primary). */
static void test_secondary_dies(void)
{
    Sim *s = managed_pair(0);

    sim_kill(s, 1, true);
    sim_expect(s, 0, "persist primary 3, failover");
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_ALONE);
    g_assert_true(sim_serves(s, 0));
    sim_free(s);
}

/* Pacemaker moves the promoted role: demote here (the VM stops), then
 * promote there (the replica takes over, at a new generation). */
static void test_move(void)
{
    Sim *s = managed_pair(0);

    g_assert_true(sim_admin(s, 0, ADMIN_DEMOTE, NULL));
    sim_expect(s, 0, "stop");
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_IDLE);
    /* The secondary saw the primary's VM go, and does not take over alone. */
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_PROTECTED);
    sim_expect(s, 1, "");
    g_assert_false(sim_serves(s, 0));
    g_assert_false(sim_serves(s, 1));
    g_assert_true(sim_admin(s, 0, ADMIN_DEMOTE, NULL));
    sim_expect(s, 0, "");
    g_assert_true(sim_admin(s, 1, ADMIN_PROMOTE, NULL));
    sim_expect(s, 1, "send failover-claim, persist primary 3, failover, persist primary 4, send protect-request");
    sim_expect(s, 0, "send failover-ack, persist syncing 4, start secondary");
    g_assert_true(sim_serves(s, 1));
    complete_protect(s, 1);
    sim_free(s);
}

/* Promote where the peer runs the VM alone: refused (pacemaker demotes
 * first); a protected secondary's promote is a takeover through a claim,
 * the primary stopping its side first. */
static void test_promote_while_peer_primary(void)
{
    Sim *s = managed_pair(0);

    g_assert_true(sim_admin(s, 0, ADMIN_UNPROTECT, NULL));
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_ALONE);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_IDLE);
    g_free(sim_take(s, 0));
    g_free(sim_take(s, 1));
    assert_refused(s, 1, ADMIN_PROMOTE, "the peer runs the VM as primary: demote it first");
    sim_free(s);

    s = managed_pair(0);
    g_assert_true(sim_admin(s, 1, ADMIN_PROMOTE, NULL));
    sim_expect(s, 0, "stop, send failover-ack, persist syncing 4, start secondary");
    sim_expect(s, 1, "send failover-claim, persist primary 3, failover, persist primary 4, send protect-request");
    g_assert_true(sim_serves(s, 1));
    complete_protect(s, 1);
    sim_free(s);
}

/* Demote in the states a primary passes through, and without quorum. */
static void test_demote_states(void)
{
    Sim *s = managed_sim(N, 0, N, 0);

    sim_start(s, 0);
    sim_start(s, 1);
    g_assert_true(sim_admin(s, 0, ADMIN_PROMOTE, NULL));
    g_assert_true(sim_admin(s, 0, ADMIN_DEMOTE, NULL));
    sim_expect(s, 0, "persist primary 1, start primary, stop");
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_IDLE);

    /* During the initial sync: cancelled, and the secondary stops. */
    g_assert_true(sim_admin(s, 0, ADMIN_PROMOTE, NULL));
    sim_vmm(s, 0, VMM_EV_READY);
    sim_vmm(s, 1, VMM_EV_READY);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PROTECTING);
    g_free(sim_take(s, 0));
    g_free(sim_take(s, 1));
    g_assert_true(sim_admin(s, 0, ADMIN_DEMOTE, NULL));
    sim_expect(s, 0, "cancel, stop");
    sim_expect(s, 1, "stop");
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_IDLE);

    /* The VM exited: waiting, a demote clears it, promote starts again. */
    g_assert_true(sim_admin(s, 0, ADMIN_PROMOTE, NULL));
    sim_vmm(s, 0, VMM_EV_EXITED);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_WAIT_ADMIN);
    g_free(sim_take(s, 0));
    g_assert_true(sim_admin(s, 0, ADMIN_DEMOTE, NULL));
    sim_expect(s, 0, "");
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_IDLE);
    g_assert_true(sim_admin(s, 0, ADMIN_PROMOTE, NULL));
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_STARTING);
    sim_free(s);

    /* No quorum anywhere: both paused; demote still stops the VM, promote
     * is refused. */
    s = managed_pair(0);
    sim_partition(s, true, false, false);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PAUSED);
    g_free(sim_take(s, 0));
    g_assert_true(sim_admin(s, 0, ADMIN_DEMOTE, NULL));
    sim_expect(s, 0, "stop");
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_WAIT_QUORUM);
    assert_refused(s, 1, ADMIN_PROMOTE, "no quorum");
    sim_partition(s, false, true, true);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_IDLE);
    sim_free(s);
}

/* Outside managed mode promote and demote are refused; inside it the
 * peer's switchover request is ignored. */
static void test_modes(void)
{
    Sim *s = sim_new(N, 0, N, 0);
    CpgMsg m = { .type = CPG_MSG_SWITCHOVER, .target = 2, .generation = 2 };

    sim_start(s, 0);
    sim_start(s, 1);
    assert_refused(s, 0, ADMIN_PROMOTE, "for managed mode");
    assert_refused(s, 0, ADMIN_DEMOTE, "for managed mode");
    g_assert_false(cluster_fsm_managed(s->node[0].fsm));
    sim_free(s);

    s = managed_pair(0);
    sim_inject(s, 0, &m);
    sim_expect(s, 1, "");
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_PROTECTED);
    sim_free(s);
}

/* A secondary whose primary goes during the initial sync stands by
 * (managed: no waiting for the peer, no administrator). */
static void test_sync_interrupted(void)
{
    Sim *s = managed_sim(N, 0, N, 0);

    sim_start(s, 0);
    sim_start(s, 1);
    g_assert_true(sim_admin(s, 0, ADMIN_PROMOTE, NULL));
    sim_vmm(s, 0, VMM_EV_READY);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_STARTING);
    g_free(sim_take(s, 1));
    sim_kill(s, 0, true);
    sim_expect(s, 1, "stop");
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_IDLE);
    sim_advance(s, 3600 * 1000);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_IDLE);
    /* Its copy is incomplete: promote is refused. */
    assert_refused(s, 1, ADMIN_PROMOTE, "no complete copy");
    sim_free(s);
}

/* The primary's side of the initial sync fails after the secondary's
 * completed (seen on a loaded machine): the secondary, which believed
 * itself protected, stops its out-of-date replica so that the primary,
 * running alone, protects it again (managed or not). */
static void test_protect_failed_after_secondary_done(void)
{
    for (int managed = 0; managed < 2; managed++) {
        Sim *s = managed ? managed_sim(N, 0, N, 0) : sim_new(N, 0, N, 0);

        sim_start(s, 0);
        sim_start(s, 1);
        g_assert_true(sim_admin(s, 0, managed ? ADMIN_PROMOTE : ADMIN_FAILOVER, NULL));
        sim_vmm(s, 0, VMM_EV_READY);
        sim_vmm(s, 1, VMM_EV_READY);
        sim_vmm(s, 1, VMM_EV_PROTECT_DONE);
        g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_PROTECTED);
        g_free(sim_take(s, 1));
        sim_vmm(s, 0, VMM_EV_PROTECT_FAILED);
        g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_ALONE);
        sim_expect(s, 1, "stop");
        g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_IDLE);
        sim_vmm(s, 1, VMM_EV_PEER_LOST);   /* its colo-vmm noticed too late: nothing */
        sim_advance(s, s->timeouts.protect_retry_ms);
        g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PROTECT_REQUESTED);
        complete_protect(s, 0);
        sim_free(s);
    }
}

static void test_quorum_policy(void)
{
    g_autoptr(GError) err = NULL;

    g_assert_true(cluster_quorum_policy_check(false, false, false, false, NULL));
    g_assert_true(cluster_quorum_policy_check(true, true, false, false, NULL));
    g_assert_true(cluster_quorum_policy_check(true, false, true, false, NULL));
    g_assert_true(cluster_quorum_policy_check(true, false, false, true, NULL));
    g_assert_false(cluster_quorum_policy_check(true, false, false, false, &err));
    g_assert_nonnull(strstr(err->message, "managed = true"));
}

/* "Pacemaker" at the end of a history: promote the node with the newest
 * copy if nothing is primary (the other if refused), as promotion scores
 * from the generation would. */
static void pacemaker_promotes(Sim *s)
{
    int best = s->node[1].disk.generation > s->node[0].disk.generation ? 1 : 0;

    for (int i = 0; i < 2; i++) {
        if (s->node[i].vmm == VMM_PRIMARY) {
            return;
        }
    }
    if (!sim_admin(s, best, ADMIN_PROMOTE, NULL)) {
        sim_admin(s, !best, ADMIN_PROMOTE, NULL);
    }
}

static void settle(Sim *s)
{
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 2; i++) {
            ClusterState st = sim_state(s, i);

            if (st == CLUSTER_PRIMARY_STARTING || st == CLUSTER_SECONDARY_STARTING) {
                sim_vmm(s, i, VMM_EV_READY);
            } else if (st == CLUSTER_PROTECTING && sim_state(s, !i) == CLUSTER_SECONDARY_SYNCING) {
                sim_vmm(s, !i, VMM_EV_PROTECT_DONE);
                sim_vmm(s, i, VMM_EV_PROTECT_DONE);
            }
        }
        sim_advance(s, 60000);
    }
}

/* Random histories of node deaths, partitions (quorum on at most one
 * side), colo-vmm events, promotes and demotes (pacemaker may promote
 * either node at any time, or promote both: safety must not depend on
 * it). Never both serve; at the end, healed and promoted, the VM serves. */
static void test_random_managed(void)
{
    unsigned seeds = g_test_slow() ? 20000 : 2000;
    const char *only = g_getenv("SIM_SEED");

    for (unsigned seed = 1; seed <= seeds; seed++) {
        GRand *r;
        Sim *s;

        if (only && seed != (unsigned)atoi(only)) {
            continue;
        }
        r = g_rand_new_with_seed(seed);
        s = managed_pair(0);
        for (int step = 0; step < 60; step++) {
            int i = g_rand_int_range(r, 0, 2);
            SimNode *n = &s->node[i];

            switch (g_rand_int_range(r, 0, 8)) {
            case 0:
                if (n->fsm) {
                    sim_kill(s, i, true);
                } else {
                    sim_start(s, i);
                }
                break;
            case 1:
                sim_partition(s, true, g_rand_int_range(r, 0, 3) == 0, false);
                break;
            case 2:
                sim_partition(s, false, true, true);
                break;
            case 3:
                if (n->fsm && n->in_colo) {
                    sim_vmm(s, i, VMM_EV_PEER_LOST);
                } else if (n->fsm && n->vmm != VMM_NONE && g_rand_int_range(r, 0, 4) == 0) {
                    sim_vmm(s, i, VMM_EV_EXITED);
                }
                break;
            case 4:
            case 5:
                if (n->fsm) {
                    sim_admin(s, i, g_rand_boolean(r) ? ADMIN_PROMOTE : ADMIN_DEMOTE, NULL);
                }
                break;
            case 6:
                settle(s);
                break;
            default:
                sim_advance(s, g_rand_int_range(r, 0, 40000));
                break;
            }
        }
        sim_partition(s, false, true, true);
        for (int i = 0; i < 2; i++) {
            if (!s->node[i].fsm) {
                sim_start(s, i);
            }
        }
        settle(s);
        pacemaker_promotes(s);
        settle(s);
        /* Serving, or a split brain paused for a decision. */
        if (!sim_serves(s, 0) && !sim_serves(s, 1) && sim_state(s, 0) != CLUSTER_WAIT_ADMIN &&
            sim_state(s, 1) != CLUSTER_WAIT_ADMIN) {
            g_error("seed %u ends with no VM serving: %s / %s (%s; %s)", seed, cluster_state_name(sim_state(s, 0)),
                    cluster_state_name(sim_state(s, 1)), cluster_fsm_reason(s->node[0].fsm),
                    cluster_fsm_reason(s->node[1].fsm));
        }
        sim_free(s);
        g_rand_free(r);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/colod/managed/start-waits-for-promote", test_start_waits_for_promote);
    g_test_add_func("/colod/managed/primary-dies-promote", test_primary_dies_promote);
    g_test_add_func("/colod/managed/secondary-dies", test_secondary_dies);
    g_test_add_func("/colod/managed/move", test_move);
    g_test_add_func("/colod/managed/promote-while-peer-primary", test_promote_while_peer_primary);
    g_test_add_func("/colod/managed/demote-states", test_demote_states);
    g_test_add_func("/colod/managed/modes", test_modes);
    g_test_add_func("/colod/managed/sync-interrupted", test_sync_interrupted);
    g_test_add_func("/colod/managed/protect-failed-after-secondary-done", test_protect_failed_after_secondary_done);
    g_test_add_func("/colod/managed/quorum-policy", test_quorum_policy);
    g_test_add_func("/colod/managed/random", test_random_managed);
    return g_test_run();
}
