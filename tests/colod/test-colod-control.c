/* colod's control socket (colod/control.c) over a real unix socket, with
 * the real state machine on a virtual clock and a fake membership, and
 * common/qmp's client as coloctl uses it: query-status's members in each
 * situation, the state machine's commands accepted (their actions carried
 * out, their events before the reply) and refused (its reason as a QMP
 * error, nothing done), set, events to every client, and garbage on the
 * socket that leaves colod serving. */
#include "config.h"

#include "cluster-fsm.h"
#include "colod/control.h"

#include "common/log.h"
#include "common/qmp/qmp-client.h"
#include "common/qmp/qmp-server.h"
#include "common/unix-socket.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    int64_t now;
    ClusterFsm *fsm;
    ColodControl *ctl;
    GArray *executed; /* ClusterActionType of every action carried out */
    char *dir;
    char *path;
} Fixture;

typedef struct {
    QmpClient *c;
    GPtrArray *events;   /* JsonObject *: {"event", "data"} in arrival order */
    GPtrArray *order;    /* char *: "event NAME" or "reply", in arrival order */
} Client;

static int64_t fake_now(void *opaque)
{
    return ((Fixture *)opaque)->now;
}

static void on_execute(ClusterActions *acts, gpointer opaque)
{
    Fixture *f = opaque;

    for (guint i = 0; i < acts->len; i++) {
        g_array_append_val(f->executed, cluster_action_at(acts, i)->type);
    }
    colod_control_update(f->ctl);
}

static bool executed(Fixture *f, ClusterActionType type)
{
    for (guint i = 0; i < f->executed->len; i++) {
        if (g_array_index(f->executed, ClusterActionType, i) == type) {
            return true;
        }
    }
    return false;
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
    ClusterFsmParams p = { .local_id = 1, .peer_id = 2,
                           .timeouts = { .qmp_ms = 5000, .peer_wait_ms = 3000, .protect_ack_ms = 3000,
                                         .protect_retry_ms = 3000, .claim_ms = 3000, .restart_grace_ms = 3000 },
                           .managed = data != NULL };
    ColodStateRecord rec = { COLOD_ROLE_PRIMARY, 5 };
    ClusterClock clock = { fake_now, f };
    ColodControlParams cp;
    g_autoptr(GError) err = NULL;

    f->now = 1000;
    f->executed = g_array_new(FALSE, FALSE, sizeof(ClusterActionType));
    f->fsm = cluster_fsm_new(&p, &rec, &clock);
    f->dir = g_dir_make_tmp("colod-control-XXXXXX", &err);
    g_assert_no_error(err);
    f->path = g_build_filename(f->dir, "run", "colod.sock", NULL);
    cp = (ColodControlParams){ .vm_name = "web1", .fsm = f->fsm, .vmm = NULL, .log_level = LOG_INFO,
                               .execute = on_execute, .opaque = f };
    f->ctl = colod_control_new(&cp, f->path, &err);
    g_assert_no_error(err);
    g_assert_nonnull(f->ctl);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    g_autofree char *run = g_path_get_dirname(f->path);

    colod_control_free(f->ctl);
    g_assert_false(g_file_test(f->path, G_FILE_TEST_EXISTS));
    cluster_fsm_free(f->fsm);
    g_array_free(f->executed, TRUE);
    g_rmdir(run);
    g_rmdir(f->dir);
    g_free(f->path);
    g_free(f->dir);
}

/* Feeds the state machine an input's actions the way colod does. */
static void membership(Fixture *f, const uint32_t *members, size_t n, bool quorate)
{
    g_autoptr(GArray) acts = cluster_actions_new();

    cluster_fsm_membership(f->fsm, members, n, quorate, acts);
    on_execute(acts, f);
}

static void tick(Fixture *f, int64_t ms)
{
    g_autoptr(GArray) acts = cluster_actions_new();

    f->now += ms;
    cluster_fsm_tick(f->fsm, acts);
    on_execute(acts, f);
}

/* ---- a client ---------------------------------------------------------------- */

static void on_event(QmpClient *c, const char *event, JsonObject *data, JsonObject *ts, gpointer opaque)
{
    Client *cl = opaque;
    JsonObject *o = json_object_new();

    json_object_set_string_member(o, "event", event);
    if (data) {
        json_object_set_object_member(o, "data", json_object_ref(data));
    }
    g_ptr_array_add(cl->events, o);
    g_ptr_array_add(cl->order, g_strdup_printf("event %s", event));
}

