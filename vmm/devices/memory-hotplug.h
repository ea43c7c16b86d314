/* The memory hot-plug controller the guest sees, QEMU's register block at
 * I/O 0xa00 (docs/memory-hotplug.md): a slot selector, and for the
 * selected DIMM slot its address, size and status (enabled, insert event).
 * Adding a DIMM sets the slot's insert event and raises ACPI GPE 3; the
 * guest acknowledges by clearing the event. Hot-remove is not offered. */
#ifndef COLO_VMM_DEVICES_MEMORY_HOTPLUG_H
#define COLO_VMM_DEVICES_MEMORY_HOTPLUG_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "devices/acpi-pm.h"
#include "iobus.h"
#include "migration/vmstate.h"

#define MEMHP_BASE      0xa00
#define MEMHP_LEN       24
#define MEMHP_GPE       3

/* Status bits (offset 0x14). */
#define MEMHP_ENABLED   0x01
#define MEMHP_INSERT    0x02
#define MEMHP_REMOVE    0x04
#define MEMHP_EJECT     0x08    /* control only */

typedef struct MemoryHotplug MemoryHotplug;

MemoryHotplug *memory_hotplug_new(IoBus *bus, AcpiPm *pm, unsigned slots, GError **error);
void memory_hotplug_free(MemoryHotplug *hp);
/* A reset keeps the DIMMs (they are hardware) and drops pending events. */
void memory_hotplug_reset(MemoryHotplug *hp);

/* A DIMM is in @slot now. @notify: hot-added (insert event and GPE), not
 * present from the start. Any thread. */
void memory_hotplug_plug(MemoryHotplug *hp, unsigned slot, uint64_t addr, uint64_t size, bool notify);

/* Section "memory-hotplug": the selector and the events. The DIMMs
 * themselves travel as memory device records ahead of it, so the loader
 * checks that the same slots are filled. */
extern const VmStateOps memory_hotplug_state_ops;     /* opaque: MemoryHotplug * */

#endif
