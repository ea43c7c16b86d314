/* MC146818 CMOS RTC at ports 0x70/0x71: wall-clock time from the host (UTC),
 * the memory-size bytes firmware reads, and 128 bytes of NVRAM. The periodic,
 * alarm and update interrupts (IRQ 8) are not modelled. */
#ifndef COLO_VMM_DEVICES_CMOS_H
#define COLO_VMM_DEVICES_CMOS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <glib.h>

#include "iobus.h"
#include "memory.h"
#include "migration/vmstate.h"

typedef struct Cmos Cmos;

Cmos *cmos_new(IoBus *bus, const GuestMemory *mem, unsigned ncpus, GError **error);
void cmos_free(Cmos *c);
void cmos_reset(Cmos *c);

extern const VmStateOps cmos_state_ops;       /* opaque: Cmos * */

/* For tests: the register value at @index as the guest would read it at @now. */
uint8_t cmos_read_at(Cmos *c, uint8_t index, time_t now);

#endif