static void on_ready(QmpClient *c, const GError *error, gpointer opaque)
{
    g_assert_no_error(error);
    *(bool *)opaque = true;
}

static void spin_until(bool *done)
{
    gint64 end = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

    while (!*done && g_get_monotonic_time() < end) {
        g_main_context_iteration(NULL, TRUE);
    }
    g_assert_true(*done);
}

static Client *client_new(Fixture *f)
{
    Client *cl = g_new0(Client, 1);
    bool ready = false;
    JsonObject *colod;

    cl->events = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
    cl->order = g_ptr_array_new_with_free_func(g_free);
    cl->c = qmp_client_new(NULL);
    qmp_client_set_event_handler(cl->c, on_event, cl);
    qmp_client_connect(cl->c, f->path, 5000, on_ready, &ready);
    spin_until(&ready);
    /* The greeting says colod (coloctl checks it). */
    g_assert_true(json_object_has_member(qmp_client_greeting(cl->c), "colod"));
    colod = json_object_get_object_member(qmp_client_greeting(cl->c), "colod");
    g_assert_cmpstr(json_object_get_string_member(colod, "vm"), ==, "web1");
    return cl;
}

static void client_free(Client *cl)
{
    qmp_client_free(cl->c);
    g_ptr_array_free(cl->events, TRUE);
    g_ptr_array_free(cl->order, TRUE);
    g_free(cl);
}

typedef struct {
    Client *cl;
    bool done;
    JsonNode *ret;
    GError *error;
} Reply;

static void on_reply(QmpClient *c, JsonNode *ret, const GError *error, gpointer opaque)
{
    Reply *r = opaque;

    r->done = true;
    r->ret = ret ? json_node_copy(ret) : NULL;
    r->error = error ? g_error_copy(error) : NULL;
    g_ptr_array_add(r->cl->order, g_strdup("reply"));
}

/* Runs @command; returns its object, or NULL with @error set. */
static JsonObject *call(Client *cl, const char *command, JsonObject *args, GError **error)
{
    Reply r = { cl, false, NULL, NULL };
    JsonObject *o = NULL;

    qmp_client_execute(cl->c, command, args, 5000, on_reply, &r);
    spin_until(&r.done);
    if (r.error) {
        g_propagate_error(error, r.error);
        return NULL;
    }
    g_assert_true(JSON_NODE_HOLDS_OBJECT(r.ret));
    o = json_object_ref(json_node_get_object(r.ret));
    json_node_unref(r.ret);
    return o;
}

static JsonObject *status(Client *cl)
{
    g_autoptr(GError) err = NULL;
    JsonObject *st = call(cl, "query-status", NULL, &err);

    g_assert_no_error(err);
    return st;
}

static void assert_null(JsonObject *o, const char *name)
{
    g_assert_true(json_object_has_member(o, name));
    g_assert_true(JSON_NODE_HOLDS_NULL(json_object_get_member(o, name)));
}

/* Lets events in flight arrive. */
static void drain(void)
{
    for (int i = 0; i < 50; i++) {
        g_main_context_iteration(NULL, FALSE);
        g_usleep(1000);
    }
}

/* The @i-th event of @cl, named @name; returns its data. */
static JsonObject *event_at(Client *cl, guint i, const char *name)
{
    JsonObject *e;

    g_assert_cmpuint(cl->events->len, >, i);
    e = g_ptr_array_index(cl->events, i);
    g_assert_cmpstr(json_object_get_string_member(e, "event"), ==, name);
    return json_object_get_object_member(e, "data");
}

/* ---- tests ----------------------------------------------------------------------- */

