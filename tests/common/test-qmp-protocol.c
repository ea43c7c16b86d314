/* QMP server, one client at a time: greeting, negotiation, commands,
 * arguments, ids, errors, malformed and split input, limits. Driven for
 * real through a unix socket. */
#include "config.h"

#include "qmp-test-util.h"

#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>

typedef struct {
    QmpTestServer *srv;
    QmpTestClient *c;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    f->srv = qts_new();
    qts_run(f->srv);
    f->c = qtc_connect(f->srv->path);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    qtc_close(f->c);
    qts_free(f->srv);
}

static gint64 sum_of(JsonObject *rsp)
{
    JsonNode *ret = qtc_assert_return(rsp);

    return json_object_get_int_member(json_node_get_object(ret), "sum");
}

static void append_repeated(GString *s, char c, int n)
{
    for (int i = 0; i < n; i++) {
        g_string_append_c(s, c);
    }
}

static void test_greeting(Fixture *f, gconstpointer data)
{
    g_autofree char *line = qtc_recv_line(f->c);

    /* Byte for byte what a QEMU client expects, QEMU's member order. */
    g_assert_cmpstr(line, ==,
                    "{\"QMP\":{\"version\":{\"qemu\":{\"micro\":3,\"minor\":2,\"major\":1},"
                    "\"package\":\"colo-vmm test\"},\"capabilities\":[]}}");
}

static void test_negotiation(Fixture *f, gconstpointer data)
{
    g_autoptr(JsonObject) greeting = qtc_recv(f->c);
    g_autoptr(JsonObject) r1 = NULL, r2 = NULL, r3 = NULL, r4 = NULL, r5 = NULL, r6 = NULL;

    /* Before negotiation: every other command, known or not, is refused. */
    r1 = qtc_cmd(f->c, "{\"execute\": \"query-version\", \"id\": 1}");
    qtc_assert_error(r1, "CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
    g_assert_cmpint(json_object_get_int_member(r1, "id"), ==, 1);
    r2 = qtc_cmd(f->c, "{\"execute\": \"no-such-command\"}");
    qtc_assert_error(r2, "CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");

    /* Events are not sent before negotiation. */
    qmp_server_emit_event(f->srv->server, "EARLY", NULL);
    r3 = qtc_cmd(f->c, "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\"]}}");
    qtc_assert_error(r3, "GenericError", "Capability oob not available");
    r4 = qtc_cmd(f->c, "{\"execute\": \"qmp_capabilities\", \"id\": \"neg\"}");
    g_assert_cmpuint(json_object_get_size(json_node_get_object(qtc_assert_return(r4))), ==, 0);
    g_assert_cmpstr(json_object_get_string_member(r4, "id"), ==, "neg");
    g_assert_true(qtc_quiet(f->c, 100));

    r5 = qtc_cmd(f->c, "{\"execute\": \"qmp_capabilities\"}");
    qtc_assert_error(r5, "CommandNotFound", "Capabilities negotiation is already complete, command ignored");
    r6 = qtc_cmd(f->c, "{\"execute\": \"query-version\"}");
    qtc_assert_return(r6);
}

static void test_command(Fixture *f, gconstpointer data)
{
    g_autoptr(JsonObject) r1 = NULL, r2 = NULL, r3 = NULL, r4 = NULL, r5 = NULL;
    JsonObject *id;

    qtc_negotiate(f->c);
    r1 = qtc_cmd(f->c, "{\"execute\": \"test-add\", \"arguments\": {\"a\": 40, \"b\": 2}}\n");
    g_assert_cmpint(sum_of(r1), ==, 42);
    g_assert_false(json_object_has_member(r1, "id"));

    /* Optional argument absent; any JSON value as id comes back as is. */
    r2 = qtc_cmd(f->c, "{\"id\": {\"seq\": [7, \"x\"]}, \"execute\": \"test-add\", \"arguments\": {\"a\": -5}}");
    g_assert_cmpint(sum_of(r2), ==, -5);
    id = json_object_get_object_member(r2, "id");
    g_assert_cmpint(json_array_get_int_element(json_object_get_array_member(id, "seq"), 0), ==, 7);

    /* Handler errors keep their class; foreign GErrors become GenericError. */
    r3 = qtc_cmd(f->c, "{\"execute\": \"test-fail\", \"id\": 3}");
    qtc_assert_error(r3, "DeviceNotFound", "Device 'nope' not found");
    g_assert_cmpint(json_object_get_int_member(r3, "id"), ==, 3);
    r4 = qtc_cmd(f->c, "{\"execute\": \"test-fail-io\"}");
    qtc_assert_error(r4, "GenericError", "disk says no");

    /* A handler returning NULL without an error answers {}. */
    r5 = qtc_cmd(f->c, "{\"execute\": \"test-sleep\", \"arguments\": {\"ms\": 0}}");
    g_assert_true(JSON_NODE_HOLDS_OBJECT(qtc_assert_return(r5)));
}

static void test_unknown_command(Fixture *f, gconstpointer data)
{
    g_autoptr(JsonObject) rsp = NULL;

    qtc_negotiate(f->c);
    rsp = qtc_cmd(f->c, "{\"execute\": \"foo\", \"id\": \"u\"}");
    qtc_assert_error(rsp, "CommandNotFound", "The command foo has not been found");
    g_assert_cmpstr(json_object_get_string_member(rsp, "id"), ==, "u");
}

static void test_bad_arguments(Fixture *f, gconstpointer data)
{
    static const struct {
        const char *request;
        const char *desc;
    } cases[] = {
        { "{\"execute\": \"test-add\"}", "Parameter 'a' is missing" },
        { "{\"execute\": \"test-add\", \"arguments\": {\"a\": \"1\"}}",
          "Invalid parameter type for 'a', expected: integer" },
        { "{\"execute\": \"test-add\", \"arguments\": {\"a\": 1.5}}",
          "Invalid parameter type for 'a', expected: integer" },
        { "{\"execute\": \"test-add\", \"arguments\": {\"a\": 1, \"b\": null}}",
          "Invalid parameter type for 'b', expected: integer" },
        { "{\"execute\": \"test-add\", \"arguments\": {\"a\": 1, \"c\": 2}}",
          "Parameter 'c' is unexpected" },
        { "{\"execute\": \"query-version\", \"arguments\": {\"verbose\": true}}",
          "Parameter 'verbose' is unexpected" },
        { "{\"execute\": \"test-sleep\", \"arguments\": {\"ms\": [1]}}",
          "Invalid parameter type for 'ms', expected: integer" },
    };

    qtc_negotiate(f->c);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(JsonObject) rsp = qtc_cmd(f->c, cases[i].request);

        qtc_assert_error(rsp, "GenericError", cases[i].desc);
    }
}

