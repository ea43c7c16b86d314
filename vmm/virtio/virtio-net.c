#include "config.h"

#include <gio/gio.h>

#include "virtio/virtio-net.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include <linux/if_tun.h>
#include <qb/qblog.h>

#include "net/tap.h"

#define VIRTIO_ID_NET 1
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define NET_QUEUE_SIZE 256
#define NET_RXQ 0
#define NET_TXQ 1
/* A TSO frame of 64 KiB plus Ethernet header, with the virtio header. */
#define NET_FRAME_MAX (TAP_VNET_HDR_LEN + 65536 + 14 + 4)
#define NET_BATCH 64
#define NET_RX_RETRY_MS 20

#define BIT(n) (1ULL << (n))

struct VirtioNet {
    VirtioDev *vd;
    int tap;
    uint8_t mac[6];
    uint8_t *rx_buf;            /* a frame read from the tap, waiting for a buffer */
    size_t rx_len;              /* 0: none waiting */
    uint8_t *tx_buf;
    VirtioNetStats stats;
};

static void virtio_net_config_read(VirtioDev *vd, unsigned offset, uint8_t *data, unsigned len)
{
    VirtioNet *net = vd->opaque;

    memset(data, 0, len);
    if (offset < sizeof(net->mac)) {
        memcpy(data, net->mac + offset, MIN(len, sizeof(net->mac) - offset));
    }
}

/* Offloads have dependencies (5.1.3.1); a driver that ignores them is
 * refused rather than given frames it cannot take. */
static bool virtio_net_features_ok(VirtioDev *vd, uint64_t f)
{
    VirtioNet *net = vd->opaque;
    unsigned tun = 0;
    g_autoptr(GError) error = NULL;

    if (((f & (BIT(VIRTIO_NET_F_HOST_TSO4) | BIT(VIRTIO_NET_F_HOST_TSO6))) && !(f & BIT(VIRTIO_NET_F_CSUM))) ||
        ((f & (BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO6))) &&
         !(f & BIT(VIRTIO_NET_F_GUEST_CSUM)))) {
        return false;
    }
    if (f & BIT(VIRTIO_NET_F_GUEST_CSUM)) {
        tun |= TUN_F_CSUM;
    }
    if (f & BIT(VIRTIO_NET_F_GUEST_TSO4)) {
        tun |= TUN_F_TSO4;
    }
    if (f & BIT(VIRTIO_NET_F_GUEST_TSO6)) {
        tun |= TUN_F_TSO6;
    }
    if (!tap_set_offload(net->tap, tun, &error)) {
        qb_log(LOG_ERR, "%s: %s", vd->name, error->message);
        return false;
    }
    return true;
}

/* Frames for the guest: one frame per buffer chain (no MRG_RXBUF). */
static void virtio_net_rx(VirtioNet *net)
{
    VirtioDev *vd = net->vd;
    Virtqueue *vq = &vd->vqs[NET_RXQ];
    unsigned done = 0;

    while (done < NET_BATCH) {
        if (!net->rx_len) {
            ssize_t n = read(net->tap, net->rx_buf, NET_FRAME_MAX);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= TAP_VNET_HDR_LEN) {
                if (n < 0 && errno != EAGAIN) {
                    qb_log(LOG_ERR, "%s: tap read: %s", vd->name, strerror(errno));
                }
                break;
            }
            net->rx_len = (size_t)n;
            /* num_buffers: the tap leaves it alone; one buffer per frame. */
            net->rx_buf[10] = 1;
            net->rx_buf[11] = 0;
        }
        int r = virtq_pop(vq, vd->elem);
        if (r <= 0) {
            /* No buffer: keep the frame, stop reading the tap until the
             * driver adds buffers. Its kick brings us back; so does a
             * look at the ring every NET_RX_RETRY_MS, for a driver that
             * refilled without one. */
            vd->extra_events = 0;
            vd->retry_ms = r < 0 ? -1 : NET_RX_RETRY_MS;
            break;
        }
        vd->retry_ms = -1;
        uint32_t written = 0;
        if (vd->elem->in_len < net->rx_len) {
            net->stats.rx_dropped++;
        } else if (virtq_elem_write(vq, vd->elem, 0, net->rx_buf, net->rx_len) == (ssize_t)net->rx_len) {
            written = (uint32_t)net->rx_len;
            net->stats.rx_frames++;
        }
        net->rx_len = 0;
        if (!virtq_push(vq, vd->elem, written)) {
            return;
        }
        done++;
    }
    if (done) {
        virtio_dev_notify(vd, NET_RXQ);
    }
}

static void virtio_net_tx(VirtioNet *net)
{
    VirtioDev *vd = net->vd;
    Virtqueue *vq = &vd->vqs[NET_TXQ];
    unsigned done = 0;

    for (;;) {
        int r = virtq_pop(vq, vd->elem);
        if (r <= 0) {
            break;
        }
        const VirtqElem *e = vd->elem;
        if (e->out_len > TAP_VNET_HDR_LEN && e->out_len <= NET_FRAME_MAX &&
            virtq_elem_read(vq, e, 0, net->tx_buf, e->out_len) == (ssize_t)e->out_len) {
            /* The kernel checks the header (GSO type, offsets) itself. */
            if (write(net->tap, net->tx_buf, e->out_len) < 0) {
                if (net->stats.tx_errors++ < 10) {
                    qb_log(LOG_WARNING, "%s: tap write: %s%s", vd->name, strerror(errno),
                           errno == EIO ? " (is the tap up?)" : "");
                }
            } else {
                net->stats.tx_frames++;
            }
        } else if (net->stats.tx_errors++ < 10) {
            qb_log(LOG_WARNING, "%s: transmit request of %" G_GUINT64_FORMAT " bytes dropped",
                   vd->name, e->out_len);
        }
        if (!virtq_push(vq, e, 0)) {
            return;
        }
        if (++done % NET_BATCH == 0) {
            virtio_dev_notify(vd, NET_TXQ);
        }
    }
    if (done % NET_BATCH) {
        virtio_dev_notify(vd, NET_TXQ);
    }
}

