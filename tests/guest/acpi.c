/* ACPI PM1 event and control blocks at the contract's fixed ports. */
#include "acpi.h"
#include "apic.h"
#include "console.h"
#include "io.h"
#include "layout.h"
#include "status.h"

#define PM1_STS        0x600
#define PM1_EN         0x602
#define PM1_CNT        0x604
#define PM1_PWRBTN     (1u << 8)
#define PM1_SLP_EN     (1u << 13)
#define SCI_PIN        9

void acpi_init(uint32_t dest_apic)
{
    outw(PM1_STS, inw(PM1_STS));    /* write-1-to-clear whatever is stale */
    outw(PM1_EN, PM1_PWRBTN);
    ioapic_route(SCI_PIN, VEC_SCI, true, false, dest_apic);
}

void acpi_sci(void)
{
    uint16_t sts = inw(PM1_STS);

    outw(PM1_STS, sts);
    if (sts & PM1_PWRBTN) {
        acpi_poweroff("power button");
    }
}

void acpi_poweroff(const char *why)
{
    STATUS->flags |= STATUS_FLAG_POWEROFF;
    kprintf("colo-testguest: powering off (%s)\n", why);
    outw(PM1_CNT, PM1_SLP_EN);      /* SLP_TYP 0 = S5 */
    lapic_delay_us(1000000);        /* the VMM stops us asynchronously */
    kprintf("colo-testguest: power-off did not take effect, halting\n");
    cpu_halt_forever();
}
