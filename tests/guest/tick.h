/* What happens on each timer tick: per-CPU accounting and workload; on the
 * boot CPU once a second the heartbeat, status line and poweroff_after. */
#ifndef TESTGUEST_TICK_H
#define TESTGUEST_TICK_H

#include "cmdline.h"
#include "percpu.h"

/* Fills the status page's fixed part (boot CPU, before any tick). */
void tick_setup(const struct guest_config *cfg, unsigned ncpus);
void tick_handle(struct percpu *c);

#endif
