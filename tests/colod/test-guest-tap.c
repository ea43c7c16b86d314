/* colod's copies of the guest's tap (colod/guest-tap.c), in a private
 * network namespace: a child process plays colo-vmm, holding the tap as
 * colo-vmm does. With colod's copies the tap keeps its carrier when the
 * child is killed (the host goes on routing clients' packets to it, so
 * colo-proxy can mirror them to the secondary); without them, and after a
 * release, the carrier goes; a released tap can be opened again. */
#include "config.h"

#include "guest-tap.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define TAP_NAME "colotap0"

static const char *skip_reason;
static char *setup_error;

/* Attaches to the tap as colo-vmm does (one queue, vnet header); -errno. */
static int tap_attach(const char *name)
{
    struct ifreq ifr;
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

    if (fd < 0) {
        return -errno;
    }
    memset(&ifr, 0, sizeof(ifr));
    g_strlcpy(ifr.ifr_name, name, IFNAMSIZ);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int err = -errno;

        close(fd);
        return err;
    }
    return fd;
}

/* A persistent tap, up (as the harness's `ip tuntap add` and `link set up`). */
static void tap_create(const char *name)
{
    int fd = tap_attach(name);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ioctl(fd, TUNSETPERSIST, 1), ==, 0);
    close(fd);
    memset(&ifr, 0, sizeof(ifr));
    g_strlcpy(ifr.ifr_name, name, IFNAMSIZ);
    g_assert_cmpint(ioctl(s, SIOCGIFFLAGS, &ifr), ==, 0);
    ifr.ifr_flags |= IFF_UP;
    g_assert_cmpint(ioctl(s, SIOCSIFFLAGS, &ifr), ==, 0);
    close(s);
}

static bool tap_running_now(const char *name)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;

    memset(&ifr, 0, sizeof(ifr));
    g_strlcpy(ifr.ifr_name, name, IFNAMSIZ);
    g_assert_cmpint(ioctl(s, SIOCGIFFLAGS, &ifr), ==, 0);
    close(s);
    return (ifr.ifr_flags & IFF_RUNNING) != 0;
}

/* Still IFF_RUNNING after the time a carrier change takes to show. */
static bool tap_stays_running(const char *name)
{
    for (int i = 0; i < 150; i++) {
        if (!tap_running_now(name)) {
            return false;
        }
        g_usleep(10000);
    }
    return true;
}

/* IFF_RUNNING (up, with carrier: what routing to the tap needs) once it
 * settles: the kernel applies a carrier change asynchronously (linkwatch,
 * within a second), so @want is waited for, for up to 3 s. */
static bool tap_running(const char *name, bool want)
{
    for (int i = 0; i < 300; i++) {
        if (tap_running_now(name) == want) {
            return want;
        }
        g_usleep(10000);
    }
    return !want;
}

/* A child that holds the tap (and another descriptor) until killed. */
static pid_t vmm_start(const char *name)
{
    int ready[2];
    pid_t pid;
    char c;

    g_assert_cmpint(pipe(ready), ==, 0);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        int other;

        /* Never left behind by a failed test (the TAP driver would wait
         * for its output to close). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        other = open("/dev/null", O_RDONLY);
        int fd = tap_attach(name);

        if (fd < 0 || other < 0 || write(ready[1], "x", 1) != 1) {
            _exit(1);
        }
        for (;;) {
            pause();
        }
    }
    close(ready[1]);
    g_assert_cmpint(read(ready[0], &c, 1), ==, 1);
    close(ready[0]);
    return pid;
}

static void vmm_kill(pid_t pid)
{
    int status;

    g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
}

static bool check_setup(void)
{
    if (skip_reason) {
        g_test_skip(skip_reason);
        return false;
    }
    if (setup_error) {
        g_test_fail_printf("%s", setup_error);
        return false;
    }
    return true;
}

static void test_keeps_carrier(void)
{
    g_autoptr(GError) error = NULL;
    GuestTap *t;
    pid_t pid;
    int fd;

    if (!check_setup()) {
        return;
    }
    t = guest_tap_new(TAP_NAME);
    pid = vmm_start(TAP_NAME);
    g_assert_true(tap_running(TAP_NAME, true));
    g_assert_true(guest_tap_keep(t, pid, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(guest_tap_held(t), ==, 1);
    /* Asked again for the same process: nothing new. */
    g_assert_true(guest_tap_keep(t, pid, &error));
    g_assert_cmpuint(guest_tap_held(t), ==, 1);

    vmm_kill(pid);
    g_assert_true(tap_stays_running(TAP_NAME));
    /* One queue: a new colo-vmm cannot have it while colod's copy holds it. */
    g_assert_cmpint(tap_attach(TAP_NAME), ==, -EBUSY);

    guest_tap_release(t);
    g_assert_cmpuint(guest_tap_held(t), ==, 0);
    g_assert_false(tap_running(TAP_NAME, false));
    fd = tap_attach(TAP_NAME);
    g_assert_cmpint(fd, >=, 0);
    close(fd);
    guest_tap_free(t);
}

static void test_without_copy(void)
{
    pid_t pid;

    if (!check_setup()) {
        return;
    }
    pid = vmm_start(TAP_NAME);
    g_assert_true(tap_running(TAP_NAME, true));
    vmm_kill(pid);
    g_assert_false(tap_running(TAP_NAME, false));
}

static void test_not_holding(void)
{
    g_autoptr(GError) error = NULL;
    GuestTap *t;
    pid_t pid;

    if (!check_setup()) {
        return;
    }
    /* A process holding another tap (or none) gives no copy. */
    t = guest_tap_new("colotap-other");
    pid = vmm_start(TAP_NAME);
    g_assert_false(guest_tap_keep(t, pid, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
    g_assert_cmpuint(guest_tap_held(t), ==, 0);
    g_clear_error(&error);
    vmm_kill(pid);
    /* Nor a process that is gone. */
    g_assert_false(guest_tap_keep(t, pid, &error));
    g_assert_nonnull(error);
    guest_tap_free(t);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    if (geteuid() != 0) {
        skip_reason = "not root: needs a tap in a private network namespace";
    } else if (unshare(CLONE_NEWNET) < 0) {
        setup_error = g_strdup_printf("cannot create a network namespace as root: %s", g_strerror(errno));
    } else if (access("/dev/net/tun", R_OK | W_OK) < 0) {
        skip_reason = "no /dev/net/tun";
    } else {
        tap_create(TAP_NAME);
    }
    g_test_add_func("/colod/guest-tap/keeps-carrier", test_keeps_carrier);
    g_test_add_func("/colod/guest-tap/without-copy", test_without_copy);
    g_test_add_func("/colod/guest-tap/not-holding", test_not_holding);
    return g_test_run();
}
