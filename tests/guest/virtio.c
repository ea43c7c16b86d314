/* virtio-pci modern transport: capabilities, status, features, queues. */
#include "console.h"
#include "io.h"
#include "virtio.h"

#define CAP_COMMON  1
#define CAP_NOTIFY  2
#define CAP_ISR     3
#define CAP_DEVICE  4

/* Common configuration structure offsets. */
#define CC_DFSELECT     0x00
#define CC_DF           0x04
#define CC_GFSELECT     0x08
#define CC_GF           0x0c
#define CC_MSIX_CONFIG  0x10
#define CC_STATUS       0x14
#define CC_Q_SELECT     0x16
#define CC_Q_SIZE       0x18
#define CC_Q_MSIX       0x1a
#define CC_Q_ENABLE     0x1c
#define CC_Q_NOTIFY_OFF 0x1e
#define CC_Q_DESC       0x20
#define CC_Q_DRIVER     0x28
#define CC_Q_DEVICE     0x30

#define ST_ACKNOWLEDGE  1
#define ST_DRIVER       2
#define ST_DRIVER_OK    4
#define ST_FEATURES_OK  8
#define ST_FAILED       0x80

#define NO_VECTOR       0xffff

static bool virtio_caps_map(struct virtio_dev *vd)
{
    for (uint8_t cap = pci_cap_next(&vd->pci, PCI_CAP_VENDOR, 0); cap;
         cap = pci_cap_next(&vd->pci, PCI_CAP_VENDOR, cap)) {
        uint8_t type = pci_read8(&vd->pci, (uint8_t)(cap + 3));
        uint8_t bar = pci_read8(&vd->pci, (uint8_t)(cap + 4));
        uint32_t off = pci_read32(&vd->pci, (uint8_t)(cap + 8));
        uint64_t addr;

        if (bar > 5 || !vd->pci.bar[bar] || off >= vd->pci.bar_size[bar]) {
            continue;
        }
        addr = vd->pci.bar[bar] + off;
        switch (type) {
        case CAP_COMMON: if (!vd->common) vd->common = addr; break;
        case CAP_ISR: if (!vd->isr) vd->isr = addr; break;
        case CAP_DEVICE: if (!vd->device_cfg) vd->device_cfg = addr; break;
        case CAP_NOTIFY:
            if (!vd->notify_base) {
                vd->notify_base = addr;
                vd->notify_mult = pci_read32(&vd->pci, (uint8_t)(cap + 16));
            }
            break;
        default: break;
        }
    }
    return vd->common && vd->notify_base;
}

static void virtio_status_set(struct virtio_dev *vd, uint8_t bits)
{
    mmio_write8(vd->common + CC_STATUS, (uint8_t)(mmio_read8(vd->common + CC_STATUS) | bits));
}

void virtio_dev_fail(struct virtio_dev *vd)
{
    virtio_status_set(vd, ST_FAILED);
}

uint8_t virtio_dev_status(const struct virtio_dev *vd)
{
    return mmio_read8(vd->common + CC_STATUS);
}

bool virtio_dev_init(struct virtio_dev *vd, uint16_t pci_device, uint64_t wanted, const char *name)
{
    uint64_t offered;

    *vd = (struct virtio_dev){ 0 };
    if (!pci_find(VIRTIO_VENDOR, pci_device, &vd->pci)) {
        return false;           /* no such device: not an error */
    }
    if (!virtio_caps_map(vd)) {
        kprintf("colo-testguest: %s: no virtio 1.x capabilities, device ignored\n", name);
        return false;
    }
    mmio_write8(vd->common + CC_STATUS, 0);     /* reset; reads back 0 when done */
    for (int i = 0; i < 100000 && mmio_read8(vd->common + CC_STATUS); i++) {
        cpu_relax();
    }
    virtio_status_set(vd, ST_ACKNOWLEDGE | ST_DRIVER);
    mmio_write32(vd->common + CC_DFSELECT, 0);
    offered = mmio_read32(vd->common + CC_DF);
    mmio_write32(vd->common + CC_DFSELECT, 1);
    offered |= (uint64_t)mmio_read32(vd->common + CC_DF) << 32;
    if (!(offered & (1ULL << VIRTIO_F_VERSION_1))) {
        kprintf("colo-testguest: %s: device is not virtio 1.x, ignored\n", name);
        virtio_dev_fail(vd);
        return false;
    }
    vd->features = offered & (wanted | 1ULL << VIRTIO_F_VERSION_1);
    mmio_write32(vd->common + CC_GFSELECT, 0);
    mmio_write32(vd->common + CC_GF, (uint32_t)vd->features);
    mmio_write32(vd->common + CC_GFSELECT, 1);
    mmio_write32(vd->common + CC_GF, (uint32_t)(vd->features >> 32));
    virtio_status_set(vd, ST_FEATURES_OK);
    if (!(virtio_dev_status(vd) & ST_FEATURES_OK)) {
        kprintf("colo-testguest: %s: features 0x%lx refused\n", name, vd->features);
        virtio_dev_fail(vd);
        return false;
    }
    mmio_write16(vd->common + CC_MSIX_CONFIG, NO_VECTOR);
    return true;
}

bool virtio_msix(struct virtio_dev *vd, unsigned entry, uint8_t vector, uint32_t apic_id)
{
    return pci_msix_set(&vd->pci, entry, vector, apic_id);
}

bool virtio_queue_setup(struct virtio_dev *vd, struct virtq *q, uint16_t index, uint16_t max, uint16_t msix)
{
    uint16_t size;

    mmio_write16(vd->common + CC_Q_SELECT, index);
    size = mmio_read16(vd->common + CC_Q_SIZE);
    if (!size) {
        return false;
    }
    if (size > max) {
        size = max;
    }
    while (size & (size - 1)) {
        size &= (uint16_t)(size - 1);   /* a power of two */
    }
    q->size = size;
    q->index = index;
    q->last_used = 0;
    q->avail_idx = 0;
    q->avail.idx = 0;
    q->avail.flags = msix == NO_VECTOR ? VIRTQ_AVAIL_F_NO_INTERRUPT : 0;
    q->used.idx = 0;
    mmio_write16(vd->common + CC_Q_SIZE, size);
    mmio_write16(vd->common + CC_Q_MSIX, msix);
    if (msix != NO_VECTOR && mmio_read16(vd->common + CC_Q_MSIX) != msix) {
        return false;
    }
    mmio_write64(vd->common + CC_Q_DESC, (uint64_t)(uintptr_t)q->desc);
    mmio_write64(vd->common + CC_Q_DRIVER, (uint64_t)(uintptr_t)&q->avail);
    mmio_write64(vd->common + CC_Q_DEVICE, (uint64_t)(uintptr_t)&q->used);
    q->notify = vd->notify_base + (uint64_t)mmio_read16(vd->common + CC_Q_NOTIFY_OFF) * vd->notify_mult;
    mmio_write16(vd->common + CC_Q_ENABLE, 1);
    return true;
}

void virtio_dev_ready(struct virtio_dev *vd)
{
    virtio_status_set(vd, ST_DRIVER_OK);
}

void virtq_kick(struct virtq *q)
{
    __asm__ volatile("" ::: "memory");
    q->avail.idx = q->avail_idx;
    /* The device reads avail.idx after our notify; a locked op orders the
     * store before the MMIO write on every model. */
    __asm__ volatile("lock; addl $0, (%%rsp)" ::: "memory", "cc");
    mmio_write16(q->notify, q->index);
}
