#include "config.h"

#include <gio/gio.h>

#include "pci/pci.h"

#include <string.h>

#include <qb/qblog.h>

#define PCI_CONFIG_ENABLE 0x80000000u
#define PCI_BAR_MEM_MASK  0xfffffff0u

struct PciBus {
    Kvm *kvm;
    MsiRoutes *routes;
    GRWLock lock;               /* writers: config accesses; readers: BAR decode */
    uint32_t config_address;    /* 0xCF8 */
    PciDevice *slots[PCI_MAX_SLOTS];
    uint64_t next_bar;          /* assignment cursor */
};

uint16_t pci_config_get16(const PciDevice *dev, unsigned offset)
{
    return (uint16_t)(dev->config[offset] | dev->config[offset + 1] << 8);
}

uint32_t pci_config_get32(const PciDevice *dev, unsigned offset)
{
    return (uint32_t)pci_config_get16(dev, offset) | (uint32_t)pci_config_get16(dev, offset + 2) << 16;
}

void pci_config_set16(PciDevice *dev, unsigned offset, uint16_t v)
{
    dev->config[offset] = (uint8_t)v;
    dev->config[offset + 1] = (uint8_t)(v >> 8);
}

void pci_config_set32(PciDevice *dev, unsigned offset, uint32_t v)
{
    pci_config_set16(dev, offset, (uint16_t)v);
    pci_config_set16(dev, offset + 2, (uint16_t)(v >> 16));
}

/* ---- BAR decoding --------------------------------------------------------- */

/* Lock held for writing. Recompute where each BAR decodes and tell the
 * device about changes (it moves its ioeventfds). */
static void pci_device_update_bars(PciDevice *dev)
{
    bool mem_on = pci_config_get16(dev, PCI_COMMAND) & PCI_COMMAND_MEMORY;

    for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
        if (!dev->bar_size[i]) {
            continue;
        }
        uint64_t base = pci_config_get32(dev, PCI_BAR0 + 4 * i) & PCI_BAR_MEM_MASK;
        uint64_t addr = PCI_BAR_UNMAPPED;
        /* Only the window reaches us; a BAR elsewhere (0, or all ones while
         * the guest sizes it) decodes nothing. */
        if (mem_on && base >= PCI_MMIO_WINDOW_BASE && base + dev->bar_size[i] <= PCI_MMIO_WINDOW_END) {
            addr = base;
        }
        if (addr != dev->bar_addr[i]) {
            dev->bar_addr[i] = addr;
            if (dev->ops && dev->ops->bar_mapped) {
                dev->ops->bar_mapped(dev, i, addr);
            }
        }
    }
}

static void pci_window_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
    PciBus *bus = opaque;
    uint64_t addr = PCI_MMIO_WINDOW_BASE + offset;
    PciDevice *hit = NULL;
    unsigned hit_bar = 0;
    uint64_t hit_off = 0;

    g_rw_lock_reader_lock(&bus->lock);
    for (unsigned s = 0; s < PCI_MAX_SLOTS && !hit; s++) {
        PciDevice *dev = bus->slots[s];
        for (unsigned i = 0; dev && i < PCI_NUM_BARS; i++) {
            if (dev->bar_addr[i] != PCI_BAR_UNMAPPED && addr >= dev->bar_addr[i] &&
                addr + len <= dev->bar_addr[i] + dev->bar_size[i]) {
                hit = dev;
                hit_bar = i;
                hit_off = addr - dev->bar_addr[i];
                break;
            }
        }
    }
    g_rw_lock_reader_unlock(&bus->lock);
    if (hit && hit->ops && hit->ops->bar_io) {
        hit->ops->bar_io(hit, hit_bar, hit_off, data, len, is_write);
    } else if (!is_write) {
        memset(data, 0xff, len);
    }
}

/* ---- configuration mechanism #1 ---------------------------------------------- */

