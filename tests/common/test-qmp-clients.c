/* QMP server with several clients: events to every client in command
 * mode with timestamps, events from other threads, clients that vanish or
 * stop reading without disturbing the others. */
#include "config.h"

#include "qmp-test-util.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    QmpTestServer *srv;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    f->srv = qts_new();
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    qts_free(f->srv);
}

static JsonObject *event_data(const char *key, gint64 value)
{
    JsonObject *data = json_object_new();

    json_object_set_int_member(data, key, value);
    return data;
}

/* Asserts @ev is event @name with a timestamp within [@lo, @hi] (us). */
static void assert_event(JsonObject *ev, const char *name, gint64 lo, gint64 hi)
{
    JsonObject *ts;
    gint64 sec, usec;

    g_assert_cmpstr(json_object_get_string_member(ev, "event"), ==, name);
    ts = json_object_get_object_member(ev, "timestamp");
    g_assert_nonnull(ts);
    sec = json_object_get_int_member(ts, "seconds");
    usec = json_object_get_int_member(ts, "microseconds");
    g_assert_cmpint(usec, >=, 0);
    g_assert_cmpint(usec, <, G_USEC_PER_SEC);
    g_assert_cmpint(sec * G_USEC_PER_SEC + usec, >=, lo);
    g_assert_cmpint(sec * G_USEC_PER_SEC + usec, <=, hi);
}

static void test_events_two_clients(Fixture *f, gconstpointer data)
{
    g_autoptr(QmpTestClient) a = NULL;
    g_autoptr(QmpTestClient) b = NULL;
    g_autoptr(QmpTestClient) shy = NULL;
    g_autoptr(JsonObject) ea = NULL, eb = NULL, na = NULL, nb = NULL, rsp = NULL;
    gint64 before, after;

    qts_run(f->srv);
    a = qtc_connect(f->srv->path);
    b = qtc_connect(f->srv->path);
    shy = qtc_connect(f->srv->path); /* never negotiates */
    qtc_negotiate(a);
    qtc_negotiate(b);
    g_free(qtc_recv_line(shy)); /* greeting */

    before = g_get_real_time();
    qmp_server_emit_event(f->srv->server, "TEST_EVENT", event_data("n", 1));
    qmp_server_emit_event(f->srv->server, "NO_DATA", NULL);
    after = g_get_real_time();

    ea = qtc_recv(a);
    eb = qtc_recv(b);
    assert_event(ea, "TEST_EVENT", before, after);
    assert_event(eb, "TEST_EVENT", before, after);
    g_assert_cmpint(json_object_get_int_member(json_object_get_object_member(ea, "data"), "n"), ==, 1);
    g_assert_cmpint(json_object_get_int_member(json_object_get_object_member(eb, "data"), "n"), ==, 1);

    /* As QEMU: an event without data has no "data" member at all. */
    na = qtc_recv(a);
    nb = qtc_recv(b);
    assert_event(na, "NO_DATA", before, after);
    assert_event(nb, "NO_DATA", before, after);
    g_assert_false(json_object_has_member(na, "data"));
    g_assert_false(json_object_has_member(nb, "data"));

    /* The client still negotiating got nothing; it gets the reply only. */
    rsp = qtc_cmd(shy, "{\"execute\": \"qmp_capabilities\"}");
    qtc_assert_return(rsp);
    g_assert_true(qtc_quiet(shy, 100));
}

static void test_event_timestamp_at_emit(Fixture *f, gconstpointer data)
{
    g_autoptr(QmpTestClient) c = NULL;
    g_autoptr(JsonObject) first = NULL, second = NULL;
    gint64 before, after;

    qts_run(f->srv);
    c = qtc_connect(f->srv->path);
    qtc_negotiate(c);

    /* Emit while the server thread is busy in a command for 400 ms: the
     * event goes out after the reply, stamped with the time of the call. */
    qtc_send_str(c, "{\"execute\": \"test-sleep\", \"arguments\": {\"ms\": 400}, \"id\": \"s\"}");
    g_assert_true(qts_wait_sleeping(f->srv, 1));
    before = g_get_real_time();
    qmp_server_emit_event(f->srv->server, "DURING_SLEEP", NULL);
    after = g_get_real_time();

    first = qtc_recv(c);
    g_assert_cmpstr(json_object_get_string_member(first, "id"), ==, "s");
    /* The reply waited for the rest of the sleep (it began before the emit). */
    g_assert_cmpint(g_get_real_time() - after, >=, 150 * 1000);
    second = qtc_recv(c);
    assert_event(second, "DURING_SLEEP", before, after);
}

static void test_event_from_handler_precedes_reply(Fixture *f, gconstpointer data)
{
    g_autoptr(QmpTestClient) c = NULL;
    g_autoptr(JsonObject) ev = NULL, rsp = NULL;

    qts_run(f->srv);
    c = qtc_connect(f->srv->path);
    qtc_negotiate(c);
    qtc_send_str(c, "{\"execute\": \"test-emit\", \"id\": 5}");
    ev = qtc_recv(c);
    g_assert_cmpstr(json_object_get_string_member(ev, "event"), ==, "TEST_FROM_HANDLER");
    rsp = qtc_recv(c);
    qtc_assert_return(rsp);
    g_assert_cmpint(json_object_get_int_member(rsp, "id"), ==, 5);
}

#define EMIT_THREADS 4
#define EMIT_EACH    200

typedef struct {
    QmpServer *server;
    gint64 thread;
} EmitJob;

static gpointer emit_thread(gpointer data)
{
    EmitJob *job = data;

    for (gint64 i = 0; i < EMIT_EACH; i++) {
        JsonObject *d = event_data("seq", i);

        json_object_set_int_member(d, "thread", job->thread);
        qmp_server_emit_event(job->server, "THREADED", d);
    }
    return NULL;
}

