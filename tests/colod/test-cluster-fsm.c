/* colod's decision state machine, driven through a simulated two-node
 * cluster (cluster-sim.c: virtual clock, fake membership and quorum, CPG
 * order, fake colo-vmm; it fails any test in which both nodes serve). Each
 * test names the decision it checks; the traces list the actions, in
 * order, that each node carried out (hellos and logs left out). */
#include "config.h"

#include "cluster-sim.h"

#include <glib.h>
#include <string.h>

#define P COLOD_ROLE_PRIMARY
#define S COLOD_ROLE_SECONDARY
#define N COLOD_ROLE_NONE
#define Y COLOD_ROLE_SYNCING

/* A fresh pair: neither holds the VM, so neither starts it; the
 * administrator's failover starts it, then protection follows alone. */
static void test_fresh_pair(void)
{
    Sim *s = sim_new(N, 0, N, 0);
    g_autoptr(GError) err = NULL;

    sim_start(s, 0);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_WAIT_PEER);
    sim_start(s, 1);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_WAIT_ADMIN);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_WAIT_ADMIN);
    g_assert_cmpint(cluster_fsm_wait_reason(s->node[0].fsm), ==, WAIT_TIE);
    sim_assert_reason(s, 1, "run 'coloctl failover' on the node that should start the VM");
    sim_expect(s, 0, "");
    sim_expect(s, 1, "");
    /* Protect and switchover make no sense yet. */
    g_assert_false(sim_admin(s, 0, ADMIN_SWITCHOVER, &err));
    g_assert_nonnull(strstr(err->message, "switchover needs a protected VM"));
    g_assert_true(sim_admin(s, 0, ADMIN_FAILOVER, NULL));
    sim_expect(s, 0, "persist primary 1, start primary");
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_IDLE);
    sim_vmm(s, 0, VMM_EV_READY);
    sim_expect(s, 0, "persist primary 2, send protect-request");
    sim_expect(s, 1, "persist syncing 2, start secondary");
    sim_vmm(s, 1, VMM_EV_READY);
    sim_expect(s, 1, "send protect-ack");
    sim_expect(s, 0, "migrate");
    sim_vmm(s, 1, VMM_EV_PROTECT_DONE);
    sim_expect(s, 1, "persist secondary 2");
    sim_vmm(s, 0, VMM_EV_PROTECT_DONE);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_PROTECTED);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_PROTECTED);
    g_assert_true(sim_serves(s, 0));
    g_assert_false(sim_serves(s, 1));
    sim_assert_disk(s, 0, P, 2);
    sim_assert_disk(s, 1, S, 2);
    g_assert_false(sim_admin(s, 1, ADMIN_FAILOVER, NULL) && false);
    sim_free(s);
}

/* Start-up: the newest complete copy starts as primary, the other stands
 * by and is protected; an incomplete copy loses to any complete one. */
static void test_newest_generation_starts(void)
{
    static const struct {
        ColodRole r0;
        uint64_t g0;
        ColodRole r1;
        uint64_t g1;
        int primary;
    } cases[] = {
        { P, 5, S, 4, 0 },
        { S, 4, P, 5, 1 },
        { S, 7, P, 3, 0 },
        { Y, 9, S, 3, 1 },  /* an unfinished sync holds nothing */
        { N, 0, P, 1, 1 },
    };

    for (size_t c = 0; c < G_N_ELEMENTS(cases); c++) {
        Sim *s = sim_new(cases[c].r0, cases[c].g0, cases[c].r1, cases[c].g1);
        int p = cases[c].primary;
        uint64_t newest = MAX(cases[c].g0, cases[c].g1);
        g_autofree char *want = g_strdup_printf("persist primary %" G_GUINT64_FORMAT ", start primary",
                                                p ? cases[c].g1 : cases[c].g0);

        /* Order of start-up does not matter. */
        sim_start(s, (int)(c % 2));
        sim_start(s, (int)!(c % 2));
        g_assert_cmpint(sim_state(s, p), ==, CLUSTER_PRIMARY_STARTING);
        g_assert_cmpint(sim_state(s, !p), ==, CLUSTER_IDLE);
        sim_expect(s, p, want);
        sim_expect(s, !p, "");
        sim_assert_reason(s, !p, "standing by");
        sim_vmm(s, p, VMM_EV_READY);
        g_assert_cmpint(sim_state(s, p), ==, CLUSTER_PROTECT_REQUESTED);
        g_assert_cmpuint(s->node[p].disk.generation, ==, newest + 1);
        sim_free(s);
    }
}

/* Equal complete copies, or an unknown peer: never a guess. */
static void test_tie_and_unknown_wait(void)
{
    Sim *s = sim_new(P, 4, S, 4);
    g_autoptr(GError) err = NULL;

    sim_start(s, 0);
    sim_advance(s, 29999);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_WAIT_PEER);
    sim_advance(s, 1);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_WAIT_ADMIN);
    g_assert_cmpint(cluster_fsm_wait_reason(s->node[0].fsm), ==, WAIT_UNKNOWN);
    sim_assert_reason(s, 0, "its generation is unknown");
    sim_start(s, 1);
    g_assert_cmpint(cluster_fsm_wait_reason(s->node[0].fsm), ==, WAIT_TIE);
    g_assert_cmpint(cluster_fsm_wait_reason(s->node[1].fsm), ==, WAIT_TIE);
    sim_advance(s, 600000);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_WAIT_ADMIN);
    g_assert_cmpuint(s->node[0].starts + s->node[1].starts, ==, 0);
    /* The administrator picks the secondary's copy. */
    g_assert_true(sim_admin(s, 1, ADMIN_FAILOVER, NULL));
    sim_expect(s, 1, "persist primary 5, start primary");
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_IDLE);
    /* Now failover on the idle node is refused: the peer runs the VM. */
    g_assert_false(sim_admin(s, 0, ADMIN_FAILOVER, &err));
    g_assert_nonnull(strstr(err->message, "the peer runs the VM"));
    sim_free(s);
}

