/* colod's colo-proxy driver (proxy-driver.h). One Instance per started
 * (or adopted) colo-proxy: its process and its QMP connection. An
 * Instance colod let go (stopped, replaced) reports nothing more. */
#include "config.h"

#include "proxy-driver.h"

#include "common/qmp/qmp-client.h"
#include "leftover.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <qb/qblog.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

/* A proxy that keeps dying is not started again forever: this many
 * restarts within RESTART_WINDOW_US, then colod gives up (and says so). */
#define RESTART_MAX 5
#define RESTART_WINDOW_US (60 * G_USEC_PER_SEC)
/* colo-vmm gives its proxy 2 s for `failover` (docs/colo.md). */
#define FAILOVER_CHECK_MS 3000

typedef struct Instance Instance;

struct ProxyDriver {
    ProxyDriverParams p;
    ProxyDriverVmmAliveFunc alive;
    void *opaque;
    Instance *cur;
    char *sock_path;
    char *pid_path;
    guint restarts;
    gint64 restart_window_start;
    guint restarts_in_window;
    guint cleanup_watch;     /* the running --cleanup of a dead proxy */
    GPid cleanup_pid;
    VmmKind restart_role;    /* what to start once that cleanup is done */
    bool restart_failover;
};

struct Instance {
    ProxyDriver *d;         /* NULL once let go */
    VmmKind role;
    GPid pid;
    bool child;             /* ours (child watch), or adopted (pidfd) */
    guint child_watch;
    LeftoverWatch *foreign_watch;
    QmpClient *qmp;
    guint connect_retry;
    gint64 connect_deadline;
    guint poll;
    guint failover_check;
    bool ready;
    bool exited;
    bool failed_over;       /* it said so, or was told */
    bool failover_on_ready; /* a restart that must pass traffic at once */
    ProxyDriverReadyFunc ready_fn;
    void *ready_opaque;
    JsonObject *status;     /* last query-status */
    JsonObject *stats;      /* last query-stats */
};

static void inst_free(Instance *in)
{
    g_clear_handle_id(&in->connect_retry, g_source_remove);
    g_clear_handle_id(&in->poll, g_source_remove);
    g_clear_handle_id(&in->failover_check, g_source_remove);
    g_clear_handle_id(&in->child_watch, g_source_remove);
    leftover_unwatch(in->foreign_watch);
    qmp_client_free(in->qmp);
    g_clear_pointer(&in->status, json_object_unref);
    g_clear_pointer(&in->stats, json_object_unref);
    g_free(in);
}

static void inst_kill(Instance *in, const char *why)
{
    if (!in->exited && in->pid > 0) {
        qb_log(LOG_WARNING, "killing colo-proxy (pid %d): %s", in->pid, why);
        kill(in->pid, SIGKILL);
    }
}

static void inst_ready_done(Instance *in, bool ok, const char *detail)
{
    ProxyDriverReadyFunc fn = in->ready_fn;

    in->ready_fn = NULL;
    if (fn && in->d) {
        fn(ok, detail, in->ready_opaque);
    }
}

/* ---- cleanup and restart ----------------------------------------------- */

static void driver_start_instance(ProxyDriver *d, VmmKind role, bool failover, ProxyDriverReadyFunc ready,
                                  void *opaque);

static char **cleanup_argv(ProxyDriver *d, VmmKind role)
{
    GPtrArray *a = g_ptr_array_new();

    g_ptr_array_add(a, g_strdup(d->p.proxy_path));
    g_ptr_array_add(a, g_strdup("--cleanup"));
    g_ptr_array_add(a, g_strdup("--guest-iface"));
    g_ptr_array_add(a, g_strdup(d->p.guest_iface));
    if (role != VMM_NONE) {
        g_ptr_array_add(a, g_strdup("--role"));
        g_ptr_array_add(a, g_strdup(vmm_kind_name(role)));
    }
    g_ptr_array_add(a, NULL);
    return (char **)g_ptr_array_free(a, FALSE);
}

/* Synchronous: at a stop or before an adoption, where the next proxy's
 * rules must not be removed by a cleanup still running. */
