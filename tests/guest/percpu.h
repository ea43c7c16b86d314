/* Per-CPU state. Each CPU owns one STACK_SIZE-aligned area: this struct at
 * its bottom, its stack above. Any code finds its CPU from %rsp, which is
 * what lets interrupt handlers restart on a fresh stack without IRET. */
#ifndef TESTGUEST_PERCPU_H
#define TESTGUEST_PERCPU_H

#include <stdint.h>

#include "layout.h"

struct percpu {
    uint32_t index;           /* 0 = boot CPU */
    uint32_t apic_id;
    volatile uint32_t online; /* set by the CPU itself once it runs */
    uint64_t ticks;
    uint64_t entry_tsc;       /* TSC at the last interrupt */
    uint64_t busy_tsc;
    /* workload */
    uint32_t share;           /* pages per period */
    uint64_t slice_first;
    uint64_t slice_pages;
    uint64_t writes;
    uint64_t periods;         /* periods done since start_tick */
    uint64_t start_tick;
    uint32_t wl_started;
};

union cpu_area {
    struct percpu pc;
    uint8_t bytes[STACK_SIZE];
};

extern union cpu_area cpu_areas[MAX_CPUS];

static inline struct percpu *this_cpu(void)
{
    uintptr_t sp;

    __asm__("mov %%rsp, %0" : "=r"(sp));
    return (struct percpu *)(sp & ~(uintptr_t)(STACK_SIZE - 1));
}

static inline uint64_t cpu_area_stack_top(unsigned index)
{
    return (uint64_t)(uintptr_t)&cpu_areas[index] + STACK_SIZE;
}

#endif