/* A node that was mid-sync never becomes primary, not even by hand. */
static void test_syncing_refused(void)
{
    Sim *s = sim_new(Y, 3, N, 0);
    g_autoptr(GError) err = NULL;

    sim_start(s, 0);
    sim_advance(s, 30000);
    g_assert_false(sim_admin(s, 0, ADMIN_FAILOVER, &err));
    g_assert_nonnull(strstr(err->message, "no complete copy"));
    sim_free(s);
}

/* The unknown peer appears later: decided then without an administrator. */
static void test_unknown_resolves(void)
{
    Sim *s = sim_new(S, 2, P, 3);

    sim_start(s, 0);
    sim_advance(s, 40000);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_WAIT_ADMIN);
    sim_start(s, 1);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_PRIMARY_STARTING);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_IDLE);
    sim_free(s);
}

/* The primary node dies: the secondary fails over, the new generation on
 * disk before the VM runs alone. */
static void test_primary_node_dies(void)
{
    Sim *s = sim_new(N, 0, N, 0);

    sim_protect_pair(s, 0);
    sim_kill(s, 0, true);
    sim_expect(s, 1, "persist primary 3, failover");
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_PRIMARY_ALONE);
    g_assert_true(sim_serves(s, 1));
    sim_assert_reason(s, 1, "the peer's colod left the group");
    /* It comes back: re-protected as the secondary, automatically. */
    sim_start(s, 0);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_SECONDARY_STARTING);
    sim_expect(s, 0, "persist syncing 4, start secondary");
    sim_expect(s, 1, "persist primary 4, send protect-request");
    sim_vmm(s, 0, VMM_EV_READY);
    sim_vmm(s, 0, VMM_EV_PROTECT_DONE);
    sim_vmm(s, 1, VMM_EV_PROTECT_DONE);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_PRIMARY_PROTECTED);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_SECONDARY_PROTECTED);
    sim_assert_disk(s, 0, S, 4);
    sim_free(s);
}

/* The secondary node dies: the primary releases and runs on alone. */
static void test_secondary_node_dies(void)
{
    Sim *s = sim_new(N, 0, N, 0);

    sim_protect_pair(s, 1);
    sim_kill(s, 0, true);
    sim_expect(s, 1, "persist primary 3, failover");
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_PRIMARY_ALONE);
    sim_free(s);
}

/* kill -9 of the primary's colod: its colo-vmm runs on, but cut off from
 * its secondary it releases nothing; the secondary takes over. */
static void test_primary_colod_killed(void)
{
    Sim *s = sim_new(N, 0, N, 0);

    sim_protect_pair(s, 0);
    sim_kill(s, 0, false);
    sim_expect(s, 1, "persist primary 3, failover");
    g_assert_true(sim_serves(s, 1));
    g_assert_false(sim_serves(s, 0));
    sim_free(s);
}

/* colod killed while its VM runs alone: the next one picks the VM up
 * (no start, no stop, no pause) and protects it when the peer comes. */
static void test_adopt_alone(void)
{
    Sim *s = sim_new(N, 0, N, 0);
    unsigned starts;

    sim_protect_pair(s, 0);
    sim_kill(s, 1, true);
    sim_expect(s, 0, "persist primary 3, failover");
    starts = s->node[0].starts;
    sim_kill(s, 0, false);
    sim_start_adopt(s, 0);
    sim_expect(s, 0, "");
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_ALONE);
    g_assert_cmpuint(s->node[0].starts, ==, starts);
    g_assert_true(sim_serves(s, 0));
    sim_assert_reason(s, 0, "picked up the running colo-vmm (primary)");
    sim_start(s, 1);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PROTECT_REQUESTED);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_STARTING);
    sim_free(s);
}

/* The sole copy (colod's run-dir marker, which spares the VM at an
 * unclean end of colod): held from the start of a primary until colo-vmm
 * begins to send it to a secondary, and again once it runs alone; never
 * on a secondary, while paused, or in managed mode. A colod killed while
 * it holds, its VM left running (as colod@.service does), is back and
 * picks the VM up, and the peer, which had nothing to take over with,
 * becomes its secondary. */