static void test_status_at_start(Fixture *f, gconstpointer data)
{
    Client *cl = client_new(f);
    g_autoptr(JsonObject) st = status(cl);
    JsonObject *peer = json_object_get_object_member(st, "peer");
    JsonObject *vmm = json_object_get_object_member(st, "vmm");
    JsonObject *settings = json_object_get_object_member(st, "settings");

    g_assert_cmpstr(json_object_get_string_member(st, "vm"), ==, "web1");
    g_assert_cmpint(json_object_get_int_member(st, "node-id"), ==, 1);
    g_assert_cmpstr(json_object_get_string_member(st, "state"), ==, "starting");
    g_assert_cmpstr(json_object_get_string_member(st, "role"), ==, "primary");
    g_assert_cmpint(json_object_get_int_member(st, "generation"), ==, 5);
    g_assert_false(json_object_get_boolean_member(st, "running"));
    g_assert_false(json_object_get_boolean_member(st, "quorate"));
    g_assert_false(json_object_get_boolean_member(st, "managed"));
    g_assert_true(json_object_get_boolean_member(st, "protect"));
    assert_null(st, "waiting");
    assert_null(st, "colo");
    assert_null(st, "proxy");
    assert_null(st, "colo-proxy");
    g_assert_cmpint(json_object_get_int_member(peer, "node-id"), ==, 2);
    g_assert_false(json_object_get_boolean_member(peer, "present"));
    assert_null(peer, "role");
    assert_null(peer, "generation");
    assert_null(vmm, "pid");
    g_assert_cmpstr(json_object_get_string_member(vmm, "kind"), ==, "none");
    g_assert_cmpstr(json_object_get_string_member(settings, "log-level"), ==, "info");
    assert_null(settings, "checkpoint-delay");
    client_free(cl);
}

/* Refused: the state machine's reason comes back, nothing is done. */
static void test_refused(Fixture *f, gconstpointer data)
{
    Client *cl = client_new(f);
    const char *cmds[] = { "failover", "switchover", "protect" };

    for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(JsonObject) ret = call(cl, cmds[i], NULL, &err);

        g_assert_null(ret);
        g_assert_error(err, QMP_ERROR, QMP_ERROR_GENERIC);
        g_assert_cmpstr(err->message, ==, "no quorum: this node must not change who serves the VM");
    }
    g_assert_cmpuint(f->executed->len, ==, 0);
    {
        g_autoptr(GError) err = NULL;
        g_autoptr(JsonObject) ret = call(cl, "promote", NULL, &err);

        g_assert_error(err, QMP_ERROR, QMP_ERROR_GENERIC);
        g_assert_cmpstr(err->message, ==, "promote is for managed mode ([cluster] managed = true, under pacemaker): "
                                          "use failover or switchover");
    }
    {
        g_autoptr(GError) err = NULL;
        g_autoptr(JsonObject) args = json_object_new();
        g_autoptr(JsonObject) ret = NULL;

        /* Arguments where the command takes none. */
        json_object_set_boolean_member(args, "force", TRUE);
        ret = call(cl, "failover", g_steal_pointer(&args), &err);
        g_assert_error(err, QMP_ERROR, QMP_ERROR_GENERIC);
        g_assert_cmpstr(err->message, ==, "Parameter 'force' is unexpected");
    }
    {
        g_autoptr(GError) err = NULL;
        g_autoptr(JsonObject) ret = call(cl, "reboot", NULL, &err);

        g_assert_error(err, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND);
    }
    client_free(cl);
}

/* Events follow the state machine, to every client; a command's events
 * come before its reply. */
