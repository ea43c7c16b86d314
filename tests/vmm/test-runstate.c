/* The run-state table: every state named as QEMU names it, and the moves
 * that keep a VM from running where it must not. */
#include "config.h"

#include <glib.h>
#include <string.h>

#include "runstate.h"

static void test_names(void)
{
    static const char *const qemu[RUN_STATE__MAX] = {
        [RUN_STATE_PRELAUNCH] = "prelaunch", [RUN_STATE_RUNNING] = "running",
        [RUN_STATE_PAUSED] = "paused", [RUN_STATE_SHUTDOWN] = "shutdown",
        [RUN_STATE_INTERNAL_ERROR] = "internal-error", [RUN_STATE_INMIGRATE] = "inmigrate",
        [RUN_STATE_FINISH_MIGRATE] = "finish-migrate", [RUN_STATE_POSTMIGRATE] = "postmigrate",
    };

    for (int s = 0; s < RUN_STATE__MAX; s++) {
        g_assert_cmpstr(run_state_name(s), ==, qemu[s]);
        g_assert_true(run_state_refusal(s) && *run_state_refusal(s));
        g_assert_false(run_state_transition_valid(s, s));
    }
    g_assert_cmpstr(run_state_refusal(RUN_STATE_FINISH_MIGRATE), ==, "Migration is not finalized yet");
    g_assert_cmpstr(run_state_refusal(RUN_STATE_INTERNAL_ERROR), ==,
                    "Resetting the Virtual Machine is required");
}

static void test_moves(void)
{
    /* Ordinary life. */
    g_assert_true(run_state_transition_valid(RUN_STATE_PRELAUNCH, RUN_STATE_RUNNING));
    g_assert_true(run_state_transition_valid(RUN_STATE_RUNNING, RUN_STATE_PAUSED));
    g_assert_true(run_state_transition_valid(RUN_STATE_PAUSED, RUN_STATE_RUNNING));
    /* Outgoing: any stopped or running state enters the final phase, which
     * ends migrated or back where it was. */
    g_assert_true(run_state_transition_valid(RUN_STATE_PAUSED, RUN_STATE_FINISH_MIGRATE));
    g_assert_true(run_state_transition_valid(RUN_STATE_FINISH_MIGRATE, RUN_STATE_POSTMIGRATE));
    g_assert_true(run_state_transition_valid(RUN_STATE_FINISH_MIGRATE, RUN_STATE_RUNNING));
    /* Incoming: runs or pauses when the load ends. */
    g_assert_true(run_state_transition_valid(RUN_STATE_INMIGRATE, RUN_STATE_RUNNING));
    g_assert_true(run_state_transition_valid(RUN_STATE_INMIGRATE, RUN_STATE_PAUSED));
    /* Internal error needs a reset (which pauses), never a plain run. */
    g_assert_false(run_state_transition_valid(RUN_STATE_INTERNAL_ERROR, RUN_STATE_RUNNING));
    g_assert_true(run_state_transition_valid(RUN_STATE_INTERNAL_ERROR, RUN_STATE_PAUSED));
    /* Shutdown is the end; every state may end. */
    for (int s = 0; s < RUN_STATE__MAX; s++) {
        g_assert_false(run_state_transition_valid(RUN_STATE_SHUTDOWN, s));
        if (s != RUN_STATE_SHUTDOWN) {
            g_assert_true(run_state_transition_valid(s, RUN_STATE_SHUTDOWN));
        }
    }
    /* Nothing goes back to waiting for a migration, and a destination never
     * sends while it loads. */
    for (int s = 0; s < RUN_STATE__MAX; s++) {
        if (s != RUN_STATE_PRELAUNCH) {
            g_assert_false(run_state_transition_valid(s, RUN_STATE_INMIGRATE));
        }
    }
    g_assert_false(run_state_transition_valid(RUN_STATE_INMIGRATE, RUN_STATE_FINISH_MIGRATE));
    g_assert_false(run_state_transition_valid(RUN_STATE_INMIGRATE, RUN_STATE_POSTMIGRATE));
    g_assert_false(run_state_transition_valid(RUN_STATE_RUNNING, RUN_STATE_POSTMIGRATE));
    g_assert_false(run_state_transition_valid(RUN_STATE__MAX, RUN_STATE_RUNNING));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/runstate/names", test_names);
    g_test_add_func("/runstate/moves", test_moves);
    return g_test_run();
}
