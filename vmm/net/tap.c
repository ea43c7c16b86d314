#include "config.h"

#include <gio/gio.h>

#include "net/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/if.h>
#include <linux/if_tun.h>

int tap_open(const char *ifname, GError **error)
{
    struct ifreq ifr = { 0 };
    int hdr = TAP_VNET_HDR_LEN;
    int fd;

    if (strlen(ifname) >= IFNAMSIZ) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "tap name '%s' too long", ifname);
        return -1;
    }
    fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "cannot open /dev/net/tun: %s",
                    strerror(errno));
        return -1;
    }
    g_strlcpy(ifr.ifr_name, ifname, IFNAMSIZ);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "tap %s: TUNSETIFF: %s", ifname,
                    strerror(errno));
        close(fd);
        return -1;
    }
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "tap %s: TUNSETVNETHDRSZ: %s",
                    ifname, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

bool tap_set_offload(int fd, unsigned flags, GError **error)
{
    if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "TUNSETOFFLOAD 0x%x: %s", flags,
                    strerror(errno));
        return false;
    }
    return true;
}
