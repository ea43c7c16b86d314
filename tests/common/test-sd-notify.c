/* Unit tests of common/sd-notify.c: the datagram systemd would get, on a
 * path and on an abstract socket, and the watchdog's environment. */
#include "config.h"

#include "common/sd-notify.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

/* A datagram socket bound to @name (a path, or "@..." abstract). */
static int manager_socket(const char *name)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    size_t len = strlen(name);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint(fd, >=, 0);
    memcpy(a.sun_path, name, len);
    if (name[0] == '@') {
        a.sun_path[0] = '\0';
    }
    g_assert_cmpint(bind(fd, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)), ==, 0);
    return fd;
}

static void expect(int fd, const char *state)
{
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

    g_assert_cmpint(n, >, 0);
    buf[n] = '\0';
    g_assert_cmpstr(buf, ==, state);
}

static void test_notify(void)
{
    g_autofree char *dir = g_dir_make_tmp("sd-notify-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "notify", NULL);
    g_autofree char *abstract = g_strdup_printf("@colo-test-notify-%d", (int)getpid());
    int fd;

    g_unsetenv("NOTIFY_SOCKET");
    g_assert_false(colo_sd_notify("READY=1"));     /* not under systemd */
    g_setenv("NOTIFY_SOCKET", "relative/path", TRUE);
    g_assert_false(colo_sd_notify("READY=1"));

    fd = manager_socket(path);
    g_setenv("NOTIFY_SOCKET", path, TRUE);
    g_assert_true(colo_sd_notify("READY=1"));
    g_assert_true(colo_sd_notify("WATCHDOG=1"));
    expect(fd, "READY=1");
    expect(fd, "WATCHDOG=1");
    close(fd);
    g_unlink(path);
    g_assert_false(colo_sd_notify("STOPPING=1"));  /* the manager went away */

    fd = manager_socket(abstract);
    g_setenv("NOTIFY_SOCKET", abstract, TRUE);
    g_assert_true(colo_sd_notify("STOPPING=1"));
    expect(fd, "STOPPING=1");
    close(fd);
    g_unsetenv("NOTIFY_SOCKET");
    g_rmdir(dir);
}

static void test_watchdog(void)
{
    g_autofree char *me = g_strdup_printf("%d", (int)getpid());

    g_unsetenv("WATCHDOG_USEC");
    g_unsetenv("WATCHDOG_PID");
    g_assert_cmpuint(colo_sd_watchdog_usec(), ==, 0);
    g_setenv("WATCHDOG_USEC", "10000000", TRUE);
    g_assert_cmpuint(colo_sd_watchdog_usec(), ==, 10000000);
    g_setenv("WATCHDOG_PID", me, TRUE);
    g_assert_cmpuint(colo_sd_watchdog_usec(), ==, 10000000);
    g_setenv("WATCHDOG_PID", "1", TRUE);            /* meant for another process */
    g_assert_cmpuint(colo_sd_watchdog_usec(), ==, 0);
    g_unsetenv("WATCHDOG_PID");
    g_setenv("WATCHDOG_USEC", "ten", TRUE);
    g_assert_cmpuint(colo_sd_watchdog_usec(), ==, 0);
    g_unsetenv("WATCHDOG_USEC");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/sd-notify/notify", test_notify);
    g_test_add_func("/sd-notify/watchdog", test_watchdog);
    return g_test_run();
}
