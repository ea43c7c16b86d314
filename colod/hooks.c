/* colod's role hook (hooks.h): spawned with GLib, watched from the main
 * loop, killed with its process group after the timeout. */
#include "config.h"

#include "hooks.h"

#include <glib.h>
#include <qb/qblog.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

struct ColodHooks {
    char *program;
    char *vm_name;
    uint32_t timeout_ms;
    bool ran;              /* a run was started (or failed to start) */
    HookRole last;         /* the role of the last run started */
    GPid pid;              /* the run in progress, 0 if none */
    guint watch, timer;
    gint64 started;        /* monotonic µs */
    bool timed_out;
    bool pending;          /* a role to run once the current run ends */
    HookRole pending_role;
    char *pending_reason;
};

const char *hook_role_name(HookRole role)
{
    switch (role) {
    case HOOK_ROLE_PRIMARY:
        return "primary";
    case HOOK_ROLE_SECONDARY:
        return "secondary";
    case HOOK_ROLE_NONE:
        break;
    }
    return "none";
}

/* A paused primary serves nobody: the peer may be the one that goes on. */
HookRole hook_role_of(VmmKind vmm, bool paused)
{
    if (vmm == VMM_PRIMARY) {
        return paused ? HOOK_ROLE_NONE : HOOK_ROLE_PRIMARY;
    }
    return vmm == VMM_SECONDARY ? HOOK_ROLE_SECONDARY : HOOK_ROLE_NONE;
}

ColodHooks *colod_hooks_new(const char *program, const char *vm_name, uint32_t timeout_ms)
{
    ColodHooks *h = g_new0(ColodHooks, 1);

    h->program = g_strdup(program);
    h->vm_name = g_strdup(vm_name);
    h->timeout_ms = timeout_ms;
    return h;
}

/* In the child: a group of its own, so the timeout kills what it started. */
static void hook_child_setup(gpointer data)
{
    setpgid(0, 0);
}

static void hook_start(ColodHooks *h, HookRole role, const char *reason);

static void hook_exited(GPid pid, gint status, gpointer data)
{
    ColodHooks *h = data;
    gint64 ms = (g_get_monotonic_time() - h->started) / 1000;

    if (h->timed_out) {
        qb_log(LOG_ERR, "role-change hook (%s) did not finish in %u ms: killed", hook_role_name(h->last),
               h->timeout_ms);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        qb_log(LOG_INFO, "role-change hook (%s) done in %" G_GINT64_FORMAT " ms", hook_role_name(h->last), ms);
    } else if (WIFEXITED(status)) {
        qb_log(LOG_WARNING, "role-change hook (%s) failed: exit status %d after %" G_GINT64_FORMAT " ms",
               hook_role_name(h->last), WEXITSTATUS(status), ms);
    } else {
        qb_log(LOG_WARNING, "role-change hook (%s) killed by signal %d after %" G_GINT64_FORMAT " ms",
               hook_role_name(h->last), WTERMSIG(status), ms);
    }
    g_spawn_close_pid(pid);
    h->pid = 0;
    h->watch = 0;
    g_clear_handle_id(&h->timer, g_source_remove);
    if (h->pending) {
        g_autofree char *reason = g_steal_pointer(&h->pending_reason);

        h->pending = false;
        hook_start(h, h->pending_role, reason);
    }
}

static gboolean hook_timeout(gpointer data)
{
    ColodHooks *h = data;

    h->timer = 0;
    h->timed_out = true;
    kill(-h->pid, SIGKILL);
    kill(h->pid, SIGKILL); /* if setpgid did not happen yet */
    return G_SOURCE_REMOVE;
}

static void hook_start(ColodHooks *h, HookRole role, const char *reason)
{
    const char *argv[] = { h->program, h->vm_name, hook_role_name(role), reason ? reason : "", NULL };
    g_autoptr(GError) err = NULL;

    h->ran = true;
    h->last = role;
    h->timed_out = false;
    /* No SEARCH_PATH: the program is an absolute path (colod-config.c). */
    if (!g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, hook_child_setup, NULL, &h->pid,
                       &err)) {
        qb_log(LOG_ERR, "role-change hook (%s) not run: %s", hook_role_name(role), err->message);
        h->pid = 0;
        return;
    }
    h->started = g_get_monotonic_time();
    qb_log(LOG_INFO, "role-change hook: %s %s %s (pid %d): %s", h->program, h->vm_name, hook_role_name(role),
           (int)h->pid, reason ? reason : "");
    h->watch = g_child_watch_add(h->pid, hook_exited, h);
    h->timer = g_timeout_add(h->timeout_ms, hook_timeout, h);
}

void colod_hooks_role(ColodHooks *h, HookRole role, const char *reason)
{
    if (!h || !h->program) {
        return;
    }
    if (h->pid) {
        /* Only the latest role matters once this run ends. */
        h->pending = role != h->last;
        h->pending_role = role;
        g_free(h->pending_reason);
        h->pending_reason = g_strdup(reason);
        return;
    }
    if (!h->ran || role != h->last) {
        hook_start(h, role, reason);
    }
}

bool colod_hooks_busy(const ColodHooks *h)
{
    return h && h->pid != 0;
}

void colod_hooks_free(ColodHooks *h)
{
    if (!h) {
        return;
    }
    g_clear_handle_id(&h->watch, g_source_remove);
    g_clear_handle_id(&h->timer, g_source_remove);
    g_free(h->program);
    g_free(h->vm_name);
    g_free(h->pending_reason);
    g_free(h);
}
