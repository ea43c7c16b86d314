/* colod's hooks (colod/hooks.c) with real programs: what role each
 * colo-vmm state means, a run per change with the VM, role and reason as
 * arguments, no run for the same role, only the latest of the roles that
 * came while a run was in progress, a run that outlives its timeout killed
 * with what it started, a program that cannot run, the report of each
 * run's end, and the state-change kind (COLO_HOOK in the environment,
 * colod's states as values). */
#include "config.h"

#include "hooks.h"

#include "common/log.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *dir;
    char *program;
    char *out; /* the lines the program wrote, one a run */
} Fixture;

/* A hook that appends its arguments to @out, after sleeping @sleep_s. */
static void fixture_make(Fixture *f, const char *sleep_s)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *script = NULL;

    f->dir = g_dir_make_tmp("colod-hooks-XXXXXX", &err);
    g_assert_no_error(err);
    f->program = g_build_filename(f->dir, "role-change", NULL);
    f->out = g_build_filename(f->dir, "runs", NULL);
    script = g_strdup_printf("#!/bin/sh\nsleep %s\necho \"$1|$2|$3\" >> '%s'\n", sleep_s, f->out);
    g_assert_true(g_file_set_contents(f->program, script, -1, &err));
    g_assert_cmpint(g_chmod(f->program, 0755), ==, 0);
}

static void fixture_free(Fixture *f)
{
    g_autofree char *rm = g_strdup_printf("rm -rf '%s'", f->dir);

    g_assert_true(g_spawn_command_line_sync(rm, NULL, NULL, NULL, NULL));
    g_free(f->dir);
    g_free(f->program);
    g_free(f->out);
}

static char *runs(const Fixture *f)
{
    char *text = NULL;

    if (!g_file_get_contents(f->out, &text, NULL, NULL)) {
        return g_strdup("");
    }
    return text;
}

/* The main loop until @h has no run in progress, at most @ms. */
static bool settle(ColodHooks *h, int ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;

    while (colod_hooks_busy(h) && g_get_monotonic_time() < end) {
        g_main_context_iteration(NULL, FALSE);
        g_usleep(1000);
    }
    return !colod_hooks_busy(h);
}

/* Whether @pid runs (not a zombie its new parent has yet to reap). */
static bool alive(int pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/stat", pid);
    g_autofree char *stat = NULL;
    const char *end;

    if (!g_file_get_contents(path, &stat, NULL, NULL)) {
        return false;
    }
    end = strrchr(stat, ')');
    return !end || end[2] != 'Z';
}

static void test_role_of(void)
{
    g_assert_cmpint(hook_role_of(VMM_PRIMARY, false), ==, HOOK_ROLE_PRIMARY);
    g_assert_cmpint(hook_role_of(VMM_PRIMARY, true), ==, HOOK_ROLE_NONE);
    g_assert_cmpint(hook_role_of(VMM_SECONDARY, false), ==, HOOK_ROLE_SECONDARY);
    g_assert_cmpint(hook_role_of(VMM_SECONDARY, true), ==, HOOK_ROLE_SECONDARY);
    g_assert_cmpint(hook_role_of(VMM_NONE, false), ==, HOOK_ROLE_NONE);
    g_assert_cmpstr(hook_role_name(HOOK_ROLE_PRIMARY), ==, "primary");
    g_assert_cmpstr(hook_role_name(HOOK_ROLE_SECONDARY), ==, "secondary");
    g_assert_cmpstr(hook_role_name(HOOK_ROLE_NONE), ==, "none");
}

static void test_changes(void)
{
    Fixture f;
    ColodHooks *h;
    g_autofree char *seen = NULL;

    fixture_make(&f, "0");
    h = colod_hooks_new("role-change", f.program, "web1", 10000);
    /* The first role always runs, also "none": a node that starts without
     * its VM clears what an earlier run may have left. */
    colod_hooks_role(h, HOOK_ROLE_NONE, "starting");
    g_assert_true(colod_hooks_busy(h));
    g_assert_true(settle(h, 10000));
    colod_hooks_role(h, HOOK_ROLE_NONE, "still nothing");
    g_assert_false(colod_hooks_busy(h));
    colod_hooks_role(h, HOOK_ROLE_PRIMARY, "failover (generation 7): the peer's colod left");
    g_assert_true(settle(h, 10000));
    colod_hooks_role(h, HOOK_ROLE_PRIMARY, "COLO runs");
    colod_hooks_role(h, HOOK_ROLE_SECONDARY, "");
    g_assert_true(settle(h, 10000));
    seen = runs(&f);
    g_assert_cmpstr(seen, ==, "web1|none|starting\nweb1|primary|failover (generation 7): the peer's colod left\n"
                              "web1|secondary|\n");
    colod_hooks_free(h);
    fixture_free(&f);
}

