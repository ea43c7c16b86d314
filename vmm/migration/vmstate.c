#include "config.h"

#include "migration/vmstate.h"

#include <string.h>

G_DEFINE_QUARK(colo-vmstate-error, vmstate_error)

void vmstate_registry_init(VmStateRegistry *reg)
{
    reg->entries = g_array_new(FALSE, TRUE, sizeof(VmStateEntry));
}

void vmstate_registry_clear(VmStateRegistry *reg)
{
    if (reg->entries) {
        g_array_free(reg->entries, TRUE);
        reg->entries = NULL;
    }
}

void vmstate_register(VmStateRegistry *reg, const VmStateOps *ops, uint32_t instance, void *opaque)
{
    VmStateEntry e = { ops, instance, opaque };

    g_assert(strlen(ops->id) <= 255);
    g_assert(!vmstate_find(reg, ops->id, instance));
    g_array_append_val(reg->entries, e);
}

const VmStateEntry *vmstate_find(const VmStateRegistry *reg, const char *id, uint32_t instance)
{
    for (guint i = 0; i < reg->entries->len; i++) {
        const VmStateEntry *e = &g_array_index(reg->entries, VmStateEntry, i);
        if (e->instance == instance && !strcmp(e->ops->id, id)) {
            return e;
        }
    }
    return NULL;
}
