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

static JsonNode *cmd_commit(void *opaque, JsonObject *args, GError **error)
{
    JsonNode *n = json_node_new(JSON_NODE_OBJECT);

    json_node_take_object(n, json_object_new());
    json_object_set_int_member(json_node_get_object(n), "released", ++commits);
    return n;
}

static JsonNode *cmd_fail(void *opaque, JsonObject *args, GError **error)
{
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "no: %s",
                args ? json_object_get_string_member_with_default(args, "why", "?") : "-");
    return NULL;
}

static const struct ctl_command commands[] = {
    { "checkpoint-commit", cmd_commit },
    { "fail", cmd_fail },
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
            char *line = g_strndup(buf->str, (gsize)(nl - buf->str));

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
    JsonNode *greeting = json_from_string("{\"colo-proxy\": {\"version\": \"test\"}}", NULL);
    GError *err = NULL;
    CtlServer *s = ctl_server_new(path, commands, NULL, greeting, &err);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    GString *buf = g_string_new(NULL);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    char *line;

    g_assert_no_error(err);
    strcpy(sun.sun_path, path);
    g_assert_cmpint(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
    line = read_line(fd, buf);
    g_assert_cmpstr(line, ==, "{\"colo-proxy\":{\"version\":\"test\"}}");
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
    g_assert_nonnull(strstr(line, "missing"));
    g_free(line);
    line = roundtrip(fd, buf, "[1, 2\n");
    g_assert_nonnull(strstr(line, "\"error\""));
    g_free(line);
    line = roundtrip(fd, buf, "{\"execute\": \"fail\", \"arguments\": 3}\n");
    g_assert_nonnull(strstr(line, "must be an object"));
    g_free(line);

    /* Events reach the client. */
    ctl_server_emit(s, "CHECKPOINT_REQUEST", json_from_string("{\"reason\": \"timeout\"}", NULL));
    line = read_line(fd, buf);
    g_assert_cmpstr(line, ==, "{\"event\":\"CHECKPOINT_REQUEST\",\"data\":{\"reason\":\"timeout\"}}");
    g_free(line);
    g_assert_cmpuint(ctl_server_clients(s), ==, 1);

    /* A line that never ends is cut off. */
    {
        char *big = g_malloc(CTL_MAX_LINE + 2);

        memset(big, 'x', CTL_MAX_LINE + 1);
        big[CTL_MAX_LINE + 1] = 0;
        send(fd, big, CTL_MAX_LINE + 1, 0);
        g_free(big);
        line = read_line(fd, buf);
        g_assert_nonnull(strstr(line, "too long"));
        g_free(line);
        g_assert_null(read_line(fd, buf));   /* and closed */
        g_assert_cmpuint(ctl_server_clients(s), ==, 0);
    }
    close(fd);
    ctl_server_free(s);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    g_rmdir(dir);
    g_string_free(buf, TRUE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/control/protocol", test_protocol);
    return g_test_run();
}