static void test_events_and_failover(Fixture *f, gconstpointer data)
{
    Client *a = client_new(f);
    Client *b = client_new(f);
    uint32_t self = 1;
    JsonObject *d;
    g_autoptr(JsonObject) st = NULL;
    g_autoptr(JsonObject) ret = NULL;
    g_autoptr(GError) err = NULL;
    guint before;

    membership(f, &self, 1, true);
    drain();
    g_assert_cmpuint(a->events->len, ==, 2);
    d = event_at(a, 0, "COLOD_QUORUM");
    g_assert_true(json_object_get_boolean_member(d, "quorate"));
    d = event_at(a, 1, "COLOD_STATE");
    g_assert_cmpstr(json_object_get_string_member(d, "old"), ==, "starting");
    g_assert_cmpstr(json_object_get_string_member(d, "new"), ==, "wait-peer");
    g_assert_cmpint(json_object_get_int_member(d, "generation"), ==, 5);
    g_assert_cmpuint(b->events->len, ==, 2);

    /* No hello within peer-wait-ms: wait-admin, unknown generation. */
    tick(f, 3001);
    drain();
    d = event_at(a, 2, "COLOD_STATE");
    g_assert_cmpstr(json_object_get_string_member(d, "new"), ==, "wait-admin");
    g_assert_cmpstr(json_object_get_string_member(d, "waiting"), ==, "unknown-generation");
    st = status(a);
    g_assert_cmpstr(json_object_get_string_member(st, "state"), ==, "wait-admin");
    g_assert_cmpstr(json_object_get_string_member(st, "waiting"), ==, "unknown-generation");
    g_assert_true(json_object_get_boolean_member(st, "quorate"));

    /* The administrator decides: the VM starts here. */
    before = a->order->len;
    ret = call(a, "failover", NULL, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(json_object_get_string_member(ret, "state"), ==, "primary-starting");
    g_assert_nonnull(json_object_get_string_member(ret, "reason"));
    g_assert_true(executed(f, ACT_START_VMM));
    g_assert_true(executed(f, ACT_PERSIST));
    g_assert_cmpuint(a->order->len, ==, before + 2);
    g_assert_cmpstr(g_ptr_array_index(a->order, before), ==, "event COLOD_STATE");
    g_assert_cmpstr(g_ptr_array_index(a->order, before + 1), ==, "reply");
    d = event_at(a, 3, "COLOD_STATE");
    g_assert_cmpstr(json_object_get_string_member(d, "old"), ==, "wait-admin");
    g_assert_cmpstr(json_object_get_string_member(d, "new"), ==, "primary-starting");
    g_assert_cmpint(json_object_get_int_member(d, "generation"), ==, 6);
    g_assert_cmpstr(json_object_get_string_member(d, "role"), ==, "primary");
    assert_null(d, "waiting");
    drain();
    g_assert_cmpuint(b->events->len, ==, 4);

    /* The peer's colod joins: COLOD_PEER. */
    {
        uint32_t both[] = { 1, 2 };

        membership(f, both, 2, true);
        drain();
        d = event_at(a, 4, "COLOD_PEER");
        g_assert_cmpint(json_object_get_int_member(d, "node-id"), ==, 2);
        g_assert_true(json_object_get_boolean_member(d, "present"));
    }
    client_free(a);
    client_free(b);
}

/* Runs @command, which must be accepted; returns the state it reports. */
static char *accepted(Client *cl, const char *command)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonObject) ret = call(cl, command, NULL, &err);

    g_assert_no_error(err);
    return g_strdup(json_object_get_string_member(ret, "state"));
}

static bool protect_enabled(Client *cl)
{
    g_autoptr(JsonObject) st = status(cl);

    return json_object_get_boolean_member(st, "protect");
}

static void test_protect_unprotect(Fixture *f, gconstpointer data)
{
    Client *cl = client_new(f);
    uint32_t self = 1;

    membership(f, &self, 1, true);
    g_free(accepted(cl, "unprotect"));
    g_assert_false(protect_enabled(cl));
    g_free(accepted(cl, "protect"));
    g_assert_true(protect_enabled(cl));
    client_free(cl);
}

/* Managed mode: promote and demote; failover is refused. */
static void test_managed(Fixture *f, gconstpointer data)
{
    Client *cl = client_new(f);
    uint32_t self = 1;
    g_autoptr(JsonObject) st = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonObject) ret = NULL;
    g_autofree char *promoted = NULL;
    g_autofree char *demoted = NULL;

    membership(f, &self, 1, true);
    st = status(cl);
    g_assert_true(json_object_get_boolean_member(st, "managed"));
    g_assert_cmpstr(json_object_get_string_member(st, "state"), ==, "idle");
    ret = call(cl, "failover", NULL, &err);
    g_assert_null(ret);
    g_assert_error(err, QMP_ERROR, QMP_ERROR_GENERIC);
    g_assert_true(g_str_has_prefix(err->message, "managed mode: pacemaker decides who is primary"));
    promoted = accepted(cl, "promote");
    g_assert_cmpstr(promoted, ==, "primary-starting");
    g_assert_true(executed(f, ACT_START_VMM));
    demoted = accepted(cl, "demote");
    g_assert_cmpstr(demoted, ==, "idle");
    g_assert_true(executed(f, ACT_STOP_VMM));
    client_free(cl);
}

static JsonObject *set(Client *cl, const char *key, JsonNode *value, GError **error)
{
    JsonObject *args = json_object_new();

    json_object_set_string_member(args, "key", key);
    json_object_set_member(args, "value", value);
    return call(cl, "set", args, error);
}

static JsonNode *str_node(const char *s)
{
    JsonNode *n = json_node_new(JSON_NODE_VALUE);

    json_node_set_string(n, s);
    return n;
}

