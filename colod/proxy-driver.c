/* colod's colo-proxy driver (proxy-driver.h). One Instance per started
 * (or adopted) colo-proxy: its process and its QMP connection
 * (child-process.c), its role and last status. An
 * Instance colod let go (stopped, replaced) reports nothing more. */
#include "config.h"

#include "proxy-driver.h"

#include "child-process.h"
#include "common/qmp/qmp-client.h"
#include "leftover.h"
#include "proxy-queue.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <qb/qblog.h>
#include <sys/wait.h>
#include <unistd.h>

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
    char *carry_path;        /* carried-flows.json in the run dir */
    bool carry;              /* a primary starts with --carry-flows carry_path */
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
    ChildProcess *proc;     /* the process and its control connection */
    guint failover_check;
    bool ready;
    bool failed_over;       /* it said so, or was told */
    bool failover_on_ready; /* a restart that must pass traffic at once */
    ProxyDriverReadyFunc ready_fn;
    void *ready_opaque;
    guint link_wait;        /* a primary's ready waits for its peer link ([timeouts] proxy-link-ms) */
    JsonObject *status;     /* last query-status */
    JsonObject *stats;      /* last query-stats */
    int queue_fd;           /* our copy of its NFQUEUE socket (proxy-queue.h), or -1 */
    gint64 queue_remote_fd; /* that socket's number in the proxy, as its status said */
    /* proxy_driver_linger() */
    bool lingering;
    guint linger_timer;     /* its bound, then its end (linger_end_soon) */
    const char *linger_why;
    ProxyDriverLingerDoneFunc linger_done;
    void *linger_opaque;
};

static void inst_free(Instance *in)
{
    g_clear_handle_id(&in->failover_check, g_source_remove);
    g_clear_handle_id(&in->link_wait, g_source_remove);
    g_clear_handle_id(&in->linger_timer, g_source_remove);
    /* The last copy: the kernel drops what the queue still holds. */
    if (in->queue_fd >= 0) {
        close(in->queue_fd);
    }
    child_process_free(in->proc);
    g_clear_pointer(&in->status, json_object_unref);
    g_clear_pointer(&in->stats, json_object_unref);
    g_free(in);
}

static void inst_ready_done(Instance *in, bool ok, const char *detail)
{
    ProxyDriverReadyFunc fn = in->ready_fn;

    g_clear_handle_id(&in->link_wait, g_source_remove);
    in->ready_fn = NULL;
    if (fn && in->d) {
        fn(ok, detail, in->ready_opaque);
    }
}

/* A primary's proxy for a protect is ready once its link to the
 * secondary's is up: what the clients send after the sync's stop is
 * mirrored only over that link, and a frame with no link is dropped. A
 * small guest's sync ended before the secondary's proxy, retrying its
 * connect, had linked up, and the secondary never got a request the
 * primary's guest then answered: the answer waited for a copy until the
 * client retried. Past the bound ([timeouts] proxy-link-ms) COLO begins
 * anyway, as it did. */
static void inst_link_up(Instance *in)
{
    if (in->link_wait) {
        inst_ready_done(in, true, "its control socket answers and its link to the secondary's proxy is up");
    }
}