static void test_malformed(Fixture *f, gconstpointer data)
{
    static const struct {
        const char *request;
        const char *desc; /* NULL: a JSON parse error */
    } cases[] = {
        { "{\"execute\": }\n", NULL },
        { "{\"execute\" \"query-version\"}\n", NULL },
        { "nonsense\n", NULL },
        { "//\n", "JSON parse error, expecting value" },
        { "{\"execute\": \"query-version\", \"id\": 1,}\n", NULL },
        { "{\"execute\": \"\xff\xfe\"}\n", "JSON parse error, invalid UTF-8 sequence in input" },
        { "[1, 2]\n", "QMP input must be a JSON object" },
        { "42\n", "QMP input must be a JSON object" },
        { "\"execute\"\n", "QMP input must be a JSON object" },
        { "{}\n", "QMP input lacks member 'execute'" },
        { "{\"arguments\": {}}\n", "QMP input lacks member 'execute'" },
        { "{\"execute\": 1}\n", "QMP input member 'execute' must be a string" },
        { "{\"execute\": \"test-add\", \"arguments\": [1]}\n",
          "QMP input member 'arguments' must be an object" },
        { "{\"execute\": \"query-version\", \"foo\": 1}\n", "QMP input member 'foo' is unexpected" },
        { "{\"exec-oob\": \"query-version\"}\n", "QMP input member 'exec-oob' is unexpected" },
        { "}\n", "JSON parse error, stray '}'" },
        /* json-glib's message quotes the bad string cut short, here inside
         * the two bytes of U+0699: the reply must still be UTF-8 (found by
         * fuzz-qmp-input). */
        { "{\"execxecu[[[[[[W[[[[[[[K[[[[[[\n/{\\\"\\\"a}\\u0699\\\\\"}\n", NULL },
    };

    qtc_negotiate(f->c);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(JsonObject) rsp = qtc_cmd(f->c, cases[i].request);
        g_autoptr(JsonObject) good = NULL;

        if (cases[i].desc) {
            qtc_assert_error(rsp, "GenericError", cases[i].desc);
        } else {
            qtc_assert_error(rsp, "GenericError", NULL);
            g_assert_true(g_str_has_prefix(
                json_object_get_string_member(json_object_get_object_member(rsp, "error"), "desc"),
                "JSON parse error, "));
        }
        /* The connection stays usable. */
        good = qtc_cmd(f->c, "{\"execute\": \"test-add\", \"arguments\": {\"a\": 1}}");
        g_assert_cmpint(sum_of(good), ==, 1);
    }
}

