/* Device state for the migration stream: every device (and the vCPUs, the
 * in-kernel irqchip, the clock) registers a save and a load function under
 * an id string, an instance number and a version. The stream carries each
 * as one length-prefixed section; docs/migration-stream.md lists them.
 *
 * Save runs with the vCPUs parked (stop-and-copy, checkpoints); load runs on
 * the incoming side before the vCPUs first run. Both on the thread driving
 * the migration, never concurrently with themselves. */
#ifndef COLO_VMM_MIGRATION_VMSTATE_H
#define COLO_VMM_MIGRATION_VMSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "migration/state-buf.h"

typedef struct VmStateOps {
    const char *id;             /* "serial", "cpu", "irqchip", ... (at most 255 bytes) */
    uint32_t version;           /* what save writes */
    uint32_t min_version;       /* oldest load still accepts */
    /* Append the state to @out. */
    bool (*save)(void *opaque, StateWriter *out, GError **error);
    /* Read it back; every field is bounds-checked by the reader, and a
     * value that makes no sense for the device is an error, not a crash. */
    bool (*load)(void *opaque, StateReader *in, uint32_t version, GError **error);
} VmStateOps;

typedef struct VmStateEntry {
    const VmStateOps *ops;
    uint32_t instance;
    void *opaque;
} VmStateEntry;

typedef struct VmStateRegistry {
    GArray *entries;            /* VmStateEntry, in registration order */
} VmStateRegistry;

#define VMSTATE_ERROR (vmstate_error_quark())
GQuark vmstate_error_quark(void);

typedef enum {
    VMSTATE_ERROR_UNKNOWN,      /* section for an id/instance we do not have */
    VMSTATE_ERROR_VERSION,      /* version outside [min_version, version] */
    VMSTATE_ERROR_INVALID,      /* malformed or inconsistent state */
    VMSTATE_ERROR_MISSING,      /* a registered device got no section */
} VmStateError;

void vmstate_registry_init(VmStateRegistry *reg);
void vmstate_registry_clear(VmStateRegistry *reg);
void vmstate_register(VmStateRegistry *reg, const VmStateOps *ops, uint32_t instance, void *opaque);
const VmStateEntry *vmstate_find(const VmStateRegistry *reg, const char *id, uint32_t instance);

#endif
