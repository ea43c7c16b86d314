/* common/log.c: the ident made from a VM name, logging start-up with any
 * name, and the sweep of blackbox files left by killed processes. */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "common/log.h"

static void test_ident(void)
{
    g_autofree char *long_name = g_strnfill(300, 'x');
    g_autofree char *cut = colo_log_ident(long_name);
    g_autofree char *plain = colo_log_ident("vm-1 (web)/a");
    g_autofree char *odd = colo_log_ident("a%sb%n\nc\td\x7f");
    g_autofree char *bad_utf8 = colo_log_ident("x\xff\xfey");
    GString *accents = g_string_new("a");

    g_assert_cmpuint(strlen(cut), ==, COLO_LOG_IDENT_MAX);
    g_assert_true(g_str_has_prefix(long_name, cut));
    g_assert_cmpstr(plain, ==, "vm-1 (web)/a");
    g_assert_cmpstr(odd, ==, "a_sb_n_c_d_");
    g_assert_cmpstr(bad_utf8, ==, "x__y");
    /* Cut at a character boundary: "a" and 31 two-byte characters. */
    for (int i = 0; i < 40; i++) {
        g_string_append(accents, "\xc3\xa9");
    }
    g_autofree char *accents_cut = colo_log_ident(accents->str);
    g_assert_cmpuint(strlen(accents_cut), ==, 63);
    g_assert_true(g_utf8_validate(accents_cut, -1, NULL));
    g_string_free(accents, TRUE);
}

/* libqb's format buffer is 256 bytes: a long name used to smash the stack
 * in qb_log_format_set. Run in a child: that was an abort. */
static void test_init_long_names(void)
{
    if (g_test_subprocess()) {
        g_autofree char *name = g_strnfill(4000, 'n');
        g_autofree char *dir = g_dir_make_tmp("colo-test-log-XXXXXX", NULL);
        g_autofree char *file = g_build_filename(dir, "log", NULL);
        g_autofree char *text = NULL;

        name[10] = '/';
        name[20] = '%';
        g_assert_true(colo_log_init("colo-test", name, false, file, false, NULL));
        qb_log(LOG_INFO, "hello from the long name");
        colo_log_fini();
        g_assert_true(g_file_get_contents(file, &text, NULL, NULL));
        g_assert_nonnull(strstr(text, "hello from the long name"));
        g_assert_nonnull(strstr(text, "nnnnnnnnnn/nnnnnnnnn_nnn"));
        g_unlink(file);
        g_rmdir(dir);
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_passed();
}

static void touch(const char *dir, const char *name)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);

    g_assert_true(g_file_set_contents(path, "", 0, NULL));
}

static bool exists(const char *dir, const char *name)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);

    return g_file_test(path, G_FILE_TEST_EXISTS);
}

/* A process whose command name is colo-vmm: sleep, run through a link of
 * that name (the kernel takes the name of the file executed). */
static pid_t spawn_fake_vmm(const char *dir)
{
    g_autofree char *link = g_build_filename(dir, "colo-vmm", NULL);
    g_autofree char *sleep_path = g_find_program_in_path("sleep");
    pid_t pid;

    g_assert_nonnull(sleep_path);
    g_assert_cmpint(symlink(sleep_path, link), ==, 0);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        execl(link, "colo-vmm", "30", (char *)NULL);
        _exit(127);
    }
    /* Until the exec has happened, the child is still called test-log. */
    g_autofree char *comm_path = g_strdup_printf("/proc/%d/comm", (int)pid);
    for (int i = 0; i < 500; i++) {
        g_autofree char *comm = NULL;

        if (g_file_get_contents(comm_path, &comm, NULL, NULL) && g_str_has_prefix(comm, "colo-vmm")) {
            break;
        }
        g_usleep(10000);
    }
    g_unlink(link);
    return pid;
}

static pid_t dead_pid(void)
{
    pid_t pid = fork();
    int status;

    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        _exit(0);
    }
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    return pid;
}

static void test_sweep(void)
{
    g_autofree char *dir = g_dir_make_tmp("colo-test-shm-XXXXXX", NULL);
    pid_t live = spawn_fake_vmm(dir);
    pid_t dead = dead_pid();
    int me = (int)getpid();
    g_autofree char *dead_vmm_h = g_strdup_printf("qb-colo-vmm-%d-blackbox-header", (int)dead);
    g_autofree char *dead_vmm_d = g_strdup_printf("qb-colo-vmm-%d-blackbox-data", (int)dead);
    g_autofree char *dead_proxy = g_strdup_printf("qb-colo-proxy-%d-blackbox-data", (int)dead);
    g_autofree char *mine = g_strdup_printf("qb-colo-proxy-%d-blackbox-header", me);
    g_autofree char *live_vmm = g_strdup_printf("qb-colo-vmm-%d-blackbox-data", (int)live);
    g_autofree char *live_other = g_strdup_printf("qb-colo-proxy-%d-blackbox-data", (int)live);
    g_autofree char *foreign = g_strdup_printf("qb-pacemakerd-%d-blackbox-data", (int)dead);
    g_autofree char *not_blackbox = g_strdup_printf("qb-colo-vmm-%d-request-header", (int)dead);
    const char *const gone[] = { dead_vmm_h, dead_vmm_d, dead_proxy, mine, live_other };
    const char *const kept[] = { live_vmm, foreign, not_blackbox, "qb-colo-vmm-x1-blackbox-data",
                                 "qb-colo-vmm--blackbox-data", "colo-vmm-1-blackbox-data" };

    for (size_t i = 0; i < G_N_ELEMENTS(gone); i++) {
        touch(dir, gone[i]);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(kept); i++) {
        touch(dir, kept[i]);
    }
    g_assert_cmpuint(colo_log_remove_stale_blackboxes(dir), ==, G_N_ELEMENTS(gone));
    for (size_t i = 0; i < G_N_ELEMENTS(gone); i++) {
        if (exists(dir, gone[i])) {
            g_error("%s was kept", gone[i]);
        }
    }
    for (size_t i = 0; i < G_N_ELEMENTS(kept); i++) {
        if (!exists(dir, kept[i])) {
            g_error("%s was removed", kept[i]);
        }
        g_autofree char *path = g_build_filename(dir, kept[i], NULL);
        g_unlink(path);
    }
    kill(live, SIGKILL);
    waitpid(live, NULL, 0);
    g_rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/log/ident", test_ident);
    g_test_add_func("/log/init-long-names", test_init_long_names);
    g_test_add_func("/log/sweep", test_sweep);
    return g_test_run();
}
