/* Unit tests of the asynchronous QMP client (common/qmp/qmp-client.c)
 * against the library's server in the same process and main loop, and
 * against a scripted fake server for what a real one never does (no
 * reply, a hang-up in the middle of a command, no greeting). */
#include "config.h"

#include "common/qmp/qmp-client.h"
#include "common/qmp/qmp-server.h"
#include "common/unix-socket.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <glib/gstdio.h>

/* Run the default main context until *@flag or 5 s passed. */
static void run_until(const bool *flag)
{
    gint64 end = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

    while (!*flag && g_get_monotonic_time() < end) {
        g_main_context_iteration(NULL, FALSE);
        g_usleep(200);
    }
    g_assert_true(*flag);
}

/* What callbacks saw. */
typedef struct {
    bool done;
    GError *error;
    JsonNode *ret;
    unsigned order;
} Outcome;

static unsigned outcome_seq;

static void outcome_clear(Outcome *o)
{
    g_clear_error(&o->error);
    g_clear_pointer(&o->ret, json_node_unref);
    o->done = false;
}

static void on_ready(QmpClient *c, const GError *error, gpointer opaque)
{
    Outcome *o = opaque;

    o->done = true;
    o->order = ++outcome_seq;
    if (error) {
        o->error = g_error_copy(error);
    }
}

static void on_reply(QmpClient *c, JsonNode *ret, const GError *error, gpointer opaque)
{
    Outcome *o = opaque;

    g_assert_false(o->done);
    o->done = true;
    o->order = ++outcome_seq;
    if (error) {
        g_assert_null(ret);
        o->error = g_error_copy(error);
    } else {
        g_assert_nonnull(ret);
        o->ret = json_node_copy(ret);
    }
}

/* --- a real server with a few commands -------------------------------- */

typedef struct {
    char *dir, *path;
    QmpServer *server;
} Fixture;

static JsonNode *cmd_add(JsonObject *args, gpointer opaque, GError **error)
{
    g_autoptr(JsonObject) o = json_object_new();

    json_object_set_int_member(o, "sum", json_object_get_int_member_with_default(args, "a", 0) +
                                             json_object_get_int_member_with_default(args, "b", 0));
    return json_node_init_object(json_node_alloc(), o);
}

static JsonNode *cmd_missing(JsonObject *args, gpointer opaque, GError **error)
{
    g_set_error(error, QMP_ERROR, QMP_ERROR_DEVICE_NOT_FOUND, "Device 'nic9' not found");
    return NULL;
}

static JsonNode *cmd_emit(JsonObject *args, gpointer opaque, GError **error)
{
    JsonObject *data = json_object_new();

    json_object_set_string_member(data, "reason", "test");
    qmp_server_emit_event(opaque, "TEST_EVENT", data);
    return NULL;
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    f->dir = g_dir_make_tmp("qmp-client-XXXXXX", NULL);
    f->path = g_build_filename(f->dir, "qmp.sock", NULL);
    f->server = qmp_server_new(NULL, "client test", 1, 2, 3);
    qmp_server_register(f->server, "test-add", cmd_add, NULL);
    qmp_server_register(f->server, "test-missing", cmd_missing, NULL);
    qmp_server_register(f->server, "test-emit", cmd_emit, f->server);
    g_assert_true(qmp_server_listen_unix(f->server, f->path, &error));
    g_assert_no_error(error);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    qmp_server_free(f->server);
    g_rmdir(f->dir);
    g_free(f->path);
    g_free(f->dir);
}

static QmpClient *connect_ready(const char *path)
{
    QmpClient *c = qmp_client_new(NULL);
    Outcome o = { 0 };

    qmp_client_connect(c, path, 5000, on_ready, &o);
    g_assert_false(o.done); /* never from inside the call */
    run_until(&o.done);
    g_assert_no_error(o.error);
    g_assert_true(qmp_client_is_ready(c));
    return c;
}