static void cleanup_now(ProxyDriver *d, VmmKind role)
{
    g_auto(GStrv) argv = cleanup_argv(d, role);
    g_autoptr(GError) err = NULL;
    g_autofree char *out = NULL;
    gint status = 0;

    if (d->p.uplink && role == VMM_PRIMARY) {
        return; /* the L2 path installs no rules */
    }
    if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &out,
                      &status, &err) ||
        !g_spawn_check_wait_status(status, &err)) {
        qb_log(LOG_ERR, "colo-proxy --cleanup on %s: %s", d->p.guest_iface, err->message);
        return;
    }
    qb_log(LOG_INFO, "colo-proxy --cleanup on %s: the dead proxy's rules are gone", d->p.guest_iface);
}

static bool restart_allowed(ProxyDriver *d)
{
    gint64 now = g_get_monotonic_time();

    if (now - d->restart_window_start > RESTART_WINDOW_US) {
        d->restart_window_start = now;
        d->restarts_in_window = 0;
    }
    return ++d->restarts_in_window <= RESTART_MAX;
}

static void on_cleanup_exit(GPid pid, gint status, gpointer data)
{
    ProxyDriver *d = data;
    g_autoptr(GError) err = NULL;

    g_spawn_close_pid(pid);
    d->cleanup_watch = 0;
    d->cleanup_pid = 0;
    if (!g_spawn_check_wait_status(status, &err)) {
        qb_log(LOG_ERR, "colo-proxy --cleanup on %s: %s", d->p.guest_iface, err->message);
    } else {
        qb_log(LOG_INFO, "colo-proxy --cleanup on %s: the dead proxy's rules are gone", d->p.guest_iface);
    }
    if (d->restart_role == VMM_NONE || d->cur) {
        return;
    }
    if (!d->alive(d->opaque)) {
        qb_log(LOG_INFO, "colo-vmm does not run: colo-proxy is not started again");
    } else if (!restart_allowed(d)) {
        qb_log(LOG_ERR, "colo-proxy ended %d times within %d s: not started again", RESTART_MAX,
               (int)(RESTART_WINDOW_US / G_USEC_PER_SEC));
    } else {
        d->restarts++;
        qb_log(LOG_NOTICE, "starting colo-proxy again as %s%s", vmm_kind_name(d->restart_role),
               d->restart_failover ? " (passing traffic: its predecessor's COLO is over)" : "");
        driver_start_instance(d, d->restart_role, d->restart_failover, NULL, NULL);
    }
    d->restart_role = VMM_NONE;
}

/* After an exit colod did not ask for: remove the rules (asynchronously:
 * colod never blocks on iptables in the event path), then start again. */
static void cleanup_and_restart(ProxyDriver *d, VmmKind role, bool failover)
{
    g_auto(GStrv) argv = cleanup_argv(d, role);
    g_autoptr(GError) err = NULL;
    GPid pid;

    d->restart_role = role;
    d->restart_failover = failover;
    if (d->cleanup_watch) {
        return; /* the running one covers it */
    }
    if (!g_spawn_async(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                       NULL, NULL, &pid, &err)) {
        qb_log(LOG_ERR, "cannot run colo-proxy --cleanup: %s", err->message);
        return;
    }
    d->cleanup_pid = pid;
    d->cleanup_watch = g_child_watch_add(pid, on_cleanup_exit, d);
}

/* A proxy about to start must not lose its fresh rules to the cleanup of
 * its dead predecessor: that one finishes first. */
static void cleanup_finish(ProxyDriver *d)
{
    int status;

    if (!d->cleanup_watch) {
        return;
    }
    g_clear_handle_id(&d->cleanup_watch, g_source_remove);
    waitpid(d->cleanup_pid, &status, 0);
    g_spawn_close_pid(d->cleanup_pid);
    d->cleanup_pid = 0;
}

