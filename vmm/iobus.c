#include "config.h"

#include <gio/gio.h>

#include "iobus.h"

#include <string.h>

IoBus *iobus_new(void)
{
    IoBus *bus = g_new0(IoBus, 1);

    for (unsigned i = 0; i < G_N_ELEMENTS(bus->ranges); i++) {
        bus->ranges[i] = g_array_new(FALSE, TRUE, sizeof(IoRange));
    }
    return bus;
}

void iobus_free(IoBus *bus)
{
    if (!bus) {
        return;
    }
    for (unsigned i = 0; i < G_N_ELEMENTS(bus->ranges); i++) {
        g_array_free(bus->ranges[i], TRUE);
    }
    g_free(bus);
}

bool iobus_register(IoBus *bus, IoBusKind kind, uint64_t base, uint64_t len,
                    IoHandler handler, void *opaque, const char *name, GError **error)
{
    GArray *a = bus->ranges[kind];
    guint pos = 0;

    g_return_val_if_fail(len > 0 && base + len > base, false);
    for (; pos < a->len; pos++) {
        IoRange *r = &g_array_index(a, IoRange, pos);
        if (base < r->base + r->len && r->base < base + len) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                        "%s at %s 0x%" G_GINT64_MODIFIER "x overlaps %s",
                        name, kind == IOBUS_PIO ? "port" : "address", base, r->name);
            return false;
        }
        if (r->base > base) {
            break;
        }
    }
    IoRange range = { base, len, handler, opaque, name };
    g_array_insert_val(a, pos, range);
    return true;
}

static const IoRange *iobus_find(const GArray *a, uint64_t addr)
{
    guint lo = 0, hi = a->len;

    while (lo < hi) {
        guint mid = lo + (hi - lo) / 2;
        const IoRange *r = &g_array_index(a, IoRange, mid);
        if (addr < r->base) {
            hi = mid;
        } else if (addr - r->base >= r->len) {
            lo = mid + 1;
        } else {
            return r;
        }
    }
    return NULL;
}

bool iobus_dispatch(IoBus *bus, IoBusKind kind, uint64_t addr, uint8_t *data,
                    unsigned len, bool is_write)
{
    const IoRange *r = iobus_find(bus->ranges[kind], addr);

    if (!r) {
        if (!is_write) {
            memset(data, 0xff, len);
        }
        return false;
    }
    r->handler(r->opaque, addr - r->base, data, len, is_write);
    return true;
}
