#include "config.h"

#include "runstate.h"

#include <glib.h>

#define B RUN_STATE_BIT

static const struct {
    const char *name;
    uint32_t next;              /* states this one may move to */
    const char *refusal;        /* why a command not allowed here is refused */
} run_states[RUN_STATE__MAX] = {
    [RUN_STATE_PRELAUNCH] = {
        "prelaunch",
        B(RUN_STATE_RUNNING) | B(RUN_STATE_INMIGRATE) | B(RUN_STATE_FINISH_MIGRATE) |
        B(RUN_STATE_INTERNAL_ERROR) | B(RUN_STATE_SHUTDOWN),
        "The guest has not been started yet",
    },
    [RUN_STATE_RUNNING] = {
        "running",
        B(RUN_STATE_PAUSED) | B(RUN_STATE_FINISH_MIGRATE) | B(RUN_STATE_INTERNAL_ERROR) |
        B(RUN_STATE_SHUTDOWN),
        "The guest is running",
    },
    [RUN_STATE_PAUSED] = {
        "paused",
        B(RUN_STATE_RUNNING) | B(RUN_STATE_FINISH_MIGRATE) | B(RUN_STATE_INTERNAL_ERROR) |
        B(RUN_STATE_SHUTDOWN),
        "The guest is paused",
    },
    [RUN_STATE_SHUTDOWN] = {
        /* The process ends with the guest. */
        "shutdown", 0,
        "Resetting the Virtual Machine is required",
    },
    [RUN_STATE_INTERNAL_ERROR] = {
        /* A reset makes it paused; cont alone cannot. */
        "internal-error",
        B(RUN_STATE_PAUSED) | B(RUN_STATE_FINISH_MIGRATE) | B(RUN_STATE_SHUTDOWN),
        "Resetting the Virtual Machine is required",
    },
    [RUN_STATE_INMIGRATE] = {
        /* The load ends running (the source ran and nothing said stop),
         * paused, or in error; a failed load ends the process. */
        "inmigrate",
        B(RUN_STATE_RUNNING) | B(RUN_STATE_PAUSED) | B(RUN_STATE_INTERNAL_ERROR) |
        B(RUN_STATE_SHUTDOWN),
        "Guest is waiting for an incoming migration",
    },
    [RUN_STATE_FINISH_MIGRATE] = {
        /* Completed: postmigrate. Failed or cancelled: back to what the
         * guest was. Postcopy stays here until it completes. */
        "finish-migrate",
        B(RUN_STATE_POSTMIGRATE) | B(RUN_STATE_RUNNING) | B(RUN_STATE_PAUSED) |
        B(RUN_STATE_PRELAUNCH) | B(RUN_STATE_INTERNAL_ERROR) | B(RUN_STATE_SHUTDOWN),
        "Migration is not finalized yet",
    },
    [RUN_STATE_POSTMIGRATE] = {
        /* As QEMU, an operator may still run the source (the destination
         * did not start) or migrate it again. */
        "postmigrate",
        B(RUN_STATE_RUNNING) | B(RUN_STATE_FINISH_MIGRATE) | B(RUN_STATE_INTERNAL_ERROR) |
        B(RUN_STATE_SHUTDOWN),
        "The guest has been migrated away",
    },
};

#undef B

const char *run_state_name(RunState state)
{
    g_return_val_if_fail(state < RUN_STATE__MAX, "unknown");
    return run_states[state].name;
}

bool run_state_is_running(RunState state)
{
    return state == RUN_STATE_RUNNING;
}

bool run_state_needs_reset(RunState state)
{
    return state == RUN_STATE_INTERNAL_ERROR || state == RUN_STATE_SHUTDOWN;
}

bool run_state_transition_valid(RunState from, RunState to)
{
    return from < RUN_STATE__MAX && to < RUN_STATE__MAX &&
           (run_states[from].next & RUN_STATE_BIT(to)) != 0;
}

const char *run_state_refusal(RunState state)
{
    g_return_val_if_fail(state < RUN_STATE__MAX, "Invalid run state");
    return run_states[state].refusal;
}