static void inst_ended(Instance *in, const char *detail)
{
    ProxyDriver *d = in->d;

    in->exited = true;
    qb_log(d ? LOG_WARNING : LOG_INFO, "colo-proxy (pid %d, %s) ended: %s", in->pid, vmm_kind_name(in->role), detail);
    if (d) {
        ProxyDriverReadyFunc fn = in->ready_fn;

        d->cur = NULL;
        in->d = NULL;
        /* A primary's COLO cannot go on with a fresh proxy (its epochs start
         * again), and colo-vmm stops checkpointing when its proxy breaks:
         * the restarted one passes traffic. A secondary's holds its guest's
         * output back until the guest has taken over. */
        cleanup_and_restart(d, in->role, in->role == VMM_PRIMARY || in->failed_over);
        if (fn) {
            fn(false, detail, in->ready_opaque); /* may start another: d->cur is not @in any more */
        }
    }
    inst_free(in);
}

static void on_child_exit(GPid pid, gint status, gpointer data)
{
    Instance *in = data;
    g_autofree char *detail = WIFEXITED(status) ? g_strdup_printf("exit status %d", WEXITSTATUS(status))
                                                : g_strdup_printf("signal %d", WTERMSIG(status));

    g_spawn_close_pid(pid);
    in->child_watch = 0;
    inst_ended(in, detail);
}

static void on_foreign_exit(gpointer data)
{
    Instance *in = data;

    inst_ended(in, "it was not started by this colod: exit status unknown");
}

/* ---- QMP ---------------------------------------------------------------- */

static guint driver_qmp_ms(Instance *in)
{
    return in->d ? in->d->p.qmp_ms : 1000;
}

static void on_failover_reply(QmpClient *c, JsonNode *ret, const GError *error, gpointer opaque)
{
    Instance *in = opaque;

    if (error) {
        qb_log(LOG_ERR, "colo-proxy's failover: %s", error->message);
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
            inst_kill(in, "failover timed out");
        }
        return;
    }
    in->failed_over = true;
    qb_log(LOG_NOTICE, "colo-proxy (%s) passes traffic (failover)", vmm_kind_name(in->role));
}

static void inst_failover(Instance *in)
{
    qmp_client_execute(in->qmp, "failover", NULL, driver_qmp_ms(in) * 2, on_failover_reply, in);
}

static void on_status_reply(QmpClient *c, JsonNode *ret, const GError *error, gpointer opaque)
{
    Instance *in = opaque;

    if (error) {
        qb_log(LOG_ERR, "colo-proxy's query-status: %s", error->message);
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
            /* Hang escape: its exit then cleans up and restarts. */
            inst_kill(in, "query-status timed out");
        }
        return;
    }
    if (!JSON_NODE_HOLDS_OBJECT(ret)) {
        return;
    }
    g_clear_pointer(&in->status, json_object_unref);
    in->status = json_object_ref(json_node_get_object(ret));
    in->failed_over |= json_object_get_boolean_member_with_default(in->status, "failed-over", FALSE);
}

static void on_stats_reply(QmpClient *c, JsonNode *ret, const GError *error, gpointer opaque)
{
    Instance *in = opaque;

    if (!error && JSON_NODE_HOLDS_OBJECT(ret)) {
        g_clear_pointer(&in->stats, json_object_unref);
        in->stats = json_object_ref(json_node_get_object(ret));
    }
}

static void inst_poll_now(Instance *in)
{
    qmp_client_execute(in->qmp, "query-status", NULL, driver_qmp_ms(in), on_status_reply, in);
    qmp_client_execute(in->qmp, "query-stats", NULL, driver_qmp_ms(in), on_stats_reply, in);
}

static gboolean on_poll(gpointer data)
{
    Instance *in = data;

    if (in->qmp && qmp_client_is_ready(in->qmp)) {
        inst_poll_now(in);
    }
    return G_SOURCE_CONTINUE;
}

static gboolean on_failover_check(gpointer data)
{
    Instance *in = data;

    in->failover_check = 0;
    if (!in->failed_over && in->qmp && qmp_client_is_ready(in->qmp)) {
        qb_log(LOG_WARNING, "colo-proxy (%s) did not fail over with colo-vmm: telling it", vmm_kind_name(in->role));
        inst_failover(in);
    }
    return G_SOURCE_REMOVE;
}

static void on_closed(QmpClient *c, const GError *error, gpointer opaque)
{
    /* A proxy whose control socket closed cannot be driven any more; its
     * exit then cleans up. */
    inst_kill(opaque, "its control connection closed");
}