static void test_set(Fixture *f, gconstpointer data)
{
    Client *cl = client_new(f);
    const struct {
        const char *key, *value, *error;
    } bad[] = {
        { "color", "red", "unknown setting 'color' (settings: checkpoint-delay, log-level, protect-mode)" },
        { "protect-mode", "postcopy", "protect-mode: 'postcopy' is not precopy or snapshot" },
        { "protect-mode", "", "protect-mode: '' is not precopy or snapshot" },
        { "log-level", "loud", "log-level: 'loud' is none of err, warning, notice, info, debug" },
        { "checkpoint-delay", "0", "checkpoint-delay: '0' is not a number of milliseconds from 1 to 3600000" },
        { "checkpoint-delay", "3600001", "checkpoint-delay: '3600001' is not a number of milliseconds from 1 to 3600000" },
        { "checkpoint-delay", "10ms", "checkpoint-delay: '10ms' is not a number of milliseconds from 1 to 3600000" },
    };
    g_autoptr(JsonObject) st = NULL;
    JsonObject *settings;

    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(JsonObject) ret = set(cl, bad[i].key, str_node(bad[i].value), &err);

        g_assert_error(err, QMP_ERROR, QMP_ERROR_GENERIC);
        g_assert_cmpstr(err->message, ==, bad[i].error);
    }
    {
        g_autoptr(GError) err = NULL;
        g_autoptr(JsonObject) ret = set(cl, "log-level", str_node("debug"), &err);

        g_assert_no_error(err);
        g_assert_cmpstr(json_object_get_string_member(ret, "value"), ==, "debug");
    }
    {
        g_autoptr(GError) err = NULL;
        g_autoptr(JsonObject) ret = set(cl, "protect-mode", str_node("snapshot"), &err);

        g_assert_no_error(err);
        g_assert_cmpstr(json_object_get_string_member(ret, "value"), ==, "snapshot");
    }
    {
        g_autoptr(GError) err = NULL;
        JsonNode *n = json_node_new(JSON_NODE_VALUE);
        g_autoptr(JsonObject) ret = NULL;

        json_node_set_int(n, 2000);
        ret = set(cl, "checkpoint-delay", n, &err);
        g_assert_no_error(err);
        g_assert_cmpstr(json_object_get_string_member(ret, "value"), ==, "2000");
    }
    {
        g_autoptr(GError) err = NULL;
        JsonNode *n = json_node_new(JSON_NODE_VALUE);
        g_autoptr(JsonObject) ret = NULL;

        json_node_set_boolean(n, TRUE);
        ret = set(cl, "log-level", n, &err);
        g_assert_error(err, QMP_ERROR, QMP_ERROR_GENERIC);
    }
    st = status(cl);
    settings = json_object_get_object_member(st, "settings");
    g_assert_cmpstr(json_object_get_string_member(settings, "log-level"), ==, "debug");
    g_assert_cmpint(json_object_get_int_member(settings, "checkpoint-delay"), ==, 2000);
    colo_log_set_threshold(LOG_INFO);
    client_free(cl);
}

/* Garbage on the socket: errors or a closed connection for that client,
 * colod itself serves on. */
