#include "config.h"

#include "acpi-pm.h"

#include <string.h>

#include <qb/qblog.h>

#define PM1_STS    0
#define PM1_EN     2
#define PM1_CNT    4
#define PM_TMR     8
#define PM_LEN     12

#define PM_TMR_HZ  3579545ULL

/* PM1_EN bits that stick: the power button, and the enables an OS sets
 * and reads back as it installs its fixed-event handlers: GBL_EN for the
 * global lock and RTC_EN for the CMOS alarm (Linux: "Could not enable
 * GlobalLock event" / "RealTimeClock event" otherwise). Their status bits
 * never rise: there is no firmware to release the lock, and the RTC's
 * alarm does not wake a running guest through PM1. */
#define PM1_EN_BITS (ACPI_PM1_PWRBTN | ACPI_PM1_GBL | ACPI_PM1_RTC)

/* GPE0: status bytes, then as many enable bytes (ICH9's 64 events). */
#define GPE0_HALF  (ACPI_GPE0_LEN / 2)

struct AcpiPm {
    Kvm *kvm;
    GMutex lock;
    uint16_t sts, en, cnt;
    uint8_t gpe_sts[GPE0_HALF], gpe_en[GPE0_HALF];
    bool sci_level;
    void (*power_off)(void *opaque);
    void *opaque;
};

static void acpi_pm_update_sci(AcpiPm *pm)
{
    bool level = (pm->sts & pm->en) != 0;

    for (unsigned i = 0; i < GPE0_HALF; i++) {
        level |= (pm->gpe_sts[i] & pm->gpe_en[i]) != 0;
    }
    if (level != pm->sci_level) {
        pm->sci_level = level;
        if (pm->kvm) {
            kvm_set_irq(pm->kvm, ACPI_PM_SCI, level);
        }
    }
}

static uint32_t acpi_pm_timer(void)
{
    /* 24-bit counter at 3.579545 MHz; the product fits 64 bits for ~160 years. */
    uint64_t us = (uint64_t)g_get_monotonic_time();

    return (uint32_t)((us * PM_TMR_HZ / 1000000) & 0xffffff);
}

/* Register at byte @offset of the block, and the offset of its first byte. */
static int acpi_pm_reg(unsigned offset, unsigned *start)
{
    *start = offset;
    if (offset >= PM_TMR && offset < PM_LEN) {
        *start = PM_TMR;
        return PM_TMR;
    }
    if (offset < PM1_CNT + 2) {
        *start = offset & ~1u;
        return (int)*start;
    }
    return -1;
}

static uint32_t acpi_pm_read(AcpiPm *pm, int reg)
{
    switch (reg) {
    case PM1_STS: return pm->sts;
    case PM1_EN: return pm->en;
    case PM1_CNT: return pm->cnt;
    case PM_TMR: return acpi_pm_timer();
    default: return 0xffffffff;
    }
}

/* Returns true if the write asked to power off. */
static bool acpi_pm_write(AcpiPm *pm, int reg, uint16_t val, uint16_t mask)
{
    switch (reg) {
    case PM1_STS:
        pm->sts &= (uint16_t)~(val & mask);     /* write 1 to clear */
        break;
    case PM1_EN:
        pm->en = (uint16_t)(((pm->en & ~mask) | (val & mask)) & PM1_EN_BITS);
        break;
    case PM1_CNT:
        val = (uint16_t)((pm->cnt & ~mask) | (val & mask));
        pm->cnt = val & (uint16_t)~ACPI_PM1_SLP_EN;
        if (val & ACPI_PM1_SLP_EN) {
            if (((val >> 10) & 7) == ACPI_PM1_SLP_TYP_S5) {
                return true;
            }
            qb_log(LOG_WARNING, "ACPI: sleep type %u not supported, ignored", (val >> 10) & 7);
        }
        break;
    default:
        break;          /* the timer is read-only */
    }
    return false;
}

static void acpi_pm_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
    AcpiPm *pm = opaque;
    bool power_off = false;
    unsigned start = 0;

    /* Byte by byte, so any access width and alignment decodes the same. */
    g_mutex_lock(&pm->lock);
    if (!is_write) {
        for (unsigned i = 0; i < len; i++) {
            int reg = acpi_pm_reg((unsigned)offset + i, &start);
            data[i] = (uint8_t)(acpi_pm_read(pm, reg) >> (8 * ((unsigned)offset + i - start)));
        }
    } else {
        uint16_t val[PM1_CNT + 1] = { 0 }, mask[PM1_CNT + 1] = { 0 };
        for (unsigned i = 0; i < len; i++) {
            int reg = acpi_pm_reg((unsigned)offset + i, &start);
            if (reg >= 0 && reg <= PM1_CNT) {
                unsigned shift = 8 * ((unsigned)offset + i - start);
                val[reg] |= (uint16_t)(data[i] << shift);
                mask[reg] |= (uint16_t)(0xff << shift);
            }
        }
        for (int reg = PM1_STS; reg <= PM1_CNT; reg += 2) {
            if (mask[reg]) {
                power_off |= acpi_pm_write(pm, reg, val[reg], mask[reg]);
            }
        }
        acpi_pm_update_sci(pm);
    }
    g_mutex_unlock(&pm->lock);
    if (power_off && pm->power_off) {
        pm->power_off(pm->opaque);
    }
}

