#include "config.h"

#include "virtio-driver.h"

#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "pci/pci.h"

uint32_t td_cfg_read(IoBus *bus, unsigned slot, unsigned reg, unsigned len)
{
    uint32_t addr = 0x80000000u | slot << 11 | (reg & 0xfc);
    uint8_t a[4] = { (uint8_t)addr, (uint8_t)(addr >> 8), (uint8_t)(addr >> 16), (uint8_t)(addr >> 24) };
    uint8_t d[4] = { 0 };

    iobus_dispatch(bus, IOBUS_PIO, 0xcf8, a, 4, true);
    iobus_dispatch(bus, IOBUS_PIO, 0xcfc + (reg & 3), d, len, false);
    return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}

void td_cfg_write(IoBus *bus, unsigned slot, unsigned reg, uint32_t v, unsigned len)
{
    uint32_t addr = 0x80000000u | slot << 11 | (reg & 0xfc);
    uint8_t a[4] = { (uint8_t)addr, (uint8_t)(addr >> 8), (uint8_t)(addr >> 16), (uint8_t)(addr >> 24) };
    uint8_t d[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

    iobus_dispatch(bus, IOBUS_PIO, 0xcf8, a, 4, true);
    iobus_dispatch(bus, IOBUS_PIO, 0xcfc + (reg & 3), d, len, true);
}

uint64_t td_mmio_read(IoBus *bus, uint64_t addr, unsigned len)
{
    uint8_t d[8] = { 0 };
    uint64_t v = 0;

    iobus_dispatch(bus, IOBUS_MMIO, addr, d, len, false);
    for (int i = (int)len - 1; i >= 0; i--) {
        v = v << 8 | d[i];
    }
    return v;
}

void td_mmio_write(IoBus *bus, uint64_t addr, uint64_t v, unsigned len)
{
    uint8_t d[8];

    for (unsigned i = 0; i < 8; i++) {
        d[i] = (uint8_t)(v >> (8 * i));
    }
    iobus_dispatch(bus, IOBUS_MMIO, addr, d, len, true);
}

void td_probe(TestDriver *td, IoBus *bus, GuestMemory *mem, VirtioDev *vd)
{
    memset(td, 0, sizeof(*td));
    td->iobus = bus;
    td->mem = mem;
    td->vd = vd;
    td->slot = vd->pci->slot;
    g_assert_cmphex(td_cfg_read(bus, td->slot, 0, 2), ==, 0x1af4);
    td->bar = td_cfg_read(bus, td->slot, PCI_BAR0, 4) & ~0xfu;
    g_assert_cmphex(td->bar, >=, PCI_MMIO_WINDOW_BASE);
    g_assert_true(td_cfg_read(bus, td->slot, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
    unsigned found = 0, guard = 0;
    for (unsigned c = td_cfg_read(bus, td->slot, PCI_CAPABILITY_LIST, 1); c; 
         c = td_cfg_read(bus, td->slot, c + 1, 1)) {
        g_assert_cmpuint(++guard, <, 48);
        if (td_cfg_read(bus, td->slot, c, 1) != PCI_CAP_ID_VNDR) {
            continue;
        }
        unsigned type = td_cfg_read(bus, td->slot, c + 3, 1);
        g_assert_cmpuint(td_cfg_read(bus, td->slot, c + 4, 1), ==, 0);    /* BAR0 */
        uint64_t off = td_cfg_read(bus, td->slot, c + 8, 4);
        switch (type) {
        case 1: td->common = off; break;
        case 2: td->notify = off; td->notify_mult = td_cfg_read(bus, td->slot, c + 16, 4); break;
        case 3: td->isr = off; break;
        case 4: td->device = off; break;
        default: continue;
        }
        found |= 1u << type;
    }
    g_assert_cmphex(found, ==, 0x1e);
}

static uint64_t cc(TestDriver *td, unsigned off)
{
    return td->bar + td->common + off;
}

uint8_t td_status(TestDriver *td)
{
    return (uint8_t)td_mmio_read(td->iobus, cc(td, 20), 1);
}

void td_set_status(TestDriver *td, uint8_t status)
{
    td_mmio_write(td->iobus, cc(td, 20), status, 1);
}

bool td_negotiate(TestDriver *td, uint64_t features)
{
    td_set_status(td, 0);
    g_assert_cmpuint(td_status(td), ==, 0);
    memset(td->avail_idx, 0, sizeof(td->avail_idx));
    memset(td->used_seen, 0, sizeof(td->used_seen));
    td_set_status(td, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    td_mmio_write(td->iobus, cc(td, 8), 0, 4);
    td_mmio_write(td->iobus, cc(td, 12), (uint32_t)features, 4);
    td_mmio_write(td->iobus, cc(td, 8), 1, 4);
    td_mmio_write(td->iobus, cc(td, 12), features >> 32, 4);
    td_set_status(td, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    return td_status(td) & VIRTIO_STATUS_FEATURES_OK;
}

void td_setup_queue(TestDriver *td, unsigned q, uint16_t size)
{
    static const uint8_t zero[0x10000];

    g_assert_true(guest_memory_write(td->mem, TD_RING_BASE(q), zero, sizeof(zero)));
    td_mmio_write(td->iobus, cc(td, 22), q, 2);
    td_mmio_write(td->iobus, cc(td, 24), size, 2);
    td_mmio_write(td->iobus, cc(td, 26), q + 1, 2);
    td_mmio_write(td->iobus, cc(td, 32), TD_DESC(q), 8);
    td_mmio_write(td->iobus, cc(td, 40), TD_AVAIL(q), 8);
    td_mmio_write(td->iobus, cc(td, 48), TD_USED(q), 8);
    td_mmio_write(td->iobus, cc(td, 28), 1, 2);
    td->qsize[q] = size;
}

void td_driver_ok(TestDriver *td)
{
    unsigned cap = 0;

    for (unsigned c = td_cfg_read(td->iobus, td->slot, PCI_CAPABILITY_LIST, 1); c;
         c = td_cfg_read(td->iobus, td->slot, c + 1, 1)) {
        if (td_cfg_read(td->iobus, td->slot, c, 1) == PCI_CAP_ID_MSIX) {
            cap = c;
        }
    }
    g_assert_cmpuint(cap, !=, 0);
    uint32_t table = td_cfg_read(td->iobus, td->slot, cap + 4, 4);
    unsigned nvec = (td_cfg_read(td->iobus, td->slot, cap + 2, 2) & 0x7ff) + 1;
    for (unsigned v = 0; v < nvec; v++) {
        uint64_t e = td->bar + (table & ~7u) + 16 * v;
        td_mmio_write(td->iobus, e, 0xfee00000u, 4);
        td_mmio_write(td->iobus, e + 8, 0x40 + v, 4);
        td_mmio_write(td->iobus, e + 12, 0, 4);     /* unmask */
    }
    td_cfg_write(td->iobus, td->slot, cap + 2, 0x8000 | (nvec - 1), 2);
    td_mmio_write(td->iobus, cc(td, 16), 0, 2);     /* config changes: vector 0 */
    td_set_status(td, (uint8_t)(td_status(td) | VIRTIO_STATUS_DRIVER_OK));
}

void td_desc(TestDriver *td, unsigned q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
             uint16_t next)
{
    uint8_t d[16];

    for (unsigned k = 0; k < 8; k++) {
        d[k] = (uint8_t)(addr >> (8 * k));
    }
    for (unsigned k = 0; k < 4; k++) {
        d[8 + k] = (uint8_t)(len >> (8 * k));
    }
    d[12] = (uint8_t)flags;
    d[13] = (uint8_t)(flags >> 8);
    d[14] = (uint8_t)next;
    d[15] = (uint8_t)(next >> 8);
    g_assert_true(guest_memory_write(td->mem, TD_DESC(q) + 16ULL * i, d, sizeof(d)));
}

void td_submit(TestDriver *td, unsigned q, uint16_t head)
{
    td_publish(td, q, head);
    td_mmio_write(td->iobus, td->bar + td->notify + td->notify_mult * q, q, 2);
}

void td_publish(TestDriver *td, unsigned q, uint16_t head)
{
    uint16_t slot = td->avail_idx[q] % td->qsize[q];
    uint8_t h[2] = { (uint8_t)head, (uint8_t)(head >> 8) };

    g_assert_true(guest_memory_write(td->mem, TD_AVAIL(q) + 4 + 2ULL * slot, h, 2));
    td->avail_idx[q]++;
    h[0] = (uint8_t)td->avail_idx[q];
    h[1] = (uint8_t)(td->avail_idx[q] >> 8);
    g_assert_true(guest_memory_write(td->mem, TD_AVAIL(q) + 2, h, 2));
}

bool td_wait_irq(TestDriver *td, unsigned vector, int ms)
{
    struct pollfd p = { .fd = td->vd->msix.fds[vector], .events = POLLIN };
    uint64_t v;

    if (poll(&p, 1, ms) != 1) {
        return false;
    }
    g_assert_cmpint(read(p.fd, &v, sizeof(v)), ==, sizeof(v));
    return true;
}

bool td_used(TestDriver *td, unsigned q, uint32_t *id, uint32_t *len)
{
    uint8_t b[8];

    g_assert_true(guest_memory_read(td->mem, TD_USED(q) + 2, b, 2));
    uint16_t idx = (uint16_t)(b[0] | b[1] << 8);
    if (idx == td->used_seen[q]) {
        return false;
    }
    g_assert_true(guest_memory_read(td->mem, TD_USED(q) + 4 + 8ULL * (td->used_seen[q] % td->qsize[q]), b, 8));
    *id = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    *len = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
    td->used_seen[q]++;
    return true;
}