static void test_garbage(Fixture *f, gconstpointer data)
{
#define TEXT(s) { s, sizeof(s) - 1 }
    static const struct {
        const char *data;
        size_t len;
    } inputs[] = {
        TEXT("\xff\xfe\x00\x01garbage\r\n"),
        TEXT("{\"execute\": 5}\n{]]]\n"),
        TEXT("[1, 2, 3]\n\"str\"\n{\"execute\":\"qmp_capabilities\",\"arguments\":[]}\n"),
        TEXT("{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"set\",\"arguments\":{\"key\":{},\"value\":[]}}\n"
             "{\"execute\":\"failover\",\"id\":{\"a\":[1,{}]},\"arguments\":{\"x\":null}}\n"
             "{\"execute\":\"query-status\",\"bogus\":1}\n"),
    };
#undef TEXT
    g_autoptr(GRand) rnd = g_rand_new_with_seed(11);
    char noise[65536];

    for (size_t i = 0; i < G_N_ELEMENTS(inputs) + 1; i++) {
        g_autoptr(GError) err = NULL;
        int fd = colo_unix_connect(f->path, false, &err);
        const char *in = i < G_N_ELEMENTS(inputs) ? inputs[i].data : noise;
        size_t len = i < G_N_ELEMENTS(inputs) ? inputs[i].len : sizeof(noise);

        g_assert_no_error(err);
        if (in == noise) {
            for (size_t j = 0; j < sizeof(noise); j++) {
                noise[j] = (char)g_rand_int_range(rnd, 0, 256);
            }
        }
        /* The server reads while we write: no deadlock on a full buffer. */
        for (size_t off = 0; off < len;) {
            ssize_t n = send(fd, in + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

            if (n > 0) {
                off += (size_t)n;
            } else {
                g_main_context_iteration(NULL, FALSE);
            }
        }
        drain();
        close(fd);
        drain();
    }
    {
        Client *cl = client_new(f);
        g_autoptr(JsonObject) st = status(cl);

        g_assert_cmpstr(json_object_get_string_member(st, "state"), ==, "starting");
        g_assert_cmpuint(f->executed->len, ==, 0);
        client_free(cl);
    }
}

/* A socket path that cannot be made: an error, no control. */
static void test_bad_path(void)
{
    ClusterFsmParams p = { .local_id = 1, .peer_id = 2 };
    ColodStateRecord rec = { COLOD_ROLE_NONE, 0 };
    Fixture f = { 0 };
    ClusterClock clock = { fake_now, &f };
    ClusterFsm *fsm = cluster_fsm_new(&p, &rec, &clock);
    ColodControlParams cp = { .vm_name = "web1", .fsm = fsm, .execute = on_execute, .opaque = &f };
    g_autoptr(GError) err = NULL;
    g_autofree char *longpath = g_strnfill(200, 'x');
    g_autofree char *path = g_build_filename(g_get_tmp_dir(), longpath, NULL);

    g_assert_null(colod_control_new(&cp, "/proc/self/no/colod.sock", &err));
    g_assert_nonnull(err);
    g_clear_error(&err);
    g_assert_null(colod_control_new(&cp, path, &err));
    g_assert_nonnull(err);
    cluster_fsm_free(fsm);
}

/* 0600 for root only; 0660 for [vm] socket-group's members. */
static void test_socket_modes(void)
{
    ClusterFsmParams p = { .local_id = 1, .peer_id = 2 };
    ColodStateRecord rec = { COLOD_ROLE_NONE, 0 };
    Fixture f = { 0 };
    ClusterClock clock = { fake_now, &f };
    ClusterFsm *fsm = cluster_fsm_new(&p, &rec, &clock);
    ColodControlParams cp = { .vm_name = "web1", .fsm = fsm, .execute = on_execute, .opaque = &f };
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("colod-control-XXXXXX", &err);
    g_autofree char *path = g_build_filename(dir, "colod.sock", NULL);
    const char *groups[] = { NULL, "0" };
    const int modes[] = { 0600, 0660 };

    g_assert_no_error(err);
    for (size_t i = 0; i < G_N_ELEMENTS(groups); i++) {
        ColodControl *ctl;
        GStatBuf st;

        cp.socket_group = groups[i];
        ctl = colod_control_new(&cp, path, &err);
        g_assert_no_error(err);
        g_assert_cmpint(g_stat(path, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 07777, ==, modes[i]);
        g_assert_cmpint(st.st_gid, ==, 0);
        colod_control_free(ctl);
    }
    cp.socket_group = "no-such-group-colo";
    g_assert_null(colod_control_new(&cp, path, &err));
    g_assert_nonnull(err);
    g_rmdir(dir);
    cluster_fsm_free(fsm);
}

static void test_default_path(void)
{
    g_autofree char *p = colod_control_default_path("web1");

    g_assert_cmpstr(p, ==, "/run/colo/web1/colod.sock");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    colo_log_init("colod-test", NULL, false, NULL, false, NULL);
    g_test_add("/colod/control/status-at-start", Fixture, NULL, fixture_setup, test_status_at_start,
               fixture_teardown);
    g_test_add("/colod/control/refused", Fixture, NULL, fixture_setup, test_refused, fixture_teardown);
    g_test_add("/colod/control/events-and-failover", Fixture, NULL, fixture_setup, test_events_and_failover,
               fixture_teardown);
    g_test_add("/colod/control/protect-unprotect", Fixture, NULL, fixture_setup, test_protect_unprotect,
               fixture_teardown);
    g_test_add("/colod/control/managed", Fixture, "managed", fixture_setup, test_managed, fixture_teardown);
    g_test_add("/colod/control/set", Fixture, NULL, fixture_setup, test_set, fixture_teardown);
    g_test_add("/colod/control/garbage", Fixture, NULL, fixture_setup, test_garbage, fixture_teardown);
    g_test_add_func("/colod/control/bad-path", test_bad_path);
    g_test_add_func("/colod/control/default-path", test_default_path);
    g_test_add_func("/colod/control/socket-modes", test_socket_modes);
    return g_test_run();
}