static void run_command(QmpClient *c, const char *name, JsonObject *args, guint timeout_ms, Outcome *o)
{
    outcome_clear(o);
    qmp_client_execute(c, name, args, timeout_ms, on_reply, o);
    g_assert_false(o->done);
    run_until(&o->done);
}

static void test_negotiation(Fixture *f, gconstpointer data)
{
    QmpClient *c = connect_ready(f->path);
    JsonObject *qmp = json_object_get_object_member(qmp_client_greeting(c), "QMP");
    JsonObject *ver = json_object_get_object_member(json_object_get_object_member(qmp, "version"), "qemu");

    g_assert_cmpint(json_object_get_int_member(ver, "major"), ==, 1);
    g_assert_cmpint(json_object_get_int_member(ver, "micro"), ==, 3);
    g_assert_cmpuint(qmp_server_client_count(f->server), ==, 1);
    qmp_client_free(c);
}

static void test_result_and_errors(Fixture *f, gconstpointer data)
{
    QmpClient *c = connect_ready(f->path);
    JsonObject *args = json_object_new();
    Outcome o = { 0 };

    json_object_set_int_member(args, "a", 40);
    json_object_set_int_member(args, "b", 2);
    run_command(c, "test-add", args, 1000, &o);
    g_assert_no_error(o.error);
    g_assert_cmpint(json_object_get_int_member(json_node_get_object(o.ret), "sum"), ==, 42);

    /* A command with no return value gives {}. */
    run_command(c, "test-emit", NULL, 1000, &o);
    g_assert_true(JSON_NODE_HOLDS_OBJECT(o.ret));

    run_command(c, "test-missing", NULL, 1000, &o);
    g_assert_error(o.error, QMP_ERROR, QMP_ERROR_DEVICE_NOT_FOUND);
    g_assert_cmpstr(o.error->message, ==, "Device 'nic9' not found");

    run_command(c, "nonesuch", NULL, 1000, &o);
    g_assert_error(o.error, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND);
    outcome_clear(&o);
    qmp_client_free(c);
}

/* Commands issued before the negotiation wait for it, in order. */
static void test_queued_before_ready(Fixture *f, gconstpointer data)
{
    QmpClient *c = qmp_client_new(NULL);
    Outcome ready = { 0 }, o1 = { 0 }, o2 = { 0 };

    qmp_client_connect(c, f->path, 5000, on_ready, &ready);
    qmp_client_execute(c, "query-version", NULL, 2000, on_reply, &o1);
    qmp_client_execute(c, "test-add", NULL, 2000, on_reply, &o2);
    run_until(&o2.done);
    g_assert_true(ready.done && o1.done);
    g_assert_no_error(ready.error);
    g_assert_no_error(o1.error);
    g_assert_no_error(o2.error);
    g_assert_cmpuint(ready.order, <, o1.order);
    g_assert_cmpuint(o1.order, <, o2.order);
    outcome_clear(&o1);
    outcome_clear(&o2);
    qmp_client_free(c);
}

typedef struct {
    bool seen;
    char *name;
    char *reason;
    bool has_timestamp;
} EventSeen;

static void on_event(QmpClient *c, const char *event, JsonObject *data, JsonObject *timestamp, gpointer opaque)
{
    EventSeen *e = opaque;

    e->seen = true;
    e->name = g_strdup(event);
    e->reason = g_strdup(data ? json_object_get_string_member_with_default(data, "reason", NULL) : NULL);
    e->has_timestamp = timestamp && json_object_has_member(timestamp, "seconds");
}

static void test_event(Fixture *f, gconstpointer data)
{
    QmpClient *c = connect_ready(f->path);
    EventSeen e = { 0 };
    Outcome o = { 0 };

    qmp_client_set_event_handler(c, on_event, &e);
    qmp_server_emit_event(f->server, "PLAIN", NULL);
    run_until(&e.seen);
    g_assert_cmpstr(e.name, ==, "PLAIN");
    g_assert_null(e.reason);
    g_assert_true(e.has_timestamp);
    g_free(e.name);
    memset(&e, 0, sizeof(e));

    /* An event a command causes comes before its reply. */
    run_command(c, "test-emit", NULL, 1000, &o);
    g_assert_true(e.seen);
    g_assert_cmpstr(e.name, ==, "TEST_EVENT");
    g_assert_cmpstr(e.reason, ==, "test");
    g_free(e.name);
    g_free(e.reason);
    outcome_clear(&o);
    qmp_client_free(c);
}