static void test_sole_copy(void)
{
    Sim *s = sim_new(P, 1, N, 0);
    unsigned starts;

    sim_start(s, 0);
    sim_start(s, 1);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_STARTING);
    g_assert_cmpint(cluster_fsm_sole_copy(s->node[0].fsm), ==, CLUSTER_SOLE_COPY_YES);
    g_assert_cmpint(cluster_fsm_sole_copy(s->node[1].fsm), ==, CLUSTER_SOLE_COPY_NO);
    sim_vmm(s, 0, VMM_EV_READY);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PROTECT_REQUESTED);
    g_assert_cmpint(cluster_fsm_sole_copy(s->node[0].fsm), ==, CLUSTER_SOLE_COPY_YES);
    sim_vmm(s, 1, VMM_EV_READY);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PROTECTING);
    g_assert_cmpint(cluster_fsm_sole_copy(s->node[0].fsm), ==, CLUSTER_SOLE_COPY_UNTIL_COMMIT);
    sim_vmm(s, 1, VMM_EV_PROTECT_DONE);
    sim_vmm(s, 0, VMM_EV_PROTECT_DONE);
    g_assert_cmpint(cluster_fsm_sole_copy(s->node[0].fsm), ==, CLUSTER_SOLE_COPY_NO);
    g_assert_cmpint(cluster_fsm_sole_copy(s->node[1].fsm), ==, CLUSTER_SOLE_COPY_NO);
    g_assert_true(sim_admin(s, 0, ADMIN_UNPROTECT, NULL));
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_ALONE);
    g_assert_cmpint(cluster_fsm_sole_copy(s->node[0].fsm), ==, CLUSTER_SOLE_COPY_YES);
    g_free(sim_take(s, 0));
    g_free(sim_take(s, 1));

    starts = s->node[0].starts;
    sim_kill(s, 0, false);
    g_assert_cmpint(sim_state(s, 1), !=, CLUSTER_PRIMARY_ALONE);
    g_assert_false(sim_serves(s, 1));
    sim_advance(s, 5000);
    sim_start_adopt(s, 0);
    g_assert_cmpint(cluster_fsm_sole_copy(s->node[0].fsm), ==, CLUSTER_SOLE_COPY_YES);
    g_assert_cmpuint(s->node[0].starts, ==, starts);
    g_assert_true(sim_serves(s, 0));
    /* Picked up and left unprotected: the administrator's unprotect
     * outlives the colod that took it (its run-dir marker), until
     * protect. */
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_ALONE);
    g_assert_false(cluster_fsm_protect_enabled(s->node[0].fsm));
    sim_advance(s, 60000);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_ALONE);
    g_assert_true(sim_admin(s, 0, ADMIN_PROTECT, NULL));
    sim_assert_reason(s, 0, "protecting the VM");
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PROTECT_REQUESTED);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_STARTING);

    /* Paused (no quorum): the peer may go on, nothing is spared. */
    sim_partition(s, true, false, true);
    g_assert_false(sim_serves(s, 0));
    g_assert_cmpint(cluster_fsm_sole_copy(s->node[0].fsm), ==, CLUSTER_SOLE_COPY_NO);
    sim_free(s);
}

/* Killed while protecting, before colo-vmm's commit: colo-vmm cancels the
 * initial sync itself (the client that started it is gone) and keeps the
 * marker, so the VM runs on; the secondary's incoming colo-vmm ends with
 * its stream. The secondary never serves, the next colod picks the VM up
 * and protects it again. */
static void test_sole_copy_protecting(void)
{
    Sim *s = sim_new(P, 1, N, 0);

    sim_start_protecting(s);
    g_assert_cmpint(cluster_fsm_sole_copy(s->node[0].fsm), ==, CLUSTER_SOLE_COPY_UNTIL_COMMIT);
    g_assert_cmpint(cluster_fsm_sole_copy(s->node[1].fsm), ==, CLUSTER_SOLE_COPY_NO);

    sim_kill(s, 0, false);
    g_assert_false(sim_serves(s, 1));
    sim_vmm(s, 1, VMM_EV_EXITED);
    g_assert_false(sim_serves(s, 1));
    sim_advance(s, 5000);
    g_assert_false(sim_serves(s, 1));
    sim_start_adopt(s, 0);
    g_assert_true(sim_serves(s, 0));
    g_assert_false(sim_serves(s, 1));
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PROTECT_REQUESTED);
    g_assert_cmpint(cluster_fsm_sole_copy(s->node[0].fsm), ==, CLUSTER_SOLE_COPY_YES);
    sim_vmm(s, 1, VMM_EV_READY);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PROTECTING);
    sim_vmm(s, 1, VMM_EV_PROTECT_DONE);
    sim_vmm(s, 0, VMM_EV_PROTECT_DONE);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_PROTECTED);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_PROTECTED);
    sim_free(s);
}

/* The primary's colod killed while protecting, the other way round: after
 * colo-vmm's commit (it removed the marker, so the unit killed it), the
 * secondary's copy is whole. The secondary, told the peer's colod left,
 * waits for its sync's outcome: COLO begins, and it takes over. Without
 * an outcome (the primary's host gone mid-stream) it gives up after
 * SYNC_OUTCOME_MS; a sync that fails ends the wait at once. */
static void test_sync_outcome_after_primary_colod_left(void)
{
    for (int outcome = 0; outcome < 3; outcome++) {
        Sim *s = sim_new(P, 1, N, 0);

        sim_start_protecting(s);
        sim_kill(s, 0, true);
        g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_SYNCING);
        g_assert_false(sim_serves(s, 1));
        if (outcome == 0) {
            sim_vmm(s, 1, VMM_EV_PROTECT_DONE);
            sim_assert_reason(s, 1, "the initial sync completed after the primary's colod left");
            g_assert_true(sim_serves(s, 1));
            g_assert_cmpuint(cluster_fsm_generation(s->node[1].fsm), >, 1);
            /* The old primary comes back as its secondary. */
            sim_start(s, 0);
            sim_vmm(s, 0, VMM_EV_READY);
            g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_PROTECTING);
        } else if (outcome == 1) {
            sim_advance(s, 2900);
            g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_SYNCING);
            sim_advance(s, 200);
            sim_assert_reason(s, 1, "neither completed nor failed");
            g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_WAIT_PEER);
            g_assert_false(sim_serves(s, 1));
            g_assert_cmpint(s->node[1].vmm, ==, VMM_NONE);
        } else {
            sim_vmm(s, 1, VMM_EV_EXITED);
            sim_assert_reason(s, 1, "after the primary's colod left");
            g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_WAIT_PEER);
            g_assert_false(sim_serves(s, 1));
        }
        sim_free(s);
    }
}

/* The secondary's colod killed: the primary fails over; the next colod
 * picks up the secondary's colo-vmm, learns the peer went on, stops its
 * stale copy and is protected again. Restarted with SIGUSR1 instead
 * (shutdown with restart), COLO goes on untouched. */