static void inst_connect(Instance *in);

static gboolean on_connect_retry(gpointer data)
{
    Instance *in = data;

    in->connect_retry = 0;
    inst_connect(in);
    return G_SOURCE_REMOVE;
}

/* The role colo-proxy's greeting names ({"colo-proxy": {"role"}}). */
static VmmKind greeting_role(JsonObject *greeting)
{
    JsonObject *cp = greeting && json_object_has_member(greeting, "colo-proxy")
                         ? json_object_get_object_member(greeting, "colo-proxy")
                         : NULL;
    const char *role = cp ? json_object_get_string_member_with_default(cp, "role", "") : "";

    return g_strcmp0(role, "primary") == 0 ? VMM_PRIMARY : g_strcmp0(role, "secondary") == 0 ? VMM_SECONDARY : VMM_NONE;
}

static void on_ready(QmpClient *c, const GError *error, gpointer opaque)
{
    Instance *in = opaque;

    if (error) {
        if (g_get_monotonic_time() < in->connect_deadline && !in->exited) {
            qmp_client_free(in->qmp);
            in->qmp = NULL;
            in->connect_retry = g_timeout_add(50, on_connect_retry, in);
            return;
        }
        inst_kill(in, "its control socket does not answer");
        return;
    }
    if (greeting_role(qmp_client_greeting(c)) != in->role) {
        inst_kill(in, "its control socket names another role");
        return;
    }
    in->ready = true;
    qb_log(LOG_INFO, "colo-proxy (pid %d, %s) answers", in->pid, vmm_kind_name(in->role));
    if (in->failover_on_ready) {
        inst_failover(in);
    }
    inst_poll_now(in);
    inst_ready_done(in, true, "its control socket answers");
}

static void inst_connect(Instance *in)
{
    in->qmp = qmp_client_new(NULL);
    qmp_client_set_closed_handler(in->qmp, on_closed, in);
    qmp_client_connect(in->qmp, in->d->sock_path, driver_qmp_ms(in), on_ready, in);
}

/* ---- the driver ---------------------------------------------------------- */

ProxyDriver *proxy_driver_new(const ProxyDriverParams *params, ProxyDriverVmmAliveFunc alive, void *opaque)
{
    ProxyDriver *d = g_new0(ProxyDriver, 1);

    d->p = *params;
    d->p.proxy_path = g_strdup(params->proxy_path);
    d->p.run_dir = g_strdup(params->run_dir);
    d->p.guest_iface = g_strdup(params->guest_iface);
    d->p.uplink = g_strdup(params->uplink);
    d->p.listen = g_strdup(params->listen);
    d->p.connect = g_strdup(params->connect);
    d->p.peer = g_strdup(params->peer);
    d->p.socket_group = g_strdup(params->socket_group);
    d->p.tls_dir = g_strdup(params->tls_dir);
    d->sock_path = g_build_filename(params->run_dir, "proxy.sock", NULL);
    d->pid_path = g_build_filename(params->run_dir, "proxy.pid", NULL);
    d->alive = alive;
    d->opaque = opaque;
    return d;
}

