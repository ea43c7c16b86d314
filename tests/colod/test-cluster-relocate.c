/* colod's relocation by postcopy (cluster-fsm-relocate.c), driven through
 * the simulated two-node cluster (cluster-sim.c, which fails any test in
 * which both nodes serve): switchover when the peer is not a secondary,
 * the generations it writes, and each failure before and after the
 * postcopy phase began. Traces as in test-cluster-fsm.c. */
#include "config.h"

#include "cluster-sim.h"

#include <glib.h>
#include <string.h>

#define P COLOD_ROLE_PRIMARY
#define S COLOD_ROLE_SECONDARY
#define N COLOD_ROLE_NONE
#define Y COLOD_ROLE_SYNCING

/* Node 0 runs the VM alone (generation 3), node 1 stands by (its copy
 * from generation 2, discarded). */
static Sim *alone_pair(void)
{
    Sim *s = sim_new(N, 0, N, 0);

    sim_protect_pair(s, 0);
    g_assert_true(sim_admin(s, 0, ADMIN_UNPROTECT, NULL));
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_ALONE);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_IDLE);
    sim_assert_disk(s, 0, P, 3);
    g_free(sim_take(s, 0));
    g_free(sim_take(s, 1));
    return s;
}

/* Up to the commit point: node 1's colo-vmm -incoming answers, node 0
 * migrates. */
static void start_relocation(Sim *s, int by)
{
    g_assert_true(sim_admin(s, by, ADMIN_SWITCHOVER, NULL));
    sim_expect(s, 0, by == 0 ? "send relocate-request" : "send relocate-request");
    sim_expect(s, 1, by == 1 ? "send switchover, persist syncing 4, start target" : "persist syncing 4, start target");
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_RELOCATE_REQUESTED);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_RELOCATE_TARGET);
    sim_vmm(s, 1, VMM_EV_READY);
    sim_expect(s, 1, "send relocate-ack");
    sim_expect(s, 0, "relocate");
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_RELOCATING);
    g_assert_true(sim_serves(s, 0));
}

/* The move: postcopy on both sides (the target runs the guest at the new
 * generation), the end on both, and node 1 protects node 0 at once. */
static void test_relocate(void)
{
    for (int by = 0; by < 2; by++) {
        Sim *s = alone_pair();

        start_relocation(s, by);
        sim_vmm(s, 0, VMM_EV_POSTCOPY);
        g_assert_false(sim_serves(s, 0));
        sim_vmm(s, 1, VMM_EV_POSTCOPY);
        sim_expect(s, 1, "persist primary 4");
        g_assert_true(sim_serves(s, 1));
        sim_assert_disk(s, 0, P, 3);
        sim_assert_disk(s, 1, P, 4);
        /* The target ends first: the source, told so by its hello, stops
         * its side (its colo-vmm's own end may come later or never), stands
         * by and becomes the secondary. */
        sim_vmm(s, 1, VMM_EV_MIGRATED);
        sim_expect(s, 0, "stop, persist syncing 5, start secondary");
        sim_expect(s, 1, "persist primary 5, send protect-request");
        sim_vmm(s, 0, VMM_EV_READY);
        sim_vmm(s, 0, VMM_EV_PROTECT_DONE);
        sim_vmm(s, 1, VMM_EV_PROTECT_DONE);
        g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_PRIMARY_PROTECTED);
        g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_SECONDARY_PROTECTED);
        sim_assert_disk(s, 0, S, 5);
        sim_assert_disk(s, 1, P, 5);
        sim_free(s);
    }
}

/* The other order of the ends: the source's first (its hello says it
 * stands by before the target's colo-vmm reported its end). */
static void test_relocate_source_ends_first(void)
{
    Sim *s = alone_pair();

    start_relocation(s, 0);
    sim_vmm(s, 0, VMM_EV_POSTCOPY);
    sim_vmm(s, 1, VMM_EV_POSTCOPY);
    s->hold = true;
    sim_vmm(s, 0, VMM_EV_MIGRATED); /* the sim then ends the target too */
    s->hold = false;
    sim_run(s);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_PROTECT_REQUESTED);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_SECONDARY_STARTING);
    sim_free(s);
}