static void test_adopt_secondary(void)
{
    Sim *s = sim_new(N, 0, N, 0);
    g_autoptr(GArray) acts = cluster_actions_new();

    sim_protect_pair(s, 0);
    sim_kill(s, 1, false);
    sim_expect(s, 0, "persist primary 3, failover");
    sim_start_adopt(s, 1);
    sim_expect(s, 1, "stop, persist syncing 4, start secondary");
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_STARTING);
    sim_vmm(s, 1, VMM_EV_READY);
    sim_vmm(s, 0, VMM_EV_PROTECT_DONE);
    sim_vmm(s, 1, VMM_EV_PROTECT_DONE);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_PROTECTED);
    g_free(sim_take(s, 0));
    g_free(sim_take(s, 1));

    cluster_fsm_shutdown(s->node[1].fsm, true, acts);
    for (guint i = 0; i < acts->len; i++) {
        ClusterAction *a = cluster_action_at(acts, i);

        g_assert_cmpint(a->type, !=, ACT_STOP_VMM);
        if (a->type == ACT_SEND) {
            g_assert_cmpint(a->msg.type, ==, CPG_MSG_SHUTDOWN);
            sim_inject(s, 1, &a->msg); /* "restarting, my VM runs on" */
        }
    }
    sim_kill(s, 1, false);
    sim_start_adopt(s, 1);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_PROTECTED);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_PROTECTED);
    sim_expect(s, 0, "");
    sim_expect(s, 1, "");
    sim_free(s);
}

/* A full partition with a third vote: the side with quorum goes on, the
 * other pauses and says why; healing re-protects the loser. */
static void test_partition_qdevice(void)
{
    for (int winner = 0; winner < 2; winner++) {
        Sim *s = sim_new(N, 0, N, 0);
        int loser = !winner;

        sim_protect_pair(s, 0);
        sim_partition(s, true, winner == 0, winner == 1);
        sim_expect(s, loser, "pause");
        sim_expect(s, winner, "persist primary 3, failover");
        g_assert_cmpint(sim_state(s, loser), ==, CLUSTER_PAUSED);
        sim_assert_reason(s, loser, "quorum lost: VM paused");
        g_assert_true(sim_serves(s, winner));
        /* Commands that would change who serves are refused without quorum. */
        g_assert_false(sim_admin(s, loser, ADMIN_FAILOVER, NULL));
        sim_advance(s, 3600 * 1000);
        g_assert_cmpint(sim_state(s, loser), ==, CLUSTER_PAUSED);
        sim_partition(s, false, true, true);
        sim_expect(s, loser, "stop, persist syncing 4, start secondary");
        g_assert_cmpint(sim_state(s, winner), ==, CLUSTER_PROTECT_REQUESTED);
        sim_free(s);
    }
}

/* Partition without a third vote (qnetd down too): both pause; when the
 * nodes see each other again with quorum, both resume where they were. */
static void test_partition_no_quorum(void)
{
    Sim *s = sim_new(N, 0, N, 0);

    sim_protect_pair(s, 0);
    sim_partition(s, true, false, false);
    sim_expect(s, 0, "pause");
    sim_expect(s, 1, "pause");
    g_assert_false(sim_serves(s, 0));
    sim_partition(s, false, true, true);
    sim_expect(s, 0, "resume");
    sim_expect(s, 1, "resume");
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_PROTECTED);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_PROTECTED);
    sim_free(s);
}

/* allow-split-brain (each side quorate alone): both serve during the
 * partition, as documented; when they meet again both pause and wait, and
 * the administrator's choice wins. */
static void test_split_brain_detected(void)
{
    Sim *s = sim_new(N, 0, N, 0);

    sim_protect_pair(s, 0);
    s->allow_both = true;
    sim_partition(s, true, true, true);
    g_assert_true(sim_serves(s, 0) && sim_serves(s, 1));
    sim_partition(s, false, true, true);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_WAIT_ADMIN);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_WAIT_ADMIN);
    g_assert_cmpint(cluster_fsm_wait_reason(s->node[0].fsm), ==, WAIT_SPLIT_BRAIN);
    g_assert_false(sim_serves(s, 0) || sim_serves(s, 1));
    s->allow_both = false;
    g_assert_true(sim_admin(s, 1, ADMIN_FAILOVER, NULL));
    g_assert_true(sim_serves(s, 1));
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_SECONDARY_STARTING);
    g_assert_cmpuint(s->node[0].disk.generation, ==, 5);
    sim_free(s);
}

/* Double failure: the primary's node dies, the secondary takes over, then
 * dies too. Whichever comes back first waits; the newest copy wins. */
static void test_double_failure_newest_wins(void)
{
    Sim *s = sim_new(N, 0, N, 0);

    sim_protect_pair(s, 0);
    sim_kill(s, 0, true);
    sim_kill(s, 1, true);
    sim_assert_disk(s, 0, P, 2);
    sim_assert_disk(s, 1, P, 3);
    sim_start(s, 0);
    sim_advance(s, 60000);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_WAIT_ADMIN);
    g_assert_cmpuint(s->node[0].starts, ==, 1); /* only the first, before the failures */
    sim_start(s, 1);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_PRIMARY_STARTING);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_IDLE);
    sim_free(s);
}

/* Both nodes lose power at once while protected: equal generations, and
 * the administrator decides. */
