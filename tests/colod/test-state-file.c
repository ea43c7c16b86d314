/* The state file: round trips, a missing file, every kind of corruption
 * refused (never read as generation 0), and the write leaving no
 * temporary file. */
#include "config.h"

#include "state-file.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    char *dir;
    char *path;
} Fixture;

static void fixture_set_up(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;

    f->dir = g_dir_make_tmp("colod-state-XXXXXX", &err);
    g_assert_no_error(err);
    f->path = g_build_filename(f->dir, "state", NULL);
}

static void fixture_tear_down(Fixture *f, gconstpointer data)
{
    g_unlink(f->path);
    g_assert_cmpint(g_rmdir(f->dir), ==, 0); /* nothing else left behind */
    g_free(f->path);
    g_free(f->dir);
}

static void test_missing(Fixture *f, gconstpointer data)
{
    ColodStateRecord rec = { .role = COLOD_ROLE_PRIMARY, .generation = 9 };
    bool found = true;
    g_autoptr(GError) err = NULL;

    g_assert_true(colod_state_load(f->dir, &rec, &found, &err));
    g_assert_no_error(err);
    g_assert_false(found);
    g_assert_cmpint(rec.role, ==, COLOD_ROLE_NONE);
    g_assert_cmpuint(rec.generation, ==, 0);
}

static void test_round_trip(Fixture *f, gconstpointer data)
{
    const ColodStateRecord recs[] = {
        { COLOD_ROLE_NONE, 0 },
        { COLOD_ROLE_PRIMARY, 1 },
        { COLOD_ROLE_SYNCING, 41 },
        { COLOD_ROLE_SECONDARY, G_MAXINT64 },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(recs); i++) {
        ColodStateRecord back = { 0 };
        bool found = false;
        g_autoptr(GError) err = NULL;
        GStatBuf st;

        g_assert_true(colod_state_save(f->dir, &recs[i], &err));
        g_assert_no_error(err);
        g_assert_true(colod_state_load(f->dir, &back, &found, &err));
        g_assert_no_error(err);
        g_assert_true(found);
        g_assert_cmpint(back.role, ==, recs[i].role);
        g_assert_cmpuint(back.generation, ==, recs[i].generation);
        g_assert_cmpint(g_stat(f->path, &st), ==, 0);
        g_assert_cmpuint(st.st_mode & 0777, ==, 0600);
    }
}

/* A leftover temporary file (a crash between write and rename) is
 * replaced and never read. */
static void test_leftover_tmp(Fixture *f, gconstpointer data)
{
    g_autofree char *tmp = g_build_filename(f->dir, "state.tmp", NULL);
    ColodStateRecord rec = { COLOD_ROLE_PRIMARY, 7 }, back;
    g_autoptr(GError) err = NULL;
    bool found;

    g_assert_true(g_file_set_contents(tmp, "garbage", -1, NULL));
    g_assert_true(colod_state_load(f->dir, &back, &found, &err));
    g_assert_false(found);
    g_assert_true(colod_state_save(f->dir, &rec, &err));
    g_assert_false(g_file_test(tmp, G_FILE_TEST_EXISTS));
    g_assert_true(colod_state_load(f->dir, &back, &found, &err));
    g_assert_cmpuint(back.generation, ==, 7);
}

static void expect_corrupt(Fixture *f, const char *text, gssize len, const char *want)
{
    ColodStateRecord rec = { COLOD_ROLE_PRIMARY, 5 };
    g_autoptr(GError) err = NULL;
    bool found = true;

    g_assert_true(g_file_set_contents(f->path, text, len, NULL));
    g_assert_false(colod_state_load(f->dir, &rec, &found, &err));
    g_assert_error(err, COLOD_STATE_ERROR, COLOD_STATE_ERROR_CORRUPT);
    if (!strstr(err->message, want) || !strstr(err->message, "corrupt state file")) {
        g_error("\"%s\": message \"%s\" lacks \"%s\"", text, err->message, want);
    }
    /* Untouched on failure. */
    g_assert_cmpint(rec.role, ==, COLOD_ROLE_PRIMARY);
    g_assert_cmpuint(rec.generation, ==, 5);
}