/* Protect that does not converge: switchover drops it and moves the VM. */
static void test_relocate_while_protecting(void)
{
    Sim *s = sim_new(P, 1, N, 0);

    sim_start_protecting(s);
    g_assert_true(sim_admin(s, 0, ADMIN_SWITCHOVER, NULL));
    sim_expect(s, 0, "cancel, send relocate-request");
    sim_expect(s, 1, "stop, persist syncing 3, start target");
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_RELOCATE_TARGET);
    sim_vmm(s, 1, VMM_EV_READY);
    sim_vmm(s, 1, VMM_EV_MIGRATED); /* the target's end: the source stops on its hello */
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_PROTECT_REQUESTED);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_SECONDARY_STARTING);
    sim_assert_disk(s, 1, P, 4);
    g_assert_true(sim_serves(s, 1));
    sim_free(s);
}

/* When it does not apply: no peer, a move under way. */
static void test_relocate_refused(void)
{
    Sim *s = alone_pair();
    g_autoptr(GError) err = NULL;

    sim_free(s);
    s = alone_pair();
    sim_kill(s, 1, true);
    g_assert_false(sim_admin(s, 0, ADMIN_SWITCHOVER, &err));
    g_assert_nonnull(strstr(err->message, "not in the group"));
    g_clear_error(&err);
    sim_free(s);

    /* A peer in the middle of a relocation is no target again. */
    s = alone_pair();
    start_relocation(s, 0);
    g_assert_false(sim_admin(s, 1, ADMIN_SWITCHOVER, &err));
    g_assert_nonnull(strstr(err->message, "switchover needs a protected VM"));
    g_clear_error(&err);
    g_assert_false(sim_admin(s, 0, ADMIN_SWITCHOVER, &err));
    g_assert_nonnull(strstr(err->message, "(state relocating)"));
    sim_free(s);
}

/* A VM with disks is not moved by postcopy (its disks would stay behind):
 * switchover protects it first, then the secondary takes over; from
 * either node, also while a protect is under way. */
static void test_switchover_with_disks(void)
{
    for (int by = 0; by < 2; by++) {
        Sim *s = sim_new(N, 0, N, 0);

        s->has_disks = true;
        sim_protect_pair(s, 0);
        g_assert_true(sim_admin(s, 0, ADMIN_UNPROTECT, NULL));
        g_free(sim_take(s, 0));
        g_free(sim_take(s, 1));
        g_assert_true(sim_admin(s, by, ADMIN_SWITCHOVER, NULL));
        sim_expect(s, 0, "persist primary 4, send protect-request");
        sim_expect(s, 1, by ? "send switchover, persist syncing 4, start secondary" : "persist syncing 4, start secondary");
        sim_assert_reason(s, 0, "protect-requested");
        sim_vmm(s, 1, VMM_EV_READY);
        sim_vmm(s, 1, VMM_EV_PROTECT_DONE);
        sim_vmm(s, 0, VMM_EV_PROTECT_DONE);
        /* Protected: the secondary claims the VM, the old primary stops
         * and is protected again by the new one. */
        g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_PROTECT_REQUESTED);
        g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_SECONDARY_STARTING);
        sim_assert_disk(s, 1, P, 6);
        g_assert_true(sim_serves(s, 1));
        sim_free(s);
    }
    /* unprotect drops the switchover that waits for protection. */
    {
        Sim *s = sim_new(P, 1, N, 0);

        s->has_disks = true;
        sim_start(s, 0);
        sim_start(s, 1);
        sim_vmm(s, 0, VMM_EV_READY);
        g_assert_true(sim_admin(s, 0, ADMIN_SWITCHOVER, NULL));
        g_assert_true(sim_admin(s, 0, ADMIN_UNPROTECT, NULL));
        g_assert_true(sim_admin(s, 0, ADMIN_PROTECT, NULL));
        sim_vmm(s, 1, VMM_EV_READY);
        sim_vmm(s, 1, VMM_EV_PROTECT_DONE);
        sim_vmm(s, 0, VMM_EV_PROTECT_DONE);
        g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_PROTECTED);
        sim_free(s);
    }
}

