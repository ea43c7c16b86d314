/* ACPI PM1 event and control blocks and the GPE0 block at the contract's
 * fixed ports. */
#include "acpi.h"
#include "apic.h"
#include "console.h"
#include "dimm.h"
#include "io.h"
#include "layout.h"
#include "status.h"

#define PM1_STS        0x600
#define PM1_EN         0x602
#define PM1_CNT        0x604
#define PM1_PWRBTN     (1u << 8)
#define PM1_SLP_EN     (1u << 13)
#define SCI_PIN        9
#define GPE0_STS       0x620     /* GPE 0-7; write 1 to clear */
#define GPE0_EN        0x628

static uint8_t gpe_en;

void acpi_init(uint32_t dest_apic)
{
    outw(PM1_STS, inw(PM1_STS));    /* write-1-to-clear whatever is stale */
    outw(PM1_EN, PM1_PWRBTN);
    ioapic_route(SCI_PIN, VEC_SCI, true, false, dest_apic);
}

void acpi_gpe_enable(unsigned gpe)
{
    uint8_t bit = (uint8_t)(1u << gpe);

    outb(GPE0_STS, bit);    /* a stale event: the caller looks anyway */
    gpe_en |= bit;
    outb(GPE0_EN, gpe_en);
}

/* Every port access is an exit: look at GPE0 only once one is enabled,
 * clear only what is set. */
void acpi_sci(void)
{
    uint16_t sts = inw(PM1_STS);

    if (sts) {
        outw(PM1_STS, sts);
    }
    if (gpe_en) {
        uint8_t gpe = inb(GPE0_STS) & gpe_en;

        if (gpe) {
            outb(GPE0_STS, gpe);    /* before the scan: a later event raises SCI again */
        }
        if (gpe & (1u << DIMM_GPE)) {
            dimm_sci();
        }
    }
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
