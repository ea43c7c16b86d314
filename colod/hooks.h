/* colod's hooks: programs run as `PROGRAM VM VALUE REASON` with
 * COLO_HOOK=WHAT in their environment, at start and whenever VALUE
 * changes. Two kinds (colo.conf(5), [hooks]):
 *   role-change: VALUE is this node's role for the clients (primary,
 *     secondary, none): whether its guest serves, e.g. to move a floating
 *     address to the primary;
 *   state-change: VALUE is colod's state (docs/colod.md), e.g. for the
 *     OCF agent to set pacemaker's promotion score the moment a secondary
 *     is protected.
 * Asynchronous: colod never waits for one. One runs at a time per kind; a
 * value that changes while one runs is run next (only the latest), so the
 * last run always says the current value. A run that outlives its timeout
 * is killed. */
#ifndef COLOD_HOOKS_H
#define COLOD_HOOKS_H

#include "colod-types.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    HOOK_ROLE_NONE,      /* no VM here, or a paused one: it serves nobody */
    HOOK_ROLE_PRIMARY,   /* this node's guest serves the clients */
    HOOK_ROLE_SECONDARY, /* a replica, kept off the wire */
} HookRole;

const char *hook_role_name(HookRole role);

/* What a colo-vmm of @vmm (paused or not) means for the clients. */
HookRole hook_role_of(VmmKind vmm, bool paused);

typedef struct ColodHooks ColodHooks;

/* @what names the kind in logs and COLO_HOOK; @program NULL: no hook
 * (colod_hooks_run does nothing). */
ColodHooks *colod_hooks_new(const char *what, const char *program, const char *vm_name, uint32_t timeout_ms);
/* Runs the program with @value and @reason if @value is not what the last
 * run said (the first call always runs). */
void colod_hooks_run(ColodHooks *h, const char *value, const char *reason);
/* colod_hooks_run with @role's name. */
void colod_hooks_role(ColodHooks *h, HookRole role, const char *reason);
/* @done is called as each run ends (exited, failed, killed or not
 * started), with the value it ran for and whether it exited 0. */
typedef void (*ColodHookDoneFunc)(void *opaque, const char *value, bool ok);
void colod_hooks_on_done(ColodHooks *h, ColodHookDoneFunc done, void *opaque);
/* Whether a program is configured. */
bool colod_hooks_configured(const ColodHooks *h);
/* Whether a run is in progress (for tests). */
bool colod_hooks_busy(const ColodHooks *h);
/* A run in progress goes on without colod (it is not killed). */
void colod_hooks_free(ColodHooks *h);

#endif