static void child_die_with_parent(gpointer data)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static void driver_start_instance(ProxyDriver *d, VmmKind role, bool failover, ProxyDriverReadyFunc ready,
                                  void *opaque)
{
    Instance *in = g_new0(Instance, 1);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GError) err = NULL;
    char queue[8];

    cleanup_finish(d);
    snprintf(queue, sizeof(queue), "%u", d->p.queue_num);
    in->d = d;
    in->role = role;
    in->child = true;
    in->failover_on_ready = failover;
    in->ready_fn = ready;
    in->ready_opaque = opaque;
    g_mkdir_with_parents(d->p.run_dir, 0700);
    g_unlink(d->sock_path);
    g_ptr_array_add(argv, (char *)d->p.proxy_path);
    g_ptr_array_add(argv, "--role");
    g_ptr_array_add(argv, (char *)vmm_kind_name(role));
    g_ptr_array_add(argv, "--guest-iface");
    g_ptr_array_add(argv, (char *)d->p.guest_iface);
    g_ptr_array_add(argv, "--queue-num");
    g_ptr_array_add(argv, queue);
    g_ptr_array_add(argv, role == VMM_PRIMARY ? "--listen" : "--connect");
    g_ptr_array_add(argv, (char *)(role == VMM_PRIMARY ? d->p.listen : d->p.connect));
    if (role == VMM_PRIMARY && d->p.peer) {
        g_ptr_array_add(argv, "--peer");
        g_ptr_array_add(argv, (char *)d->p.peer);
    }
    if (d->p.tls_dir) {
        g_ptr_array_add(argv, "--tls-creds");
        g_ptr_array_add(argv, (char *)d->p.tls_dir);
    }
    if (d->p.socket_group) {
        g_ptr_array_add(argv, "--control-group");
        g_ptr_array_add(argv, (char *)d->p.socket_group);
    }
    if (d->p.uplink) {
        g_ptr_array_add(argv, role == VMM_PRIMARY ? "--uplink" : "--forward-all");
        if (role == VMM_PRIMARY) {
            g_ptr_array_add(argv, (char *)d->p.uplink);
        }
    }
    g_ptr_array_add(argv, "--control");
    g_ptr_array_add(argv, d->sock_path);
    g_ptr_array_add(argv, "--pidfile");
    g_ptr_array_add(argv, d->pid_path);
    g_ptr_array_add(argv, NULL);
    d->cur = in;
    if (!g_spawn_async(NULL, (char **)argv->pdata, NULL, G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH,
                       d->p.die_with_colod ? child_die_with_parent : NULL, NULL, &in->pid, &err)) {
        qb_log(LOG_ERR, "cannot start colo-proxy: %s", err->message);
        d->cur = NULL;
        inst_ready_done(in, false, "could not be started");
        in->d = NULL;
        inst_free(in);
        return;
    }
    qb_log(LOG_INFO, "colo-proxy started as %s (pid %d) on %s", vmm_kind_name(role), in->pid, d->p.guest_iface);
    in->child_watch = g_child_watch_add(in->pid, on_child_exit, in);
    /* It installs its rules before its control socket listens; that may
     * take a few iptables runs. */
    in->connect_deadline = g_get_monotonic_time() + (gint64)d->p.qmp_ms * 1000 * 4;
    in->poll = g_timeout_add(d->p.poll_ms ? d->p.poll_ms : 2000, on_poll, in);
    inst_connect(in);
}

/* Ends the current instance and waits for it (bounded): SIGTERM lets it
 * remove its rules; one that does not end in time is killed and cleaned
 * up after. */
static void driver_release(ProxyDriver *d, bool stop, const char *why)
{
    Instance *in = d->cur;
    bool clean = false;
    int status = 0;

    if (!in) {
        return;
    }
    d->cur = NULL;
    in->d = NULL;
    if (!stop || in->exited) {
        inst_free(in);
        return;
    }
    qb_log(LOG_INFO, "stopping colo-proxy (pid %d, %s): %s", in->pid, vmm_kind_name(in->role), why);
    g_clear_handle_id(&in->child_watch, g_source_remove); /* reaped here instead */
    kill(in->pid, SIGTERM);
    for (gint64 end = g_get_monotonic_time() + (gint64)d->p.qmp_ms * 2000; g_get_monotonic_time() < end;) {
        if (in->child ? waitpid(in->pid, &status, WNOHANG) == in->pid : kill(in->pid, 0) < 0) {
            clean = !in->child || (WIFEXITED(status) && WEXITSTATUS(status) == 0);
            in->exited = true;
            break;
        }
        g_usleep(10000);
    }
    if (!in->exited) {
        kill(in->pid, SIGKILL);
        if (in->child) {
            waitpid(in->pid, &status, 0);
        } else {
            leftover_kill(in->pid);
        }
    }
    if (!clean) {
        cleanup_now(d, in->role);
    }
    inst_free(in);
}

void proxy_driver_start(ProxyDriver *d, VmmKind role, ProxyDriverReadyFunc ready, void *opaque)
{
    driver_release(d, true, "replaced");
    d->restart_role = VMM_NONE;
    driver_start_instance(d, role, false, ready, opaque);
}

