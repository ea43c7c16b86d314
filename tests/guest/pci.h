/* PCI bus 0 through configuration mechanism #1 (ports 0xCF8/0xCFC):
 * finding devices, their capabilities, memory BARs (assigned by the guest
 * when nobody did), bus mastering and MSI-X. Guest-only. */
#ifndef TESTGUEST_PCI_H
#define TESTGUEST_PCI_H

#include <stdbool.h>
#include <stdint.h>

#define PCI_CAP_VENDOR  0x09
#define PCI_CAP_MSIX    0x11

struct pci_dev {
    uint8_t slot;             /* bus 0, function 0 */
    uint16_t vendor, device;
    uint64_t bar[6];          /* memory BAR addresses (0: none or I/O) */
    uint64_t bar_size[6];
};

uint32_t pci_read32(const struct pci_dev *d, uint8_t off);
uint16_t pci_read16(const struct pci_dev *d, uint8_t off);
uint8_t pci_read8(const struct pci_dev *d, uint8_t off);
void pci_write32(const struct pci_dev *d, uint8_t off, uint32_t v);
void pci_write16(const struct pci_dev *d, uint8_t off, uint16_t v);

/* The first device on bus 0 with @vendor:@device, BARs sized and, where
 * they read 0 or lie above 4 GiB (which the guest does not map), assigned
 * from a window in the PCI hole; memory decoding and bus mastering on.
 * False if there is none. */
bool pci_find(uint16_t vendor, uint16_t device, struct pci_dev *out);

/* Offset of the capability with @id after @after (0: the first); 0 if none. */
uint8_t pci_cap_next(const struct pci_dev *d, uint8_t id, uint8_t after);

/* Programs MSI-X entry @entry to deliver @vector to the LAPIC @apic_id
 * (fixed, edge) and enables MSI-X with INTx off. False without MSI-X or a
 * table in a usable BAR. */
bool pci_msix_set(const struct pci_dev *d, unsigned entry, uint8_t vector, uint32_t apic_id);

#endif
