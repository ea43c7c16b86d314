/* PCI: the host bridge with configuration mechanism #1 (ports 0xCF8 and
 * 0xCFC-0xCFF), one bus of up to 32 single-function devices, and 32-bit
 * memory BARs decoded inside one MMIO window below the IOAPIC.
 *
 * There is no firmware, so the VMM assigns BAR addresses and enables memory
 * decoding when a device is added, as a BIOS would; the guest may move them
 * within the window. Port 0xCF9 (reset control) stays its own device: the
 * I/O bus dispatches by start address, so a dword access at 0xCF8 reaches
 * the bridge and a byte access at 0xCF9 reaches reset control.
 *
 * Threads: config space and BAR accesses come from vCPU threads; the bus
 * lock serialises config writes against BAR decoding. */
#ifndef COLO_VMM_PCI_PCI_H
#define COLO_VMM_PCI_PCI_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "iobus.h"
#include "kvm.h"
#include "migration/vmstate.h"
#include "pci/kvm-irq.h"

#define PCI_CONFIG_ADDRESS_PORT 0xcf8
#define PCI_CONFIG_DATA_PORT    0xcfc
#define PCI_MMIO_WINDOW_BASE    0xc0000000ULL
#define PCI_MMIO_WINDOW_END     0xfec00000ULL   /* IOAPIC */
#define PCI_MMIO_ASSIGN_BASE    0xe0000000ULL   /* where the VMM places BARs */
#define PCI_MAX_SLOTS 32
#define PCI_NUM_BARS 6
#define PCI_BAR_UNMAPPED UINT64_MAX

/* Config space offsets and bits used here. */
#define PCI_VENDOR_ID       0x00
#define PCI_DEVICE_ID       0x02
#define PCI_COMMAND         0x04
#define PCI_STATUS          0x06
#define PCI_REVISION_ID     0x08
#define PCI_CLASS_PROG      0x09
#define PCI_HEADER_TYPE     0x0e
#define PCI_BAR0            0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID    0x2e
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE  0x3c
#define PCI_INTERRUPT_PIN   0x3d
#define PCI_COMMAND_MEMORY  0x0002
#define PCI_COMMAND_MASTER  0x0004
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS_CAP_LIST 0x0010
#define PCI_CAP_ID_VNDR     0x09
#define PCI_CAP_ID_MSIX     0x11

typedef struct PciBus PciBus;
typedef struct PciDevice PciDevice;

typedef struct PciDeviceOps {
    /* A guest access to BAR @bar at @offset (vCPU thread, no bus lock). */
    void (*bar_io)(PciDevice *dev, unsigned bar, uint64_t offset, uint8_t *data, unsigned len,
                   bool is_write);
    /* @bar now decodes at @addr, or PCI_BAR_UNMAPPED (bus lock held). */
    void (*bar_mapped)(PciDevice *dev, unsigned bar, uint64_t addr);
    /* After the guest wrote config bytes [@offset, @offset+@len) (bus lock held). */
    void (*config_written)(PciDevice *dev, unsigned offset, unsigned len);
} PciDeviceOps;

struct PciDevice {
    PciBus *bus;
    const PciDeviceOps *ops;
    void *opaque;
    char *name;
    unsigned slot;
    uint8_t config[256];
    uint8_t wmask[256];             /* guest-writable bits */
    uint64_t bar_size[PCI_NUM_BARS];    /* 0: no BAR */
    uint64_t bar_addr[PCI_NUM_BARS];    /* where it decodes now */
    uint32_t bar_reset[PCI_NUM_BARS];   /* the VMM's assignment */
    uint8_t cap_end;                /* next free config byte for capabilities */
};

/* Registers the config ports and the MMIO window on @iobus and adds the
 * host bridge at slot 0. @kvm may be NULL (unit tests). */
PciBus *pci_bus_new(IoBus *iobus, Kvm *kvm, GError **error);
void pci_bus_free(PciBus *bus);
Kvm *pci_bus_kvm(PciBus *bus);
MsiRoutes *pci_bus_msi_routes(PciBus *bus);
/* Back to the VMM's assignment (system reset), every device's config. */
void pci_bus_reset(PciBus *bus);
/* The device in @slot, or NULL. */
PciDevice *pci_bus_device(PciBus *bus, unsigned slot);

/* A device in the next free slot. @class_code is 24 bits (class, subclass,
 * prog-if). Owned by the bus. */
PciDevice *pci_device_new(PciBus *bus, const char *name, uint16_t vendor, uint16_t device,
                          uint32_t class_code, const PciDeviceOps *ops, void *opaque,
                          GError **error);
void pci_device_set_subsystem(PciDevice *dev, uint16_t vendor, uint16_t id, uint8_t revision);
/* A 32-bit memory BAR of @size bytes (a power of two, at least 4 KiB),
 * assigned an address in the window and enabled. Before the guest runs. */
bool pci_device_add_bar(PciDevice *dev, unsigned bar, uint64_t size, GError **error);
/* Append a capability of @len bytes (id and next filled in); returns its
 * config offset, 0 if config space is full. */
uint8_t pci_device_add_cap(PciDevice *dev, uint8_t id, unsigned len);

uint16_t pci_config_get16(const PciDevice *dev, unsigned offset);
uint32_t pci_config_get32(const PciDevice *dev, unsigned offset);
void pci_config_set16(PciDevice *dev, unsigned offset, uint16_t v);
void pci_config_set32(PciDevice *dev, unsigned offset, uint32_t v);

/* Device config save/load (config space and BAR decoding; the device's own
 * state is its own section). Instance = slot. */
extern const VmStateOps pci_device_state_ops;

#endif