static PciDevice *pci_bus_addressed(PciBus *bus, unsigned *reg)
{
    uint32_t a = bus->config_address;

    if (!(a & PCI_CONFIG_ENABLE) || ((a >> 16) & 0xff) != 0 || ((a >> 8) & 7) != 0) {
        return NULL;    /* one bus, single-function devices */
    }
    *reg = a & 0xfc;
    return bus->slots[(a >> 11) & 0x1f];
}

static void pci_config_write_bytes(PciDevice *dev, unsigned offset, const uint8_t *data, unsigned len)
{
    for (unsigned i = 0; i < len; i++) {
        unsigned o = offset + i;
        dev->config[o] = (uint8_t)((dev->config[o] & ~dev->wmask[o]) | (data[i] & dev->wmask[o]));
    }
    /* BAR writes: keep the size alignment (sizing reads back ~(size-1)). */
    for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
        if (dev->bar_size[i]) {
            unsigned o = PCI_BAR0 + 4 * i;
            uint32_t v = pci_config_get32(dev, o) & ~(uint32_t)(dev->bar_size[i] - 1);
            pci_config_set32(dev, o, v & PCI_BAR_MEM_MASK);
        }
    }
    if (offset < PCI_BAR0 + 4 * PCI_NUM_BARS && offset + len > PCI_COMMAND) {
        pci_device_update_bars(dev);
    }
    if (dev->ops && dev->ops->config_written) {
        dev->ops->config_written(dev, offset, len);
    }
}

static void pci_config_data_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
    PciBus *bus = opaque;
    unsigned reg = 0;

    g_rw_lock_writer_lock(&bus->lock);
    PciDevice *dev = pci_bus_addressed(bus, &reg);
    reg += (unsigned)offset;
    if (offset + len > 4) {
        len = 4 - (unsigned)offset;   /* an access straddling 0xCFF */
    }
    if (!dev) {
        if (!is_write) {
            memset(data, 0xff, len);
        }
    } else if (is_write) {
        pci_config_write_bytes(dev, reg, data, len);
    } else {
        memcpy(data, dev->config + reg, len);
    }
    g_rw_lock_writer_unlock(&bus->lock);
}

/* Only dword accesses reach CONFIG_ADDRESS; byte and word ones at 0xCF8
 * are ISA cycles and do nothing. */
static void pci_config_address_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
    PciBus *bus = opaque;

    g_rw_lock_writer_lock(&bus->lock);
    if (len != 4) {
        if (!is_write) {
            memset(data, 0xff, len);
        }
    } else if (is_write) {
        bus->config_address = (uint32_t)data[0] | (uint32_t)data[1] << 8 |
                              (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
        bus->config_address &= 0x80fffffcu;
    } else {
        for (unsigned i = 0; i < 4; i++) {
            data[i] = (uint8_t)(bus->config_address >> (8 * i));
        }
    }
    g_rw_lock_writer_unlock(&bus->lock);
}

/* ---- devices ------------------------------------------------------------- */

PciDevice *pci_device_new(PciBus *bus, const char *name, uint16_t vendor, uint16_t device,
                          uint32_t class_code, const PciDeviceOps *ops, void *opaque,
                          GError **error)
{
    unsigned slot = 0;

    while (slot < PCI_MAX_SLOTS && bus->slots[slot]) {
        slot++;
    }
    if (slot == PCI_MAX_SLOTS) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "%s: no free PCI slot", name);
        return NULL;
    }
    PciDevice *dev = g_new0(PciDevice, 1);
    dev->bus = bus;
    dev->ops = ops;
    dev->opaque = opaque;
    dev->name = g_strdup(name);
    dev->slot = slot;
    dev->cap_end = 0x40;
    for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
        dev->bar_addr[i] = PCI_BAR_UNMAPPED;
    }
    pci_config_set16(dev, PCI_VENDOR_ID, vendor);
    pci_config_set16(dev, PCI_DEVICE_ID, device);
    dev->config[PCI_CLASS_PROG] = (uint8_t)class_code;
    pci_config_set16(dev, PCI_CLASS_PROG + 1, (uint16_t)(class_code >> 8));
    pci_config_set16(dev, PCI_COMMAND, PCI_COMMAND_MEMORY);
    pci_config_set16(dev, PCI_STATUS, 0);
    /* Writable: command (memory, bus master, INTx disable), cache line,
     * latency timer, interrupt line. */
    dev->wmask[PCI_COMMAND] = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    dev->wmask[PCI_COMMAND + 1] = PCI_COMMAND_INTX_DISABLE >> 8;
    dev->wmask[0x0c] = 0xff;
    dev->wmask[0x0d] = 0xff;
    dev->wmask[PCI_INTERRUPT_LINE] = 0xff;
    bus->slots[slot] = dev;
    qb_log(LOG_DEBUG, "PCI 00:%02x.0: %s [%04x:%04x] class %06x", slot, name, vendor, device, class_code);
    return dev;
}