/* Before postcopy every failure leaves the VM running where it ran. */
static void test_relocate_fails_before_postcopy(void)
{
    Sim *s;

    /* The target's node dies. */
    s = alone_pair();
    start_relocation(s, 0);
    sim_kill(s, 1, true);
    sim_expect(s, 0, "cancel");
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_ALONE);
    g_assert_true(sim_serves(s, 0));
    sim_assert_reason(s, 0, "relocation abandoned before postcopy");
    sim_free(s);

    /* The migration fails: the target stops when it sees the source
     * alone again, and protection is tried later. */
    s = alone_pair();
    start_relocation(s, 0);
    sim_vmm(s, 0, VMM_EV_PROTECT_FAILED);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_ALONE);
    sim_expect(s, 1, "stop");
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_IDLE);
    g_assert_true(sim_serves(s, 0));
    sim_advance(s, 10000);
    g_assert_true(sim_admin(s, 0, ADMIN_PROTECT, NULL)); /* alone_pair() unprotected it */
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PROTECT_REQUESTED);
    sim_free(s);

    /* The target's colo-vmm exits. */
    s = alone_pair();
    start_relocation(s, 0);
    sim_vmm(s, 1, VMM_EV_EXITED);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_IDLE);
    sim_expect(s, 0, "cancel");
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_ALONE);
    sim_free(s);

    /* No answer (a deaf or older peer colod). */
    s = alone_pair();
    s->node[1].deaf = true;
    g_assert_true(sim_admin(s, 0, ADMIN_SWITCHOVER, NULL));
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_RELOCATE_REQUESTED);
    sim_advance(s, 30000);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PRIMARY_ALONE);
    sim_assert_reason(s, 0, "next protect attempt");
    sim_free(s);

    /* Quorum lost: abandoned, paused as any primary. */
    s = alone_pair();
    start_relocation(s, 0);
    sim_partition(s, true, false, true);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PAUSED);
    g_assert_false(sim_serves(s, 0));
    sim_partition(s, false, true, true);
    g_assert_true(sim_serves(s, 0));
    sim_free(s);
}

/* After postcopy began a lost side loses the VM: the survivor stops its
 * half and waits for an administrator, who starts the VM afresh at a
 * newer generation. */
static void test_relocate_lost_after_postcopy(void)
{
    for (int dies = 0; dies < 2; dies++) {
        Sim *s = alone_pair();
        int other = !dies;
        g_autoptr(GError) err = NULL;

        start_relocation(s, 0);
        sim_vmm(s, 0, VMM_EV_POSTCOPY);
        sim_vmm(s, 1, VMM_EV_POSTCOPY);
        g_free(sim_take(s, 0));
        g_free(sim_take(s, 1));
        sim_kill(s, dies, true);
        sim_expect(s, other, "stop");
        g_assert_cmpint(sim_state(s, other), ==, CLUSTER_WAIT_ADMIN);
        g_assert_cmpint(cluster_fsm_wait_reason(s->node[other].fsm), ==, WAIT_RELOCATION_LOST);
        sim_assert_reason(s, other, "neither node holds the whole VM");
        sim_start(s, dies);
        if (dies == 0) {
            /* The survivor is the target, with the newest copy: it is not
             * restarted blindly, also when the old source comes back. */
            g_assert_false(sim_serves(s, 0) || sim_serves(s, 1));
            g_assert_cmpint(sim_state(s, other), ==, CLUSTER_WAIT_ADMIN);
            g_assert_true(sim_admin(s, other, ADMIN_FAILOVER, &err));
            g_assert_no_error(err);
            g_assert_cmpuint(s->node[other].disk.generation, ==, 5);
        } else {
            /* The target's node comes back holding the newest copy: as
             * after any loss of both, it starts the VM (from boot), and the
             * waiting source becomes its secondary. */
            g_assert_cmpint(sim_state(s, dies), ==, CLUSTER_PRIMARY_STARTING);
            g_assert_cmpint(sim_state(s, other), ==, CLUSTER_IDLE);
        }
        sim_free(s);
    }

    /* The migration breaks (postcopy-paused) on both sides. */
    {
        Sim *s = alone_pair();

        start_relocation(s, 0);
        sim_vmm(s, 0, VMM_EV_POSTCOPY);
        sim_vmm(s, 1, VMM_EV_POSTCOPY);
        sim_vmm(s, 1, VMM_EV_PROTECT_FAILED);
        g_assert_cmpint(cluster_fsm_wait_reason(s->node[1].fsm), ==, WAIT_RELOCATION_LOST);
        /* The source hears it from the target's hello. */
        g_assert_cmpint(cluster_fsm_wait_reason(s->node[0].fsm), ==, WAIT_RELOCATION_LOST);
        g_assert_cmpint(s->node[0].vmm, ==, VMM_NONE);
        sim_free(s);
    }
}

