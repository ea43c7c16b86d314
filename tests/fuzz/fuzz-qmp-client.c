/* libFuzzer target: what a QMP server sends, into the asynchronous client
 * (common/qmp/qmp-client.c): greeting, negotiation reply, replies matched
 * to waiting commands by id, events, then end of stream. The client must
 * end every waiting command exactly once and never crash; the input is
 * the server's whole output on a real unix socket. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "common/qmp/qmp-client.h"
#include "common/unix-socket.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *fuzz_path;
static int fuzz_listen = -1;

typedef struct {
    bool over;        /* ready failed, or closed after ready */
    unsigned replies; /* commands ended */
} FuzzState;

static void on_ready(QmpClient *c, const GError *error, gpointer opaque)
{
    if (error) {
        ((FuzzState *)opaque)->over = true;
    }
}

static void on_closed(QmpClient *c, const GError *error, gpointer opaque)
{
    ((FuzzState *)opaque)->over = true;
}

static void on_reply(QmpClient *c, JsonNode *ret, const GError *error, gpointer opaque)
{
    if (!ret == !error) {
        abort();
    }
    ((FuzzState *)opaque)->replies++;
}

static void on_event(QmpClient *c, const char *event, JsonObject *data, JsonObject *timestamp, gpointer opaque)
{
    if (!event) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzState st = { 0 };
    QmpClient *c;
    int fd;

    if (!fuzz_path) {
        char *dir = g_dir_make_tmp("fuzz-qmp-client-XXXXXX", NULL);

        fuzz_path = g_build_filename(dir, "s", NULL);
        fuzz_listen = colo_unix_listen(fuzz_path, false, NULL);
        g_free(dir);
        if (fuzz_listen < 0) {
            abort();
        }
    }
    c = qmp_client_new(NULL);
    qmp_client_set_event_handler(c, on_event, &st);
    qmp_client_set_closed_handler(c, on_closed, &st);
    qmp_client_connect(c, fuzz_path, 10000, on_ready, &st);
    /* Ids 2 and 3, after qmp_capabilities' 1. */
    qmp_client_execute(c, "a", NULL, 0, on_reply, &st);
    qmp_client_execute(c, "b", json_object_new(), 0, on_reply, &st);
    g_main_context_iteration(NULL, FALSE); /* connects */
    fd = accept4(fuzz_listen, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        abort();
    }
    for (size_t off = 0; off < size;) {
        ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);

        if (n <= 0) {
            break;
        }
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 100000 && !st.over; i++) {
        g_main_context_iteration(NULL, FALSE);
    }
    /* End of stream: both commands ended exactly once (on_reply counts). */
    if (!st.over || st.replies != 2) {
        abort();
    }
    qmp_client_free(c);
    close(fd);
    return 0;
}
