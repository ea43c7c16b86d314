/* Timer ticks, heartbeat and status lines. */
#include "acpi.h"
#include "apic.h"
#include "console.h"
#include "dimm.h"
#include "netif.h"
#include "status.h"
#include "tick.h"
#include "workload.h"

static struct guest_config cfg;
static unsigned ncpus;

void tick_setup(const struct guest_config *config, unsigned cpus)
{
    cfg = *config;
    ncpus = cpus;
}

static void tick_status_line(uint64_t hb, uint64_t dirtied)
{
    char buf[200];
    int n = ksnprintf(buf, sizeof(buf), "colo-testguest: status hb=%lu dirtied=%lu cpus=%u ticks=", hb,
                      dirtied, ncpus);

    for (unsigned i = 0; i < ncpus && n < (int)sizeof(buf); i++) {
        n += ksnprintf(buf + n, sizeof(buf) - (unsigned)n, "%s%lu", i ? "," : "", cpu_areas[i].pc.ticks);
    }
    if (tsc_hz && n < (int)sizeof(buf)) {
        n += ksnprintf(buf + n, sizeof(buf) - (unsigned)n, " tick_us=");
        for (unsigned i = 0; i < ncpus && n < (int)sizeof(buf); i++) {
            struct percpu *c = &cpu_areas[i].pc;
            uint64_t us = c->ticks ? c->busy_tsc * 1000000 / tsc_hz / c->ticks : 0;
            n += ksnprintf(buf + n, sizeof(buf) - (unsigned)n, "%s%lu", i ? "," : "", us);
        }
    }
    if (dimm_count() && n < (int)sizeof(buf)) {
        ksnprintf(buf + n, sizeof(buf) - (unsigned)n, " dimms=%u dimm_dirtied=%lu", dimm_count(), dimm_writes());
    }
    kprintf("%s\n", buf);
}

static void tick_second(void)
{
    uint64_t hb = STATUS->heartbeat + 1;
    uint64_t dirtied = 0;

    for (unsigned i = 0; i < ncpus; i++) {
        dirtied += cpu_areas[i].pc.writes;
    }
    STATUS->pages_dirtied = dirtied;
    STATUS->dimm_writes = dimm_writes();
    netif_status();
    STATUS->heartbeat = hb;
    if (cfg.interval && hb % cfg.interval == 0) {
        tick_status_line(hb, dirtied);
        netif_status_line();
    }
    if (cfg.poweroff_after && hb >= cfg.poweroff_after) {
        acpi_poweroff("poweroff_after");
    }
    if (cfg.crash_after && hb >= cfg.crash_after) {
        /* On purpose: lets tests see how a crashed guest looks. */
        __asm__ volatile("ud2");
    }
}

void tick_handle(struct percpu *c)
{
    c->ticks++;
    STATUS->cpu[c->index].ticks = c->ticks;
    workload_tick(c);
    if (c->index == 0) {
        dimm_tick(c);
        netif_tick(c, cfg.hz);
        if (c->ticks % cfg.hz == 0) {
            tick_second();
        }
    }
}
