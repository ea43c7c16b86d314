/* colod's role hook ([hooks] role-change in colo.conf(5)): a program run
 * as `PROGRAM VM ROLE REASON` at start and whenever this node's guest
 * starts or stops being the one that serves (ROLE: primary, secondary,
 * none), e.g. to move a floating address to the primary. Asynchronous:
 * colod never waits for it. One runs at a time; a role that changes while
 * one runs is run next (only the latest), so the last run always says the
 * current role. A run that outlives its timeout is killed. */
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

/* @program NULL: no hook (colod_hooks_role does nothing). */
ColodHooks *colod_hooks_new(const char *program, const char *vm_name, uint32_t timeout_ms);
/* Runs the program with @role and @reason if @role is not what the last
 * run said (the first call always runs). */
void colod_hooks_role(ColodHooks *h, HookRole role, const char *reason);
/* Whether a run is in progress (for tests). */
bool colod_hooks_busy(const ColodHooks *h);
/* A run in progress goes on without colod (it is not killed). */
void colod_hooks_free(ColodHooks *h);

#endif
