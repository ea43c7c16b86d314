/* libFuzzer target: everything a guest can do to a virtio-blk device, as
 * a sequence of operations: BAR0 reads and writes (common configuration,
 * ISR, device configuration, notify, MSI-X table), PCI config writes
 * through 0xCF8/0xCFC, writes into guest RAM (rings, buffers), and a turn
 * of the device's request processing (what its I/O thread does on a kick).
 * The device may end up broken; the VMM must not crash.
 *
 * Each operation is 12 bytes: kind, length, 2-byte offset, 8-byte value. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <qb/qblog.h>

#include "iobus.h"
#include "memory.h"
#include "pci/pci.h"
#include "virtio/virtio-blk.h"

#define FUZZ_RAM (4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static IoBus *io;
static GuestMemory *mem;
static PciBus *bus;
static VirtioBlk *blk;
static VirtioDev *vd;

static void fuzz_init(void)
{
    GuestMemoryConfig mc = { .size = FUZZ_RAM };
    char path[] = "/tmp/fuzz-virtio-pci-XXXXXX";
    int fd = mkstemp(path);

    qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_FALSE);
    if (fd < 0 || ftruncate(fd, 64 * 1024) < 0) {
        abort();
    }
    close(fd);
    VirtioBlkConfig bc = { .file = path };
    io = iobus_new();
    mem = guest_memory_new(&mc, NULL);
    bus = pci_bus_new(io, NULL, NULL);
    blk = virtio_blk_new(bus, mem, &bc, 0, NULL);
    unlink(path);       /* the open descriptor keeps it */
    if (!blk) {
        abort();
    }
    vd = virtio_blk_dev(blk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!io) {
        fuzz_init();
    }
    /* Every input starts from a reset device and clean RAM. */
    virtio_dev_reset(vd);
    pci_bus_reset(bus);
    memset(guest_memory_ptr(mem, 0, FUZZ_RAM), 0, FUZZ_RAM);

    uint64_t bar = vd->pci->bar_addr[0] != PCI_BAR_UNMAPPED ? vd->pci->bar_addr[0] : PCI_MMIO_ASSIGN_BASE;
    for (size_t pos = 0; pos + 12 <= size; pos += 12) {
        const uint8_t *op = data + pos;
        unsigned len = 1u << (op[1] & 3);
        uint16_t off = (uint16_t)(op[2] | op[3] << 8);
        uint8_t buf[8];
        memcpy(buf, op + 4, 8);
        switch (op[0] % 6) {
        case 0:     /* BAR0 write, through the PCI window */
            iobus_dispatch(io, IOBUS_MMIO, bar + (off & 0x7fff), buf, len, true);
            break;
        case 1:     /* BAR0 read */
            iobus_dispatch(io, IOBUS_MMIO, bar + (off & 0x7fff), buf, len, false);
            break;
        case 2: {   /* PCI config write of slot 1 */
            uint32_t a = 0x80000000u | 1u << 11 | (off & 0xfc);
            uint8_t ab[4] = { (uint8_t)a, (uint8_t)(a >> 8), (uint8_t)(a >> 16), (uint8_t)(a >> 24) };
            iobus_dispatch(io, IOBUS_PIO, 0xcf8, ab, 4, true);
            iobus_dispatch(io, IOBUS_PIO, 0xcfc + (off & 3), buf, len, true);
            if (vd->pci->bar_addr[0] != PCI_BAR_UNMAPPED) {
                bar = vd->pci->bar_addr[0];
            }
            break;
        }
        case 3:     /* guest RAM: 8 bytes at a page-granular spot in the low 64 KiB */
            guest_memory_write(mem, (uint64_t)off, buf, 8);
            break;
        case 4:     /* a longer run of the same value, for descriptor tables */
            for (unsigned i = 0; i < 8; i++) {
                guest_memory_write(mem, (uint64_t)off + 8 * i, buf, 8);
            }
            break;
        case 5:     /* what the I/O thread does on a kick */
            g_mutex_lock(&vd->lock);
            if ((vd->status & VIRTIO_STATUS_DRIVER_OK) && !(vd->status & VIRTIO_STATUS_NEEDS_RESET) &&
                vd->vqs[0].enabled && !vd->vqs[0].broken) {
                vd->ops->queue_notify(vd, 0);
                if (vd->vqs[0].broken) {
                    virtio_dev_set_needs_reset(vd);
                }
            }
            g_mutex_unlock(&vd->lock);
            break;
        }
    }
    return 0;
}
