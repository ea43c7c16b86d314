/* Unit tests of the control socket protocol. */
#include "config.h"

#include "control.h"

#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int commits;

static JsonNode *cmd_commit(JsonObject *args, gpointer opaque, GError **error)
{
    JsonNode *n = json_node_new(JSON_NODE_OBJECT);

    json_node_take_object(n, json_object_new());
    json_object_set_int_member(json_node_get_object(n), "released", ++commits);
    return n;
}

static JsonNode *cmd_fail(JsonObject *args, gpointer opaque, GError **error)
{
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "no: %s",
                json_object_get_string_member_with_default(args, "why", "?"));
    return NULL;
}

static QmpServer *server;

/* Like a checkpoint-begin that makes the engine ask for a checkpoint: an
 * event while the command runs, here enough of them to fill the socket of
 * a client that does not read, so the server gives up on that client in
 * the middle of its own command. */
static JsonNode *cmd_flood(JsonObject *args, gpointer opaque, GError **error)
{
    for (int i = 0; i < 20000 && qmp_server_client_count(server) > 0; i++) {
        ctl_server_emit(server, "CHECKPOINT_REQUEST", json_from_string("{\"reason\": \"queue-full\"}", NULL));
    }
    return json_from_string("{}", NULL);
}

static const struct ctl_command commands[] = {
    { "checkpoint-commit", cmd_commit },
    { "fail", cmd_fail },
    { "flood", cmd_flood },
    { NULL, NULL },
};

/* Read one line from @fd, running the main loop meanwhile. */
static char *read_line(int fd, GString *buf)
{
    gint64 end = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

    while (g_get_monotonic_time() < end) {
        char tmp[1024], *nl = memchr(buf->str, '\n', buf->len);
        ssize_t n;

        if (nl) {
            /* QMP ends lines with "\r\n". */
            char *line = g_strndup(buf->str, (gsize)(nl - buf->str) - (nl > buf->str && nl[-1] == '\r'));

            g_string_erase(buf, 0, nl - buf->str + 1);
            return line;
        }
        g_main_context_iteration(NULL, FALSE);
        n = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);
        if (n > 0) {
            g_string_append_len(buf, tmp, n);
        } else if (n == 0) {
            return NULL;
        } else {
            g_usleep(1000);
        }
    }
    return NULL;
}

static char *roundtrip(int fd, GString *buf, const char *cmd)
{
    g_assert_cmpint(send(fd, cmd, strlen(cmd), 0), ==, (ssize_t)strlen(cmd));
    return read_line(fd, buf);
}