static void test_events_from_threads(Fixture *f, gconstpointer data)
{
    g_autoptr(QmpTestClient) c = NULL;
    GThread *threads[EMIT_THREADS];
    EmitJob jobs[EMIT_THREADS];
    gint64 next[EMIT_THREADS] = { 0 };

    qts_run(f->srv);
    c = qtc_connect(f->srv->path);
    qtc_negotiate(c);
    for (int i = 0; i < EMIT_THREADS; i++) {
        jobs[i] = (EmitJob){ .server = f->srv->server, .thread = i };
        threads[i] = g_thread_new("emit", emit_thread, &jobs[i]);
    }
    /* Every event arrives, each thread's in the order it emitted them. */
    for (int n = 0; n < EMIT_THREADS * EMIT_EACH; n++) {
        g_autoptr(JsonObject) ev = qtc_recv(c);
        JsonObject *d = json_object_get_object_member(ev, "data");
        gint64 t = json_object_get_int_member(d, "thread");

        g_assert_cmpstr(json_object_get_string_member(ev, "event"), ==, "THREADED");
        g_assert_cmpint(t, >=, 0);
        g_assert_cmpint(t, <, EMIT_THREADS);
        g_assert_cmpint(json_object_get_int_member(d, "seq"), ==, next[t]);
        next[t]++;
    }
    for (int i = 0; i < EMIT_THREADS; i++) {
        g_thread_join(threads[i]);
    }
    g_assert_true(qtc_quiet(c, 100));
}

static void test_disconnect_mid_message(Fixture *f, gconstpointer data)
{
    g_autoptr(QmpTestClient) b = NULL;
    g_autoptr(JsonObject) rsp = NULL;
    QmpTestClient *a;

    qts_run(f->srv);
    a = qtc_connect(f->srv->path);
    b = qtc_connect(f->srv->path);
    qtc_negotiate(a);
    qtc_negotiate(b);
    g_assert_true(qts_wait_clients(f->srv, 2));

    qtc_send_str(a, "{\"execute\": \"test-add\", \"argum");
    qtc_close(a);
    g_assert_true(qts_wait_clients(f->srv, 1));

    /* A client that vanishes before its reply is written. */
    a = qtc_connect(f->srv->path);
    qtc_negotiate(a);
    qtc_send_str(a, "{\"execute\": \"test-sleep\", \"arguments\": {\"ms\": 100}}");
    qtc_close(a);
    g_assert_true(qts_wait_clients(f->srv, 1));

    rsp = qtc_cmd(b, "{\"execute\": \"test-add\", \"arguments\": {\"a\": 3}}");
    g_assert_cmpint(json_object_get_int_member(json_node_get_object(qtc_assert_return(rsp)), "sum"),
                    ==, 3);
}

static void test_slow_reader_dropped(Fixture *f, gconstpointer data)
{
    g_autoptr(QmpTestClient) stuck = NULL;
    g_autoptr(QmpTestClient) good = NULL;
    g_autoptr(JsonObject) rsp = NULL;
    g_autofree char *pad = g_strnfill(1024, 'p');
    char buf[4096];
    int got_eof = 0;

    qmp_server_set_limits(f->srv->server, 0, 64 * 1024);
    qts_run(f->srv);
    stuck = qtc_connect(f->srv->path);
    good = qtc_connect(f->srv->path);
    qtc_negotiate(stuck);
    qtc_negotiate(good);

    /* 2 MB of events: more than the stuck client's socket buffer plus the
     * server's 64 KiB limit; the good client keeps up and gets them all. */
    for (int batch = 0; batch < 40; batch++) {
        for (int i = 0; i < 50; i++) {
            JsonObject *d = json_object_new();

            json_object_set_string_member(d, "pad", pad);
            qmp_server_emit_event(f->srv->server, "BULK", d);
        }
        for (int i = 0; i < 50; i++) {
            g_autoptr(JsonObject) ev = qtc_recv(good);

            g_assert_cmpstr(json_object_get_string_member(ev, "event"), ==, "BULK");
        }
    }
    g_assert_true(qts_wait_clients(f->srv, 1));
    rsp = qtc_cmd(good, "{\"execute\": \"query-version\"}");
    qtc_assert_return(rsp);

    /* The stuck client finds its connection closed once it reads. */
    for (int i = 0; i < 10000 && !got_eof; i++) {
        ssize_t n = recv(stuck->fd, buf, sizeof(buf), 0);

        g_assert_cmpint(n, >=, 0);
        got_eof = n == 0;
    }
    g_assert_true(got_eof);
}

static void test_add_fd(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonObject) rsp = NULL;
    QmpTestClient c = { .buf = g_string_new(NULL) };
    int sv[2];

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
    g_assert_true(qmp_server_add_fd(f->srv->server, sv[0], &error));
    g_assert_no_error(error);
    qts_run(f->srv);
    c.fd = sv[1];
    qtc_negotiate(&c);
    rsp = qtc_cmd(&c, "{\"execute\": \"query-version\"}");
    qtc_assert_return(rsp);
    close(c.fd);
    g_string_free(c.buf, TRUE);
    g_assert_true(qts_wait_clients(f->srv, 0));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add("/qmp/clients/" name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("events-two-clients", test_events_two_clients);
    ADD("event-timestamp-at-emit", test_event_timestamp_at_emit);
    ADD("event-from-handler-precedes-reply", test_event_from_handler_precedes_reply);
    ADD("events-from-threads", test_events_from_threads);
    ADD("disconnect-mid-message", test_disconnect_mid_message);
    ADD("slow-reader-dropped", test_slow_reader_dropped);
    ADD("add-fd", test_add_fd);
#undef ADD
    return g_test_run();
}