static void virtio_net_queue_notify(VirtioDev *vd, unsigned q)
{
    VirtioNet *net = vd->opaque;

    if (q == NET_TXQ) {
        virtio_net_tx(net);
        /* A driver that refilled the receive ring without a kick (it may
         * think we still had buffers) is picked up here too. */
        if (!vd->extra_events) {
            vd->extra_events = POLLIN;
            virtio_net_rx(net);
        }
    } else if (q == NET_RXQ) {
        vd->extra_events = POLLIN;
        virtio_net_rx(net);
    }
}

static void virtio_net_fd_ready(VirtioDev *vd, short revents)
{
    virtio_net_rx(vd->opaque);
}

static void virtio_net_reset(VirtioDev *vd)
{
    VirtioNet *net = vd->opaque;

    net->rx_len = 0;
    vd->extra_events = POLLIN;
    vd->retry_ms = -1;
}

static const VirtioDevOps virtio_net_ops = {
    .type = "virtio-net",
    .device_id = VIRTIO_ID_NET,
    .class_code = 0x020000,     /* Ethernet controller */
    .num_queues = 2,
    .queue_size = NET_QUEUE_SIZE,
    .config_size = 6,
    .config_read = virtio_net_config_read,
    .features_ok = virtio_net_features_ok,
    .queue_notify = virtio_net_queue_notify,
    .fd_ready = virtio_net_fd_ready,
    .reset = virtio_net_reset,
};

VirtioNet *virtio_net_new(PciBus *bus, GuestMemory *mem, const VirtioNetConfig *cfg,
                          unsigned index, GError **error)
{
    VirtioNet *net = g_new0(VirtioNet, 1);
    g_autofree char *name = g_strdup_printf("virtio-net%u", index);
    uint64_t features = BIT(VIRTIO_NET_F_CSUM) | BIT(VIRTIO_NET_F_GUEST_CSUM) | BIT(VIRTIO_NET_F_MAC) |
                        BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO6) |
                        BIT(VIRTIO_NET_F_HOST_TSO4) | BIT(VIRTIO_NET_F_HOST_TSO6);

    memcpy(net->mac, cfg->mac, sizeof(net->mac));
    net->tap = tap_open(cfg->ifname, error);
    if (net->tap < 0) {
        g_free(net);
        return NULL;
    }
    net->rx_buf = g_malloc(NET_FRAME_MAX);
    net->tx_buf = g_malloc(NET_FRAME_MAX);
    net->vd = virtio_dev_new(bus, mem, &virtio_net_ops, net, name, features, error);
    if (!net->vd) {
        virtio_net_free(net);
        return NULL;
    }
    net->vd->extra_fd = net->tap;
    net->vd->extra_events = POLLIN;
    qb_log(LOG_INFO, "%s: tap %s, mac %02x:%02x:%02x:%02x:%02x:%02x", name, cfg->ifname,
           net->mac[0], net->mac[1], net->mac[2], net->mac[3], net->mac[4], net->mac[5]);
    return net;
}

void virtio_net_free(VirtioNet *net)
{
    if (net) {
        virtio_dev_free(net->vd);
        if (net->tap >= 0) {
            close(net->tap);
        }
        g_free(net->rx_buf);
        g_free(net->tx_buf);
        g_free(net);
    }
}

VirtioDev *virtio_net_dev(VirtioNet *net)
{
    return net->vd;
}

VirtioNetStats virtio_net_stats(VirtioNet *net)
{
    g_mutex_lock(&net->vd->lock);
    VirtioNetStats s = net->stats;
    g_mutex_unlock(&net->vd->lock);
    return s;
}

bool virtio_net_announce(VirtioNet *net)
{
    /* vnet header (12 zero bytes), Ethernet, RARP "reverse request"
     * (RFC 903) with our MAC as sender and target, padded to 60 bytes. */
    uint8_t f[TAP_VNET_HDR_LEN + 60] = { 0 };
    uint8_t *e = f + TAP_VNET_HDR_LEN;
    static const uint8_t rarp[8] = { 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x03 };

    memset(e, 0xff, 6);
    memcpy(e + 6, net->mac, 6);
    e[12] = 0x80;
    e[13] = 0x35;
    memcpy(e + 14, rarp, sizeof(rarp));
    memcpy(e + 22, net->mac, 6);
    memcpy(e + 32, net->mac, 6);
    if (write(net->tap, f, sizeof(f)) != (ssize_t)sizeof(f)) {
        qb_log(LOG_WARNING, "%s: announce: %s", net->vd->name, strerror(errno));
        return false;
    }
    return true;
}