static void on_closed(QmpClient *c, const GError *error, gpointer opaque)
{
    Outcome *o = opaque;

    g_assert_false(o->done);
    o->done = true;
    o->error = g_error_copy(error);
}

static void test_server_goes_away(Fixture *f, gconstpointer data)
{
    QmpClient *c = connect_ready(f->path);
    Outcome closed = { 0 }, o = { 0 };

    qmp_client_set_closed_handler(c, on_closed, &closed);
    qmp_server_free(f->server);
    f->server = qmp_server_new(NULL, "t", 0, 0, 0); /* for the teardown */
    run_until(&closed.done);
    g_assert_error(closed.error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
    g_assert_false(qmp_client_is_ready(c));

    /* A command on the closed client fails, from the main loop. */
    run_command(c, "test-add", NULL, 1000, &o);
    g_assert_error(o.error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED);
    outcome_clear(&o);
    outcome_clear(&closed);
    qmp_client_free(c);
}

static void test_no_server(void)
{
    g_autofree char *dir = g_dir_make_tmp("qmp-client-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "none.sock", NULL);
    QmpClient *c = qmp_client_new(NULL);
    Outcome o = { 0 };

    qmp_client_connect(c, path, 1000, on_ready, &o);
    run_until(&o.done);
    g_assert_error(o.error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
    outcome_clear(&o);
    qmp_client_free(c);
    g_rmdir(dir);
}

/* --- a scripted fake server ------------------------------------------- */

typedef struct {
    char *dir, *path;
    int listen_fd, fd;
    guint watch;
    const char *greeting;      /* sent on accept */
    bool answer_caps;          /* answer qmp_capabilities */
    GString *in;
} Fake;

static gboolean fake_on_accept(gint fd, GIOCondition cond, gpointer data)
{
    Fake *k = data;

    k->fd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    g_assert_cmpint(k->fd, >=, 0);
    if (k->greeting) {
        g_assert_cmpint(send(k->fd, k->greeting, strlen(k->greeting), 0), ==, (ssize_t)strlen(k->greeting));
    }
    k->watch = 0;
    return G_SOURCE_REMOVE;
}

static Fake *fake_new(const char *greeting, bool answer_caps)
{
    Fake *k = g_new0(Fake, 1);
    g_autoptr(GError) error = NULL;

    k->dir = g_dir_make_tmp("qmp-fake-XXXXXX", NULL);
    k->path = g_build_filename(k->dir, "fake.sock", NULL);
    k->listen_fd = colo_unix_listen(k->path, true, &error);
    g_assert_no_error(error);
    k->fd = -1;
    k->greeting = greeting;
    k->answer_caps = answer_caps;
    k->in = g_string_new(NULL);
    k->watch = g_unix_fd_add(k->listen_fd, G_IO_IN, fake_on_accept, k);
    return k;
}

/* Reads what the client sent so far; answers qmp_capabilities. */
static void fake_pump(Fake *k)
{
    char buf[4096];
    ssize_t n;

    while (k->fd >= 0 && (n = recv(k->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
        g_string_append_len(k->in, buf, n);
    }
    if (k->answer_caps && strstr(k->in->str, "qmp_capabilities")) {
        const char *ok = "{\"return\": {}, \"id\": 1}\r\n";

        k->answer_caps = false;
        g_assert_cmpint(send(k->fd, ok, strlen(ok), 0), ==, (ssize_t)strlen(ok));
    }
}

static void fake_free(Fake *k)
{
    if (k->watch) {
        g_source_remove(k->watch);
    }
    if (k->fd >= 0) {
        close(k->fd);
    }
    close(k->listen_fd);
    unlink(k->path);
    g_rmdir(k->dir);
    g_free(k->path);
    g_free(k->dir);
    g_string_free(k->in, TRUE);
    g_free(k);
}

static const char fake_greeting[] =
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 0, \"major\": 9}, \"package\": \"\"}, "
    "\"capabilities\": []}}\r\n";

static QmpClient *fake_connect_ready(Fake *k)
{
    QmpClient *c = qmp_client_new(NULL);
    Outcome o = { 0 };
    gint64 end = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

    qmp_client_connect(c, k->path, 5000, on_ready, &o);
    while (!o.done && g_get_monotonic_time() < end) {
        g_main_context_iteration(NULL, FALSE);
        fake_pump(k);
        g_usleep(200);
    }
    g_assert_true(o.done);
    g_assert_no_error(o.error);
    return c;
}

static void test_timeout(void)
{
    Fake *k = fake_new(fake_greeting, true);
    QmpClient *c = fake_connect_ready(k);
    Outcome o = { 0 };
    gint64 t0 = g_get_monotonic_time();

    run_command(c, "test-hang", NULL, 100, &o);
    g_assert_error(o.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    g_assert_cmpint(g_get_monotonic_time() - t0, >=, 100 * 1000);
    fake_pump(k);
    g_assert_nonnull(strstr(k->in->str, "\"execute\":\"test-hang\",\"id\":2"));

    /* The late reply is dropped; the connection goes on. */
    {
        const char *late = "{\"return\": {}, \"id\": 2}\r\n{\"return\": {\"n\": 3}, \"id\": 3}\r\n";

        outcome_clear(&o);
        qmp_client_execute(c, "next", NULL, 1000, on_reply, &o);
        g_assert_cmpint(send(k->fd, late, strlen(late), 0), ==, (ssize_t)strlen(late));
        run_until(&o.done);
        g_assert_no_error(o.error);
        g_assert_cmpint(json_object_get_int_member(json_node_get_object(o.ret), "n"), ==, 3);
    }
    g_assert_true(qmp_client_is_ready(c));
    outcome_clear(&o);
    qmp_client_free(c);
    fake_free(k);
}

/* An error reply whose members have the wrong types still ends the
 * command with an error (found by fuzz-qmp-client: a numeric "desc"). */
static void test_malformed_error_reply(void)
{
    Fake *k = fake_new(fake_greeting, true);
    QmpClient *c = fake_connect_ready(k);
    const char *replies = "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": 12}, \"id\": 2}\r\n"
                          "{\"error\": {\"class\": [], \"desc\": null}, \"id\": 3}\r\n"
                          "{\"error\": 5, \"id\": 4}\r\n";
    Outcome a = { 0 }, b = { 0 }, d = { 0 };

    qmp_client_execute(c, "a", NULL, 1000, on_reply, &a);
    qmp_client_execute(c, "b", NULL, 1000, on_reply, &b);
    qmp_client_execute(c, "d", NULL, 1000, on_reply, &d);
    g_main_context_iteration(NULL, FALSE);
    g_assert_cmpint(send(k->fd, replies, strlen(replies), 0), ==, (ssize_t)strlen(replies));
    run_until(&d.done);
    g_assert_true(a.done && b.done);
    g_assert_error(a.error, QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND);
    g_assert_cmpstr(a.error->message, ==, "(no description)");
    g_assert_error(b.error, QMP_ERROR, QMP_ERROR_GENERIC);
    g_assert_error(d.error, QMP_ERROR, QMP_ERROR_GENERIC);
    g_assert_null(a.ret);
    g_assert_null(b.ret);
    g_assert_null(d.ret);
    g_assert_true(qmp_client_is_ready(c));
    outcome_clear(&a);
    outcome_clear(&b);
    outcome_clear(&d);
    qmp_client_free(c);
    fake_free(k);
}

/* The server hangs up while commands wait: they fail, oldest first, and
 * the closed handler hears it once. */
static void test_disconnect_fails_waiting(void)
{
    Fake *k = fake_new(fake_greeting, true);
    QmpClient *c = fake_connect_ready(k);
    Outcome a = { 0 }, b = { 0 }, closed = { 0 };

    qmp_client_set_closed_handler(c, on_closed, &closed);
    qmp_client_execute(c, "first", NULL, 0, on_reply, &a);
    qmp_client_execute(c, "second", NULL, 5000, on_reply, &b);
    g_main_context_iteration(NULL, FALSE);
    close(k->fd);
    k->fd = -1;
    run_until(&closed.done);
    g_assert_true(a.done && b.done);
    g_assert_error(a.error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
    g_assert_error(b.error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
    g_assert_cmpuint(a.order, <, b.order);
    g_assert_error(closed.error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
    outcome_clear(&a);
    outcome_clear(&b);
    outcome_clear(&closed);
    qmp_client_free(c);
    fake_free(k);
}

static void test_not_qmp(void)
{
    Fake *k = fake_new("{\"hello\": 1}\n", false);
    QmpClient *c = qmp_client_new(NULL);
    Outcome o = { 0 };

    qmp_client_connect(c, k->path, 2000, on_ready, &o);
    run_until(&o.done);
    g_assert_error(o.error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
    outcome_clear(&o);
    qmp_client_free(c);
    fake_free(k);
}

static void test_no_greeting_times_out(void)
{
    Fake *k = fake_new(NULL, false);
    QmpClient *c = qmp_client_new(NULL);
    Outcome o = { 0 };

    qmp_client_connect(c, k->path, 100, on_ready, &o);
    run_until(&o.done);
    g_assert_error(o.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    outcome_clear(&o);
    qmp_client_free(c);
    fake_free(k);
}

/* A callback may free the client; the other waiting commands then never
 * hear back. */
static bool freed_in_callback;

static void on_reply_free(QmpClient *c, JsonNode *ret, const GError *error, gpointer opaque)
{
    freed_in_callback = true;
    qmp_client_free(c);
}

static void on_reply_never(QmpClient *c, JsonNode *ret, const GError *error, gpointer opaque)
{
    g_assert_not_reached();
}

static void test_free_in_callback(Fixture *f, gconstpointer data)
{
    QmpClient *c = connect_ready(f->path);

    freed_in_callback = false;
    qmp_client_execute(c, "query-version", NULL, 1000, on_reply_free, NULL);
    qmp_client_execute(c, "query-version", NULL, 1000, on_reply_never, NULL);
    run_until(&freed_in_callback);
    for (int i = 0; i < 20; i++) {
        g_main_context_iteration(NULL, FALSE);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/qmp-client/negotiation", Fixture, NULL, fixture_setup, test_negotiation, fixture_teardown);
    g_test_add("/qmp-client/result-and-errors", Fixture, NULL, fixture_setup, test_result_and_errors,
               fixture_teardown);
    g_test_add("/qmp-client/queued-before-ready", Fixture, NULL, fixture_setup, test_queued_before_ready,
               fixture_teardown);
    g_test_add("/qmp-client/event", Fixture, NULL, fixture_setup, test_event, fixture_teardown);
    g_test_add("/qmp-client/server-goes-away", Fixture, NULL, fixture_setup, test_server_goes_away,
               fixture_teardown);
    g_test_add("/qmp-client/free-in-callback", Fixture, NULL, fixture_setup, test_free_in_callback,
               fixture_teardown);
    g_test_add_func("/qmp-client/no-server", test_no_server);
    g_test_add_func("/qmp-client/timeout", test_timeout);
    g_test_add_func("/qmp-client/disconnect-fails-waiting", test_disconnect_fails_waiting);
    g_test_add_func("/qmp-client/malformed-error-reply", test_malformed_error_reply);
    g_test_add_func("/qmp-client/not-qmp", test_not_qmp);
    g_test_add_func("/qmp-client/no-greeting-times-out", test_no_greeting_times_out);
    return g_test_run();
}
