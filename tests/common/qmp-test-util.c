/* Helpers for the QMP server tests (see qmp-test-util.h). */
#include "config.h"

#include "qmp-test-util.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib/gstdio.h>

#define TIMEOUT_MS 5000

/* test-add: {"a": int, "b"?: int} -> {"sum": a + b} */
static JsonNode *cmd_test_add(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { "a", "b", NULL };
    gint64 a = 0, b = 0;
    JsonObject *ret;

    if (!qmp_args_check(args, allowed, error) || !qmp_arg_int(args, "a", true, &a, error) ||
        !qmp_arg_int(args, "b", false, &b, error)) {
        return NULL;
    }
    ret = json_object_new();
    json_object_set_int_member(ret, "sum", a + b);
    return json_node_init_object(json_node_alloc(), ret);
}

static JsonNode *cmd_test_fail(JsonObject *args, gpointer opaque, GError **error)
{
    g_set_error(error, QMP_ERROR, QMP_ERROR_DEVICE_NOT_FOUND, "Device 'nope' not found");
    return NULL;
}

static JsonNode *cmd_test_fail_io(JsonObject *args, gpointer opaque, GError **error)
{
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED, "disk says no");
    return NULL;
}

/* test-sleep: {"ms": int}: blocks the server thread. */
static JsonNode *cmd_test_sleep(JsonObject *args, gpointer opaque, GError **error)
{
    QmpTestServer *t = opaque;
    gint64 ms = 0;

    if (!qmp_arg_int(args, "ms", true, &ms, error)) {
        return NULL;
    }
    g_atomic_int_inc(&t->sleeps_started);
    g_usleep((gulong)ms * 1000);
    return NULL;
}

/* test-emit: emits TEST_FROM_HANDLER from the server thread. */
static JsonNode *cmd_test_emit(JsonObject *args, gpointer opaque, GError **error)
{
    qmp_server_emit_event(opaque, "TEST_FROM_HANDLER", NULL);
    return NULL;
}

QmpTestServer *qts_new(void)
{
    QmpTestServer *t = g_new0(QmpTestServer, 1);
    g_autoptr(GError) error = NULL;

    t->dir = g_dir_make_tmp("qmp-test-XXXXXX", &error);
    g_assert_no_error(error);
    t->path = g_build_filename(t->dir, "qmp.sock", NULL);
    t->ctx = g_main_context_new();
    t->loop = g_main_loop_new(t->ctx, FALSE);
    t->server = qmp_server_new(t->ctx, "colo-vmm test", 1, 2, 3);
    qmp_server_register(t->server, "test-add", cmd_test_add, NULL);
    qmp_server_register(t->server, "test-fail", cmd_test_fail, NULL);
    qmp_server_register(t->server, "test-fail-io", cmd_test_fail_io, NULL);
    qmp_server_register(t->server, "test-sleep", cmd_test_sleep, t);
    qmp_server_register(t->server, "test-emit", cmd_test_emit, t->server);
    g_assert_true(qmp_server_listen_unix(t->server, t->path, &error));
    g_assert_no_error(error);
    return t;
}

static gpointer qts_thread(gpointer data)
{
    QmpTestServer *t = data;

    g_main_context_push_thread_default(t->ctx);
    g_main_loop_run(t->loop);
    g_main_context_pop_thread_default(t->ctx);
    return NULL;
}

void qts_run(QmpTestServer *t)
{
    t->thread = g_thread_new("qmp-server", qts_thread, t);
}

typedef struct {
    GSourceFunc fn;
    gpointer data;
    GMutex lock;
    GCond cond;
    gboolean done;
} QtsCall;

static gboolean qts_call_cb(gpointer data)
{
    QtsCall *call = data;

    call->fn(call->data);
    g_mutex_lock(&call->lock);
    call->done = TRUE;
    g_cond_signal(&call->cond);
    g_mutex_unlock(&call->lock);
    return G_SOURCE_REMOVE;
}

void qts_call(QmpTestServer *t, GSourceFunc fn, gpointer data)
{
    QtsCall call = { .fn = fn, .data = data };

    g_mutex_init(&call.lock);
    g_cond_init(&call.cond);
    g_main_context_invoke(t->ctx, qts_call_cb, &call);
    g_mutex_lock(&call.lock);
    while (!call.done) {
        g_cond_wait(&call.cond, &call.lock);
    }
    g_mutex_unlock(&call.lock);
    g_mutex_clear(&call.lock);
    g_cond_clear(&call.cond);
}

typedef struct {
    QmpServer *server;
    unsigned count;
} CountCall;

static gboolean qts_count_cb(gpointer data)
{
    CountCall *cc = data;

    cc->count = qmp_server_client_count(cc->server);
    return G_SOURCE_REMOVE;
}

unsigned qts_client_count(QmpTestServer *t)
{
    CountCall cc = { .server = t->server };

    qts_call(t, qts_count_cb, &cc);
    return cc.count;
}

