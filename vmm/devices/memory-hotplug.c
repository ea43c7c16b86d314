#include "config.h"

#include "devices/memory-hotplug.h"

#include <string.h>

#include <qb/qblog.h>

#include "memory.h"

/* Registers, by byte offset. */
#define REG_ADDR_LO     0x00    /* read; write: slot selector */
#define REG_ADDR_HI     0x04    /* read; write: OST event */
#define REG_SIZE_LO     0x08    /* read; write: OST status */
#define REG_SIZE_HI     0x0c
#define REG_PXM         0x10
#define REG_STATUS      0x14    /* read: status; write: control */

typedef struct MemHpSlot {
    bool present;
    uint64_t addr, size;
    uint8_t events;             /* MEMHP_INSERT | MEMHP_REMOVE */
} MemHpSlot;

struct MemoryHotplug {
    GMutex lock;
    AcpiPm *pm;
    unsigned nslots;
    uint32_t selector;
    MemHpSlot slot[GUEST_MAX_DIMMS];
};

static uint8_t memhp_read_byte(MemoryHotplug *hp, unsigned at)
{
    const MemHpSlot *s = hp->selector < hp->nslots ? &hp->slot[hp->selector] : NULL;
    uint64_t v;

    if (!s || !s->present) {
        return 0;
    }
    switch (at & ~7u) {
    case REG_ADDR_LO:
        v = s->addr;
        break;
    case REG_SIZE_LO:
        v = s->size;
        break;
    case REG_PXM:
        if (at != REG_STATUS) {
            return 0;                   /* proximity domain 0, reserved bytes */
        }
        return (uint8_t)(MEMHP_ENABLED | s->events);
    default:
        return 0;
    }
    return (uint8_t)(v >> (8 * (at & 7)));
}

static void memhp_control(MemoryHotplug *hp, uint8_t val)
{
    if (hp->selector >= hp->nslots) {
        return;
    }
    MemHpSlot *s = &hp->slot[hp->selector];
    s->events &= (uint8_t)~(val & (MEMHP_INSERT | MEMHP_REMOVE));
    if (val & MEMHP_EJECT) {
        qb_log(LOG_WARNING, "memory hotplug: the guest asked to eject DIMM slot %u; "
               "hot-remove is not supported, ignored", hp->selector);
    }
}

static void memhp_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
    MemoryHotplug *hp = opaque;
    unsigned at = (unsigned)offset;

    g_mutex_lock(&hp->lock);
    if (!is_write) {
        for (unsigned i = 0; i < len; i++) {
            data[i] = at + i < MEMHP_LEN ? memhp_read_byte(hp, at + i) : 0;
        }
    } else if (at < REG_ADDR_HI) {
        /* The selector: the bytes written replace those of the register. */
        for (unsigned i = 0; i < len && at + i < REG_ADDR_HI; i++) {
            unsigned shift = 8 * (at + i);
            hp->selector = (hp->selector & ~(0xffu << shift)) | ((uint32_t)data[i] << shift);
        }
    } else if (at == REG_STATUS && len >= 1) {
        memhp_control(hp, data[0]);
    }
    /* OST event and status (0x04-0x0b) are the guest's report; nothing to do. */
    g_mutex_unlock(&hp->lock);
}

MemoryHotplug *memory_hotplug_new(IoBus *bus, AcpiPm *pm, unsigned slots, GError **error)
{
    MemoryHotplug *hp = g_new0(MemoryHotplug, 1);

    g_mutex_init(&hp->lock);
    hp->pm = pm;
    hp->nslots = MIN(slots, GUEST_MAX_DIMMS);
    if (!iobus_register(bus, IOBUS_PIO, MEMHP_BASE, MEMHP_LEN, memhp_io, hp, "memory-hotplug", error)) {
        memory_hotplug_free(hp);
        return NULL;
    }
    return hp;
}

void memory_hotplug_free(MemoryHotplug *hp)
{
    if (hp) {
        g_mutex_clear(&hp->lock);
        g_free(hp);
    }
}

void memory_hotplug_reset(MemoryHotplug *hp)
{
    g_mutex_lock(&hp->lock);
    hp->selector = 0;
    for (unsigned i = 0; i < hp->nslots; i++) {
        hp->slot[i].events = 0;
    }
    g_mutex_unlock(&hp->lock);
}

void memory_hotplug_plug(MemoryHotplug *hp, unsigned slot, uint64_t addr, uint64_t size, bool notify)
{
    g_assert(slot < hp->nslots);
    g_mutex_lock(&hp->lock);
    hp->slot[slot] = (MemHpSlot){ .present = true, .addr = addr, .size = size,
                                  .events = notify ? MEMHP_INSERT : 0 };
    g_mutex_unlock(&hp->lock);
    if (notify && hp->pm) {
        acpi_pm_raise_gpe(hp->pm, MEMHP_GPE);
    }
}

static bool memhp_state_save(void *opaque, StateWriter *w, GError **error)
{
    MemoryHotplug *hp = opaque;

    g_mutex_lock(&hp->lock);
    state_put_u32(w, hp->nslots);
    state_put_u32(w, hp->selector);
    for (unsigned i = 0; i < hp->nslots; i++) {
        state_put_u8(w, hp->slot[i].present);
        state_put_u8(w, hp->slot[i].events);
    }
    g_mutex_unlock(&hp->lock);
    return true;
}

static bool memhp_state_load(void *opaque, StateReader *r, uint32_t version, GError **error)
{
    MemoryHotplug *hp = opaque;
    uint32_t nslots = state_get_u32(r), selector = state_get_u32(r);
    uint8_t present[GUEST_MAX_DIMMS] = { 0 }, events[GUEST_MAX_DIMMS] = { 0 };

    if (nslots != hp->nslots) {
        g_set_error(error, VMSTATE_ERROR, VMSTATE_ERROR_INVALID,
                    "memory-hotplug: the source has %u DIMM slots, this VM %u (same -m slots=?)",
                    nslots, hp->nslots);
        return false;
    }
    for (unsigned i = 0; i < nslots; i++) {
        present[i] = state_get_u8(r);
        events[i] = state_get_u8(r);
    }
    if (!state_reader_finish(r, "memory-hotplug", error)) {
        return false;
    }
    g_mutex_lock(&hp->lock);
    for (unsigned i = 0; i < nslots; i++) {
        if (present[i] > 1 || (events[i] & ~(MEMHP_INSERT | MEMHP_REMOVE)) ||
            (bool)present[i] != hp->slot[i].present) {
            g_mutex_unlock(&hp->lock);
            g_set_error(error, VMSTATE_ERROR, VMSTATE_ERROR_INVALID,
                        "memory-hotplug: DIMM slot %u is %s on the source but %s here", i,
                        present[i] ? "filled" : "empty", hp->slot[i].present ? "filled" : "empty");
            return false;
        }
    }
    hp->selector = selector;
    for (unsigned i = 0; i < nslots; i++) {
        hp->slot[i].events = events[i];
    }
    g_mutex_unlock(&hp->lock);
    return true;
}

const VmStateOps memory_hotplug_state_ops = {
    .id = "memory-hotplug",
    .version = 1,
    .min_version = 1,
    .save = memhp_state_save,
    .load = memhp_state_load,
};