/* Quorum lost in postcopy: the move goes on (only the target can run the
 * VM); ended without quorum, the target pauses as any primary. */
static void test_relocate_quorum_lost_in_postcopy(void)
{
    Sim *s = alone_pair();

    start_relocation(s, 0);
    sim_vmm(s, 0, VMM_EV_POSTCOPY);
    sim_vmm(s, 1, VMM_EV_POSTCOPY);
    sim_partition(s, true, false, false);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_RELOCATING);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_RELOCATE_TARGET);
    sim_vmm(s, 1, VMM_EV_MIGRATED);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_PAUSED);
    g_assert_false(sim_serves(s, 1));
    sim_vmm(s, 0, VMM_EV_MIGRATED);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_WAIT_QUORUM);
    sim_partition(s, false, true, true);
    g_assert_true(sim_serves(s, 1));
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_SECONDARY_STARTING);
    sim_free(s);
}

/* After a relocation and a loss of both nodes, the target's copy is the
 * newest. */
static void test_relocate_generations(void)
{
    Sim *s = alone_pair();

    start_relocation(s, 0);
    sim_vmm(s, 0, VMM_EV_POSTCOPY);
    sim_vmm(s, 1, VMM_EV_POSTCOPY);
    s->node[0].deaf = true; /* gone before it could be protected */
    sim_vmm(s, 1, VMM_EV_MIGRATED);
    sim_vmm(s, 0, VMM_EV_MIGRATED);
    sim_kill(s, 0, true);
    sim_kill(s, 1, true);
    sim_assert_disk(s, 0, P, 3);
    sim_assert_disk(s, 1, P, 5); /* it began protecting node 0 (which never heard it) */
    s->node[0].deaf = false;
    sim_start(s, 0);
    sim_start(s, 1);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_PRIMARY_STARTING);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_IDLE);
    sim_free(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/colod/relocate/move", test_relocate);
    g_test_add_func("/colod/relocate/source-ends-first", test_relocate_source_ends_first);
    g_test_add_func("/colod/relocate/while-protecting", test_relocate_while_protecting);
    g_test_add_func("/colod/relocate/refused", test_relocate_refused);
    g_test_add_func("/colod/relocate/switchover-with-disks", test_switchover_with_disks);
    g_test_add_func("/colod/relocate/fails-before-postcopy", test_relocate_fails_before_postcopy);
    g_test_add_func("/colod/relocate/lost-after-postcopy", test_relocate_lost_after_postcopy);
    g_test_add_func("/colod/relocate/quorum-lost-in-postcopy", test_relocate_quorum_lost_in_postcopy);
    g_test_add_func("/colod/relocate/generations", test_relocate_generations);
    return g_test_run();
}
