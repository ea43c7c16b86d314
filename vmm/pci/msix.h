/* MSI-X for a PCI device: the capability, the vector table and pending
 * bit array inside one of the device's BARs, and delivery through one
 * eventfd per vector bound to KVM with irqfd (so an I/O thread injects an
 * interrupt with one write(2), no VMM exit, no lock shared with vCPUs
 * beyond the table's).
 *
 * Without KVM (unit tests) the eventfds are still signalled: reading one
 * tells a test that the vector fired. */
#ifndef COLO_VMM_PCI_MSIX_H
#define COLO_VMM_PCI_MSIX_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "migration/state-buf.h"
#include "pci/pci.h"

#define MSIX_MAX_VECTORS 64
#define MSIX_NO_VECTOR 0xffff

typedef struct MsixEntry {
    uint32_t addr_lo, addr_hi, data, ctrl;
} MsixEntry;

typedef struct Msix {
    PciDevice *dev;
    unsigned nvec;
    uint8_t cap;                /* config offset of the capability */
    uint64_t table_off, pba_off;    /* inside the BAR */
    GMutex lock;                /* table and pending bits: vCPU and I/O threads */
    MsixEntry table[MSIX_MAX_VECTORS];
    uint64_t pending;
    uint16_t ctrl;              /* copy of the capability's control word */
    int fds[MSIX_MAX_VECTORS];
    int gsis[MSIX_MAX_VECTORS];
} Msix;

/* Capability plus table at @table_off and PBA at @pba_off of BAR @bar. */
bool msix_init(Msix *msix, PciDevice *dev, unsigned nvec, unsigned bar, uint64_t table_off,
               uint64_t pba_off, GError **error);
void msix_clear(Msix *msix);

/* True if [@offset, +@len) is the table or PBA; the access is then done. */
bool msix_bar_io(Msix *msix, uint64_t offset, uint8_t *data, unsigned len, bool is_write);
/* After a config write (bus lock held): enable and function-mask bits
 * may have changed. */
void msix_config_written(Msix *msix);
/* Raise @vector (any thread). A masked vector becomes pending and fires
 * on unmask; MSIX_NO_VECTOR or out of range does nothing. */
void msix_notify(Msix *msix, unsigned vector);
bool msix_enabled(Msix *msix);
/* Every vector masked, nothing pending (device reset). */
void msix_reset(Msix *msix);

void msix_state_save(Msix *msix, StateWriter *out);
/* Reads the table back; routes are rebuilt. */
void msix_state_load(Msix *msix, StateReader *in);

#endif