static void test_double_failure_tie(void)
{
    Sim *s = sim_new(N, 0, N, 0);

    sim_protect_pair(s, 0);
    cluster_fsm_free(s->node[0].fsm);
    cluster_fsm_free(s->node[1].fsm);
    s->node[0].fsm = s->node[1].fsm = NULL;
    s->node[0].vmm = s->node[1].vmm = VMM_NONE;
    sim_start(s, 1);
    sim_start(s, 0);
    g_assert_cmpint(cluster_fsm_wait_reason(s->node[0].fsm), ==, WAIT_TIE);
    g_assert_cmpint(cluster_fsm_wait_reason(s->node[1].fsm), ==, WAIT_TIE);
    sim_free(s);
}

/* The primary's colo-vmm loses its secondary while both colods are
 * members: claim, the peer stops its side and answers, then failover. */
static void test_vmm_peer_lost_claim(void)
{
    Sim *s = sim_new(N, 0, N, 0);

    sim_protect_pair(s, 0);
    s->hold = true;
    sim_vmm(s, 0, VMM_EV_PEER_LOST);
    sim_expect(s, 0, "send failover-claim");
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_FAILOVER_CLAIMED);
    g_assert_false(sim_serves(s, 0)); /* nothing released before the answer */
    s->hold = false;
    sim_run(s);
    /* ...and the stopped secondary is re-protected at once. */
    sim_expect(s, 1, "stop, send failover-ack, persist syncing 4, start secondary");
    sim_expect(s, 0, "persist primary 3, failover, persist primary 4, send protect-request");
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_STARTING);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PROTECT_REQUESTED);
    sim_free(s);
}

/* The secondary's colo-vmm loses the primary whose colod is a member: the
 * secondary does not take over on its own; the primary decides. */
static void test_secondary_waits_for_primary(void)
{
    Sim *s = sim_new(N, 0, N, 0);

    sim_protect_pair(s, 0);
    sim_vmm(s, 1, VMM_EV_PEER_LOST);
    sim_expect(s, 1, "");
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_PROTECTED);
    /* The primary's colo-vmm hangs and is killed (QMP timeout). */
    sim_vmm(s, 0, VMM_EV_EXITED);
    sim_expect(s, 1, "persist primary 3, failover, persist primary 4, send protect-request");
    g_assert_true(sim_serves(s, 1));
    /* The standing-by node's hello was its last: it is protected now, not
     * never (seen on real corosync, tests/colod/test-colod-proxy.py). */
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_SECONDARY_STARTING);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_PROTECT_REQUESTED);
    sim_free(s);
}

/* Both claim at once: CPG's order decides, the same on both nodes. */
static void test_claim_race(void)
{
    for (int first = 0; first < 2; first++) {
        Sim *s = sim_new(N, 0, N, 0);

        sim_protect_pair(s, 0);
        s->hold = true;
        if (first == 0) {
            sim_vmm(s, 0, VMM_EV_PEER_LOST);
            g_assert_true(sim_admin(s, 1, ADMIN_FAILOVER, NULL));
        } else {
            g_assert_true(sim_admin(s, 1, ADMIN_FAILOVER, NULL));
            sim_vmm(s, 0, VMM_EV_PEER_LOST);
        }
        g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_FAILOVER_CLAIMED);
        g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_FAILOVER_CLAIMED);
        s->hold = false;
        sim_run(s);
        /* The first claim won; the other side stopped and is being
         * protected anew. */
        g_assert_true(sim_serves(s, first));
        g_assert_cmpint(sim_state(s, first), ==, CLUSTER_PROTECT_REQUESTED);
        g_assert_cmpint(sim_state(s, !first), ==, CLUSTER_SECONDARY_STARTING);
        g_assert_cmpuint(s->node[first].disk.generation, ==, 4); /* 3 at failover, 4 to protect */
        sim_free(s);
    }
}

/* A claim nobody answers (the peer's colod is hung but still a member):
 * after claim-ms the claimant goes on. */
static void test_claim_timeout(void)
{
    Sim *s = sim_new(N, 0, N, 0);

    sim_protect_pair(s, 0);
    s->node[1].deaf = true;
    sim_vmm(s, 0, VMM_EV_PEER_LOST);
    sim_advance(s, 4999);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_FAILOVER_CLAIMED);
    sim_advance(s, 1);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_ALONE);
    sim_assert_reason(s, 0, "did not answer the claim in time");
    sim_free(s);
}

/* A frozen primary thaws after its peer took over: its colo-vmm reports
 * the secondary lost and it claims the VM at the generation it computes
 * from what it knew, the one the peer's failover wrote too. The peer runs
 * the VM at that generation and must not yield to the stale copy (seen in
 * tests/cluster/run-matrix, stop-host:primary: the client stalled for
 * good, what the peer had acknowledged was gone). */
static void test_stale_claim_refused(void)
{
    Sim *s = sim_new(N, 0, N, 0);
    CpgMsg m = { .type = CPG_MSG_FAILOVER_CLAIM };
    uint64_t gen;
    ClusterState before;
    g_autofree char *trace = NULL;

    sim_protect_pair(s, 0);
    /* node 1 loses node 0 (frozen: its colod sees nothing) and fails over. */
    s->node[0].deaf = true;
    sim_partition(s, true, false, true);
    g_assert_true(sim_serves(s, 1));
    gen = s->node[1].disk.generation;
    sim_partition(s, false, true, true);
    s->node[0].deaf = false;
    before = sim_state(s, 1);
    g_free(sim_take(s, 1));
    /* The thawed node's claim, at the generation node 1 runs. */
    m.generation = gen;
    sim_inject(s, 0, &m);
    trace = sim_take(s, 1);
    g_assert_null(strstr(trace, "stop"));
    g_assert_null(strstr(trace, "failover-ack"));
    g_assert_true(sim_serves(s, 1));
    g_assert_false(sim_serves(s, 0));
    /* It runs on (and protects the thawed node once that stands by). */
    g_assert_true(before == CLUSTER_PRIMARY_ALONE || before == CLUSTER_PROTECT_REQUESTED);
    g_assert_true(sim_state(s, 1) == CLUSTER_PRIMARY_ALONE || sim_state(s, 1) == CLUSTER_PROTECT_REQUESTED);
    sim_free(s);
}

