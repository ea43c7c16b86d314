/* The PCI host bridge and device model, driven through the I/O bus as a
 * vCPU would (config mechanism #1, MMIO window), without KVM. */
#include "config.h"

#include <glib.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "devices/reset-control.h"
#include "iobus.h"
#include "pci/msix.h"
#include "pci/pci.h"
#include "virtio-driver.h"

typedef struct Recorder {
    unsigned reads, writes;
    uint64_t last_offset;
    uint64_t mapped_at;
    unsigned remaps;
    Msix *msix;
} Recorder;

static void rec_bar_io(PciDevice *dev, unsigned bar, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
    Recorder *r = dev->opaque;

    if (r->msix && msix_bar_io(r->msix, offset, data, len, is_write)) {
        return;
    }
    r->last_offset = offset;
    if (is_write) {
        r->writes++;
    } else {
        r->reads++;
        memset(data, 0x5a, len);
    }
}

static void rec_bar_mapped(PciDevice *dev, unsigned bar, uint64_t addr)
{
    Recorder *r = dev->opaque;

    r->mapped_at = addr;
    r->remaps++;
}

static void rec_config_written(PciDevice *dev, unsigned offset, unsigned len)
{
    Recorder *r = dev->opaque;

    if (r->msix) {
        msix_config_written(r->msix);
    }
}

static const PciDeviceOps rec_ops = {
    .bar_io = rec_bar_io,
    .bar_mapped = rec_bar_mapped,
    .config_written = rec_config_written,
};

static void count_call(void *opaque)
{
    (*(unsigned *)opaque)++;
}

static void test_host_bridge(void)
{
    IoBus *io = iobus_new();
    unsigned resets = 0;
    ResetControl *rc = reset_control_new(io, count_call, &resets, NULL);
    PciBus *bus = pci_bus_new(io, NULL, NULL);

    g_assert_nonnull(rc);
    g_assert_nonnull(bus);
    /* 00:00.0 is a host bridge; empty slots read all ones. */
    g_assert_cmphex(td_cfg_read(io, 0, PCI_VENDOR_ID, 4), ==, 0x12378086);
    g_assert_cmphex(td_cfg_read(io, 0, 0x08, 4) >> 8, ==, 0x060000);
    g_assert_cmphex(td_cfg_read(io, 5, PCI_VENDOR_ID, 4), ==, 0xffffffff);
    /* CONFIG_ADDRESS reads back what was written (reserved bits zero). */
    uint8_t a[4] = { 0x04, 0x08, 0x00, 0x80 };
    iobus_dispatch(io, IOBUS_PIO, 0xcf8, a, 4, true);
    memset(a, 0, sizeof(a));
    iobus_dispatch(io, IOBUS_PIO, 0xcf8, a, 4, false);
    g_assert_cmphex(a[3], ==, 0x80);
    g_assert_cmphex(a[1], ==, 0x08);
    /* A byte write at 0xCF9 is the reset control register, not PCI. */
    uint8_t rst = 0x06;
    g_assert_true(iobus_dispatch(io, IOBUS_PIO, 0xcf9, &rst, 1, true));
    g_assert_cmpuint(resets, ==, 1);
    /* Vendor id is read-only. */
    td_cfg_write(io, 0, PCI_VENDOR_ID, 0xdead, 2);
    g_assert_cmphex(td_cfg_read(io, 0, PCI_VENDOR_ID, 2), ==, 0x8086);
    /* Bus 1 and function 1 do not exist. */
    a[0] = 0; a[1] = 0x01; a[2] = 0x01; a[3] = 0x80;
    iobus_dispatch(io, IOBUS_PIO, 0xcf8, a, 4, true);
    uint8_t d[4];
    iobus_dispatch(io, IOBUS_PIO, 0xcfc, d, 4, false);
    g_assert_cmphex(d[0] & d[1] & d[2] & d[3], ==, 0xff);
    pci_bus_free(bus);
    reset_control_free(rc);
    iobus_free(io);
}