void pci_device_set_subsystem(PciDevice *dev, uint16_t vendor, uint16_t id, uint8_t revision)
{
    pci_config_set16(dev, PCI_SUBSYSTEM_VENDOR_ID, vendor);
    pci_config_set16(dev, PCI_SUBSYSTEM_ID, id);
    dev->config[PCI_REVISION_ID] = revision;
}

bool pci_device_add_bar(PciDevice *dev, unsigned bar, uint64_t size, GError **error)
{
    PciBus *bus = dev->bus;

    g_return_val_if_fail(bar < PCI_NUM_BARS && size >= 4096 && (size & (size - 1)) == 0, false);
    uint64_t base = (bus->next_bar + size - 1) & ~(size - 1);
    if (base + size > PCI_MMIO_WINDOW_END) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "%s: PCI MMIO window full", dev->name);
        return false;
    }
    bus->next_bar = base + size;
    dev->bar_size[bar] = size;
    dev->bar_reset[bar] = (uint32_t)base;
    for (unsigned i = 0; i < 4; i++) {
        dev->wmask[PCI_BAR0 + 4 * bar + i] = 0xff;
    }
    pci_config_set32(dev, PCI_BAR0 + 4 * bar, (uint32_t)base);
    g_rw_lock_writer_lock(&bus->lock);
    pci_device_update_bars(dev);
    g_rw_lock_writer_unlock(&bus->lock);
    return true;
}

uint8_t pci_device_add_cap(PciDevice *dev, uint8_t id, unsigned len)
{
    unsigned off = (dev->cap_end + 3u) & ~3u;

    if (off + len > 256 || len < 2) {
        return 0;
    }
    dev->config[off] = id;
    dev->config[off + 1] = dev->config[PCI_CAPABILITY_LIST];
    dev->config[PCI_CAPABILITY_LIST] = (uint8_t)off;
    pci_config_set16(dev, PCI_STATUS, pci_config_get16(dev, PCI_STATUS) | PCI_STATUS_CAP_LIST);
    dev->cap_end = (uint8_t)MIN(off + len, 255u);
    return (uint8_t)off;
}

static void pci_device_free(PciDevice *dev)
{
    if (dev) {
        g_free(dev->name);
        g_free(dev);
    }
}

/* ---- the bus -------------------------------------------------------------- */

PciBus *pci_bus_new(IoBus *iobus, Kvm *kvm, GError **error)
{
    PciBus *bus = g_new0(PciBus, 1);

    g_rw_lock_init(&bus->lock);
    bus->kvm = kvm;
    bus->routes = msi_routes_new(kvm);
    bus->next_bar = PCI_MMIO_ASSIGN_BASE;
    if (!iobus_register(iobus, IOBUS_PIO, PCI_CONFIG_ADDRESS_PORT, 1, pci_config_address_io, bus,
                        "pci-config-address", error) ||
        !iobus_register(iobus, IOBUS_PIO, PCI_CONFIG_DATA_PORT, 4, pci_config_data_io, bus,
                        "pci-config-data", error) ||
        !iobus_register(iobus, IOBUS_MMIO, PCI_MMIO_WINDOW_BASE,
                        PCI_MMIO_WINDOW_END - PCI_MMIO_WINDOW_BASE, pci_window_io, bus,
                        "pci-mmio", error)) {
        pci_bus_free(bus);
        return NULL;
    }
    /* The host bridge (i440FX's ids, class "host bridge") is what guests
     * probe for before trusting mechanism #1. */
    PciDevice *host = pci_device_new(bus, "host-bridge", 0x8086, 0x1237, 0x060000, NULL, NULL, error);
    if (!host) {
        pci_bus_free(bus);
        return NULL;
    }
    pci_config_set16(host, PCI_COMMAND, 0);
    return bus;
}

