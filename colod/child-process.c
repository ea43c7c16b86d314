/* A process colod drives over QMP (child-process.h). */
#include "config.h"

#include "child-process.h"

#include "leftover.h"

#include <qb/qblog.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

struct ChildProcess {
    const ChildProcessKind *kind;
    void *owner;
    char *qmp_path;
    GPid pid;
    bool ours;                    /* colod's child (child watch), or adopted */
    bool exited;
    guint child_watch;
    LeftoverWatch *foreign_watch; /* an adopted one: not our child */
    QmpClient *qmp;
    guint connect_retry;
    gint64 connect_deadline;
    guint poll;
};

ChildProcess *child_process_new(const ChildProcessKind *kind, void *owner, const char *qmp_path)
{
    ChildProcess *c = g_new0(ChildProcess, 1);

    c->kind = kind;
    c->owner = owner;
    c->qmp_path = g_strdup(qmp_path);
    return c;
}

void child_process_free(ChildProcess *c)
{
    if (!c) {
        return;
    }
    g_clear_handle_id(&c->connect_retry, g_source_remove);
    g_clear_handle_id(&c->poll, g_source_remove);
    g_clear_handle_id(&c->child_watch, g_source_remove);
    leftover_unwatch(c->foreign_watch);
    qmp_client_free(c->qmp); /* no reply runs after this */
    g_free(c->qmp_path);
    g_free(c);
}

void child_process_kill(ChildProcess *c, const char *why)
{
    if (!c->exited && c->pid > 0) {
        qb_log(LOG_WARNING, "killing %s (pid %d): %s", c->kind->name, c->pid, why);
        kill(c->pid, SIGKILL);
    }
}

/* ---- its exit ------------------------------------------------------------ */

static void on_child_exit(GPid pid, gint status, gpointer data)
{
    ChildProcess *c = data;
    g_autofree char *detail = WIFEXITED(status) ? g_strdup_printf("exit status %d", WEXITSTATUS(status))
                                                : g_strdup_printf("signal %d", WTERMSIG(status));

    g_spawn_close_pid(pid);
    c->child_watch = 0;
    c->exited = true;
    c->kind->exited(c->owner, detail); /* may free @c */
}

static void on_foreign_exit(gpointer data)
{
    ChildProcess *c = data;

    c->exited = true;
    c->kind->exited(c->owner, c->kind->adopted_exit);
}

static void child_die_with_parent(gpointer data)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

bool child_process_spawn(ChildProcess *c, char **argv, const char *pid_file, bool die_with_colod, GError **error)
{
    if (!g_spawn_async(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH,
                       die_with_colod ? child_die_with_parent : NULL, NULL, &c->pid, error)) {
        return false;
    }
    c->ours = true;
    if (pid_file) {
        g_autofree char *text = g_strdup_printf("%d\n", c->pid);

        g_file_set_contents(pid_file, text, -1, NULL);
    }
    c->child_watch = g_child_watch_add(c->pid, on_child_exit, c);
    return true;
}

bool child_process_adopt(ChildProcess *c, GPid pid)
{
    c->pid = pid;
    c->foreign_watch = leftover_watch(pid, on_foreign_exit, c);
    if (!c->foreign_watch) {
        qb_log(LOG_WARNING, "%s pid %d ended while being picked up", c->kind->name, pid);
        return false;
    }
    return true;
}

bool child_process_terminate(ChildProcess *c, guint wait_ms)
{
    bool clean = false;
    int status = 0;

    g_clear_handle_id(&c->child_watch, g_source_remove); /* reaped here instead */
    kill(c->pid, SIGTERM);
    for (gint64 end = g_get_monotonic_time() + (gint64)wait_ms * 1000; g_get_monotonic_time() < end;) {
        if (c->ours ? waitpid(c->pid, &status, WNOHANG) == c->pid : kill(c->pid, 0) < 0) {
            clean = !c->ours || (WIFEXITED(status) && WEXITSTATUS(status) == 0);
            c->exited = true;
            break;
        }
        g_usleep(10000);
    }
    if (!c->exited) {
        kill(c->pid, SIGKILL);
        if (c->ours) {
            waitpid(c->pid, &status, 0);
        } else {
            leftover_kill(c->pid);
        }
        c->exited = true;
    }
    return clean;
}

bool child_process_kill_leftover(const char *name, const char *pid_file)
{
    GPid pid = leftover_pid(pid_file, name);

    if (pid <= 0) {
        return false;
    }
    qb_log(LOG_WARNING, "killing %s pid %d left by an earlier colod of this VM", name, pid);
    leftover_kill(pid);
    return true;
}

/* ---- its QMP ------------------------------------------------------------- */

static void on_closed(QmpClient *q, const GError *error, gpointer opaque)
{
    ChildProcess *c = opaque;

    /* The process's exit reports; a QMP that closed on a live process is
     * one that cannot be driven any more. */
    child_process_kill(c, c->kind->qmp_closed);
}

static void qmp_connect(ChildProcess *c);

static gboolean on_connect_retry(gpointer data)
{
    ChildProcess *c = data;

    c->connect_retry = 0;
    qmp_connect(c);
    return G_SOURCE_REMOVE;
}

static void on_ready(QmpClient *q, const GError *error, gpointer opaque)
{
    ChildProcess *c = opaque;

    if (error) {
        /* Not listening yet (a fresh process), or busy. */
        if (g_get_monotonic_time() < c->connect_deadline && !c->exited) {
            qmp_client_free(c->qmp);
            c->qmp = NULL;
            c->connect_retry = g_timeout_add(50, on_connect_retry, c);
            return;
        }
        child_process_kill(c, c->kind->qmp_silent);
        return;
    }
    c->kind->ready(c->owner, q);
}

static void qmp_connect(ChildProcess *c)
{
    c->qmp = qmp_client_new(NULL);
    if (c->kind->event) {
        qmp_client_set_event_handler(c->qmp, c->kind->event, c->owner);
    }
    qmp_client_set_closed_handler(c->qmp, on_closed, c);
    qmp_client_connect(c->qmp, c->qmp_path, c->kind->qmp_ms(c->owner), on_ready, c);
}

static gboolean on_poll(gpointer data)
{
    ChildProcess *c = data;

    if (c->qmp && qmp_client_is_ready(c->qmp)) {
        c->kind->poll(c->owner, c->qmp);
    }
    return G_SOURCE_CONTINUE;
}

void child_process_connect(ChildProcess *c, guint within_ms, guint poll_ms)
{
    c->connect_deadline = g_get_monotonic_time() + (gint64)within_ms * 1000;
    c->poll = g_timeout_add(poll_ms, on_poll, c);
    qmp_connect(c);
}

GPid child_process_pid(ChildProcess *c)
{
    return c->pid;
}

bool child_process_exited(ChildProcess *c)
{
    return c->exited;
}

QmpClient *child_process_qmp(ChildProcess *c)
{
    return c->qmp;
}