static void test_protocol(void)
{
    g_autofree char *dir = g_dir_make_tmp("colo-ctl-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "ctl.sock", NULL);
    GError *err = NULL;
    QmpServer *s = ctl_server_new(path, NULL, commands, NULL, "primary", &err);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    GString *buf = g_string_new(NULL);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    char *line;

    g_assert_no_error(err);
    strcpy(sun.sun_path, path);
    g_assert_cmpint(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
    /* QMP's greeting, and what the proxy is. */
    line = read_line(fd, buf);
    g_assert_nonnull(strstr(line, "{\"QMP\":{\"version\":{\"qemu\":"));
    g_assert_nonnull(strstr(line, "\"package\":\"colo-proxy\"},\"capabilities\":[]}"));
    g_assert_nonnull(strstr(line, ",\"colo-proxy\":{\"version\":\"" PACKAGE_VERSION "\",\"role\":\"primary\"}}"));
    g_free(line);

    /* Commands wait for the negotiation, as in QMP. */
    line = roundtrip(fd, buf, "{\"execute\": \"checkpoint-commit\", \"id\": 6}\n");
    g_assert_cmpstr(line, ==, "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"Expecting capabilities "
                              "negotiation with 'qmp_capabilities'\"},\"id\":6}");
    g_free(line);
    line = roundtrip(fd, buf, "{\"execute\": \"qmp_capabilities\"}\n");
    g_assert_cmpstr(line, ==, "{\"return\":{}}");
    g_free(line);

    line = roundtrip(fd, buf, "{\"execute\": \"checkpoint-commit\", \"id\": 7}\n");
    g_assert_cmpstr(line, ==, "{\"return\":{\"released\":1},\"id\":7}");
    g_free(line);
    line = roundtrip(fd, buf, "{\"execute\": \"fail\", \"arguments\": {\"why\": \"test\"}}\n");
    g_assert_cmpstr(line, ==, "{\"error\":{\"class\":\"GenericError\",\"desc\":\"no: test\"}}");
    g_free(line);
    line = roundtrip(fd, buf, "{\"execute\": \"nonesuch\"}\n");
    g_assert_nonnull(strstr(line, "CommandNotFound"));
    g_free(line);
    /* Bad input gets an error reply and the connection goes on. */
    line = roundtrip(fd, buf, "{\"execute\": 42}\n");
    g_assert_nonnull(strstr(line, "'execute' must be a string"));
    g_free(line);
    line = roundtrip(fd, buf, "[1, 2]\n");
    g_assert_nonnull(strstr(line, "\"error\""));
    g_free(line);
    line = roundtrip(fd, buf, "{\"execute\": \"fail\", \"arguments\": 3}\n");
    g_assert_nonnull(strstr(line, "must be an object"));
    g_free(line);

    /* Events reach the client, with QMP's timestamp. */
    ctl_server_emit(s, "CHECKPOINT_REQUEST", json_from_string("{\"reason\": \"timeout\"}", NULL));
    line = read_line(fd, buf);
    g_assert_true(g_str_has_prefix(line, "{\"event\":\"CHECKPOINT_REQUEST\",\"data\":{\"reason\":\"timeout\"},"
                                         "\"timestamp\":{\"seconds\":"));
    g_free(line);
    g_assert_cmpuint(qmp_server_client_count(s), ==, 1);

    /* A message over the limit is refused; the connection goes on. */
    {
        g_autofree char *big = g_strdup_printf("{\"execute\": \"%0*d\"}\n", CTL_MAX_MESSAGE, 0);

        line = roundtrip(fd, buf, big);
        g_assert_nonnull(strstr(line, "size limit exceeded"));
        g_free(line);
        line = roundtrip(fd, buf, "{\"execute\": \"checkpoint-commit\"}\n");
        g_assert_cmpstr(line, ==, "{\"return\":{\"released\":2}}");
        g_free(line);
    }
    close(fd);
    qmp_server_free(s);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    g_rmdir(dir);
    g_string_free(buf, TRUE);
}

/* Issue 11: an event emitted while a client's command runs made the
 * server free that client (it did not read), and the command's caller
 * then used it. The client must be dropped without harm. */
static void test_dropped_during_own_command(void)
{
    g_autofree char *dir = g_dir_make_tmp("colo-ctl-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "ctl.sock", NULL);
    GError *err = NULL;
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    const char *flood = "{\"execute\": \"qmp_capabilities\"}\n{\"execute\": \"flood\"}\n";
    gint64 end = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

    server = ctl_server_new(path, NULL, commands, NULL, "primary", &err);
    g_assert_no_error(err);
    qmp_server_set_limits(server, 0, 64 * 1024);
    strcpy(sun.sun_path, path);
    g_assert_cmpint(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
    g_assert_cmpint(send(fd, flood, strlen(flood), 0), ==, (ssize_t)strlen(flood));
    while (qmp_server_client_count(server) > 0 && g_get_monotonic_time() < end) {
        g_main_context_iteration(NULL, FALSE);
    }
    g_assert_cmpuint(qmp_server_client_count(server), ==, 0);
    for (int i = 0; i < 10; i++) {
        g_main_context_iteration(NULL, FALSE);
    }
    close(fd);
    qmp_server_free(server);
    server = NULL;
    g_rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/control/protocol", test_protocol);
    g_test_add_func("/control/dropped-during-own-command", test_dropped_during_own_command);
    return g_test_run();
}
