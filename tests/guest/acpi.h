/* ACPI fixed hardware (no tables): power button and GPEs through SCI, S5
 * power-off. */
#ifndef TESTGUEST_ACPI_H
#define TESTGUEST_ACPI_H

#include <stdint.h>

/* Enables the power button event and routes SCI to @dest_apic. */
void acpi_init(uint32_t dest_apic);
/* Clears and enables GPE @gpe (0-7) of the GPE0 block at 0x620. */
void acpi_gpe_enable(unsigned gpe);
/* SCI handler: a power button press powers the guest off; GPE 3 goes to
 * dimm_sci(). */
void acpi_sci(void);
/* Writes the S5 sleep command; halts if the VMM ignores it. */
__attribute__((noreturn)) void acpi_poweroff(const char *why);

#endif
