/* The QMP input splitter on its own: where texts begin and end, whatever
 * pieces the input comes in, and how it recovers from broken limits. */
#include "config.h"

#include "common/qmp/qmp-splitter.h"

#include <string.h>

typedef struct {
    GPtrArray *out; /* texts, and errors as "ERR: message" */
    int stop_after; /* stop after this many callbacks (0: never) */
} Sink;

static bool sink_cb(const char *text, size_t len, const GError *error, gpointer opaque)
{
    Sink *sink = opaque;

    if (error) {
        g_ptr_array_add(sink->out, g_strdup_printf("ERR: %s", error->message));
    } else {
        g_assert_cmpuint(strlen(text), ==, len);
        g_ptr_array_add(sink->out, g_strndup(text, len));
    }
    return !sink->stop_after || (int)sink->out->len < sink->stop_after;
}

/* Splits @input fed in pieces of @chunk bytes; returns the results. */
static GPtrArray *split(const char *input, size_t chunk, size_t max_size, unsigned max_depth)
{
    Sink sink = { .out = g_ptr_array_new_with_free_func(g_free) };
    QmpSplitter *sp = qmp_splitter_new(max_size, max_depth, sink_cb, &sink);
    size_t len = strlen(input);

    for (size_t off = 0; off < len; off += chunk) {
        g_assert_true(qmp_splitter_feed(sp, input + off, MIN(chunk, len - off)));
    }
    qmp_splitter_free(sp);
    return sink.out;
}

static void assert_split(const char *input, size_t max_size, unsigned max_depth,
                         const char *const expected[])
{
    /* Whole, byte by byte, and in odd pieces: always the same result. */
    static const size_t chunks[] = { 1 << 30, 1, 2, 3, 7 };

    for (size_t c = 0; c < G_N_ELEMENTS(chunks); c++) {
        g_autoptr(GPtrArray) out = split(input, chunks[c], max_size, max_depth);
        guint n = g_strv_length((char **)expected);

        for (guint i = 0; i < MIN(n, out->len); i++) {
            g_assert_cmpstr(g_ptr_array_index(out, i), ==, expected[i]);
        }
        g_assert_cmpuint(out->len, ==, n);
    }
}

static void test_batched(void)
{
    const char *const expected[] = {
        "{\"a\":1}", "{\"b\":[1,{\"c\":2}]}", "[3]", "{\"s\":\"}]{[\"}", NULL
    };

    assert_split("{\"a\":1}{\"b\":[1,{\"c\":2}]}\r\n\t [3]\n{\"s\":\"}]{[\"}", 1024, 64, expected);
}

static void test_strings_and_escapes(void)
{
    const char *const expected[] = {
        "{\"q\":\"a\\\"}b\"}", "{\"bs\":\"\\\\\"}", "{\"u\":\"\\u007d\"}", NULL
    };

    assert_split("{\"q\":\"a\\\"}b\"}{\"bs\":\"\\\\\"}{\"u\":\"\\u007d\"}", 1024, 64, expected);
}

static void test_scalars(void)
{
    const char *const expected[] = { "42", "\"str\"", "true", "-1.5e3", "{}", NULL };

    /* A scalar ends at whitespace or at the start of the next value; one
     * still open at the end of the input waits for more. */
    assert_split("42 \"str\"true\n-1.5e3{} nul", 1024, 64, expected);
}

static void test_stray_close(void)
{
    const char *const expected[] = {
        "ERR: JSON parse error, stray '}'", "{\"a\":1}", "ERR: JSON parse error, stray ']'", NULL
    };

    /* One error per run of strays, not one per byte. */
    assert_split("}}]}\n{\"a\":1}]", 1024, 64, expected);
}

static void test_too_large(void)
{
    const char *const expected[] = {
        "ERR: JSON message size limit exceeded (16 bytes)", "{\"ok\":1}",
        "ERR: JSON message size limit exceeded (16 bytes)", "{\"ok\":2}",
        "ERR: JSON message size limit exceeded (16 bytes)", "{\"ok\":3}", NULL
    };

    /* Skipped to the end of the value (braces in strings do not count),
     * or to the next newline if it never ends; also for scalars. */
    assert_split("{\"pad\":\"xxxxxxxxxxxxxxxx}}\"}{\"ok\":1}"
                 "[1,2,3,4,5,6,7,8,9,10\n{\"ok\":2}"
                 "12345678901234567890 {\"ok\":3}",
                 16, 64, expected);
}

static void test_exact_limits(void)
{
    const char *const expected[] = { "{\"a\":\"123456\"}", "[[[[]]]]", NULL };

    assert_split("{\"a\":\"123456\"} [[[[]]]]", 14, 4, expected);
}

static void test_too_deep(void)
{
    const char *const expected[] = {
        "ERR: JSON nesting depth limit exceeded", "{\"ok\":1}",
        "ERR: JSON nesting depth limit exceeded", "{\"ok\":2}", NULL
    };

    assert_split("[[[[[[\"]]]]]]\"]]]]]]{\"ok\":1}"
                 "{{{{{{{{\n{\"ok\":2}",
                 1024, 4, expected);
}

static void test_stop(void)
{
    Sink sink = { .out = g_ptr_array_new_with_free_func(g_free), .stop_after = 2 };
    QmpSplitter *sp = qmp_splitter_new(1024, 64, sink_cb, &sink);
    const char *input = "{}{}{}{}";

    g_assert_false(qmp_splitter_feed(sp, input, strlen(input)));
    g_assert_cmpuint(sink.out->len, ==, 2);
    qmp_splitter_free(sp);
    g_ptr_array_unref(sink.out);
}