void proxy_driver_stop(ProxyDriver *d)
{
    d->restart_role = VMM_NONE;
    driver_release(d, true, "stopped by colod");
}

void proxy_driver_failover(ProxyDriver *d)
{
    Instance *in = d->cur;

    if (!in) {
        return;
    }
    g_clear_handle_id(&in->failover_check, g_source_remove);
    in->failover_check = g_timeout_add(FAILOVER_CHECK_MS, on_failover_check, in);
}

void proxy_driver_detach(ProxyDriver *d)
{
    driver_release(d, false, NULL);
}

void proxy_driver_free(ProxyDriver *d)
{
    if (!d) {
        return;
    }
    driver_release(d, true, "colod ends");
    cleanup_finish(d);
    g_free((char *)d->p.proxy_path);
    g_free((char *)d->p.run_dir);
    g_free((char *)d->p.guest_iface);
    g_free((char *)d->p.uplink);
    g_free((char *)d->p.listen);
    g_free((char *)d->p.connect);
    g_free((char *)d->p.peer);
    g_free((char *)d->p.tls_dir);
    g_free((char *)d->p.socket_group);
    g_free(d->sock_path);
    g_free(d->pid_path);
    g_free(d);
}

void proxy_driver_kill_leftover(ProxyDriver *d)
{
    GPid pid = leftover_pid(d->pid_path, "colo-proxy");

    if (pid > 0) {
        qb_log(LOG_WARNING, "killing colo-proxy pid %d left by an earlier colod of this VM", pid);
        leftover_kill(pid);
        cleanup_now(d, VMM_NONE);
    }
}

bool proxy_driver_adopt(ProxyDriver *d, VmmKind *role)
{
    GPid pid = leftover_pid(d->pid_path, "colo-proxy");
    g_autoptr(JsonObject) greeting = NULL;
    Instance *in;

    if (pid <= 0) {
        return false;
    }
    greeting = leftover_qmp_probe(d->sock_path, d->p.qmp_ms, NULL, NULL);
    *role = greeting_role(greeting);
    if (*role == VMM_NONE) {
        qb_log(LOG_WARNING, "colo-proxy pid %d left by an earlier colod: its control socket does not answer", pid);
        proxy_driver_kill_leftover(d);
        return false;
    }
    driver_release(d, true, "replaced");
    in = g_new0(Instance, 1);
    in->d = d;
    in->role = *role;
    in->pid = pid;
    in->foreign_watch = leftover_watch(pid, on_foreign_exit, in);
    if (!in->foreign_watch) {
        qb_log(LOG_WARNING, "colo-proxy pid %d ended while being picked up", pid);
        inst_free(in);
        cleanup_now(d, VMM_NONE);
        return false;
    }
    d->cur = in;
    in->poll = g_timeout_add(d->p.poll_ms ? d->p.poll_ms : 2000, on_poll, in);
    in->connect_deadline = g_get_monotonic_time() + (gint64)d->p.qmp_ms * 1000;
    inst_connect(in);
    qb_log(LOG_NOTICE, "picked up colo-proxy pid %d (%s) left by an earlier colod", pid, vmm_kind_name(*role));
    return true;
}

JsonObject *proxy_driver_query(ProxyDriver *d)
{
    Instance *in = d->cur;
    JsonObject *o;

    if (!in) {
        return NULL;
    }
    o = json_object_new();
    json_object_set_int_member(o, "pid", in->pid);
    json_object_set_string_member(o, "role", vmm_kind_name(in->role));
    json_object_set_boolean_member(o, "ready", in->ready);
    json_object_set_boolean_member(o, "failed-over", in->failed_over);
    json_object_set_int_member(o, "restarts", d->restarts);
    if (in->status) {
        json_object_set_object_member(o, "status", json_object_ref(in->status));
    }
    if (in->stats) {
        json_object_set_object_member(o, "stats", json_object_ref(in->stats));
    }
    return o;
}

GPid proxy_driver_pid(ProxyDriver *d)
{
    return d->cur ? d->cur->pid : 0;
}

guint proxy_driver_restarts(ProxyDriver *d)
{
    return d->restarts;
}