static void test_id_on_bad_request(Fixture *f, gconstpointer data)
{
    g_autoptr(JsonObject) rsp = NULL;

    qtc_negotiate(f->c);
    rsp = qtc_cmd(f->c, "{\"execute\": \"query-version\", \"id\": 99, \"bogus\": true}");
    qtc_assert_error(rsp, "GenericError", "QMP input member 'bogus' is unexpected");
    g_assert_cmpint(json_object_get_int_member(rsp, "id"), ==, 99);
}

/* json-glib keeps the last of two equal keys; QEMU refuses the input,
 * and so must we, at any depth: otherwise a command can hide behind
 * another (the first "execute" is what a reader of the log sees). */
static void test_duplicate_keys(Fixture *f, gconstpointer data)
{
    static const struct {
        const char *request;
        const char *key;
    } cases[] = {
        { "{\"execute\": \"test-fail\", \"execute\": \"test-add\", \"arguments\": {\"a\": 1}}", "execute" },
        { "{\"execute\": \"test-add\", \"arguments\": {\"a\": 1, \"a\": 2}, \"id\": 5}", "a" },
        { "{\"execute\": \"test-add\", \"arguments\": {\"a\": 1}, \"id\": [{\"x\": 1, \"y\": {}, \"x\": 1}]}", "x" },
        { "{\"id\": 1, \"execute\": \"test-add\", \"arguments\": {\"a\": 1}, \"id\": 2}", "id" },
        { "{\"execute\": \"test-add\", \"arguments\": {\"a\": 1}, \"\\u0065xecute\": \"test-fail\"}", "execute" },
    };

    qtc_negotiate(f->c);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(JsonObject) rsp = qtc_cmd(f->c, cases[i].request);
        g_autofree char *desc = g_strdup_printf("JSON parse error, duplicate key '%s'", cases[i].key);
        g_autoptr(JsonObject) good = NULL;

        qtc_assert_error(rsp, "GenericError", desc);
        /* As for any parse error, there is no request to take an id from. */
        g_assert_false(json_object_has_member(rsp, "id"));
        good = qtc_cmd(f->c, "{\"execute\": \"test-add\", \"arguments\": {\"a\": 1}}");
        g_assert_cmpint(sum_of(good), ==, 1);
    }
    /* The same key in different objects is no duplicate. */
    g_autoptr(JsonObject) ok = qtc_cmd(f->c, "{\"execute\": \"test-add\", \"arguments\": {\"a\": 2},"
                                             " \"id\": {\"a\": 1, \"b\": {\"a\": 1}, \"c\": [{\"a\": 1}, {\"a\": 1}]}}");
    g_assert_cmpint(sum_of(ok), ==, 2);
}

/* A numeric id comes back exactly as sent, also where json-glib would
 * wrap it (beyond 64 bits) or round it (a double). */
