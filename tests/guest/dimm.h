/* Hot-added RAM: the ACPI memory hotplug controller (QEMU's interface at
 * I/O 0xa00, announced by GPE 3 through SCI) and the DIMM workload. */
#ifndef TESTGUEST_DIMM_H
#define TESTGUEST_DIMM_H

#include <stdbool.h>

#include "cmdline.h"
#include "percpu.h"

#define DIMM_GPE  3     /* GPE0 bit of a memory hotplug event */

/* Finds the controller; if there is one, enables GPE 3 and adds the DIMMs
 * already present. Call once, before the workload starts. */
void dimm_init(const struct guest_config *cfg);
/* SCI with GPE 3 (already cleared by the caller): adds the DIMMs with an
 * insert event. Boot CPU, interrupts off. */
void dimm_sci(void);
/* Per tick on the boot CPU: the DIMMs' share of the workload. */
void dimm_tick(struct percpu *c);
/* Sum of the DIMMs' writes, DIMMs added. */
uint64_t dimm_writes(void);
unsigned dimm_count(void);

#endif