static void test_pending(void)
{
    Sink sink = { .out = g_ptr_array_new_with_free_func(g_free) };
    QmpSplitter *sp = qmp_splitter_new(1024, 64, sink_cb, &sink);

    g_assert_true(qmp_splitter_feed(sp, "{\"a\": [1, ", 10));
    g_assert_cmpuint(qmp_splitter_pending(sp), ==, 10);
    g_assert_true(qmp_splitter_feed(sp, "2]}", 3));
    g_assert_cmpuint(qmp_splitter_pending(sp), ==, 0);
    g_assert_cmpuint(sink.out->len, ==, 1);
    qmp_splitter_free(sp);
    g_ptr_array_unref(sink.out);
}

/* The raw text of a top-level member's value, through everything
 * json-glib lets pass: comments, single quotes, escaped keys, nesting. */
static void test_member_text(void)
{
    static const struct {
        const char *text;
        const char *value; /* NULL: not found */
    } cases[] = {
        { "{\"id\":123456789012345678901234567890}", "123456789012345678901234567890" },
        { " { \"a\" : [1, {\"id\": 2}], \"id\"\t:\n-1e400 , \"b\": 3}", "-1e400" },
        { "{\"s\": \"\\\"id\\\": 7\", \"id\": \"x,}\"}", "\"x,}\"" },
        { "{/* \"id\": 1 */ \"id\" /* c */ : /* c */ 5 // c\n}", "5" },
        { "{'id': 6}", "6" },
        { "{\"\\u0069d\": 8}", "8" },
        { "{\"idx\": 1, \"i\": 2, \"id\": {\"x\": [1, \"]\"]}}", "{\"x\": [1, \"]\"]}" },
        { "{\"a\": {\"id\": 1}}", NULL },
        { "[{\"id\": 1}]", NULL },
        { "{\"id\": ", NULL },
        { "{\"id\" 1}", NULL },
        { "{\"a\": 1 \"id\": 2}", NULL },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        size_t start = 0, len = 0;
        bool found = qmp_json_member_text(cases[i].text, strlen(cases[i].text), "id", &start, &len);

        g_assert_cmpint(found, ==, cases[i].value != NULL);
        if (found) {
            g_autofree char *value = g_strndup(cases[i].text + start, len);
            g_assert_cmpstr(value, ==, cases[i].value);
        }
    }
}

static void test_huge_integer(void)
{
    static const struct {
        const char *text;
        const char *found; /* NULL: none */
    } cases[] = {
        { "{\"a\": [1, -2, 9223372036854775807, 18446744073709551615, -9223372036854775808]}", NULL },
        { "{\"a\": 18446744073709551616}", "18446744073709551616" },
        { "{\"a\": -9223372036854775809}", "-9223372036854775809" },
        { "{\"s\": \"99999999999999999999\", 'q': '99999999999999999999', \"e\": 1e99999}", NULL },
        { "{/* 99999999999999999999 */ \"a\": 1 // 99999999999999999999\n}", NULL },
        { "{\"id\": 99999999999999999999, \"b\": [0, 00099999999999999999999]}", "00099999999999999999999" },
        { "{\"a\": 1.99999999999999999999, \"b\": 99999999999999999999.5}", NULL },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        const char *text = cases[i].text;
        size_t id_start = 0, id_len = 0, start = 0, len = 0;

        qmp_json_member_text(text, strlen(text), "id", &id_start, &id_len);
        bool found = qmp_json_find_huge_integer(text, strlen(text), id_start, id_len, &start, &len);
        g_assert_cmpint(found, ==, cases[i].found != NULL);
        if (found) {
            g_autofree char *tok = g_strndup(text + start, len);
            g_assert_cmpstr(tok, ==, cases[i].found);
        }
    }
}

static void test_strict_numbers(void)
{
    static const char *const good[] = { "0", "-0", "7", "-12", "0.5", "1e5", "1E+5", "2.50e-3",
                                        "123456789012345678901234567890" };
    static const char *const bad[] = { "", "-", "01", "00", ".5", "1.", "0x10", "1e", "1e+", "+1",
                                       "1.5.5", "1 ", "NaN", "--1" };

    for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
        g_assert_true(qmp_json_is_number(good[i], strlen(good[i])));
    }
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        if (qmp_json_is_number(bad[i], strlen(bad[i]))) {
            g_error("'%s' taken for a JSON number", bad[i]);
        }
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp/splitter/batched", test_batched);
    g_test_add_func("/qmp/splitter/strings-and-escapes", test_strings_and_escapes);
    g_test_add_func("/qmp/splitter/scalars", test_scalars);
    g_test_add_func("/qmp/splitter/stray-close", test_stray_close);
    g_test_add_func("/qmp/splitter/too-large", test_too_large);
    g_test_add_func("/qmp/splitter/exact-limits", test_exact_limits);
    g_test_add_func("/qmp/splitter/too-deep", test_too_deep);
    g_test_add_func("/qmp/splitter/stop", test_stop);
    g_test_add_func("/qmp/splitter/pending", test_pending);
    g_test_add_func("/qmp/splitter/member-text", test_member_text);
    g_test_add_func("/qmp/splitter/strict-numbers", test_strict_numbers);
    g_test_add_func("/qmp/splitter/huge-integer", test_huge_integer);
    return g_test_run();
}