static void test_raw_numeric_ids(Fixture *f, gconstpointer data)
{
    static const char *const ids[] = {
        "123456789012345678901234567890", "-123456789012345678901234567890",
        "18446744073709551615", "9223372036854775808", "-9223372036854775809",
        "1e400", "0.1", "1.0", "-0", "1E+2", "12.50e-3", "7",
    };

    qtc_negotiate(f->c);
    for (size_t i = 0; i < G_N_ELEMENTS(ids); i++) {
        /* The text before and after the id. */
        static const char *const requests[][2] = {
            { "{\"execute\": \"test-add\", \"id\": ", ", \"arguments\": {\"a\": 1}}" },
            { "{\"id\" :\t", " , \"execute\": \"no-such-command\"}" },
            { "{\"execute\": \"test-add\", \"bogus\": [\"id\", {\"id\": 0}], \"id\": ", "}" },
        };
        for (size_t r = 0; r < G_N_ELEMENTS(requests); r++) {
            g_autofree char *req = g_strconcat(requests[r][0], ids[i], requests[r][1], NULL);
            g_autofree char *tail = g_strdup_printf(",\"id\":%s}", ids[i]);
            g_autofree char *line = NULL;

            qtc_send_str(f->c, req);
            line = qtc_recv_line(f->c);
            g_assert_true(g_str_has_prefix(line, r ? "{\"error\":" : "{\"return\":{\"sum\":1}"));
            if (!g_str_has_suffix(line, tail)) {
                g_error("request %s: reply %s does not end in %s", req, line, tail);
            }
        }
    }
}

/* json-glib makes -1 of an integer beyond uint64 (and saturates one below
 * int64): such a request is refused, with its id, instead of running on a
 * number nobody sent. In a string or the id it is no number to worry about. */
static void test_huge_integers(Fixture *f, gconstpointer data)
{
    static const char *const refused[] = {
        "{\"execute\": \"test-add\", \"arguments\": {\"a\": 123456789012345678901234567890}, \"id\": 7}",
        "{\"execute\": \"test-add\", \"arguments\": {\"a\": 1, \"b\": 18446744073709551616}, \"id\": 7}",
        "{\"id\": 7, \"execute\": \"test-add\", \"arguments\": {\"a\": -9223372036854775809}}",
        "{\"execute\": \"test-add\", \"arguments\": {\"a\": 1, \"x\": [0, {\"y\": 99999999999999999999}]}, \"id\": 7}",
    };

    qtc_negotiate(f->c);
    for (size_t i = 0; i < G_N_ELEMENTS(refused); i++) {
        g_autoptr(JsonObject) rsp = qtc_cmd(f->c, refused[i]);

        qtc_assert_error(rsp, "GenericError", NULL);
        const char *desc = json_object_get_string_member(json_object_get_object_member(rsp, "error"), "desc");
        if (!strstr(desc, "is out of range (QMP integers are 64-bit)")) {
            g_error("request %s: %s", refused[i], desc);
        }
        g_assert_cmpint(json_object_get_int_member(rsp, "id"), ==, 7);
    }
    /* The whole int64 and uint64 ranges are numbers json-glib keeps. */
    g_autoptr(JsonObject) low = qtc_cmd(f->c, "{\"execute\": \"test-add\", \"arguments\": {\"a\": -9223372036854775808}}");
    g_assert_cmpint(sum_of(low), ==, G_MININT64);
    g_autoptr(JsonObject) str = qtc_cmd(f->c, "{\"execute\": \"test-add\", \"arguments\": {\"a\": 3},"
                                              " \"id\": [\"123456789012345678901234567890\", 123456789012345678901234567890]}");
    g_assert_cmpint(sum_of(str), ==, 3);
}

static void test_split_input(Fixture *f, gconstpointer data)
{
    /* Braces and quotes inside strings must not confuse the framing. */
    const char *req = "{\"execute\":\"test-add\",\"id\":\"}{\\\"[\",\"arguments\":{\"a\":\n 20,\"b\":22}}";
    g_autoptr(JsonObject) rsp = NULL;

    qtc_negotiate(f->c);
    for (const char *p = req; *p; p++) {
        qtc_send(f->c, p, 1);
        if ((p - req) % 7 == 0) {
            g_usleep(1000); /* let the server see separate reads */
        }
    }
    rsp = qtc_recv(f->c);
    g_assert_cmpint(sum_of(rsp), ==, 42);
    g_assert_cmpstr(json_object_get_string_member(rsp, "id"), ==, "}{\"[");
}

