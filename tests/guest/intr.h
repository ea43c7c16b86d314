/* IDT and interrupt dispatch. No handler ever returns: intr_entry() does
 * the work with interrupts off and puts the CPU back to cpu_idle(). */
#ifndef TESTGUEST_INTR_H
#define TESTGUEST_INTR_H

#include <stdint.h>

#include "percpu.h"

/* Builds the IDT (boot CPU, once). */
void intr_init(void);
/* Loads it (every CPU). */
void intr_load(void);

/* Accounts the time since the last interrupt as busy, then waits for the
 * next one with `sti; hlt`. */
__attribute__((noreturn)) void cpu_idle(struct percpu *c);

/* Called from intr-stubs.S on the CPU's fresh stack. */
__attribute__((noreturn)) void intr_entry(uint64_t vector, uint64_t error, uint64_t rip, uint64_t rsp);

#endif