void pci_bus_free(PciBus *bus)
{
    if (!bus) {
        return;
    }
    for (unsigned i = 0; i < PCI_MAX_SLOTS; i++) {
        pci_device_free(bus->slots[i]);
    }
    msi_routes_free(bus->routes);
    g_rw_lock_clear(&bus->lock);
    g_free(bus);
}

Kvm *pci_bus_kvm(PciBus *bus)
{
    return bus->kvm;
}

MsiRoutes *pci_bus_msi_routes(PciBus *bus)
{
    return bus->routes;
}

PciDevice *pci_bus_device(PciBus *bus, unsigned slot)
{
    return slot < PCI_MAX_SLOTS ? bus->slots[slot] : NULL;
}

void pci_bus_reset(PciBus *bus)
{
    g_rw_lock_writer_lock(&bus->lock);
    bus->config_address = 0;
    for (unsigned s = 1; s < PCI_MAX_SLOTS; s++) {
        PciDevice *dev = bus->slots[s];
        if (!dev) {
            continue;
        }
        pci_config_set16(dev, PCI_COMMAND, PCI_COMMAND_MEMORY);
        dev->config[0x0c] = dev->config[0x0d] = dev->config[PCI_INTERRUPT_LINE] = 0;
        for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
            if (dev->bar_size[i]) {
                pci_config_set32(dev, PCI_BAR0 + 4 * i, dev->bar_reset[i]);
            }
        }
        /* Capability registers the guest can write (MSI-X enable and
         * function mask) are all zero after reset. */
        for (unsigned o = 0x40; o < sizeof(dev->config); o++) {
            dev->config[o] &= (uint8_t)~dev->wmask[o];
        }
        pci_device_update_bars(dev);
        if (dev->ops && dev->ops->config_written) {
            dev->ops->config_written(dev, 0, sizeof(dev->config));
        }
    }
    g_rw_lock_writer_unlock(&bus->lock);
}

/* ---- migration -------------------------------------------------------------- */

static bool pci_device_state_save(void *opaque, StateWriter *out, GError **error)
{
    PciDevice *dev = opaque;

    state_put_blob(out, dev->config, sizeof(dev->config));
    return true;
}

/* Only the bits the guest can write are taken from the stream; the rest
 * (ids, capabilities) is this VMM's own and must not be forged. */
static bool pci_device_state_load(void *opaque, StateReader *in, uint32_t version, GError **error)
{
    PciDevice *dev = opaque;
    uint8_t config[256];

    state_get_blob(in, config, sizeof(config));
    if (!state_reader_finish(in, "pci", error)) {
        return false;
    }
    g_rw_lock_writer_lock(&dev->bus->lock);
    for (unsigned o = 0; o < sizeof(config); o++) {
        dev->config[o] = (uint8_t)((dev->config[o] & ~dev->wmask[o]) | (config[o] & dev->wmask[o]));
    }
    for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
        if (dev->bar_size[i]) {
            unsigned o = PCI_BAR0 + 4 * i;
            pci_config_set32(dev, o, pci_config_get32(dev, o) & ~(uint32_t)(dev->bar_size[i] - 1) &
                                     PCI_BAR_MEM_MASK);
        }
    }
    pci_device_update_bars(dev);
    if (dev->ops && dev->ops->config_written) {
        dev->ops->config_written(dev, 0, sizeof(config));
    }
    g_rw_lock_writer_unlock(&dev->bus->lock);
    return true;
}

const VmStateOps pci_device_state_ops = {
    .id = "pci-device",
    .version = 1,
    .min_version = 1,
    .save = pci_device_state_save,
    .load = pci_device_state_load,
};