/* GPE0 block: write 1 to clear a status bit, enables as written. */
static void acpi_gpe_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
    AcpiPm *pm = opaque;

    g_mutex_lock(&pm->lock);
    for (unsigned i = 0; i < len && offset + i < ACPI_GPE0_LEN; i++) {
        unsigned at = (unsigned)offset + i;
        uint8_t *reg = at < GPE0_HALF ? &pm->gpe_sts[at] : &pm->gpe_en[at - GPE0_HALF];
        if (!is_write) {
            data[i] = *reg;
        } else if (at < GPE0_HALF) {
            *reg &= (uint8_t)~data[i];
        } else {
            *reg = data[i];
        }
    }
    if (is_write) {
        acpi_pm_update_sci(pm);
    }
    g_mutex_unlock(&pm->lock);
}

void acpi_pm_raise_gpe(AcpiPm *pm, unsigned gpe)
{
    g_assert(gpe < 8 * GPE0_HALF);
    g_mutex_lock(&pm->lock);
    pm->gpe_sts[gpe / 8] |= (uint8_t)(1u << (gpe % 8));
    acpi_pm_update_sci(pm);
    g_mutex_unlock(&pm->lock);
}

void acpi_pm_press_power_button(AcpiPm *pm)
{
    g_mutex_lock(&pm->lock);
    pm->sts |= ACPI_PM1_PWRBTN;
    acpi_pm_update_sci(pm);
    g_mutex_unlock(&pm->lock);
}

void acpi_pm_reset(AcpiPm *pm)
{
    g_mutex_lock(&pm->lock);
    pm->sts = pm->en = pm->cnt = 0;
    memset(pm->gpe_sts, 0, sizeof(pm->gpe_sts));
    memset(pm->gpe_en, 0, sizeof(pm->gpe_en));
    acpi_pm_update_sci(pm);
    g_mutex_unlock(&pm->lock);
}

AcpiPm *acpi_pm_new(IoBus *bus, Kvm *kvm, void (*power_off)(void *opaque), void *opaque,
                    GError **error)
{
    AcpiPm *pm = g_new0(AcpiPm, 1);

    g_mutex_init(&pm->lock);
    pm->kvm = kvm;
    pm->power_off = power_off;
    pm->opaque = opaque;
    if (!iobus_register(bus, IOBUS_PIO, ACPI_PM_BASE, PM_LEN, acpi_pm_io, pm, "acpi-pm", error) ||
        !iobus_register(bus, IOBUS_PIO, ACPI_GPE0_BASE, ACPI_GPE0_LEN, acpi_gpe_io, pm, "acpi-gpe0", error)) {
        acpi_pm_free(pm);
        return NULL;
    }
    return pm;
}

void acpi_pm_free(AcpiPm *pm)
{
    if (pm) {
        g_mutex_clear(&pm->lock);
        g_free(pm);
    }
}

static bool acpi_pm_state_save(void *opaque, StateWriter *w, GError **error)
{
    AcpiPm *pm = opaque;

    g_mutex_lock(&pm->lock);
    state_put_u16(w, pm->sts);
    state_put_u16(w, pm->en);
    state_put_u16(w, pm->cnt);
    state_put_bytes(w, pm->gpe_sts, sizeof(pm->gpe_sts));
    state_put_bytes(w, pm->gpe_en, sizeof(pm->gpe_en));
    g_mutex_unlock(&pm->lock);
    return true;
}

static bool acpi_pm_state_load(void *opaque, StateReader *r, uint32_t version, GError **error)
{
    AcpiPm *pm = opaque;
    uint16_t sts = state_get_u16(r), en = state_get_u16(r), cnt = state_get_u16(r);
    uint8_t gpe_sts[GPE0_HALF] = { 0 }, gpe_en[GPE0_HALF] = { 0 };

    if (version >= 2) {
        state_get_bytes(r, gpe_sts, sizeof(gpe_sts));
        state_get_bytes(r, gpe_en, sizeof(gpe_en));
    }
    if (!state_reader_finish(r, "acpi-pm", error)) {
        return false;
    }
    g_mutex_lock(&pm->lock);
    pm->sts = sts;
    pm->en = en & PM1_EN_BITS;
    pm->cnt = cnt & (uint16_t)~ACPI_PM1_SLP_EN;
    memcpy(pm->gpe_sts, gpe_sts, sizeof(gpe_sts));
    memcpy(pm->gpe_en, gpe_en, sizeof(gpe_en));
    pm->sci_level = false;      /* the irqchip section carries the line's level */
    acpi_pm_update_sci(pm);
    g_mutex_unlock(&pm->lock);
    return true;
}

const VmStateOps acpi_pm_state_ops = {
    .id = "acpi-pm",
    .version = 2,               /* 2: GPE0 */
    .min_version = 1,
    .save = acpi_pm_state_save,
    .load = acpi_pm_state_load,
};