static void test_batched_input(Fixture *f, gconstpointer data)
{
    qtc_negotiate(f->c);
    qtc_send_str(f->c, "{\"execute\":\"test-add\",\"arguments\":{\"a\":1},\"id\":1}"
                       "{\"execute\":\"test-add\",\"arguments\":{\"a\":2},\"id\":2}\r\n\t "
                       "{\"execute\":\"nope\",\"id\":3}\n{\"execute\":\"test-add\",\"arguments\":{\"a\":4},\"id\":4}");
    for (gint64 i = 1; i <= 4; i++) {
        g_autoptr(JsonObject) rsp = qtc_recv(f->c);

        g_assert_cmpint(json_object_get_int_member(rsp, "id"), ==, i);
        if (i == 3) {
            qtc_assert_error(rsp, "CommandNotFound", "The command nope has not been found");
        } else {
            g_assert_cmpint(sum_of(rsp), ==, i);
        }
    }
}

static void test_oversized(Fixture *f, gconstpointer data)
{
    g_autoptr(GString) big = g_string_new("{\"execute\": \"test-add\", \"arguments\": {\"a\": 1, \"pad\": \"");
    g_autoptr(JsonObject) r1 = NULL, r2 = NULL;

    qtc_negotiate(f->c);
    for (int i = 0; i < 2 * QMP_MAX_MESSAGE_SIZE / 64; i++) {
        g_string_append(big, "0123456789abcdef{}[]\\\"0123456789abcdef0123456789abcdef0123456789a");
    }
    g_string_append(big, "\"}}\n{\"execute\": \"test-add\", \"arguments\": {\"a\": 7}}\n");
    qtc_send(f->c, big->str, big->len);
    r1 = qtc_recv(f->c);
    qtc_assert_error(r1, "GenericError", "JSON message size limit exceeded (1048576 bytes)");
    r2 = qtc_recv(f->c);
    g_assert_cmpint(sum_of(r2), ==, 7);
    g_assert_true(qtc_quiet(f->c, 100));
}

static void test_too_deep(Fixture *f, gconstpointer data)
{
    g_autoptr(GString) deep = g_string_new("{\"execute\": \"test-add\", \"arguments\": {\"a\": ");
    g_autoptr(JsonObject) r1 = NULL, r2 = NULL, r3 = NULL, r4 = NULL;

    qtc_negotiate(f->c);
    append_repeated(deep, '[', 3000);
    append_repeated(deep, ']', 3000);
    g_string_append(deep, "}}{\"execute\": \"test-add\", \"arguments\": {\"a\": 8}}");
    qtc_send(f->c, deep->str, deep->len);
    r1 = qtc_recv(f->c);
    qtc_assert_error(r1, "GenericError", "JSON nesting depth limit exceeded");
    r2 = qtc_recv(f->c);
    g_assert_cmpint(sum_of(r2), ==, 8);

    /* An unterminated one is abandoned at the next newline. */
    g_string_truncate(deep, 0);
    append_repeated(deep, '{', 2000);
    g_string_append(deep, "\n{\"execute\": \"test-add\", \"arguments\": {\"a\": 9}}\n");
    qtc_send(f->c, deep->str, deep->len);
    r3 = qtc_recv(f->c);
    qtc_assert_error(r3, "GenericError", "JSON nesting depth limit exceeded");
    r4 = qtc_recv(f->c);
    g_assert_cmpint(sum_of(r4), ==, 9);
}

static void test_deep_within_limit(Fixture *f, gconstpointer data)
{
    g_autoptr(GString) deep = g_string_new("{\"execute\": \"test-add\", \"arguments\": {\"a\": 1, \"b\": ");
    g_autoptr(JsonObject) rsp = NULL;

    /* 1024 levels in all are allowed: the type error proves it was parsed. */
    qtc_negotiate(f->c);
    append_repeated(deep, '[', QMP_MAX_NESTING - 2);
    append_repeated(deep, ']', QMP_MAX_NESTING - 2);
    g_string_append(deep, "}}");
    rsp = qtc_cmd(f->c, deep->str);
    qtc_assert_error(rsp, "GenericError", "Invalid parameter type for 'b', expected: integer");
}

