/* The chipset's reset control register at port 0xCF9: writing bit 2
 * (with bit 1 for a hard reset) resets the machine. */
#ifndef COLO_VMM_DEVICES_RESET_CONTROL_H
#define COLO_VMM_DEVICES_RESET_CONTROL_H

#include <stdbool.h>
#include <glib.h>

#include "iobus.h"

#define RESET_CONTROL_PORT 0xcf9

typedef struct ResetControl ResetControl;

/* @reset runs on the vCPU thread that asked for it. */
ResetControl *reset_control_new(IoBus *bus, void (*reset)(void *opaque), void *opaque,
                                GError **error);
void reset_control_free(ResetControl *rc);

#endif
