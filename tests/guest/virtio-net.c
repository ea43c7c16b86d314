/* virtio-net: 12-byte virtio 1.x header in front of every frame, one
 * descriptor per frame (header and frame in one 2 KiB buffer). */
#include "console.h"
#include "io.h"
#include "layout.h"
#include "lib.h"
#include "net.h"
#include "netdev.h"
#include "virtio-net.h"
#include "virtio.h"

#define VIRTIO_NET_F_CSUM       0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC        5

#define HDR_F_NEEDS_CSUM        1
#define HDR_F_DATA_VALID        2

#define NQ      128
#define BUF     2048

struct vnet_hdr {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
    uint16_t num_buffers;
};

static struct virtio_dev dev;
static struct virtq rxq, txq;
static uint8_t rx_bufs[NQ][BUF] __attribute__((aligned(4096)));
static uint8_t tx_bufs[NQ][BUF] __attribute__((aligned(4096)));
static uint16_t tx_free[NQ];        /* stack of free transmit descriptors */
static unsigned tx_nfree;
static bool tx_pending;
static bool up;

bool vnet_init(uint32_t apic_id, uint8_t mac[6], bool *tx_csum)
{
    uint64_t want = 1ULL << VIRTIO_NET_F_MAC | 1ULL << VIRTIO_NET_F_CSUM | 1ULL << VIRTIO_NET_F_GUEST_CSUM;

    if (!virtio_dev_init(&dev, VIRTIO_DEV_NET, want, "virtio-net")) {
        return false;
    }
    if (!virtio_msix(&dev, 0, VEC_NET, apic_id) ||
        !virtio_queue_setup(&dev, &rxq, 0, NQ, 0) || !virtio_queue_setup(&dev, &txq, 1, NQ, 0xffff)) {
        kprintf("colo-testguest: virtio-net: no MSI-X or queues, NIC ignored\n");
        virtio_dev_fail(&dev);
        return false;
    }
    for (uint16_t i = 0; i < rxq.size; i++) {
        rxq.desc[i] = (struct virtq_desc){ (uint64_t)(uintptr_t)rx_bufs[i], BUF, VIRTQ_DESC_F_WRITE, 0 };
        virtq_push_avail(&rxq, i);
    }
    for (uint16_t i = 0; i < txq.size; i++) {
        txq.desc[i] = (struct virtq_desc){ (uint64_t)(uintptr_t)tx_bufs[i], 0, 0, 0 };
        tx_free[tx_nfree++] = i;
    }
    for (unsigned i = 0; i < 6; i++) {
        mac[i] = (dev.features & 1ULL << VIRTIO_NET_F_MAC) ? mmio_read8(dev.device_cfg + i)
                                                            : (uint8_t)(i == 0 ? 0x52 : i == 1 ? 0x54 : i);
    }
    *tx_csum = dev.features & 1ULL << VIRTIO_NET_F_CSUM;
    virtio_dev_ready(&dev);
    virtq_kick(&rxq);
    up = true;
    return true;
}

static void vnet_tx_reclaim(void)
{
    const struct virtq_used_elem *e;

    while ((e = virtq_next_used(&txq))) {
        if (e->id < txq.size && tx_nfree < NQ) {
            tx_free[tx_nfree++] = (uint16_t)e->id;
        }
    }
}

uint8_t *netdev_tx_buf(void)
{
    if (!up) {
        return 0;
    }
    if (!tx_nfree) {
        vnet_flush();
        vnet_tx_reclaim();
        if (!tx_nfree) {
            return 0;
        }
    }
    return tx_bufs[tx_free[tx_nfree - 1]] + sizeof(struct vnet_hdr);
}

void netdev_tx_send(uint8_t *buf, size_t len, uint16_t csum_start, uint16_t csum_off)
{
    uint16_t id = tx_free[--tx_nfree];
    struct vnet_hdr *h = (struct vnet_hdr *)tx_bufs[id];

    (void)buf;  /* always the buffer netdev_tx_buf() returned last */
    *h = (struct vnet_hdr){ 0 };
    if (csum_start) {
        h->flags = HDR_F_NEEDS_CSUM;
        h->csum_start = csum_start;
        h->csum_offset = csum_off;
    }
    txq.desc[id].len = (uint32_t)(len + sizeof(*h));
    virtq_push_avail(&txq, id);
    tx_pending = true;
    net_stats.tx_frames++;
}

void vnet_flush(void)
{
    if (tx_pending) {
        tx_pending = false;
        virtq_kick(&txq);
    }
}

void vnet_poll(void)
{
    const struct virtq_used_elem *e;
    bool reposted = false;

    if (!up) {
        return;
    }
    while ((e = virtq_next_used(&rxq))) {
        uint32_t id = e->id;
        if (id < rxq.size && e->len > sizeof(struct vnet_hdr) && e->len <= BUF) {
            const struct vnet_hdr *h = (const struct vnet_hdr *)rx_bufs[id];
            net_input(rx_bufs[id] + sizeof(*h), e->len - sizeof(*h),
                      h->flags & (HDR_F_NEEDS_CSUM | HDR_F_DATA_VALID));
        }
        if (id < rxq.size) {
            virtq_push_avail(&rxq, (uint16_t)id);
            reposted = true;
        }
    }
    /* One kick per batch: a device that found the ring empty waits for
     * it, and we cannot tell whether it did (no EVENT_IDX). */
    if (reposted) {
        virtq_kick(&rxq);
    }
    vnet_tx_reclaim();
    vnet_flush();
}

