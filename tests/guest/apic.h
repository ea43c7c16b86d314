/* Interrupt controllers and timers: LAPIC (ticks, IPIs, delays), IOAPIC
 * routing, the 8259s (masked) and the PIT (calibration only). */
#ifndef TESTGUEST_APIC_H
#define TESTGUEST_APIC_H

#include <stdbool.h>
#include <stdint.h>

#define LAPIC_BASE  0xfee00000ULL
#define IOAPIC_BASE 0xfec00000ULL

extern uint64_t lapic_hz;   /* timer counts per second at divide-by-1 */
extern uint64_t tsc_hz;     /* 0 if the PIT calibration failed */

void pic_disable(void);
void lapic_init_cpu(void);
uint32_t lapic_id(void);
void lapic_eoi(void);

/* Measures LAPIC timer and TSC against PIT channel 2. The LAPIC keeps the
 * contract's 1 GHz unless the PIT says it is far off; tsc_hz is derived
 * from the LAPIC rate. */
void apic_calibrate(void);

void lapic_timer_start(uint32_t hz);
void lapic_delay_us(uint32_t us);
void lapic_send_init(uint32_t apic_id);
void lapic_send_sipi(uint32_t apic_id, uint8_t vector);

/* Routes IOAPIC @pin to @vector on @dest_apic, fixed delivery. */
void ioapic_route(unsigned pin, uint8_t vector, bool level, bool active_low, uint32_t dest_apic);

#endif
