/* Guest glue between the virtio drivers, the network stack and the disk
 * service: bring-up from the command line, interrupt and tick hooks,
 * counters in the status page. Everything runs on the boot CPU. */
#ifndef TESTGUEST_NETIF_H
#define TESTGUEST_NETIF_H

#include "cmdline.h"
#include "percpu.h"

/* Starts the NIC (when ip= is set) and the disk; prints what it found. */
void netif_init(const struct guest_config *cfg, uint32_t apic_id);

/* VEC_NET / VEC_BLK handlers (after the EOI). */
void netif_net_irq(struct percpu *c);
void netif_blk_irq(struct percpu *c);

/* Every tick of the boot CPU: timers, and a look at the rings in case an
 * interrupt was coalesced away. */
void netif_tick(struct percpu *c, uint32_t hz);

/* Copies the counters to the status page (once a second). */
void netif_status(void);

/* A console line with the counters (with each status line). */
void netif_status_line(void);

#endif
