#include "config.h"

#include "capture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <qb/qblog.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CAPTURE_BUFSIZE (CAPTURE_VNET_LEN + 65536 + 64)
#define CAPTURE_BURST 64

struct proxy_capture {
    struct capture_callbacks cb;
    int fd;
    guint watch;
    unsigned int ifindex;
    bool want_outgoing;
    uint8_t *buf;
    struct capture_stats stats;
};

bool capture_csum_partial(const uint8_t *vnet)
{
    return (vnet[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM) != 0;
}

static gboolean capture_on_readable(gint fd, GIOCondition cond, gpointer data)
{
    ProxyCapture *c = data;

    for (int i = 0; i < CAPTURE_BURST; i++) {
        struct sockaddr_ll sll;
        socklen_t sl = sizeof(sll);
        ssize_t n = recvfrom(fd, c->buf, CAPTURE_BUFSIZE, MSG_DONTWAIT, (struct sockaddr *)&sll, &sl);
        bool outgoing;

        if (n < 0) {
            break;
        }
        if ((size_t)n < CAPTURE_VNET_LEN) {
            continue;
        }
        outgoing = sll.sll_pkttype == PACKET_OUTGOING;
        if (outgoing != c->want_outgoing) {
            continue;
        }
        c->stats.frames++;
        c->cb.frame(c->cb.opaque, c->buf, (size_t)n, outgoing);
    }
    return G_SOURCE_CONTINUE;
}

ProxyCapture *capture_open(const char *ifname, bool want_outgoing, const struct capture_callbacks *cb,
                           GError **error)
{
    ProxyCapture *c;
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
    unsigned int ifindex = if_nametoindex(ifname);
    int fd, one = 1, bufsize = 8 << 20;

    if (!ifindex) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no interface %s", ifname);
        return NULL;
    }
    fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "packet socket: %s", strerror(errno));
        return NULL;
    }
    sll.sll_ifindex = (int)ifindex;
    if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        int e = errno;

        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "packet socket on %s: %s", ifname, strerror(e));
        close(fd);
        return NULL;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
    if (!want_outgoing) {
        /* Our own injections would come back otherwise. */
        setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
    }
    c = g_new0(ProxyCapture, 1);
    c->cb = *cb;
    c->fd = fd;
    c->ifindex = ifindex;
    c->want_outgoing = want_outgoing;
    c->buf = g_malloc(CAPTURE_BUFSIZE);
    c->watch = g_unix_fd_add(fd, G_IO_IN, capture_on_readable, c);
    return c;
}

void capture_close(ProxyCapture *c)
{
    if (!c) {
        return;
    }
    g_source_remove(c->watch);
    close(c->fd);
    g_free(c->buf);
    g_free(c);
}

bool capture_send(ProxyCapture *c, const uint8_t *buf, size_t len)
{
    if (send(c->fd, buf, len, MSG_DONTWAIT) < 0) {
        if (c->stats.send_errors++ == 0) {
            qb_log(LOG_WARNING, "injecting a %zu-byte frame: %s", len, strerror(errno));
        }
        return false;
    }
    c->stats.sent++;
    return true;
}

unsigned int capture_ifindex(const ProxyCapture *c)
{
    return c->ifindex;
}

void capture_get_stats(const ProxyCapture *c, struct capture_stats *out)
{
    *out = c->stats;
}
