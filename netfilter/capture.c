#include "config.h"

#include "capture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gio/gio.h>
#include <limits.h>
#include <glib-unix.h>
#include <linux/if_ether.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <qb/qblog.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CAPTURE_BUFSIZE (CAPTURE_VNET_LEN + 65536 + 64)
/* Frames per recvmmsg()/sendmmsg(): one syscall per burst, not per frame. */
#define CAPTURE_BATCH CAPTURE_BURST_MAX
/* Room for the frames of one send batch; a full arena is sent early. */
#define CAPTURE_TX_ARENA (1u << 20)

struct proxy_capture {
    struct capture_callbacks cb;
    int fd;
    guint watch;
    unsigned int ifindex;
    bool want_outgoing;
    struct iovec rx_iov[CAPTURE_BATCH];          /* a g_malloc'd buffer each */
    struct sockaddr_ll rx_addr[CAPTURE_BATCH];
    struct mmsghdr rx_msg[CAPTURE_BATCH];
    uint8_t *tx;                                 /* CAPTURE_TX_ARENA */
    size_t tx_used;
    unsigned int tx_count;
    struct iovec tx_iov[CAPTURE_BATCH];
    struct mmsghdr tx_msg[CAPTURE_BATCH];
    struct capture_stats stats;
};

bool capture_csum_partial(const uint8_t *vnet)
{
    return (vnet[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM) != 0;
}

/* Up to @rounds batches, fewer if the socket runs dry. The burst ends
 * with each batch: the next one reads into the same buffers. */
static void capture_read(ProxyCapture *c, int rounds)
{
    for (int round = 0; round < rounds; round++) {
        unsigned int delivered = 0;
        int n;

        for (int i = 0; i < CAPTURE_BATCH; i++) {
            c->rx_msg[i].msg_hdr.msg_namelen = sizeof(c->rx_addr[i]);
        }
        n = recvmmsg(c->fd, c->rx_msg, CAPTURE_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) {
            break;
        }
        c->stats.recv_calls++;
        for (int i = 0; i < n; i++) {
            size_t len = c->rx_msg[i].msg_len;
            bool outgoing = c->rx_addr[i].sll_pkttype == PACKET_OUTGOING;

            if (len < CAPTURE_VNET_LEN || outgoing != c->want_outgoing) {
                continue;
            }
            c->stats.frames++;
            delivered++;
            c->cb.frame(c->cb.opaque, c->rx_iov[i].iov_base, len, outgoing);
        }
        if (delivered && c->cb.burst_done) {
            c->cb.burst_done(c->cb.opaque);
        }
        if (n < CAPTURE_BATCH) {
            break;
        }
    }
}

uint8_t *capture_take(ProxyCapture *c, uint8_t *buf)
{
    for (int i = 0; i < CAPTURE_BATCH; i++) {
        if (c->rx_iov[i].iov_base == buf) {
            c->rx_iov[i].iov_base = g_malloc(CAPTURE_BUFSIZE);
            return buf;
        }
    }
    return NULL;
}

static gboolean capture_on_readable(gint fd, GIOCondition cond, gpointer data)
{
    /* Two batches per wakeup at most, so the other sources are served. */
    capture_read(data, 2);
    return G_SOURCE_CONTINUE;
}

void capture_drain(ProxyCapture *c)
{
    capture_read(c, INT_MAX);
}

/* Frames the host sends only: the guest's own output (a primary's 64 KiB
 * GSO frames) is never copied to us just to be thrown away. */
static struct sock_filter outgoing_only_code[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_PKTTYPE)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),
    BPF_STMT(BPF_RET | BPF_K, 0),
};
static const struct sock_fprog outgoing_only = { G_N_ELEMENTS(outgoing_only_code), outgoing_only_code };

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
    /* Protocol 0: nothing is received until bind(), so no frame of
     * another interface and none the filter would refuse gets queued. */
    fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "packet socket: %s", strerror(errno));
        return NULL;
    }
    sll.sll_ifindex = (int)ifindex;
    /* Our own injections would come back otherwise. */
    if (!want_outgoing) {
        setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
    }
    if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0 ||
        (want_outgoing && setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &outgoing_only, sizeof(outgoing_only)) < 0) ||
        bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        int e = errno;

        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "packet socket on %s: %s", ifname, strerror(e));
        close(fd);
        return NULL;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
    c = g_new0(ProxyCapture, 1);
    c->cb = *cb;
    c->fd = fd;
    c->ifindex = ifindex;
    c->want_outgoing = want_outgoing;
    c->tx = g_malloc(CAPTURE_TX_ARENA);
    for (int i = 0; i < CAPTURE_BATCH; i++) {
        c->rx_iov[i] = (struct iovec){ g_malloc(CAPTURE_BUFSIZE), CAPTURE_BUFSIZE };
        c->rx_msg[i].msg_hdr.msg_iov = &c->rx_iov[i];
        c->rx_msg[i].msg_hdr.msg_iovlen = 1;
        c->rx_msg[i].msg_hdr.msg_name = &c->rx_addr[i];
        c->tx_msg[i].msg_hdr.msg_iov = &c->tx_iov[i];
        c->tx_msg[i].msg_hdr.msg_iovlen = 1;
    }
    c->watch = g_unix_fd_add(fd, G_IO_IN, capture_on_readable, c);
    return c;
}

void capture_close(ProxyCapture *c)
{
    if (!c) {
        return;
    }
    g_source_remove(c->watch);
    capture_flush(c);
    close(c->fd);
    for (int i = 0; i < CAPTURE_BATCH; i++) {
        g_free(c->rx_iov[i].iov_base);
    }
    g_free(c->tx);
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

uint8_t *capture_queue(ProxyCapture *c, const uint8_t *buf, size_t len)
{
    uint8_t *slot;

    if (len > CAPTURE_BUFSIZE) {
        c->stats.send_errors++;
        return NULL;
    }
    if (c->tx_count == CAPTURE_BATCH || c->tx_used + len > CAPTURE_TX_ARENA) {
        capture_flush(c);
    }
    slot = c->tx + c->tx_used;
    memcpy(slot, buf, len);
    c->tx_iov[c->tx_count] = (struct iovec){ slot, len };
    c->tx_count++;
    c->tx_used += len;
    return slot;
}

void capture_flush(ProxyCapture *c)
{
    unsigned int done = 0;

    while (done < c->tx_count) {
        int n = sendmmsg(c->fd, c->tx_msg + done, c->tx_count - done, MSG_DONTWAIT);

        c->stats.send_calls++;
        if (n > 0) {
            done += (unsigned int)n;
            c->stats.sent += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        /* This frame failed (a full socket buffer drops it, as the
         * wire would); go on with the next. */
        if (c->stats.send_errors++ == 0) {
            qb_log(LOG_WARNING, "injecting a %zu-byte frame: %s", c->tx_iov[done].iov_len, strerror(errno));
        }
        done++;
    }
    c->tx_count = 0;
    c->tx_used = 0;
}

unsigned int capture_ifindex(const ProxyCapture *c)
{
    return c->ifindex;
}

void capture_get_stats(ProxyCapture *c, struct capture_stats *out)
{
    struct tpacket_stats st;
    socklen_t len = sizeof(st);

    if (getsockopt(c->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) {
        c->stats.drops += st.tp_drops;
    }
    *out = c->stats;
}
