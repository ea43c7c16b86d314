/* The IDT, exception reports and the dispatch of the few interrupts the
 * guest uses. */
#include <stdbool.h>

#include "acpi.h"
#include "apic.h"
#include "console.h"
#include "intr.h"
#include "io.h"
#include "netif.h"
#include "status.h"
#include "tick.h"

struct idt_gate {
    uint16_t off_lo;
    uint16_t sel;
    uint8_t ist;
    uint8_t type;
    uint16_t off_mid;
    uint32_t off_hi;
    uint32_t zero;
};

extern char intr_stubs[];
static struct idt_gate idt[256];

static const char *const exception_names[32] = {
    "#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow", "#BR bound", "#UD invalid opcode",
    "#NM no FPU", "#DF double fault", "coprocessor overrun", "#TS invalid TSS", "#NP segment not present",
    "#SS stack fault", "#GP general protection", "#PF page fault", "reserved", "#MF x87", "#AC alignment",
    "#MC machine check", "#XM SIMD", "#VE virtualization", "#CP control protection",
};

void intr_init(void)
{
    for (unsigned v = 0; v < 256; v++) {
        uint64_t addr = (uint64_t)(uintptr_t)(intr_stubs + v * INTR_STUB_SIZE);
        idt[v] = (struct idt_gate){
            .off_lo = (uint16_t)addr,
            .sel = SEL_CODE64,
            .type = 0x8e,       /* present, DPL 0, 64-bit interrupt gate */
            .off_mid = (uint16_t)(addr >> 16),
            .off_hi = (uint32_t)(addr >> 32),
        };
    }
}

void intr_load(void)
{
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } desc = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };

    __asm__ volatile("lidt %0" : : "m"(desc));
}

void cpu_idle(struct percpu *c)
{
    if (c->entry_tsc) {
        c->busy_tsc += rdtsc() - c->entry_tsc;
        STATUS->cpu[c->index].busy_tsc = c->busy_tsc;
    }
    for (;;) {
        /* sti's one-instruction shadow: an interrupt already pending is
         * taken at the hlt, never lost between the two. */
        __asm__ volatile("sti; hlt; cli" ::: "memory");
    }
}

static __attribute__((noreturn)) void intr_exception(struct percpu *c, uint64_t vector, uint64_t error,
                                                     uint64_t rip, uint64_t rsp)
{
    const char *name = vector < 32 && exception_names[vector] ? exception_names[vector] : "reserved";

    STATUS->crash_vector = (uint32_t)vector;
    STATUS->crash_cpu = c->index;
    STATUS->crash_rip = rip;
    STATUS->flags |= STATUS_FLAG_CRASHED;
    kprintf("colo-testguest: EXCEPTION vector=%lu (%s) error=0x%lx rip=0x%lx rsp=0x%lx cr2=0x%lx cpu=%u\n",
            vector, name, error, rip, rsp, read_cr2(), c->index);
    kprintf("colo-testguest: cpu %u halted\n", c->index);
    cpu_halt_forever();
}

void intr_entry(uint64_t vector, uint64_t error, uint64_t rip, uint64_t rsp)
{
    struct percpu *c = this_cpu();

    c->entry_tsc = rdtsc();
    if (vector < 32) {
        intr_exception(c, vector, error, rip, rsp);
    }
    switch (vector) {
    case VEC_TIMER:
        lapic_eoi();
        tick_handle(c);
        break;
    case VEC_SCI:
        acpi_sci();     /* clears the level source before the EOI */
        lapic_eoi();
        break;
    case VEC_NET:
        lapic_eoi();    /* first: a frame arriving meanwhile raises it again */
        netif_net_irq(c);
        break;
    case VEC_BLK:
        lapic_eoi();
        netif_blk_irq(c);
        break;
    case VEC_SPURIOUS:
        break;          /* no EOI for spurious interrupts */
    case VEC_PIC_BASE + 7:
    case VEC_PIC_BASE + 15:
        break;          /* spurious 8259 IRQ: the LAPIC did not deliver it */
    default:
        lapic_eoi();
        kprintf("colo-testguest: unexpected interrupt vector %lu on cpu %u\n", vector, c->index);
        break;
    }
    cpu_idle(c);
}
