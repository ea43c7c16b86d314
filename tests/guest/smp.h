/* Application processors: started with INIT-SIPI-SIPI through the
 * real-mode trampoline, one at a time. */
#ifndef TESTGUEST_SMP_H
#define TESTGUEST_SMP_H

#include <stdint.h>

#include "mptable.h"

/* Starts the enabled processors of @mp other than the boot CPU, at most
 * @max_cpus CPUs in all (0: no limit); APs start their ticks at @hz.
 * Returns the number of CPUs running, boot CPU included. */
unsigned smp_start(const struct mp_info *mp, unsigned max_cpus, uint32_t hz);

#endif
