/* LAPIC, IOAPIC, 8259 and PIT programming. */
#include "apic.h"
#include "io.h"
#include "layout.h"

#define LAPIC_ID        0x020
#define LAPIC_TPR       0x080
#define LAPIC_EOI       0x0b0
#define LAPIC_SVR       0x0f0
#define LAPIC_ICR_LO    0x300
#define LAPIC_ICR_HI    0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_ERR   0x370
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR 0x390
#define LAPIC_TIMER_DIV 0x3e0

#define LVT_MASKED      (1u << 16)
#define LVT_PERIODIC    (1u << 17)
#define ICR_PENDING     (1u << 12)

#define PIT_HZ          1193182u
#define PIT_CAL_MS      10

#define LAPIC_CONTRACT_HZ 1000000000ULL

uint64_t lapic_hz = LAPIC_CONTRACT_HZ;
uint64_t tsc_hz;

static uint32_t lapic_read(uint32_t reg)
{
    return mmio_read32(LAPIC_BASE + reg);
}

static void lapic_write(uint32_t reg, uint32_t v)
{
    mmio_write32(LAPIC_BASE + reg, v);
}

void pic_disable(void)
{
    /* Remap first: a masked 8259 can still raise a spurious IRQ 7/15,
     * which at the BIOS's vector base 0x08 would look like an exception. */
    outb(0x20, 0x11);               /* ICW1: edge, cascade, ICW4 */
    outb(0xa0, 0x11);
    outb(0x21, VEC_PIC_BASE);       /* ICW2: vector base */
    outb(0xa1, VEC_PIC_BASE + 8);
    outb(0x21, 0x04);               /* ICW3: slave on IRQ 2 */
    outb(0xa1, 0x02);
    outb(0x21, 0x01);               /* ICW4: 8086 mode */
    outb(0xa1, 0x01);
    outb(0x21, 0xff);               /* mask everything */
    outb(0xa1, 0xff);
}

void lapic_init_cpu(void)
{
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED);
    lapic_write(LAPIC_LVT_ERR, LVT_MASKED);
    lapic_write(LAPIC_TPR, 0);
    lapic_write(LAPIC_SVR, 0x100 | VEC_SPURIOUS);
}

uint32_t lapic_id(void)
{
    return lapic_read(LAPIC_ID) >> 24;
}

void lapic_eoi(void)
{
    lapic_write(LAPIC_EOI, 0);
}

/* One PIT-timed interval: LAPIC counts and TSC cycles in PIT_CAL_MS.
 * False if the PIT never signalled. */
static bool apic_measure(uint32_t *counts, uint64_t *cycles)
{
    uint32_t latch = PIT_HZ / (1000 / PIT_CAL_MS);
    uint64_t t0, t1;
    uint32_t c0, c1;
    unsigned i;

    lapic_write(LAPIC_TIMER_DIV, 0xb);                 /* divide by 1 */
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED);
    lapic_write(LAPIC_TIMER_INIT, 0xffffffffu);
    outb(0x61, (uint8_t)((inb(0x61) & ~0x02) | 0x01)); /* gate ch2 on, speaker off */
    outb(0x43, 0xb0);                                  /* ch2, lo/hi, mode 0 */
    outb(0x42, (uint8_t)(latch & 0xff));
    outb(0x42, (uint8_t)(latch >> 8));
    c0 = lapic_read(LAPIC_TIMER_CUR);
    t0 = rdtsc();
    /* Bounded: a missing PIT costs a moment, not the boot. */
    for (i = 0; i < 2000000 && !(inb(0x61) & 0x20); i++) {
    }
    t1 = rdtsc();
    c1 = lapic_read(LAPIC_TIMER_CUR);
    lapic_write(LAPIC_TIMER_INIT, 0);
    if (i == 2000000 || c1 >= c0) {
        return false;
    }
    *counts = c0 - c1;
    *cycles = t1 - t0;
    return true;
}

void apic_calibrate(void)
{
    uint32_t best = 0, counts;
    uint64_t best_cycles = 0, cycles;

    /* A descheduled emulator only ever makes an interval look longer, so
     * the shortest of a few is the best estimate. */
    for (int i = 0; i < 3; i++) {
        if (apic_measure(&counts, &cycles) && (!best || counts < best)) {
            best = counts;
            best_cycles = cycles;
        }
    }
    if (!best) {
        return;                 /* no PIT: keep the contract's 1 GHz, no TSC rate */
    }
    uint64_t hz = (uint64_t)best * (1000 / PIT_CAL_MS);
    /* Near the contract's 1 GHz the contract is more exact than a
     * measurement through an emulator; far from it, believe the PIT. */
    if (hz < LAPIC_CONTRACT_HZ / 2 || hz > LAPIC_CONTRACT_HZ * 2) {
        lapic_hz = hz;
    }
    tsc_hz = best_cycles * lapic_hz / best;
}

void lapic_timer_start(uint32_t hz)
{
    uint64_t count = lapic_hz / hz;

    lapic_write(LAPIC_TIMER_DIV, 0xb);
    lapic_write(LAPIC_LVT_TIMER, VEC_TIMER | LVT_PERIODIC);
    lapic_write(LAPIC_TIMER_INIT, count > 0xffffffffu ? 0xffffffffu : (uint32_t)count);
}

void lapic_delay_us(uint32_t us)
{
    uint64_t count = lapic_hz * us / 1000000;

    lapic_write(LAPIC_TIMER_DIV, 0xb);
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED);
    lapic_write(LAPIC_TIMER_INIT, count ? (count > 0xffffffffu ? 0xffffffffu : (uint32_t)count) : 1);
    while (lapic_read(LAPIC_TIMER_CUR)) {
        cpu_relax();
    }
}

static void lapic_send_ipi(uint32_t apic_id, uint32_t lo)
{
    lapic_write(LAPIC_ICR_HI, apic_id << 24);
    lapic_write(LAPIC_ICR_LO, lo);
    for (int i = 0; i < 100000 && (lapic_read(LAPIC_ICR_LO) & ICR_PENDING); i++) {
        cpu_relax();
    }
}

void lapic_send_init(uint32_t apic_id)
{
    lapic_send_ipi(apic_id, 0x4500);    /* INIT, level, assert */
}

void lapic_send_sipi(uint32_t apic_id, uint8_t vector)
{
    lapic_send_ipi(apic_id, 0x4600 | vector);
}

static void ioapic_write(uint32_t reg, uint32_t v)
{
    mmio_write32(IOAPIC_BASE, reg);
    mmio_write32(IOAPIC_BASE + 0x10, v);
}

void ioapic_route(unsigned pin, uint8_t vector, bool level, bool active_low, uint32_t dest_apic)
{
    uint32_t lo = vector | (level ? 1u << 15 : 0) | (active_low ? 1u << 13 : 0);

    ioapic_write(0x10 + 2 * pin, LVT_MASKED);
    ioapic_write(0x11 + 2 * pin, dest_apic << 24);
    ioapic_write(0x10 + 2 * pin, lo);
}