static void test_switchover(void)
{
    for (int from = 0; from < 2; from++) {
        Sim *s = sim_new(N, 0, N, 0);

        sim_protect_pair(s, 0);
        g_assert_true(sim_admin(s, from, ADMIN_SWITCHOVER, NULL));
        g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_PROTECT_REQUESTED); /* alone, re-protecting */
        g_assert_true(sim_serves(s, 1));
        sim_expect(s, 0, from == 0 ? "send switchover, stop, send failover-ack, persist syncing 4, start secondary"
                                   : "stop, send failover-ack, persist syncing 4, start secondary");
        /* And back again, once protected. */
        sim_vmm(s, 0, VMM_EV_READY);
        sim_vmm(s, 0, VMM_EV_PROTECT_DONE);
        sim_vmm(s, 1, VMM_EV_PROTECT_DONE);
        g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_PRIMARY_PROTECTED);
        g_assert_true(sim_admin(s, 0, ADMIN_SWITCHOVER, NULL));
        g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PROTECT_REQUESTED);
        g_assert_true(sim_serves(s, 0));
        sim_free(s);
    }
}

static void test_unprotect_protect(void)
{
    Sim *s = sim_new(N, 0, N, 0);
    g_autoptr(GError) err = NULL;

    sim_protect_pair(s, 0);
    g_assert_false(sim_admin(s, 1, ADMIN_UNPROTECT, &err));
    g_assert_nonnull(strstr(err->message, "unprotect is for the primary"));
    g_assert_true(sim_admin(s, 0, ADMIN_UNPROTECT, NULL));
    sim_expect(s, 0, "send failover-claim, persist primary 3, failover");
    sim_expect(s, 1, "stop, send failover-ack");
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_ALONE);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_IDLE);
    sim_advance(s, 3600 * 1000);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_ALONE); /* stays unprotected */
    g_assert_true(sim_admin(s, 0, ADMIN_PROTECT, NULL));
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PROTECT_REQUESTED);
    sim_free(s);
}

/* Protection that does not work out: refused, unanswered, failed, or the
 * secondary dying mid-sync; each ends in a later retry. */
static void test_protect_failures(void)
{
    Sim *s = sim_new(P, 1, N, 0);

    sim_start(s, 0);
    sim_start(s, 1);
    sim_vmm(s, 0, VMM_EV_READY);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_STARTING);
    /* The secondary's colo-vmm dies while starting. */
    sim_vmm(s, 1, VMM_EV_EXITED);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_IDLE);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_ALONE);
    sim_assert_reason(s, 0, "next protect attempt in 10000 ms");
    sim_advance(s, 10000);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PROTECT_REQUESTED);
    sim_vmm(s, 1, VMM_EV_READY);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PROTECTING);
    /* The sync fails on the primary: cancelled, the secondary stopped. */
    sim_vmm(s, 0, VMM_EV_PROTECT_FAILED);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_ALONE);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_IDLE);
    g_assert_cmpint(s->node[1].vmm, ==, VMM_NONE);
    sim_advance(s, 10000);
    /* No answer at all (a deaf peer). */
    g_free(sim_take(s, 0));
    s->node[1].deaf = true;
    sim_vmm(s, 1, VMM_EV_EXITED); /* the request started it; gone again */
    sim_advance(s, 10000);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PROTECT_REQUESTED);
    sim_advance(s, 30000);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_ALONE);
    sim_assert_reason(s, 0, "no answer to the protect request");
    s->node[1].deaf = false;
    /* The sync fails on the secondary. */
    sim_advance(s, 10000);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_STARTING);
    sim_vmm(s, 1, VMM_EV_READY);
    sim_vmm(s, 1, VMM_EV_PROTECT_FAILED);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_IDLE);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_ALONE);
    sim_assert_disk(s, 1, Y, s->node[1].disk.generation);
    sim_free(s);
}

/* The VM's colo-vmm exits on a primary alone: not restarted blindly. */
/* The secondary's colod (and with it its colo-vmm) killed in the initial
 * sync's last moment: the primary cancels the protect, but its colo-vmm
 * has entered COLO already (migrate_cancel came too late). It reports
 * COLO running, then broken: colod tells it to leave COLO, once, or no
 * protect could start again (run-matrix sigkill-colod:secondary at
 * snapshot-protect: "There's a migration process in progress" for 120 s). */
static void test_protect_cancelled_into_colo(void)
{
    Sim *s = sim_new(P, 1, N, 0);

    sim_start_protecting(s);
    g_free(sim_take(s, 0));
    sim_kill(s, 1, true);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_ALONE);
    sim_expect(s, 0, "cancel");
    sim_vmm(s, 0, VMM_EV_PROTECT_DONE);
    sim_expect(s, 0, "failover");
    sim_assert_reason(s, 0, "entered COLO after its protect was cancelled");
    g_assert_false(s->node[0].in_colo);
    g_assert_true(sim_serves(s, 0));
    /* Its COLO broke too before it left: nothing more to do. */
    sim_vmm(s, 0, VMM_EV_PEER_LOST);
    sim_expect(s, 0, "");
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_ALONE);
    /* The peer comes back: protected again. */
    sim_start(s, 1);
    sim_vmm(s, 1, VMM_EV_READY);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PROTECTING);
    sim_vmm(s, 1, VMM_EV_PROTECT_DONE);
    sim_vmm(s, 0, VMM_EV_PROTECT_DONE);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_PROTECTED);
    sim_free(s);
}

