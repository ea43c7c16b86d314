/* colod's copies of the guest's tap (guest-tap.h). */
#include "config.h"

#include "guest-tap.h"

#include "process-fd.h"

#include <errno.h>
#include <gio/gio.h>
#include <limits.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct GuestTap {
    char *ifname;
    pid_t pid;      /* whose descriptors the copies are; 0: none held */
    GArray *fds;    /* int */
};

GuestTap *guest_tap_new(const char *ifname)
{
    GuestTap *t = g_new0(GuestTap, 1);

    t->ifname = g_strdup(ifname);
    t->fds = g_array_new(FALSE, FALSE, sizeof(int));
    return t;
}

void guest_tap_release(GuestTap *t)
{
    for (guint i = 0; i < t->fds->len; i++) {
        close(g_array_index(t->fds, int, i));
    }
    g_array_set_size(t->fds, 0);
    t->pid = 0;
}

void guest_tap_free(GuestTap *t)
{
    if (!t) {
        return;
    }
    guest_tap_release(t);
    g_array_unref(t->fds);
    g_free(t->ifname);
    g_free(t);
}

guint guest_tap_held(const GuestTap *t)
{
    return t->fds->len;
}

/* Does /proc/PID/fdinfo/FD name our tap ("iff:\tNAME")? */
static bool fd_is_our_tap(const GuestTap *t, pid_t pid, const char *fd)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/fdinfo/%s", (int)pid, fd);
    g_autofree char *info = NULL;
    g_autofree char *want = g_strdup_printf("\niff:\t%s\n", t->ifname);

    return g_file_get_contents(path, &info, NULL, NULL) && strstr(info, want);
}

/* The copy is of the descriptor we looked at, not of one the process
 * opened since under the same number: ask the copy itself. */
static bool copy_is_our_tap(const GuestTap *t, int fd)
{
    struct ifreq ifr;

    memset(&ifr, 0, sizeof(ifr));
    return ioctl(fd, TUNGETIFF, &ifr) == 0 && strncmp(ifr.ifr_name, t->ifname, IFNAMSIZ) == 0;
}

bool guest_tap_keep(GuestTap *t, pid_t pid, GError **error)
{
    g_autofree char *dir_path = g_strdup_printf("/proc/%d/fd", (int)pid);
    g_autoptr(GDir) dir = NULL;
    const char *name;

    if (t->pid == pid && t->fds->len) {
        return true;
    }
    guest_tap_release(t);
    dir = g_dir_open(dir_path, 0, error);
    if (!dir) {
        return false;
    }
    while ((name = g_dir_read_name(dir))) {
        g_autofree char *link_path = g_build_filename(dir_path, name, NULL);
        g_autofree char *target = g_file_read_link(link_path, NULL);
        char *end;
        long remote = strtol(name, &end, 10);
        int fd;

        if (!target || strcmp(target, "/dev/net/tun") != 0 || *end || remote < 0 || remote > INT_MAX ||
            !fd_is_our_tap(t, pid, name)) {
            continue;
        }
        fd = process_fd_copy(pid, (int)remote, error);
        if (fd < 0) {
            guest_tap_release(t);
            return false;
        }
        if (!copy_is_our_tap(t, fd)) {
            close(fd);
            continue;
        }
        g_array_append_val(t->fds, fd);
    }
    if (!t->fds->len) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "process %d holds no descriptor of tap %s", (int)pid,
                    t->ifname);
        return false;
    }
    t->pid = pid;
    return true;
}