/* Roles that come while a run is in progress: only the latest runs next,
 * and none if it is the role of the run in progress. */
static void test_latest_wins(void)
{
    Fixture f;
    ColodHooks *h;
    g_autofree char *seen = NULL;
    g_autofree char *seen2 = NULL;

    fixture_make(&f, "0.3");
    h = colod_hooks_new("role-change", f.program, "web1", 10000);
    colod_hooks_role(h, HOOK_ROLE_PRIMARY, "a");
    colod_hooks_role(h, HOOK_ROLE_NONE, "b");
    colod_hooks_role(h, HOOK_ROLE_SECONDARY, "c");
    colod_hooks_role(h, HOOK_ROLE_NONE, "d");
    g_assert_true(settle(h, 10000));
    seen = runs(&f);
    g_assert_cmpstr(seen, ==, "web1|primary|a\nweb1|none|d\n");
    colod_hooks_role(h, HOOK_ROLE_PRIMARY, "e");
    colod_hooks_role(h, HOOK_ROLE_NONE, "f");
    colod_hooks_role(h, HOOK_ROLE_PRIMARY, "g");
    g_assert_true(settle(h, 10000));
    seen2 = runs(&f);
    g_assert_cmpstr(seen2, ==, "web1|primary|a\nweb1|none|d\nweb1|primary|e\n");
    colod_hooks_free(h);
    fixture_free(&f);
}

/* A run past its timeout is killed with the processes it started (its
 * process group); the next role runs after it. */
static void test_timeout(void)
{
    Fixture f;
    ColodHooks *h;
    g_autofree char *script = NULL;
    g_autofree char *pidfile = NULL;
    g_autofree char *pidtext = NULL;
    g_autofree char *seen = NULL;
    g_autoptr(GError) err = NULL;
    gint64 start;
    int child;

    fixture_make(&f, "0");
    pidfile = g_build_filename(f.dir, "child.pid", NULL);
    /* Writes its run, then a child that would outlive it, then waits. */
    script = g_strdup_printf("#!/bin/sh\necho \"$2\" >> '%s'\n[ \"$2\" = primary ] || exit 3\n"
                             "sleep 60 & echo $! > '%s'\nwait\n", f.out, pidfile);
    g_assert_true(g_file_set_contents(f.program, script, -1, &err));
    g_assert_cmpint(g_chmod(f.program, 0755), ==, 0);
    h = colod_hooks_new("role-change", f.program, "web1", 300);
    start = g_get_monotonic_time();
    colod_hooks_role(h, HOOK_ROLE_PRIMARY, "x");
    colod_hooks_role(h, HOOK_ROLE_NONE, "y");
    g_assert_true(settle(h, 10000));
    /* Killed at its timeout, not after its sleep; then "none" ran (and
     * failed with exit 3: logged, nothing else). */
    g_assert_cmpint(g_get_monotonic_time() - start, <, 20 * G_USEC_PER_SEC);
    g_assert_true(g_file_get_contents(pidfile, &pidtext, NULL, &err));
    child = atoi(pidtext);
    g_assert_cmpint(child, >, 0);
    g_assert_false(alive(child));
    seen = runs(&f);
    g_assert_cmpstr(seen, ==, "primary\nnone\n");
    colod_hooks_free(h);
    fixture_free(&f);
}

static void test_no_program(void)
{
    ColodHooks *h = colod_hooks_new("role-change", NULL, "web1", 1000);

    colod_hooks_role(h, HOOK_ROLE_PRIMARY, "x");
    g_assert_false(colod_hooks_busy(h));
    colod_hooks_free(h);
    colod_hooks_role(NULL, HOOK_ROLE_PRIMARY, "x");
    /* A program that is not there: logged, colod goes on. */
    h = colod_hooks_new("role-change", "/nonexistent/role-change", "web1", 1000);
    colod_hooks_role(h, HOOK_ROLE_PRIMARY, "x");
    g_assert_false(colod_hooks_busy(h));
    colod_hooks_role(h, HOOK_ROLE_NONE, "y");
    g_assert_false(colod_hooks_busy(h));
    colod_hooks_free(h);
}

static void record_done(void *opaque, const char *value, bool ok)
{
    g_string_append_printf(opaque, "%s:%s\n", value, ok ? "ok" : "failed");
}

