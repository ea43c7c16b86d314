/* colod's hooks (hooks.h): spawned with GLib, watched from the main
 * loop, killed with its process group after the timeout. */
#include "config.h"

#include "hooks.h"

#include <glib.h>
#include <qb/qblog.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

struct ColodHooks {
    char *what;            /* "role-change", "state-change" */
    char *program;
    char *vm_name;
    uint32_t timeout_ms;
    char *last;            /* the value of the last run started, NULL before */
    GPid pid;              /* the run in progress, 0 if none */
    guint watch, timer;
    gint64 started;        /* monotonic µs */
    bool timed_out;
    char *pending;         /* the value to run once the current run ends */
    char *pending_reason;
    ColodHookDoneFunc done;
    void *done_opaque;
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

ColodHooks *colod_hooks_new(const char *what, const char *program, const char *vm_name, uint32_t timeout_ms)
{
    ColodHooks *h = g_new0(ColodHooks, 1);

    h->what = g_strdup(what);
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

static void hook_start(ColodHooks *h, const char *value, const char *reason);

static void hook_exited(GPid pid, gint status, gpointer data)
{
    ColodHooks *h = data;
    gint64 ms = (g_get_monotonic_time() - h->started) / 1000;
    bool ok = !h->timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0;

    if (h->timed_out) {
        qb_log(LOG_ERR, "%s hook (%s) did not finish in %u ms: killed", h->what, h->last, h->timeout_ms);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        qb_log(LOG_INFO, "%s hook (%s) done in %" G_GINT64_FORMAT " ms", h->what, h->last, ms);
    } else if (WIFEXITED(status)) {
        qb_log(LOG_WARNING, "%s hook (%s) failed: exit status %d after %" G_GINT64_FORMAT " ms", h->what,
               h->last, WEXITSTATUS(status), ms);
    } else {
        qb_log(LOG_WARNING, "%s hook (%s) killed by signal %d after %" G_GINT64_FORMAT " ms", h->what, h->last,
               WTERMSIG(status), ms);
    }
    g_spawn_close_pid(pid);
    h->pid = 0;
    h->watch = 0;
    g_clear_handle_id(&h->timer, g_source_remove);
    if (h->done) {
        h->done(h->done_opaque, h->last, ok);
    }
    if (h->pending) {
        g_autofree char *value = g_steal_pointer(&h->pending);
        g_autofree char *reason = g_steal_pointer(&h->pending_reason);

        hook_start(h, value, reason);
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

static void hook_start(ColodHooks *h, const char *value, const char *reason)
{
    const char *argv[] = { h->program, h->vm_name, value, reason ? reason : "", NULL };
    /* COLO_HOOK tells a program run as several hooks which one this is. */
    g_auto(GStrv) envp = g_environ_setenv(g_get_environ(), "COLO_HOOK", h->what, TRUE);
    g_autoptr(GError) err = NULL;

    g_free(h->last);
    h->last = g_strdup(value);
    h->timed_out = false;
    /* No SEARCH_PATH: the program is an absolute path (colod-config.c). */
    if (!g_spawn_async(NULL, (char **)argv, envp, G_SPAWN_DO_NOT_REAP_CHILD, hook_child_setup, NULL, &h->pid,
                       &err)) {
        qb_log(LOG_ERR, "%s hook (%s) not run: %s", h->what, value, err->message);
        h->pid = 0;
        if (h->done) {
            h->done(h->done_opaque, h->last, false);
        }
        return;
    }
    h->started = g_get_monotonic_time();
    qb_log(LOG_INFO, "%s hook: %s %s %s (pid %d): %s", h->what, h->program, h->vm_name, value, (int)h->pid,
           reason ? reason : "");
    h->watch = g_child_watch_add(h->pid, hook_exited, h);
    h->timer = g_timeout_add(h->timeout_ms, hook_timeout, h);
}

void colod_hooks_run(ColodHooks *h, const char *value, const char *reason)
{
    if (!h || !h->program) {
        return;
    }
    if (h->pid) {
        /* Only the latest value matters once this run ends. */
        g_free(h->pending);
        h->pending = g_strcmp0(value, h->last) != 0 ? g_strdup(value) : NULL;
        g_free(h->pending_reason);
        h->pending_reason = g_strdup(reason);
        return;
    }
    if (g_strcmp0(value, h->last) != 0) {
        hook_start(h, value, reason);
    }
}

void colod_hooks_role(ColodHooks *h, HookRole role, const char *reason)
{
    colod_hooks_run(h, hook_role_name(role), reason);
}

void colod_hooks_on_done(ColodHooks *h, ColodHookDoneFunc done, void *opaque)
{
    h->done = done;
    h->done_opaque = opaque;
}

bool colod_hooks_configured(const ColodHooks *h)
{
    return h && h->program;
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
    g_free(h->what);
    g_free(h->program);
    g_free(h->vm_name);
    g_free(h->last);
    g_free(h->pending);
    g_free(h->pending_reason);
    g_free(h);
}
