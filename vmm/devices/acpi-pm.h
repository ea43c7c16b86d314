/* ACPI fixed-hardware power management at I/O 0x600 (as QEMU's q35):
 * PM1a event block (status, enable) at 0x600, PM1a control at 0x604, the
 * PM timer at 0x608, the GPE0 block at 0x620 (8 status bytes, then 8
 * enable bytes), and the SCI on GSI 9. Gives the guest a power button
 * (system_powerdown), a way to power off (SLP_EN with SLP_TYP 0 = S5), and
 * general-purpose events (memory hot-add raises GPE 3, as in QEMU). */
#ifndef COLO_VMM_DEVICES_ACPI_PM_H
#define COLO_VMM_DEVICES_ACPI_PM_H

#include <stdbool.h>
#include <glib.h>

#include "iobus.h"
#include "kvm.h"
#include "migration/vmstate.h"

#define ACPI_PM_BASE   0x600
#define ACPI_PM_SCI    9
#define ACPI_GPE0_BASE 0x620
#define ACPI_GPE0_LEN  16
#define ACPI_PM1_GBL     (1u << 5)   /* global lock release (enable bit only) */
#define ACPI_PM1_PWRBTN (1u << 8)
#define ACPI_PM1_RTC    (1u << 10)  /* RTC alarm (enable bit only) */
#define ACPI_PM1_SLP_EN (1u << 13)
#define ACPI_PM1_SLP_TYP_S5 0

typedef struct AcpiPm AcpiPm;

/* @power_off runs on the vCPU thread that wrote the sleep command. */
AcpiPm *acpi_pm_new(IoBus *bus, Kvm *kvm, void (*power_off)(void *opaque), void *opaque,
                    GError **error);
void acpi_pm_free(AcpiPm *pm);
void acpi_pm_reset(AcpiPm *pm);

extern const VmStateOps acpi_pm_state_ops;    /* opaque: AcpiPm * */

/* Set GPE0 status bit @gpe, and the SCI if the guest enabled it. Any thread. */
void acpi_pm_raise_gpe(AcpiPm *pm, unsigned gpe);

/* Press the power button: PWRBTN_STS, and the SCI if the guest enabled it. */
void acpi_pm_press_power_button(AcpiPm *pm);

#endif