static void test_query_commands(Fixture *f, gconstpointer data)
{
    static const char *const expected[] = {
        "qmp_capabilities", "query-commands", "query-version", "test-add",
        "test-fail", "test-fail-io", "test-sleep", "test-emit",
    };
    g_autoptr(JsonObject) rsp = NULL;
    JsonArray *list;

    qtc_negotiate(f->c);
    rsp = qtc_cmd(f->c, "{\"execute\": \"query-commands\"}");
    list = json_node_get_array(qtc_assert_return(rsp));
    g_assert_cmpuint(json_array_get_length(list), ==, G_N_ELEMENTS(expected));
    for (guint i = 0; i < G_N_ELEMENTS(expected); i++) {
        JsonObject *info = json_array_get_object_element(list, i);

        g_assert_cmpstr(json_object_get_string_member(info, "name"), ==, expected[i]);
        g_assert_cmpuint(json_object_get_size(info), ==, 1);
    }
}

static void test_query_version(Fixture *f, gconstpointer data)
{
    g_autoptr(JsonObject) rsp = NULL;
    JsonObject *ver, *qemu;

    qtc_negotiate(f->c);
    rsp = qtc_cmd(f->c, "{\"execute\": \"query-version\"}");
    ver = json_node_get_object(qtc_assert_return(rsp));
    qemu = json_object_get_object_member(ver, "qemu");
    g_assert_cmpint(json_object_get_int_member(qemu, "major"), ==, 1);
    g_assert_cmpint(json_object_get_int_member(qemu, "minor"), ==, 2);
    g_assert_cmpint(json_object_get_int_member(qemu, "micro"), ==, 3);
    g_assert_cmpstr(json_object_get_string_member(ver, "package"), ==, "colo-vmm test");
}

static void test_listen_errors(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("qmp-test-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "stale.sock", NULL);
    g_autofree char *longpath = g_strnfill(200, 'x');
    QmpServer *s = qmp_server_new(NULL, "t", 0, 0, 1);
    int pipefd[2];

    g_assert_false(qmp_server_listen_unix(s, longpath, &error));
    g_assert_nonnull(strstr(error->message, "too long"));
    g_clear_error(&error);

    /* A stale socket file is replaced, and removed at the end. */
    g_assert_true(g_file_set_contents(path, "stale", -1, NULL));
    g_assert_true(qmp_server_listen_unix(s, path, &error));
    g_assert_no_error(error);
    g_assert_false(qmp_server_listen_unix(s, path, &error));
    g_assert_nonnull(strstr(error->message, "already listens"));
    g_clear_error(&error);

    g_assert_cmpint(pipe(pipefd), ==, 0);
    g_assert_false(qmp_server_add_fd(s, pipefd[0], &error));
    g_assert_nonnull(strstr(error->message, "stream socket"));
    close(pipefd[1]);
    qmp_server_free(s);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    g_rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add("/qmp/protocol/" name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("greeting", test_greeting);
    ADD("negotiation", test_negotiation);
    ADD("command", test_command);
    ADD("unknown-command", test_unknown_command);
    ADD("bad-arguments", test_bad_arguments);
    ADD("malformed", test_malformed);
    ADD("id-on-bad-request", test_id_on_bad_request);
    ADD("duplicate-keys", test_duplicate_keys);
    ADD("raw-numeric-ids", test_raw_numeric_ids);
    ADD("huge-integers", test_huge_integers);
    ADD("split-input", test_split_input);
    ADD("batched-input", test_batched_input);
    ADD("oversized", test_oversized);
    ADD("too-deep", test_too_deep);
    ADD("deep-within-limit", test_deep_within_limit);
    ADD("query-commands", test_query_commands);
    ADD("query-version", test_query_version);
#undef ADD
    g_test_add_func("/qmp/protocol/listen-errors", test_listen_errors);
    return g_test_run();
}
