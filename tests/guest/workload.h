/* The memory workload: every dirty_ms, dirty_pages pages of the area are
 * written (pattern.h), shared out between the CPUs; each CPU owns one
 * contiguous slice and writes it round-robin. */
#ifndef TESTGUEST_WORKLOAD_H
#define TESTGUEST_WORKLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "cmdline.h"
#include "percpu.h"

struct memmap_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};

/* Picks the area (clamped to the RAM entry holding area_base, kept clear
 * of the guest image), splits it over @ncpus, records it in the status
 * page. Prints why it shrank or turned off. */
void workload_setup(const struct guest_config *cfg, const struct memmap_entry *map, unsigned nmap,
                    unsigned ncpus);
/* Starts it on every CPU (from their next tick). */
void workload_start(void);
/* Per tick, on every CPU. */
void workload_tick(struct percpu *c);
/* Started, with an area and a rate. */
bool workload_running(void);

#endif