/* The end of each run is reported with its value and whether it exited 0
 * (colod replays a taken-over guest's output then): a run that succeeds,
 * one that fails, one killed at its timeout, one that cannot start. */
static void test_done(void)
{
    g_autoptr(GString) done = g_string_new("");
    g_autofree char *script = NULL;
    g_autoptr(GError) err = NULL;
    ColodHooks *h;
    Fixture f;

    fixture_make(&f, "0");
    h = colod_hooks_new("role-change", f.program, "web1", 10000);
    g_assert_true(colod_hooks_configured(h));
    colod_hooks_on_done(h, record_done, done);
    colod_hooks_role(h, HOOK_ROLE_PRIMARY, "failover");
    g_assert_cmpstr(done->str, ==, "");
    g_assert_true(settle(h, 10000));
    g_assert_cmpstr(done->str, ==, "primary:ok\n");
    script = g_strdup_printf("#!/bin/sh\n[ \"$2\" = none ] && sleep 5\nexit 3\n");
    g_assert_true(g_file_set_contents(f.program, script, -1, &err));
    colod_hooks_role(h, HOOK_ROLE_SECONDARY, "protected");
    g_assert_true(settle(h, 10000));
    g_assert_cmpstr(done->str, ==, "primary:ok\nsecondary:failed\n");
    colod_hooks_free(h);
    h = colod_hooks_new("role-change", f.program, "web1", 100);
    colod_hooks_on_done(h, record_done, done);
    colod_hooks_role(h, HOOK_ROLE_NONE, "stopped");
    g_assert_true(settle(h, 10000));
    g_assert_cmpstr(done->str, ==, "primary:ok\nsecondary:failed\nnone:failed\n");
    colod_hooks_free(h);
    h = colod_hooks_new("role-change", "/nonexistent/role-change", "web1", 1000);
    colod_hooks_on_done(h, record_done, done);
    colod_hooks_role(h, HOOK_ROLE_PRIMARY, "x");
    g_assert_cmpstr(done->str, ==, "primary:ok\nsecondary:failed\nnone:failed\nprimary:failed\n");
    colod_hooks_free(h);
    h = colod_hooks_new("role-change", NULL, "web1", 1000);
    g_assert_false(colod_hooks_configured(h));
    colod_hooks_free(h);
    fixture_free(&f);
}

/* One program as both kinds: COLO_HOOK tells it which it runs as. */
static void test_state_change(void)
{
    Fixture f;
    ColodHooks *role, *state;
    g_autofree char *script = NULL;
    g_autofree char *seen = NULL;
    g_autoptr(GError) err = NULL;

    fixture_make(&f, "0");
    script = g_strdup_printf("#!/bin/sh\necho \"$COLO_HOOK|$1|$2|$3\" >> '%s'\n", f.out);
    g_assert_true(g_file_set_contents(f.program, script, -1, &err));
    g_assert_cmpint(g_chmod(f.program, 0755), ==, 0);
    role = colod_hooks_new("role-change", f.program, "web1", 10000);
    state = colod_hooks_new("state-change", f.program, "web1", 10000);
    colod_hooks_run(state, "secondary-syncing", "initial sync");
    g_assert_true(settle(state, 10000));
    colod_hooks_run(state, "secondary-syncing", "again");
    g_assert_false(colod_hooks_busy(state));
    colod_hooks_role(role, HOOK_ROLE_SECONDARY, "x");
    g_assert_true(settle(role, 10000));
    colod_hooks_run(state, "secondary-protected", "COLO runs");
    g_assert_true(settle(state, 10000));
    seen = runs(&f);
    g_assert_cmpstr(seen, ==, "state-change|web1|secondary-syncing|initial sync\nrole-change|web1|secondary|x\n"
                              "state-change|web1|secondary-protected|COLO runs\n");
    colod_hooks_free(role);
    colod_hooks_free(state);
    fixture_free(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    colo_log_init("test-colod-hooks", "test-colod-hooks", false, NULL, false, NULL);
    g_test_add_func("/colod/hooks/role-of", test_role_of);
    g_test_add_func("/colod/hooks/changes", test_changes);
    g_test_add_func("/colod/hooks/latest-wins", test_latest_wins);
    g_test_add_func("/colod/hooks/timeout", test_timeout);
    g_test_add_func("/colod/hooks/no-program", test_no_program);
    g_test_add_func("/colod/hooks/done", test_done);
    g_test_add_func("/colod/hooks/state-change", test_state_change);
    return g_test_run();
}