static gboolean on_link_wait_timeout(gpointer data)
{
    Instance *in = data;

    in->link_wait = 0;
    qb_log(LOG_WARNING, "colo-proxy's link to the secondary's proxy is not up after %u ms: COLO begins without it "
           "(the clients' input is not mirrored until it is)", in->d ? in->d->p.link_wait_ms : 0);
    inst_ready_done(in, true, "its control socket answers (no peer link yet)");
    return G_SOURCE_REMOVE;
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

/* A primary proxy that died unasked held the guest's output it had not
 * compared yet: the restarted one passes everything (below), so that
 * goes out now rather than after the guest's retransmission timer. Its
 * queue's carried flows (a queue of their own) are not ours to let out
 * unrewritten; a secondary's queue rewrites every packet it takes. */
static void inst_release_queue(Instance *in, ProxyDriver *d)
{
    g_autoptr(GError) err = NULL;
    int held;

    if (in->queue_fd < 0 || in->role != VMM_PRIMARY) {
        return;
    }
    held = proxy_queue_held(d->p.queue_num);
    if (!proxy_queue_release_all(in->queue_fd, d->p.queue_num, &err)) {
        qb_log(LOG_ERR, "the dead colo-proxy's held packets: %s (dropped)", err->message);
    } else if (held > 0) {
        qb_log(LOG_NOTICE, "let out the %d packet%s the dead colo-proxy held: the primary runs on alone", held,
               held == 1 ? "" : "s");
    }
    close(in->queue_fd);
    in->queue_fd = -1;
}

static void inst_ended(void *owner, const char *detail)
{
    Instance *in = owner;
    ProxyDriver *d = in->d;

    qb_log(d ? LOG_WARNING : LOG_INFO, "colo-proxy (pid %d, %s) ended: %s", child_process_pid(in->proc),
           vmm_kind_name(in->role), detail);
    if (d && in->lingering) {
        /* Its colo-vmm is gone too: nothing to restart it for, and what it
         * held is not ours to let out (the secondary takes over). Its rules
         * go (a leftover --queue-bypass rule would pass the next
         * secondary's guest output); the next proxy waits for that. */
        ProxyDriverLingerDoneFunc done = in->linger_done;
        void *opaque = in->linger_opaque;

        d->cur = NULL;
        in->d = NULL;
        cleanup_and_restart(d, in->role, true);
        d->restart_role = VMM_NONE;
        inst_free(in);
        done(opaque);
        return;
    }
    if (d) {
        ProxyDriverReadyFunc fn = in->ready_fn;

        inst_release_queue(in, d);
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

/* ---- QMP ---------------------------------------------------------------- */

static guint driver_qmp_ms(void *owner)
{
    Instance *in = owner;

    return in->d ? in->d->p.qmp_ms : 1000;
}

static void on_failover_reply(QmpClient *c, JsonNode *ret, const GError *error, gpointer opaque)
{
    Instance *in = opaque;

    if (error) {
        qb_log(LOG_ERR, "colo-proxy's failover: %s", error->message);
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
            child_process_kill(in->proc, "failover timed out");
        }
        return;
    }
    in->failed_over = true;
    qb_log(LOG_NOTICE, "colo-proxy (%s) passes traffic (failover)", vmm_kind_name(in->role));
}

static void inst_failover(Instance *in)
{
    qmp_client_execute(child_process_qmp(in->proc), "failover", NULL, driver_qmp_ms(in) * 2, on_failover_reply, in);
}

/* A copy of the proxy's queue socket, taken once per socket its status
 * names: the queue then outlives the process (inst_release_queue). */
static void inst_keep_queue(Instance *in)
{
    gint64 remote = json_object_get_int_member_with_default(in->status, "queue-fd", -1);
    g_autoptr(GError) err = NULL;

    if (remote == in->queue_remote_fd || !in->d) {
        return;
    }
    if (in->queue_fd >= 0) {
        close(in->queue_fd);
        in->queue_fd = -1;
    }
    in->queue_remote_fd = remote;
    if (remote < 0 || remote > G_MAXINT) {
        return;
    }
    in->queue_fd = proxy_queue_grab(child_process_pid(in->proc), (int)remote, &err);
    if (in->queue_fd < 0) {
        qb_log(LOG_WARNING, "no copy of colo-proxy's queue socket: %s (if it dies, what it holds is dropped)",
               err->message);
    }
}

static void on_status_reply(QmpClient *c, JsonNode *ret, const GError *error, gpointer opaque)
{
    Instance *in = opaque;

    if (error) {
        qb_log(LOG_ERR, "colo-proxy's query-status: %s", error->message);
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
            /* Hang escape: its exit then cleans up and restarts. */
            child_process_kill(in->proc, "query-status timed out");
        }
        return;
    }
    if (!JSON_NODE_HOLDS_OBJECT(ret)) {
        return;
    }
    g_clear_pointer(&in->status, json_object_unref);
    in->status = json_object_ref(json_node_get_object(ret));
    in->failed_over |= json_object_get_boolean_member_with_default(in->status, "failed-over", FALSE);
    inst_keep_queue(in);
    if (json_object_get_boolean_member_with_default(in->status, "peer-link", FALSE)) {
        inst_link_up(in);
    }
}

static void on_stats_reply(QmpClient *c, JsonNode *ret, const GError *error, gpointer opaque)
{
    Instance *in = opaque;

    if (!error && JSON_NODE_HOLDS_OBJECT(ret)) {
        g_clear_pointer(&in->stats, json_object_unref);
        in->stats = json_object_ref(json_node_get_object(ret));
    }
}

static void on_poll(void *owner, QmpClient *qmp)
{
    Instance *in = owner;

    qmp_client_execute(qmp, "query-status", NULL, driver_qmp_ms(in), on_status_reply, in);
    qmp_client_execute(qmp, "query-stats", NULL, driver_qmp_ms(in), on_stats_reply, in);
}

static gboolean on_failover_check(gpointer data)
{
    Instance *in = data;
    QmpClient *qmp = child_process_qmp(in->proc);

    in->failover_check = 0;
    if (!in->failed_over && qmp && qmp_client_is_ready(qmp)) {
        qb_log(LOG_WARNING, "colo-proxy (%s) did not fail over with colo-vmm: telling it", vmm_kind_name(in->role));
        inst_failover(in);
    }
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

static void on_ready(void *owner, QmpClient *qmp)
{
    Instance *in = owner;

    if (greeting_role(qmp_client_greeting(qmp)) != in->role) {
        child_process_kill(in->proc, "its control socket names another role");
        return;
    }
    in->ready = true;
    qb_log(LOG_INFO, "colo-proxy (pid %d, %s) answers", child_process_pid(in->proc), vmm_kind_name(in->role));
    if (in->failover_on_ready) {
        inst_failover(in);
    }
    on_poll(in, qmp);
    if (in->role == VMM_PRIMARY && in->ready_fn && in->d && in->d->p.link_wait_ms) {
        /* The status just asked, or PEER_LINK, ends the wait. */
        in->link_wait = g_timeout_add(in->d->p.link_wait_ms, on_link_wait_timeout, in);
        return;
    }
    inst_ready_done(in, true, "its control socket answers");
}

static void driver_release(ProxyDriver *d, bool stop, const char *why);

/* Stops a lingering proxy (proxy_driver_linger) and says so: from the main
 * loop, never inside a callback of its own QMP connection, which the stop
 * frees. */
static gboolean on_linger_end(gpointer data)
{
    Instance *in = data;
    ProxyDriver *d = in->d;
    ProxyDriverLingerDoneFunc done = in->linger_done;
    void *opaque = in->linger_opaque;

    in->linger_timer = 0;
    if (d) {
        driver_release(d, true, in->linger_why);    /* frees @in */
        done(opaque);
    }
    return G_SOURCE_REMOVE;
}

static void linger_end_soon(Instance *in, const char *why)
{
    if (!in->lingering) {
        return;
    }
    g_clear_handle_id(&in->linger_timer, g_source_remove);
    in->linger_why = why;
    in->linger_timer = g_idle_add(on_linger_end, in);
}

static void on_event(QmpClient *c, const char *event, JsonObject *data, JsonObject *ts, gpointer opaque)
{
    Instance *in = opaque;

    if (g_strcmp0(event, "PEER_SERVING") == 0) {
        linger_end_soon(in, "the secondary serves the clients");
    } else if (g_strcmp0(event, "PEER_LINK") == 0 && data &&
               json_object_get_boolean_member_with_default(data, "up", FALSE)) {
        inst_link_up(in);
    }
}

static void on_vmm_lost_reply(QmpClient *c, JsonNode *ret, const GError *error, gpointer opaque)
{
    Instance *in = opaque;
    JsonObject *o = !error && JSON_NODE_HOLDS_OBJECT(ret) ? json_node_get_object(ret) : NULL;
    gint64 released;

    if (!o) {
        /* It mirrors anyway; only the commit after colo-vmm is lost. */
        qb_log(LOG_WARNING, "colo-proxy's vmm-lost: %s", error ? error->message : "not an object");
        return;
    }
    released = json_object_get_int_member_with_default(o, "released", 0);
    if (released) {
        qb_log(LOG_NOTICE, "colo-proxy released the %" G_GINT64_FORMAT " packets of the checkpoint the secondary "
               "committed", released);
    }
    if (json_object_get_boolean_member_with_default(o, "peer-serving", FALSE)) {
        linger_end_soon(in, "the secondary serves the clients");
    }
}

static const ChildProcessKind proxy_process = {
    .name = "colo-proxy",
    .qmp_silent = "its control socket does not answer",
    .qmp_closed = "its control connection closed",
    .adopted_exit = "it was not started by this colod: exit status unknown",
    .qmp_ms = driver_qmp_ms,
    .ready = on_ready,
    .poll = on_poll,
    .exited = inst_ended,
    .event = on_event,
};

static Instance *inst_new(ProxyDriver *d, VmmKind role)
{
    Instance *in = g_new0(Instance, 1);

    in->d = d;
    in->role = role;
    in->queue_fd = -1;
    in->queue_remote_fd = -1;
    in->proc = child_process_new(&proxy_process, in, d->sock_path);
    return in;
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
    d->carry_path = g_build_filename(params->run_dir, "carried-flows.json", NULL);
    d->alive = alive;
    d->opaque = opaque;
    return d;
}

static void driver_start_instance(ProxyDriver *d, VmmKind role, bool failover, ProxyDriverReadyFunc ready,
                                  void *opaque)
{
    Instance *in = inst_new(d, role);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GError) err = NULL;
    char queue[8];

    cleanup_finish(d);
    snprintf(queue, sizeof(queue), "%u", d->p.queue_num);
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
    /* A restarted primary carries them on too: they live as long as the
     * guest's connections. */
    if (role == VMM_PRIMARY && d->carry) {
        g_ptr_array_add(argv, "--carry-flows");
        g_ptr_array_add(argv, d->carry_path);
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
    if (!child_process_spawn(in->proc, (char **)argv->pdata, NULL, d->p.die_with_colod, &err)) {
        qb_log(LOG_ERR, "cannot start colo-proxy: %s", err->message);
        d->cur = NULL;
        inst_ready_done(in, false, "could not be started");
        in->d = NULL;
        inst_free(in);
        return;
    }
    qb_log(LOG_INFO, "colo-proxy started as %s (pid %d) on %s", vmm_kind_name(role), child_process_pid(in->proc),
           d->p.guest_iface);
    /* It installs its rules before its control socket listens; that may
     * take a few iptables runs. */
    child_process_connect(in->proc, d->p.qmp_ms * 4, d->p.poll_ms ? d->p.poll_ms : 2000);
}

/* Ends the current instance and waits for it (bounded): SIGTERM lets it
 * remove its rules; one that does not end in time is killed and cleaned
 * up after. */
static void driver_release(ProxyDriver *d, bool stop, const char *why)
{
    Instance *in = d->cur;

    if (!in) {
        return;
    }
    d->cur = NULL;
    in->d = NULL;
    if (!stop || child_process_exited(in->proc)) {
        inst_free(in);
        return;
    }
    qb_log(LOG_INFO, "stopping colo-proxy (pid %d, %s): %s", child_process_pid(in->proc), vmm_kind_name(in->role),
           why);
    if (!child_process_terminate(in->proc, d->p.qmp_ms * 2)) {
        cleanup_now(d, in->role);
    }
    inst_free(in);
}

static void on_replay_reply(QmpClient *c, JsonNode *ret, const GError *error, gpointer opaque)
{
    JsonObject *o = !error && JSON_NODE_HOLDS_OBJECT(ret) ? json_node_get_object(ret) : NULL;

    if (!o) {
        qb_log(LOG_WARNING, "colo-proxy's replay-output: %s", error ? error->message : "not an object");
        return;
    }
    qb_log(LOG_INFO, "colo-proxy sent the guest's last output again: %" G_GINT64_FORMAT " packets%s",
           json_object_get_int_member_with_default(o, "packets", 0),
           json_object_get_boolean_member_with_default(o, "at-failover", FALSE) ? " (at its failover)" : "");
}

/* Re-protection after a takeover: the taken-over secondary's rewriter
 * flows go to the primary proxy that replaces it (docs/colo-proxy.md,
 * "Carried flows"), else those connections stall. Read over a connection
 * of its own, blocking for at most a QMP timeout (as the stop that follows
 * does): the old proxy must still rewrite until the new one starts, so the
 * read comes right before the swap. A taken-over secondary first sends
 * its guest's last output again (proxy_driver_replay_output; a second
 * time is a no-op): it is about to go. */
static void driver_read_flows(ProxyDriver *d)
{
    static const char *const cmds[] = { "replay-output", "query-rewriter", NULL };
    bool secondary = d->cur->role == VMM_SECONDARY;
    g_autoptr(JsonObject) greeting = NULL;
    JsonNode *replies[2] = { NULL, NULL };
    g_autoptr(JsonNode) replayed = NULL;
    g_autoptr(JsonNode) reply = NULL;
    g_autoptr(GError) err = NULL;
    g_autofree char *text = NULL;
    JsonArray *flows;

    greeting = leftover_qmp_probe(d->sock_path, d->p.qmp_ms, secondary ? cmds : cmds + 1,
                                  secondary ? replies : replies + 1);
    replayed = replies[0];
    reply = replies[1];
    if (replayed) {
        on_replay_reply(NULL, replayed, NULL, NULL);
    }
    flows = reply && JSON_NODE_HOLDS_OBJECT(reply) && json_object_has_member(json_node_get_object(reply), "flows")
                ? json_object_get_array_member(json_node_get_object(reply), "flows")
                : NULL;
    if (!flows) {
        qb_log(LOG_WARNING, "colo-proxy's query-rewriter failed: %s", d->carry ? "the flows read before are "
               "carried over" : "no rewritten flow is carried over (those connections will stall)");
        return;
    }
    if (!json_array_get_length(flows)) {
        qb_log(LOG_INFO, "colo-proxy rewrites no flow: nothing to carry over");
        d->carry = false;
        g_unlink(d->carry_path);
        return;
    }
    text = json_to_string(reply, FALSE);
    if (!g_file_set_contents(d->carry_path, text, -1, &err)) {
        qb_log(LOG_ERR, "cannot write %s: %s", d->carry_path, err->message);
        return;
    }
    d->carry = true;
    qb_log(LOG_NOTICE, "carrying %u rewritten flow%s over to the primary colo-proxy", json_array_get_length(flows),
           json_array_get_length(flows) == 1 ? "" : "s");
}

/* Not "failed_over": the poll that learns it may not have run yet; a
 * secondary that never took over exports nothing anyway. A primary exports
 * the flows it carries still (those that ended are gone), whether this
 * colod handed them over or picked that proxy up from an earlier colod. */
static void driver_take_flows(ProxyDriver *d)
{
    Instance *in = d->cur;

    if (in && in->ready && !d->p.uplink) {
        driver_read_flows(d);
    }
}

void proxy_driver_start(ProxyDriver *d, VmmKind role, ProxyDriverReadyFunc ready, void *opaque)
{
    /* Flows carried from an earlier takeover end with the role. */
    if (role != VMM_PRIMARY || (d->cur && d->cur->role == VMM_SECONDARY)) {
        d->carry = false;
        g_unlink(d->carry_path);
    }
    if (role == VMM_PRIMARY) {
        driver_take_flows(d);
    }
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

void proxy_driver_protect_cancelled(ProxyDriver *d)
{
    Instance *in = d->cur;
    QmpClient *qmp = in ? child_process_qmp(in->proc) : NULL;

    if (!in || in->role != VMM_PRIMARY || !qmp || !qmp_client_is_ready(qmp)) {
        proxy_driver_stop(d);
        return;
    }
    /* Stopped, it would drop what it holds of the guest's output (the
     * kernel drops a queue's packets with the queue), and the clients
     * would wait for their retransmissions. No secondary will ever send
     * those packets: the guest runs alone, its output goes out. The proxy
     * stays, passing traffic, until the next protect replaces it. */
    qb_log(LOG_NOTICE, "colo-proxy fails over: the guest runs alone, what it held goes out%s",
           d->carry ? "; it stays, rewriting the connections carried from the takeover" : "");
    g_clear_handle_id(&in->failover_check, g_source_remove);
    inst_failover(in);
}

void proxy_driver_replay_output(ProxyDriver *d)
{
    Instance *in = d->cur;
    QmpClient *qmp = in ? child_process_qmp(in->proc) : NULL;

    if (!in || in->role != VMM_SECONDARY || !qmp || !qmp_client_is_ready(qmp)) {
        return;
    }
    qmp_client_execute(qmp, "replay-output", NULL, driver_qmp_ms(in), on_replay_reply, in);
}

bool proxy_driver_linger(ProxyDriver *d, guint bound_ms, ProxyDriverLingerDoneFunc done, void *opaque)
{
    Instance *in = d->cur;
    QmpClient *qmp = in ? child_process_qmp(in->proc) : NULL;

    if (!in || in->role != VMM_PRIMARY || in->failed_over || !qmp || !qmp_client_is_ready(qmp) ||
        child_process_exited(in->proc)) {
        return false;
    }
    if (in->lingering) {
        return true;
    }
    d->restart_role = VMM_NONE;
    in->lingering = true;
    in->linger_done = done;
    in->linger_opaque = opaque;
    in->linger_why = "the secondary did not say it serves the clients in time";
    in->linger_timer = g_timeout_add(bound_ms, on_linger_end, in);
    qb_log(LOG_NOTICE, "colo-proxy stays until the secondary serves the clients (at most %u ms): it mirrors what "
           "they still send here", bound_ms);
    qmp_client_execute(qmp, "vmm-lost", NULL, driver_qmp_ms(in), on_vmm_lost_reply, in);
    return true;
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
    g_free(d->carry_path);
    g_free(d);
}

void proxy_driver_kill_leftover(ProxyDriver *d)
{
    if (child_process_kill_leftover("colo-proxy", d->pid_path)) {
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
    in = inst_new(d, *role);
    if (!child_process_adopt(in->proc, pid)) {
        inst_free(in);
        cleanup_now(d, VMM_NONE);
        return false;
    }
    d->cur = in;
    child_process_connect(in->proc, d->p.qmp_ms, d->p.poll_ms ? d->p.poll_ms : 2000);
    qb_log(LOG_NOTICE, "picked up colo-proxy pid %d (%s) left by an earlier colod", pid, vmm_kind_name(*role));
    if (*role == VMM_PRIMARY && !d->p.uplink) {
        /* Its carried flows, for a restart after its crash (--carry-flows). */
        driver_read_flows(d);
    }
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
    json_object_set_int_member(o, "pid", child_process_pid(in->proc));
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

VmmKind proxy_driver_role(ProxyDriver *d)
{
    return d->cur ? d->cur->role : VMM_NONE;
}

GPid proxy_driver_pid(ProxyDriver *d)
{
    return d->cur ? child_process_pid(d->cur->proc) : 0;
}

guint proxy_driver_restarts(ProxyDriver *d)
{
    return d->restarts;
}