#define HEAD "[colod-state]\nversion=1\n"

static void test_corrupt(Fixture *f, gconstpointer data)
{
    expect_corrupt(f, "", 0, "not exactly one group");
    /* Truncated: a line, or half the file, missing. */
    expect_corrupt(f, HEAD "role=primary\ngeneration=1", sizeof(HEAD "role=primary\n") - 1, "not exactly the keys");
    expect_corrupt(f, HEAD, 10, "corrupt state file");
    expect_corrupt(f, "\x01\x02\x03garbage", -1, "corrupt");
    expect_corrupt(f, HEAD "role=primary\ngeneration=3\0\n", sizeof(HEAD "role=primary\ngeneration=3\0\n") - 1,
                   "NUL byte");
    expect_corrupt(f, HEAD "role=primary\n", -1, "not exactly the keys");
    expect_corrupt(f, HEAD "role=primary\ngeneration=3\nextra=1\n", -1, "not exactly the keys");
    expect_corrupt(f, HEAD "role=primary\ngen=3\n", -1, "not exactly the keys");
    expect_corrupt(f, HEAD "role=primary\ngeneration=3\n[other]\n", -1, "not exactly one group");
    expect_corrupt(f, "[colod-state]\nversion=2\nrole=primary\ngeneration=3\n", -1, "version \"2\" is not 1");
    expect_corrupt(f, HEAD "role=master\ngeneration=3\n", -1, "role \"master\" unknown");
    expect_corrupt(f, HEAD "role=primary\ngeneration=\n", -1, "generation \"\" is not a number");
    expect_corrupt(f, HEAD "role=primary\ngeneration=-1\n", -1, "is not a number");
    expect_corrupt(f, HEAD "role=primary\ngeneration=0x10\n", -1, "is not a number");
    expect_corrupt(f, HEAD "role=primary\ngeneration=9223372036854775808\n", -1, "is not a number");
    expect_corrupt(f, HEAD "role=none\ngeneration=4\n", -1, "role none with a generation");
}

static void test_format_parses(void)
{
    ColodStateRecord rec = { COLOD_ROLE_SECONDARY, 123456789012345 }, back;
    g_autofree char *text = colod_state_format(&rec);
    g_autoptr(GError) err = NULL;

    g_assert_true(colod_state_parse(text, strlen(text), "t", &back, &err));
    g_assert_cmpint(back.role, ==, rec.role);
    g_assert_cmpuint(back.generation, ==, rec.generation);
}

/* A state directory that cannot be written is an I/O error. */
static void test_unwritable(void)
{
    ColodStateRecord rec = { COLOD_ROLE_PRIMARY, 1 };
    g_autoptr(GError) err = NULL;

    g_assert_false(colod_state_save("/nonexistent/colo/vm", &rec, &err));
    g_assert_error(err, COLOD_STATE_ERROR, COLOD_STATE_ERROR_IO);
    g_assert_nonnull(strstr(err->message, "/nonexistent/colo/vm/state.tmp"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/colod/state/missing", Fixture, NULL, fixture_set_up, test_missing, fixture_tear_down);
    g_test_add("/colod/state/round-trip", Fixture, NULL, fixture_set_up, test_round_trip, fixture_tear_down);
    g_test_add("/colod/state/leftover-tmp", Fixture, NULL, fixture_set_up, test_leftover_tmp, fixture_tear_down);
    g_test_add("/colod/state/corrupt", Fixture, NULL, fixture_set_up, test_corrupt, fixture_tear_down);
    g_test_add_func("/colod/state/format-parses", test_format_parses);
    g_test_add_func("/colod/state/unwritable", test_unwritable);
    return g_test_run();
}