gboolean qts_wait_clients(QmpTestServer *t, unsigned n)
{
    for (int i = 0; i < TIMEOUT_MS / 10; i++) {
        if (qts_client_count(t) == n) {
            return TRUE;
        }
        g_usleep(10000);
    }
    return FALSE;
}

gboolean qts_wait_sleeping(QmpTestServer *t, int n)
{
    for (int i = 0; i < TIMEOUT_MS; i++) {
        if (g_atomic_int_get(&t->sleeps_started) >= n) {
            return TRUE;
        }
        g_usleep(1000);
    }
    return FALSE;
}

void qts_free(QmpTestServer *t)
{
    if (t->thread) {
        g_main_loop_quit(t->loop);
        g_thread_join(t->thread);
    }
    qmp_server_free(t->server);
    /* The server removes its socket file. */
    g_assert_false(g_file_test(t->path, G_FILE_TEST_EXISTS));
    g_rmdir(t->dir);
    g_main_loop_unref(t->loop);
    g_main_context_unref(t->ctx);
    g_free(t->path);
    g_free(t->dir);
    g_free(t);
}

QmpTestClient *qtc_connect(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    QmpTestClient *c = g_new0(QmpTestClient, 1);

    g_assert_cmpuint(strlen(path), <, sizeof(addr.sun_path));
    strcpy(addr.sun_path, path);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(c->fd, >=, 0);
    g_assert_cmpint(connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    c->buf = g_string_new(NULL);
    return c;
}

void qtc_send(QmpTestClient *c, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        g_assert_cmpint(n, >, 0);
        data += n;
        len -= (size_t)n;
    }
}

void qtc_send_str(QmpTestClient *c, const char *text)
{
    qtc_send(c, text, strlen(text));
}

/* Reads more data; FALSE on timeout, asserts on EOF. */
static gboolean qtc_fill(QmpTestClient *c, int timeout_ms)
{
    struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
    char buf[65536];
    ssize_t n;

    if (poll(&pfd, 1, timeout_ms) <= 0) {
        return FALSE;
    }
    n = recv(c->fd, buf, sizeof(buf), 0);
    g_assert_cmpint(n, >, 0);
    g_string_append_len(c->buf, buf, n);
    return TRUE;
}

char *qtc_recv_line(QmpTestClient *c)
{
    char *nl;
    char *line;

    while (!(nl = memchr(c->buf->str, '\n', c->buf->len))) {
        if (!qtc_fill(c, TIMEOUT_MS)) {
            g_error("no reply from the QMP server within %d ms", TIMEOUT_MS);
        }
    }
    g_assert_true(nl > c->buf->str && nl[-1] == '\r');
    line = g_strndup(c->buf->str, (gsize)(nl - c->buf->str - 1));
    g_string_erase(c->buf, 0, nl - c->buf->str + 1);
    return line;
}

gboolean qtc_quiet(QmpTestClient *c, int ms)
{
    return c->buf->len == 0 && !qtc_fill(c, ms);
}

JsonObject *qtc_recv(QmpTestClient *c)
{
    g_autofree char *line = qtc_recv_line(c);
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) error = NULL;
    JsonNode *root;

    json_parser_load_from_data(parser, line, -1, &error);
    g_assert_no_error(error);
    root = json_parser_get_root(parser);
    g_assert_true(JSON_NODE_HOLDS_OBJECT(root));
    return json_object_ref(json_node_get_object(root));
}

JsonObject *qtc_cmd(QmpTestClient *c, const char *json)
{
    qtc_send_str(c, json);
    return qtc_recv(c);
}

void qtc_negotiate(QmpTestClient *c)
{
    g_autoptr(JsonObject) greeting = qtc_recv(c);
    g_autoptr(JsonObject) rsp = NULL;

    g_assert_true(json_object_has_member(greeting, "QMP"));
    rsp = qtc_cmd(c, "{\"execute\": \"qmp_capabilities\"}\n");
    qtc_assert_return(rsp);
}

void qtc_close(QmpTestClient *c)
{
    if (c) {
        close(c->fd);
        g_string_free(c->buf, TRUE);
        g_free(c);
    }
}

void qtc_assert_error(JsonObject *rsp, const char *cls, const char *desc)
{
    JsonObject *err;

    g_assert_false(json_object_has_member(rsp, "return"));
    g_assert_true(json_object_has_member(rsp, "error"));
    err = json_object_get_object_member(rsp, "error");
    g_assert_cmpstr(json_object_get_string_member(err, "class"), ==, cls);
    if (desc) {
        g_assert_cmpstr(json_object_get_string_member(err, "desc"), ==, desc);
    }
}

JsonNode *qtc_assert_return(JsonObject *rsp)
{
    if (json_object_has_member(rsp, "error")) {
        g_error("unexpected error reply: %s",
                json_object_get_string_member(json_object_get_object_member(rsp, "error"), "desc"));
    }
    g_assert_true(json_object_has_member(rsp, "return"));
    return json_object_get_member(rsp, "return");
}
