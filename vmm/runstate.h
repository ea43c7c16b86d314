/* The VM's run state, with QEMU's names, and the one table of the moves
 * between states. Every change of state goes through vm_set_run_state()
 * (vm.h), which refuses a move this table does not list; the QMP dispatcher
 * asks run_state_refusal() before a command runs in a state it does not
 * allow. */
#ifndef COLO_VMM_RUNSTATE_H
#define COLO_VMM_RUNSTATE_H

#include <stdbool.h>
#include <stdint.h>

typedef enum RunState {
    RUN_STATE_PRELAUNCH,
    RUN_STATE_RUNNING,
    RUN_STATE_PAUSED,
    RUN_STATE_SHUTDOWN,
    RUN_STATE_INTERNAL_ERROR,
    RUN_STATE_INMIGRATE,        /* waiting for an incoming migration, or loading it */
    RUN_STATE_FINISH_MIGRATE,   /* stopped for the last pass of an outgoing one */
    RUN_STATE_POSTMIGRATE,      /* stopped after a completed outgoing one */
    RUN_STATE__MAX,
} RunState;

/* Sets of states, for the states a QMP command may run in. */
#define RUN_STATE_BIT(s) (1u << (s))
#define RUN_STATES_ALL ((1u << RUN_STATE__MAX) - 1)
/* States in which the guest's RAM and devices are not ours to change: a
 * migration loads them or saves them. */
#define RUN_STATES_MIGRATING (RUN_STATE_BIT(RUN_STATE_INMIGRATE) | \
                              RUN_STATE_BIT(RUN_STATE_FINISH_MIGRATE))

const char *run_state_name(RunState state);
bool run_state_is_running(RunState state);
/* internal-error and shutdown: only a reset makes such a VM runnable. */
bool run_state_needs_reset(RunState state);
/* Whether the table lists the move @from -> @to (a state to itself is not
 * a move). */
bool run_state_transition_valid(RunState from, RunState to);
/* Why a command is refused in @state, in QEMU's words where it has them. */
const char *run_state_refusal(RunState state);

#endif
