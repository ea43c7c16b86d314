/* AP bring-up. The boot CPU copies the trampoline below 1 MiB, sets the
 * next AP's stack in it and sends INIT-SIPI-SIPI; the AP reports itself
 * online from ap_main() before the next one is started. */
#include "apic.h"
#include "console.h"
#include "intr.h"
#include "lib.h"
#include "percpu.h"
#include "smp.h"
#include "status.h"

#define AP_START_TIMEOUT_MS 500

union cpu_area cpu_areas[MAX_CPUS] __attribute__((aligned(STACK_SIZE), section(".bss.cpu_areas")));

extern char tramp_start[], tramp_end[], tramp_stack[];

static uint32_t ap_hz;

__attribute__((noreturn)) void ap_main(void);

void ap_main(void)
{
    struct percpu *c = this_cpu();

    intr_load();
    lapic_init_cpu();
    STATUS->cpu[c->index].apic_id = c->apic_id;
    STATUS->cpu[c->index].online = 1;
    c->online = 1;
    lapic_timer_start(ap_hz);
    cpu_idle(c);
}

static int smp_start_one(unsigned index, uint32_t apic_id)
{
    struct percpu *c = &cpu_areas[index].pc;
    volatile uint64_t *stack = (volatile uint64_t *)(uintptr_t)(TRAMPOLINE_GPA + (tramp_stack - tramp_start));

    memset(c, 0, sizeof(*c));     /* the areas are not cleared at boot */
    c->index = index;
    c->apic_id = apic_id;
    *stack = cpu_area_stack_top(index);

    lapic_send_init(apic_id);
    lapic_delay_us(10000);
    lapic_send_sipi(apic_id, TRAMPOLINE_GPA >> 12);
    lapic_delay_us(200);
    if (!c->online) {
        lapic_send_sipi(apic_id, TRAMPOLINE_GPA >> 12);
    }
    for (unsigned ms = 0; ms < AP_START_TIMEOUT_MS && !c->online; ms++) {
        lapic_delay_us(1000);
    }
    return c->online ? 0 : -1;
}

unsigned smp_start(const struct mp_info *mp, unsigned max_cpus, uint32_t hz)
{
    uint32_t bsp = lapic_id();
    unsigned ncpus = 1;

    if (!max_cpus || max_cpus > MAX_CPUS) {
        max_cpus = MAX_CPUS;
    }
    ap_hz = hz;
    memcpy((void *)(uintptr_t)TRAMPOLINE_GPA, tramp_start, (size_t)(tramp_end - tramp_start));
    for (unsigned i = 0; i < mp->ncpus && ncpus < max_cpus; i++) {
        if (mp->apic_id[i] == bsp) {
            continue;
        }
        if (smp_start_one(ncpus, mp->apic_id[i]) < 0) {
            kprintf("colo-testguest: cpu with APIC id %u did not start\n", mp->apic_id[i]);
            continue;
        }
        ncpus++;
    }
    return ncpus;
}
