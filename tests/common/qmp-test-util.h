/* Helpers for the QMP server tests: a server on a unix socket in a temp dir,
 * served by its own thread and GMainContext, and a blocking test client
 * that asserts on timeouts (5 s) instead of hanging. */
#ifndef COLO_TESTS_QMP_TEST_UTIL_H
#define COLO_TESTS_QMP_TEST_UTIL_H

#include <glib.h>
#include <json-glib/json-glib.h>

#include "common/qmp/qmp-server.h"

typedef struct {
    char *dir;
    char *path;
    GMainContext *ctx;
    GMainLoop *loop;
    GThread *thread;
    QmpServer *server;
    gint sleeps_started;        /* test-sleep calls begun (atomic) */
} QmpTestServer;

/* A listening server with the test commands registered (test-add,
 * test-fail, test-fail-io, test-sleep, test-emit); not yet served. */
QmpTestServer *qts_new(void);
/* Start serving on a thread of its own. */
void qts_run(QmpTestServer *t);
/* Run @fn(@data) on the server thread and wait for it. */
void qts_call(QmpTestServer *t, GSourceFunc fn, gpointer data);
unsigned qts_client_count(QmpTestServer *t);
/* Wait (up to 5 s) until the server has @n clients; false on timeout. */
gboolean qts_wait_clients(QmpTestServer *t, unsigned n);
/* Wait (up to 5 s) until @n test-sleep calls have begun: the server
 * thread is then busy in the n-th; false on timeout. */
gboolean qts_wait_sleeping(QmpTestServer *t, int n);
void qts_free(QmpTestServer *t);

typedef struct {
    int fd;
    GString *buf;
} QmpTestClient;

QmpTestClient *qtc_connect(const char *path);
void qtc_send(QmpTestClient *c, const char *data, size_t len);
void qtc_send_str(QmpTestClient *c, const char *text);
/* The next line from the server without its "\r\n" (asserts it ends so). */
char *qtc_recv_line(QmpTestClient *c);
/* True if no data arrives within @ms milliseconds. */
gboolean qtc_quiet(QmpTestClient *c, int ms);
JsonObject *qtc_recv(QmpTestClient *c);
/* Send @json, return the next message. */
JsonObject *qtc_cmd(QmpTestClient *c, const char *json);
/* Read the greeting and negotiate. */
void qtc_negotiate(QmpTestClient *c);
void qtc_close(QmpTestClient *c);

/* Asserts @rsp is an error of @cls with @desc (NULL: any desc). */
void qtc_assert_error(JsonObject *rsp, const char *cls, const char *desc);
/* Asserts @rsp is a success and returns the "return" node (borrowed). */
JsonNode *qtc_assert_return(JsonObject *rsp);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QmpTestClient, qtc_close)

#endif
