/* A minimal virtio-pci driver for unit tests: it reaches the device only
 * through the I/O bus (config mechanism #1, MMIO in BAR0), as a guest
 * would, and lays rings and buffers out in guest memory. */
#ifndef COLO_TESTS_VIRTIO_DRIVER_H
#define COLO_TESTS_VIRTIO_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "iobus.h"
#include "memory.h"
#include "virtio/virtio-pci.h"

/* Guest memory layout used by the tests. */
#define TD_RING_BASE(q) (0x300000ULL + 0x10000ULL * (q))   /* clear of a kernel at 1 MiB */
#define TD_DESC(q) TD_RING_BASE(q)
#define TD_AVAIL(q) (TD_RING_BASE(q) + 0x4000)
#define TD_USED(q) (TD_RING_BASE(q) + 0x8000)
#define TD_BUF 0x400000ULL

typedef struct TestDriver {
    IoBus *iobus;
    GuestMemory *mem;
    VirtioDev *vd;
    unsigned slot;
    uint64_t bar;
    uint64_t common, isr, device, notify;   /* BAR offsets from the caps */
    uint32_t notify_mult;
    uint16_t qsize[VIRTIO_MAX_QUEUES];
    uint16_t avail_idx[VIRTIO_MAX_QUEUES];
    uint16_t used_seen[VIRTIO_MAX_QUEUES];
} TestDriver;

uint32_t td_cfg_read(IoBus *bus, unsigned slot, unsigned reg, unsigned len);
void td_cfg_write(IoBus *bus, unsigned slot, unsigned reg, uint32_t v, unsigned len);
uint64_t td_mmio_read(IoBus *bus, uint64_t addr, unsigned len);
void td_mmio_write(IoBus *bus, uint64_t addr, uint64_t v, unsigned len);

/* Find the device's caps and BAR; asserts they are well formed. */
void td_probe(TestDriver *td, IoBus *bus, GuestMemory *mem, VirtioDev *vd);
/* Reset, negotiate @features; returns whether FEATURES_OK stuck. */
bool td_negotiate(TestDriver *td, uint64_t features);
/* Set queue @q up (@size entries, MSI-X vector q+1) and enable it. */
void td_setup_queue(TestDriver *td, unsigned q, uint16_t size);
/* MSI-X on, config vector 0, DRIVER_OK. */
void td_driver_ok(TestDriver *td);
uint8_t td_status(TestDriver *td);
void td_set_status(TestDriver *td, uint8_t status);

/* Write descriptor @i of queue @q. */
void td_desc(TestDriver *td, unsigned q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
             uint16_t next);
/* Publish @head in the available ring and kick. */
void td_submit(TestDriver *td, unsigned q, uint16_t head);
/* Publish without a kick (what a careless driver does). */
void td_publish(TestDriver *td, unsigned q, uint16_t head);
/* Wait (up to @ms) for MSI-X @vector; true if it fired. */
bool td_wait_irq(TestDriver *td, unsigned vector, int ms);
/* Next used element of @q, if any: id and len. */
bool td_used(TestDriver *td, unsigned q, uint32_t *id, uint32_t *len);

#endif
