/* Unit tests of common/unix-socket.c: stale files, long paths, and the
 * listen backlog (a burst of clients while nobody accepts; it was 8 or 16
 * in colo-proxy's and colo-vmm's copies, and a busy server refused the
 * rest). */
#include "config.h"

#include "common/unix-socket.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

static void test_burst_not_refused(void)
{
    g_autofree char *dir = g_dir_make_tmp("unix-sock-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "s", NULL);
    g_autoptr(GError) error = NULL;
    int fds[100];
    int lfd = colo_unix_listen(path, true, &error);

    g_assert_no_error(error);
    g_assert_cmpint(lfd, >=, 0);
    for (size_t i = 0; i < G_N_ELEMENTS(fds); i++) {
        fds[i] = colo_unix_connect(path, true, &error);
        g_assert_no_error(error);
        g_assert_cmpint(fds[i], >=, 0);
    }
    /* Every one of them waits in the backlog, in order. */
    for (size_t i = 0; i < G_N_ELEMENTS(fds); i++) {
        int c = accept(lfd, NULL, NULL);

        g_assert_cmpint(c, >=, 0);
        close(c);
        close(fds[i]);
    }
    close(lfd);
    g_unlink(path);
    g_rmdir(dir);
}

static void test_stale_file_replaced(void)
{
    g_autofree char *dir = g_dir_make_tmp("unix-sock-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "s", NULL);
    g_autoptr(GError) error = NULL;
    int lfd;

    g_assert_true(g_file_set_contents(path, "stale", -1, NULL));
    lfd = colo_unix_listen(path, false, &error);
    g_assert_no_error(error);
    g_assert_cmpint(lfd, >=, 0);
    close(lfd);
    g_unlink(path);
    g_rmdir(dir);
}

/* Even under umask 0 (a careless service manager) the socket file is
 * 0600 from bind() on: connecting needs write permission on it. */
static void test_mode_owner_only(void)
{
    g_autofree char *dir = g_dir_make_tmp("unix-sock-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "s", NULL);
    g_autoptr(GError) error = NULL;
    mode_t old = umask(0);
    int lfd = colo_unix_listen(path, false, &error);
    struct stat st;

    umask(old);
    g_assert_no_error(error);
    g_assert_cmpint(lfd, >=, 0);
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_true(S_ISSOCK(st.st_mode));
    g_assert_cmpint(st.st_mode & 07777, ==, 0600);
    close(lfd);
    g_unlink(path);
    g_rmdir(dir);
}

/* With a group: 0660 and that group (a number here: any gid will do for
 * root, and tests run as root; as another user only its own groups). */
static void test_mode_group(void)
{
    g_autofree char *dir = g_dir_make_tmp("unix-sock-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "s", NULL);
    g_autofree char *sub = g_build_filename(dir, "run", "vm", NULL);
    g_autofree char *group = g_strdup_printf("%u", (unsigned)getegid());
    g_autoptr(GError) error = NULL;
    struct stat st;
    int lfd;

    lfd = colo_unix_listen_group(path, false, group, &error);
    g_assert_no_error(error);
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0660);
    g_assert_cmpuint(st.st_gid, ==, getegid());
    close(lfd);
    g_unlink(path);

    g_assert_cmpint(colo_unix_listen_group(path, false, "no-such-group-colo", &error), ==, -1);
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));

    /* The run directory: created, then corrected if an earlier run left
     * it open. */
    g_assert_true(colo_run_dir_prepare(sub, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpint(stat(sub, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0700);
    g_assert_cmpint(chmod(sub, 0777), ==, 0);
    g_assert_true(colo_run_dir_prepare(sub, group, &error));
    g_assert_cmpint(stat(sub, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0750);
    g_assert_true(colo_run_dir_prepare(sub, NULL, &error));
    g_assert_cmpint(stat(sub, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0700);
    g_rmdir(sub);
    *strrchr(sub, '/') = 0;
    g_rmdir(sub);
    g_rmdir(dir);
}

static void test_errors(void)
{
    g_autofree char *longpath = g_strnfill(200, 'x');
    g_autofree char *dir = g_dir_make_tmp("unix-sock-XXXXXX", NULL);
    g_autofree char *missing = g_build_filename(dir, "none", NULL);
    g_autoptr(GError) error = NULL;

    g_assert_cmpint(colo_unix_listen(longpath, false, &error), ==, -1);
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(error->message, "too long"));
    g_clear_error(&error);
    g_assert_false(colo_unix_path_check("", &error));
    g_clear_error(&error);
    g_assert_cmpint(colo_unix_connect(missing, false, &error), ==, -1);
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
    g_rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/unix-socket/burst-not-refused", test_burst_not_refused);
    g_test_add_func("/unix-socket/stale-file-replaced", test_stale_file_replaced);
    g_test_add_func("/unix-socket/mode-owner-only", test_mode_owner_only);
    g_test_add_func("/unix-socket/mode-group", test_mode_group);
    g_test_add_func("/unix-socket/errors", test_errors);
    return g_test_run();
}