static void test_bar(void)
{
    IoBus *io = iobus_new();
    PciBus *bus = pci_bus_new(io, NULL, NULL);
    Recorder rec = { 0 };
    PciDevice *dev = pci_device_new(bus, "rec", 0x1234, 0x5678, 0xff0000, &rec_ops, &rec, NULL);

    g_assert_nonnull(dev);
    g_assert_true(pci_device_add_bar(dev, 0, 0x4000, NULL));
    unsigned slot = dev->slot;
    g_assert_cmpuint(slot, ==, 1);
    uint32_t bar = td_cfg_read(io, slot, PCI_BAR0, 4);
    g_assert_cmphex(bar, ==, PCI_MMIO_ASSIGN_BASE);
    g_assert_cmphex(rec.mapped_at, ==, PCI_MMIO_ASSIGN_BASE);
    /* Assigned and enabled as firmware would: MMIO reaches the device. */
    g_assert_cmphex(td_mmio_read(io, bar + 0x10, 4), ==, 0x5a5a5a5a);
    g_assert_cmphex(rec.last_offset, ==, 0x10);
    /* Sizing: all ones reads back the size mask; nothing decodes meanwhile. */
    td_cfg_write(io, slot, PCI_BAR0, 0xffffffff, 4);
    g_assert_cmphex(td_cfg_read(io, slot, PCI_BAR0, 4), ==, 0xffffc000);
    g_assert_cmphex(rec.mapped_at, ==, PCI_BAR_UNMAPPED);
    g_assert_cmphex(td_mmio_read(io, bar + 0x10, 4), ==, 0xffffffff);
    /* Move it: the new address decodes, the old one does not. */
    td_cfg_write(io, slot, PCI_BAR0, 0xd0001000, 4);    /* low bits dropped */
    g_assert_cmphex(td_cfg_read(io, slot, PCI_BAR0, 4), ==, 0xd0000000);
    unsigned reads = rec.reads;
    g_assert_cmphex(td_mmio_read(io, 0xd0000ffc, 4), ==, 0x5a5a5a5a);
    g_assert_cmpuint(rec.reads, ==, reads + 1);
    g_assert_cmphex(td_mmio_read(io, bar, 4), ==, 0xffffffff);
    /* Past the end of the BAR: nothing. */
    g_assert_cmphex(td_mmio_read(io, 0xd0004000, 4), ==, 0xffffffff);
    g_assert_cmpuint(rec.reads, ==, reads + 1);
    /* Memory decoding off: unmapped. */
    td_cfg_write(io, slot, PCI_COMMAND, 0, 2);
    g_assert_cmphex(rec.mapped_at, ==, PCI_BAR_UNMAPPED);
    g_assert_cmphex(td_mmio_read(io, 0xd0000000, 4), ==, 0xffffffff);
    td_cfg_write(io, slot, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
    g_assert_cmphex(rec.mapped_at, ==, 0xd0000000);
    /* A BAR outside the window decodes nothing (the window is all we get). */
    td_cfg_write(io, slot, PCI_BAR0, 0x10000000, 4);
    g_assert_cmphex(rec.mapped_at, ==, PCI_BAR_UNMAPPED);
    /* System reset puts the VMM's assignment back. */
    pci_bus_reset(bus);
    g_assert_cmphex(td_cfg_read(io, slot, PCI_BAR0, 4), ==, PCI_MMIO_ASSIGN_BASE);
    g_assert_cmphex(rec.mapped_at, ==, PCI_MMIO_ASSIGN_BASE);
    pci_bus_free(bus);
    iobus_free(io);
}

static bool fired(Msix *m, unsigned v)
{
    struct pollfd p = { .fd = m->fds[v], .events = POLLIN };
    uint64_t n;

    if (poll(&p, 1, 0) != 1) {
        return false;
    }
    g_assert_cmpint(read(p.fd, &n, sizeof(n)), ==, sizeof(n));
    return true;
}

static void test_msix(void)
{
    IoBus *io = iobus_new();
    PciBus *bus = pci_bus_new(io, NULL, NULL);
    Recorder rec = { 0 };
    Msix msix;
    PciDevice *dev = pci_device_new(bus, "rec", 0x1234, 0x5678, 0xff0000, &rec_ops, &rec, NULL);

    g_assert_true(msix_init(&msix, dev, 3, 0, 0x1000, 0x2000, NULL));
    rec.msix = &msix;
    g_assert_true(pci_device_add_bar(dev, 0, 0x4000, NULL));
    unsigned slot = dev->slot, cap = td_cfg_read(io, slot, PCI_CAPABILITY_LIST, 1);
    uint64_t bar = td_cfg_read(io, slot, PCI_BAR0, 4);
    g_assert_cmphex(td_cfg_read(io, slot, cap, 1), ==, PCI_CAP_ID_MSIX);
    g_assert_cmphex(td_cfg_read(io, slot, cap + 2, 2), ==, 2);     /* table size - 1 */
    g_assert_cmphex(td_cfg_read(io, slot, cap + 4, 4), ==, 0x1000);
    /* Entries start masked; while MSI-X is off a notify only sets pending. */
    g_assert_cmphex(td_mmio_read(io, bar + 0x1000 + 12, 4), ==, 1);
    msix_notify(&msix, 1);
    g_assert_false(fired(&msix, 1));
    g_assert_cmphex(td_mmio_read(io, bar + 0x2000, 8), ==, 0x2);
    /* Program and unmask: the pending vector fires then, once. */
    td_mmio_write(io, bar + 0x1000 + 16, 0xfee00000, 4);
    td_mmio_write(io, bar + 0x1000 + 24, 0x41, 4);
    td_cfg_write(io, slot, cap + 2, 0x8000, 2);
    g_assert_false(fired(&msix, 1));
    td_mmio_write(io, bar + 0x1000 + 28, 0, 4);
    g_assert_true(fired(&msix, 1));
    g_assert_cmphex(td_mmio_read(io, bar + 0x2000, 8), ==, 0);
    g_assert_cmphex(td_mmio_read(io, bar + 0x1000 + 24, 4), ==, 0x41);
    msix_notify(&msix, 1);
    g_assert_true(fired(&msix, 1));
    /* Function mask holds everything back. */
    td_cfg_write(io, slot, cap + 2, 0xc000, 2);
    msix_notify(&msix, 1);
    g_assert_false(fired(&msix, 1));
    td_cfg_write(io, slot, cap + 2, 0x8000, 2);
    g_assert_true(fired(&msix, 1));
    /* Out-of-range vectors and odd-sized table accesses do nothing. */
    /* System reset turns MSI-X off again: notifies only go pending. */
    pci_bus_reset(bus);
    g_assert_cmphex(td_cfg_read(io, slot, cap + 2, 2), ==, 2);
    msix_notify(&msix, 1);
    g_assert_false(fired(&msix, 1));
    msix_notify(&msix, 7);
    msix_notify(&msix, MSIX_NO_VECTOR);
    td_mmio_write(io, bar + 0x1000 + 12, 0, 2);
    g_assert_cmphex(td_mmio_read(io, bar + 0x1000 + 12, 4), ==, 1);
    msix_clear(&msix);
    pci_bus_free(bus);
    iobus_free(io);
}

static void test_state(void)
{
    IoBus *io = iobus_new();
    PciBus *bus = pci_bus_new(io, NULL, NULL);
    Recorder rec = { 0 };
    PciDevice *dev = pci_device_new(bus, "rec", 0x1234, 0x5678, 0xff0000, &rec_ops, &rec, NULL);
    g_autoptr(GByteArray) buf = g_byte_array_new();
    StateWriter w = { buf };
    StateReader r;

    g_assert_true(pci_device_add_bar(dev, 0, 0x4000, NULL));
    td_cfg_write(io, dev->slot, PCI_BAR0, 0xd0000000, 4);
    g_assert_true(pci_device_state_ops.save(dev, &w, NULL));
    /* A forged stream cannot change read-only bits (ids). */
    buf->data[4 + PCI_VENDOR_ID] = 0xee;
    pci_bus_reset(bus);
    g_assert_cmphex(rec.mapped_at, ==, PCI_MMIO_ASSIGN_BASE);
    state_reader_init(&r, buf->data, buf->len);
    g_assert_true(pci_device_state_ops.load(dev, &r, 1, NULL));
    g_assert_cmphex(rec.mapped_at, ==, 0xd0000000);
    g_assert_cmphex(td_cfg_read(io, dev->slot, PCI_VENDOR_ID, 2), ==, 0x1234);
    /* Truncated: an error, not a crash. */
    g_autoptr(GError) error = NULL;
    state_reader_init(&r, buf->data, buf->len - 1);
    g_assert_false(pci_device_state_ops.load(dev, &r, 1, &error));
    g_assert_nonnull(error);
    pci_bus_free(bus);
    iobus_free(io);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/pci/host-bridge", test_host_bridge);
    g_test_add_func("/pci/bar", test_bar);
    g_test_add_func("/pci/msix", test_msix);
    g_test_add_func("/pci/state", test_state);
    return g_test_run();
}