static void test_vmm_exit_not_restarted(void)
{
    Sim *s = sim_new(P, 1, N, 0);

    sim_start(s, 0);
    sim_advance(s, 30000);
    g_assert_true(sim_admin(s, 0, ADMIN_FAILOVER, NULL));
    sim_vmm(s, 0, VMM_EV_READY);
    sim_vmm(s, 0, VMM_EV_EXITED);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_WAIT_ADMIN);
    g_assert_cmpint(cluster_fsm_wait_reason(s->node[0].fsm), ==, WAIT_VMM_EXITED);
    sim_advance(s, 3600 * 1000);
    sim_start(s, 1); /* a peer appearing does not restart it either */
    g_assert_cmpuint(s->node[0].starts, ==, 1);
    g_assert_true(sim_admin(s, 0, ADMIN_FAILOVER, NULL));
    g_assert_cmpuint(s->node[0].starts, ==, 2);
    sim_free(s);
}

/* Quorum lost by a primary alone (the peer away for long): pause, and
 * resume when quorum is back, as no peer could have gone on. */
static void test_quorum_lost_alone(void)
{
    Sim *s = sim_new(P, 1, N, 0);

    sim_start(s, 0);
    sim_advance(s, 30000);
    g_assert_true(sim_admin(s, 0, ADMIN_FAILOVER, NULL));
    sim_vmm(s, 0, VMM_EV_READY);
    sim_partition(s, false, false, false);
    sim_expect(s, 0, "persist primary 2, start primary, pause");
    g_assert_false(sim_serves(s, 0));
    sim_partition(s, false, true, true);
    sim_expect(s, 0, "resume");
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_ALONE);
    sim_free(s);
}

/* Quorum lost while protected, and back without the peer: the peer may
 * have gone on, so the VM stays paused until an administrator decides. */
static void test_quorum_back_peer_missing(void)
{
    Sim *s = sim_new(N, 0, N, 0);

    sim_protect_pair(s, 0);
    sim_partition(s, true, false, false);
    sim_kill(s, 1, true);
    sim_partition(s, false, true, true);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_WAIT_ADMIN);
    g_assert_cmpint(cluster_fsm_wait_reason(s->node[0].fsm), ==, WAIT_PEER_MISSING);
    g_assert_false(sim_serves(s, 0));
    g_assert_true(sim_admin(s, 0, ADMIN_FAILOVER, NULL));
    sim_expect(s, 0, "pause, persist primary 3, failover, resume");
    g_assert_true(sim_serves(s, 0));
    sim_free(s);
}

/* A state file that cannot be written: no failover without a durable
 * generation; the VM pauses until an administrator steps in. */
static void test_persist_failure(void)
{
    Sim *s = sim_new(N, 0, N, 0);

    sim_protect_pair(s, 0);
    s->node[1].fail_persist = true;
    sim_kill(s, 0, true);
    sim_expect(s, 1, "persist failed, pause");
    g_assert_cmpint(cluster_fsm_wait_reason(s->node[1].fsm), ==, WAIT_PERSIST_FAILED);
    g_assert_false(sim_serves(s, 1));
    g_assert_true(sim_admin(s, 1, ADMIN_FAILOVER, NULL));
    sim_expect(s, 1, "persist primary 3, failover, resume"); /* 3 never reached the disk */
    g_assert_true(sim_serves(s, 1));
    sim_free(s);
}

/* The VM kept by an administrator after a failed write, its peer standing
 * by (it said so before the failure, and says nothing more): protected
 * at once, not left alone. */
static void test_kept_vm_protected(void)
{
    Sim *s = sim_new(P, 1, N, 0);

    sim_start(s, 0);
    sim_start(s, 1);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_IDLE);
    s->node[0].fail_persist = true;
    sim_vmm(s, 0, VMM_EV_READY);
    g_assert_cmpint(cluster_fsm_wait_reason(s->node[0].fsm), ==, WAIT_PERSIST_FAILED);
    g_free(sim_take(s, 0));
    g_assert_true(sim_admin(s, 0, ADMIN_FAILOVER, NULL));
    sim_expect(s, 0, "persist primary 2, failover, resume, persist primary 3, send protect-request");
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_STARTING);
    sim_free(s);
}

/* colod shutdown: with its VM (the peer takes over at once), or for a
 * restart (the peer waits for it, and takes over only after the grace). */
static void test_shutdown(void)
{
    Sim *s = sim_new(N, 0, N, 0);
    g_autoptr(GArray) acts = cluster_actions_new();

    sim_protect_pair(s, 0);
    cluster_fsm_shutdown(s->node[0].fsm, false, acts);
    g_assert_cmpint(cluster_action_at(acts, 0)->type, ==, ACT_STOP_VMM);
    g_assert_cmpint(cluster_action_at(acts, 1)->type, ==, ACT_SEND);
    g_assert_true(cluster_action_at(acts, 1)->msg.type == CPG_MSG_SHUTDOWN && !cluster_action_at(acts, 1)->msg.restart);
    s->node[0].vmm = VMM_NONE;
    s->node[0].in_colo = false;
    g_queue_push_tail(&s->queue, NULL); /* placeholder removed below */
    g_queue_pop_tail(&s->queue);
    {
        CpgMsg m = cluster_action_at(acts, 1)->msg;

        sim_inject(s, 0, &m);
    }
    sim_expect(s, 1, "persist primary 3, failover");
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_STOPPED);
    sim_free(s);

    /* Restart: nothing until the grace runs out. */
    s = sim_new(N, 0, N, 0);
    sim_protect_pair(s, 0);
    {
        CpgMsg m = { .type = CPG_MSG_SHUTDOWN, .sender = 1, .restart = true };

        sim_inject(s, 0, &m);
    }
    sim_kill(s, 0, false);
    sim_advance(s, 29999);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_PROTECTED);
    sim_advance(s, 1);
    sim_expect(s, 1, "persist primary 3, failover");
    sim_free(s);
}

