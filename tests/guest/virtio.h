/* virtio 1.x over PCI, the modern transport, and split virtqueues: what
 * the net and blk drivers share. Guest-only. */
#ifndef TESTGUEST_VIRTIO_H
#define TESTGUEST_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#include "pci.h"

#define VIRTIO_VENDOR       0x1af4
#define VIRTIO_DEV_NET      0x1041
#define VIRTIO_DEV_BLK      0x1042

#define VIRTIO_F_VERSION_1  32

#define VIRTQ_DESC_F_NEXT   1
#define VIRTQ_DESC_F_WRITE  2
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

#define VIRTQ_MAX           128     /* our queue size at most */

struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct virtq_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[VIRTQ_MAX];
    uint16_t used_event;
};

struct virtq_used_elem {
    uint32_t id;
    uint32_t len;
};

struct virtq_used {
    uint16_t flags;
    volatile uint16_t idx;
    struct virtq_used_elem ring[VIRTQ_MAX];
    uint16_t avail_event;
};

/* One split virtqueue; the rings live in the guest image's bss. */
struct virtq {
    struct virtq_desc desc[VIRTQ_MAX] __attribute__((aligned(4096)));
    struct virtq_avail avail __attribute__((aligned(4096)));
    struct virtq_used used __attribute__((aligned(4096)));
    uint16_t size;            /* as negotiated, a power of two <= VIRTQ_MAX */
    uint16_t last_used;       /* next used entry to look at */
    uint16_t avail_idx;       /* our copy of avail.idx */
    uint64_t notify;          /* where to kick it */
    uint16_t index;
};

struct virtio_dev {
    struct pci_dev pci;
    uint64_t common, isr, device_cfg, notify_base;
    uint32_t notify_mult;
    uint64_t features;        /* negotiated */
};

/* Finds the device, maps its structures, resets it, acknowledges it and
 * negotiates: accepts VERSION_1 and the bits of @wanted the device offers.
 * False (with a console message) if anything is missing or refused. */
bool virtio_dev_init(struct virtio_dev *vd, uint16_t pci_device, uint64_t wanted, const char *name);

/* Sets up queue @index with at most @max entries, its interrupt on MSI-X
 * entry @msix (0xffff: none) and enables it. */
bool virtio_queue_setup(struct virtio_dev *vd, struct virtq *q, uint16_t index, uint16_t max, uint16_t msix);

/* MSI-X entry @entry delivers @vector to the boot CPU (@apic_id). */
bool virtio_msix(struct virtio_dev *vd, unsigned entry, uint8_t vector, uint32_t apic_id);

/* FAILED: the driver gave up on the device (it stays unused). */
void virtio_dev_fail(struct virtio_dev *vd);

/* DRIVER_OK: the device may start using the queues. */
void virtio_dev_ready(struct virtio_dev *vd);

/* Device status (NEEDS_RESET is 0x40). */
uint8_t virtio_dev_status(const struct virtio_dev *vd);

/* Publishes descriptor chain @head (already filled in) to the device;
 * becomes visible at the next virtq_kick. */
static inline void virtq_push_avail(struct virtq *q, uint16_t head)
{
    q->avail.ring[q->avail_idx & (q->size - 1)] = head;
    q->avail_idx++;
}

/* Makes pushed chains visible and notifies the device. */
void virtq_kick(struct virtq *q);

/* The next used element, or NULL. */
static inline const struct virtq_used_elem *virtq_next_used(struct virtq *q)
{
    if (q->last_used == q->used.idx) {
        return 0;
    }
    __asm__ volatile("" ::: "memory");      /* x86 keeps loads in order; the compiler must too */
    return &q->used.ring[q->last_used++ & (q->size - 1)];
}

#endif
