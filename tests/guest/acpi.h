/* ACPI fixed hardware (no tables): power button through SCI, S5 power-off. */
#ifndef TESTGUEST_ACPI_H
#define TESTGUEST_ACPI_H

#include <stdint.h>

/* Enables the power button event and routes SCI to @dest_apic. */
void acpi_init(uint32_t dest_apic);
/* SCI handler: a power button press powers the guest off. */
void acpi_sci(void);
/* Writes the S5 sleep command; halts if the VMM ignores it. */
__attribute__((noreturn)) void acpi_poweroff(const char *why);

#endif