/* Messages from strangers, for other nodes, before a join, or out of
 * order are ignored; a stale protect request is refused. */
static void test_odd_messages(void)
{
    Sim *s = sim_new(N, 0, N, 0);
    g_autoptr(GArray) acts = cluster_actions_new();
    CpgMsg m = { .type = CPG_MSG_FAILOVER_CLAIM, .sender = 9, .generation = 100 };

    sim_protect_pair(s, 0);
    /* A third node's claim. */
    cluster_fsm_message(s->node[1].fsm, &m, acts);
    g_assert_cmpuint(acts->len, ==, 1);
    g_assert_cmpint(cluster_action_at(acts, 0)->type, ==, ACT_LOG);
    g_assert_nonnull(strstr(cluster_action_at(acts, 0)->text, "not the configured peer"));
    cluster_actions_clear(acts);
    /* The peer's claim addressed to someone else. */
    m.sender = 1;
    m.type = CPG_MSG_FAILOVER_ACK;
    m.target = 7;
    cluster_fsm_message(s->node[1].fsm, &m, acts);
    g_assert_cmpuint(acts->len, ==, 0);
    /* Answers nobody asked for. */
    m.target = 0;
    m.generation = 2;
    sim_inject(s, 0, &m);
    m.type = CPG_MSG_PROTECT_ACK;
    m.accepted = true;
    sim_inject(s, 1, &m);
    sim_expect(s, 0, "");
    sim_expect(s, 1, "");
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_PROTECTED);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_PROTECTED);
    /* A protect request while protected, or of an old generation. */
    m.type = CPG_MSG_PROTECT_REQUEST;
    m.generation = 1;
    sim_inject(s, 0, &m);
    sim_expect(s, 1, "send protect-ack");
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_PROTECTED);
    /* A switchover request to the primary. */
    m.type = CPG_MSG_SWITCHOVER;
    sim_inject(s, 1, &m);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_PROTECTED);
    sim_free(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/colod/fsm/fresh-pair", test_fresh_pair);
    g_test_add_func("/colod/fsm/newest-generation-starts", test_newest_generation_starts);
    g_test_add_func("/colod/fsm/tie-and-unknown-wait", test_tie_and_unknown_wait);
    g_test_add_func("/colod/fsm/syncing-refused", test_syncing_refused);
    g_test_add_func("/colod/fsm/unknown-resolves", test_unknown_resolves);
    g_test_add_func("/colod/fsm/primary-node-dies", test_primary_node_dies);
    g_test_add_func("/colod/fsm/secondary-node-dies", test_secondary_node_dies);
    g_test_add_func("/colod/fsm/primary-colod-killed", test_primary_colod_killed);
    g_test_add_func("/colod/fsm/adopt-alone", test_adopt_alone);
    g_test_add_func("/colod/fsm/sole-copy", test_sole_copy);
    g_test_add_func("/colod/fsm/sole-copy-protecting", test_sole_copy_protecting);
    g_test_add_func("/colod/fsm/sync-outcome-after-primary-colod-left", test_sync_outcome_after_primary_colod_left);
    g_test_add_func("/colod/fsm/adopt-secondary", test_adopt_secondary);
    g_test_add_func("/colod/fsm/partition-qdevice", test_partition_qdevice);
    g_test_add_func("/colod/fsm/partition-no-quorum", test_partition_no_quorum);
    g_test_add_func("/colod/fsm/split-brain-detected", test_split_brain_detected);
    g_test_add_func("/colod/fsm/double-failure-newest-wins", test_double_failure_newest_wins);
    g_test_add_func("/colod/fsm/double-failure-tie", test_double_failure_tie);
    g_test_add_func("/colod/fsm/vmm-peer-lost-claim", test_vmm_peer_lost_claim);
    g_test_add_func("/colod/fsm/secondary-waits-for-primary", test_secondary_waits_for_primary);
    g_test_add_func("/colod/fsm/claim-race", test_claim_race);
    g_test_add_func("/colod/fsm/claim-timeout", test_claim_timeout);
    g_test_add_func("/colod/fsm/stale-claim-refused", test_stale_claim_refused);
    g_test_add_func("/colod/fsm/switchover", test_switchover);
    g_test_add_func("/colod/fsm/unprotect-protect", test_unprotect_protect);
    g_test_add_func("/colod/fsm/protect-failures", test_protect_failures);
    g_test_add_func("/colod/fsm/protect-cancelled-into-colo", test_protect_cancelled_into_colo);
    g_test_add_func("/colod/fsm/vmm-exit-not-restarted", test_vmm_exit_not_restarted);
    g_test_add_func("/colod/fsm/quorum-lost-alone", test_quorum_lost_alone);
    g_test_add_func("/colod/fsm/quorum-back-peer-missing", test_quorum_back_peer_missing);
    g_test_add_func("/colod/fsm/persist-failure", test_persist_failure);
    g_test_add_func("/colod/fsm/kept-vm-protected", test_kept_vm_protected);
    g_test_add_func("/colod/fsm/shutdown", test_shutdown);
    g_test_add_func("/colod/fsm/odd-messages", test_odd_messages);
    return g_test_run();
}
