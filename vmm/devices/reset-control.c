#include "config.h"

#include "reset-control.h"

#include <string.h>

#define RST_CNT_SYS_RST 0x02
#define RST_CNT_RST_CPU 0x04

struct ResetControl {
    void (*reset)(void *opaque);
    void *opaque;
    uint8_t value;
};

static void reset_control_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
    ResetControl *rc = opaque;

    if (!is_write) {
        memset(data, 0, len);
        data[0] = rc->value;
        return;
    }
    rc->value = data[0] & RST_CNT_SYS_RST;
    if (data[0] & RST_CNT_RST_CPU) {
        rc->value = 0;
        rc->reset(rc->opaque);
    }
}

ResetControl *reset_control_new(IoBus *bus, void (*reset)(void *opaque), void *opaque,
                                GError **error)
{
    ResetControl *rc = g_new0(ResetControl, 1);

    rc->reset = reset;
    rc->opaque = opaque;
    if (!iobus_register(bus, IOBUS_PIO, RESET_CONTROL_PORT, 1, reset_control_io, rc,
                        "reset-control", error)) {
        g_free(rc);
        return NULL;
    }
    return rc;
}

void reset_control_free(ResetControl *rc)
{
    g_free(rc);
}
