/* Boot CPU: from the PVH entry to the idle loop. Reads what the VMM left
 * (start info, command line, memmap) before anything else writes low
 * memory, then brings up interrupts, timers, ACPI, the APs and the
 * workload, prints the banner and idles. */
#include "acpi.h"
#include "apic.h"
#include "cmdline.h"
#include "console.h"
#include "dimm.h"
#include "intr.h"
#include "io.h"
#include "lib.h"
#include "mptable.h"
#include "netif.h"
#include "percpu.h"
#include "pvh.h"
#include "smp.h"
#include "status.h"
#include "tick.h"
#include "workload.h"

#define MAX_MEMMAP 64

__attribute__((noreturn)) void guest_main(uint64_t start_info);

static char cmdline[STATUS_CMDLINE_MAX];
static struct memmap_entry memmap[MAX_MEMMAP];
static unsigned nmemmap;

/* Guest-physical memory is identity mapped below 4 GiB. */
static const uint8_t *guest_map(void *opaque, uint64_t gpa, size_t len)
{
    (void)opaque;
    if (gpa < 0x400 || gpa >= 0x100000000ULL || len > 0x100000000ULL - gpa) {
        return 0;
    }
    return (const uint8_t *)(uintptr_t)gpa;
}

static bool boot_info_read(uint64_t si_gpa)
{
    const volatile struct hvm_start_info *si = (const volatile struct hvm_start_info *)(uintptr_t)si_gpa;

    if (!si_gpa || si_gpa >= 0x100000000ULL || si->magic != HVM_START_MAGIC) {
        return false;
    }
    if (si->cmdline_paddr && si->cmdline_paddr < 0x100000000ULL - sizeof(cmdline)) {
        const volatile char *s = (const volatile char *)(uintptr_t)si->cmdline_paddr;
        for (unsigned i = 0; i < sizeof(cmdline) - 1 && s[i]; i++) {
            cmdline[i] = s[i];
        }
    }
    if (si->version >= 1 && si->memmap_paddr && si->memmap_paddr < 0x100000000ULL) {
        const volatile struct memmap_entry *m = (const volatile struct memmap_entry *)(uintptr_t)si->memmap_paddr;
        for (unsigned i = 0; i < si->memmap_entries && nmemmap < MAX_MEMMAP; i++) {
            memmap[nmemmap++] = (struct memmap_entry){ m[i].addr, m[i].size, m[i].type, 0 };
        }
    }
    return true;
}

static void cmdline_warn(void *opaque, const char *what, const char *word, size_t len)
{
    char w[64];
    size_t n = len < sizeof(w) - 1 ? len : sizeof(w) - 1;

    (void)opaque;
    memcpy(w, word, n);
    w[n] = '\0';
    kprintf("colo-testguest: cmdline: %s: %s\n", what, w);
}

static uint64_t ram_bytes(void)
{
    uint64_t total = 0;

    for (unsigned i = 0; i < nmemmap; i++) {
        if (memmap[i].type == 1) {
            total += memmap[i].size;
        }
    }
    return total;
}

static void status_init(const struct guest_config *cfg)
{
    volatile struct status_page *st = STATUS;

    memset((void *)st, 0, sizeof(*st));
    st->version = STATUS_VERSION;
    st->hz = cfg->hz;
    st->interval = cfg->interval;
    st->dirty_pages = cfg->dirty_pages;
    st->dirty_ms = cfg->dirty_ms;
    st->poweroff_after = cfg->poweroff_after;
    st->ram_bytes = ram_bytes();
    memcpy((void *)st->cmdline, cmdline, sizeof(cmdline));
    st->magic = STATUS_MAGIC;
}

static void size_str(char *buf, size_t len, uint64_t bytes)
{
    if (bytes && bytes % (1ULL << 30) == 0) {
        ksnprintf(buf, len, "%luG", bytes >> 30);
    } else if (bytes && bytes % (1ULL << 20) == 0) {
        ksnprintf(buf, len, "%luM", bytes >> 20);
    } else if (bytes && bytes % 1024 == 0) {
        ksnprintf(buf, len, "%luK", bytes >> 10);
    } else {
        ksnprintf(buf, len, "%lu", bytes);
    }
}

void guest_main(uint64_t si_gpa)
{
    struct percpu *bsp = &cpu_areas[0].pc;   /* not cleared with bss */
    struct guest_config cfg;
    struct mp_info mp;
    bool have_si;
    char mem[16], area[16];
    uint64_t tsc0 = rdtsc();

    memset(bsp, 0, sizeof(*bsp));
    have_si = boot_info_read(si_gpa);

    console_init();
    kprintf("\ncolo-testguest: booting\n");
    if (!have_si) {
        kprintf("colo-testguest: no hvm_start_info at 0x%lx, running with defaults\n", si_gpa);
    } else if (!nmemmap) {
        kprintf("colo-testguest: no memmap in hvm_start_info, no workload\n");
    }
    cmdline_defaults(&cfg);
    cmdline_parse(cmdline, sizeof(cmdline), &cfg, cmdline_warn, 0);

    intr_init();
    intr_load();
    pic_disable();
    bsp->apic_id = lapic_id();
    lapic_init_cpu();
    apic_calibrate();
    status_init(&cfg);
    STATUS->lapic_hz = lapic_hz;
    STATUS->tsc_hz = tsc_hz;
    STATUS->cpu[0].apic_id = bsp->apic_id;
    STATUS->cpu[0].online = 1;
    bsp->online = 1;
    acpi_init(bsp->apic_id);

    if (!mptable_find(guest_map, 0, &mp)) {
        kprintf("colo-testguest: %s: 1 CPU\n", mp.error);
        mp = (struct mp_info){ .ncpus = 1, .ncpus_listed = 1, .bsp = 0 };
        mp.apic_id[0] = (uint8_t)bsp->apic_id;
    } else if (mp.ncpus_listed > mp.ncpus) {
        kprintf("colo-testguest: MP table lists %u CPUs, using the first %u\n", mp.ncpus_listed, mp.ncpus);
    }
    STATUS->cpus_found = mp.ncpus;
    unsigned ncpus = smp_start(&mp, cfg.cpus, cfg.hz);
    STATUS->cpus_up = ncpus;

    netif_init(&cfg, bsp->apic_id);
    workload_setup(&cfg, memmap, nmemmap, ncpus);
    dimm_init(&cfg);
    tick_setup(&cfg, ncpus);

    size_str(mem, sizeof(mem), STATUS->ram_bytes);
    size_str(area, sizeof(area), STATUS->area_pages * 4096);
    kprintf("colo-testguest ready: version=%u cpus=%u/%u mem=%s hz=%u interval=%u dirty_pages=%u dirty_ms=%u "
            "area=%s area_base=0x%lx poweroff_after=%u status=0x%x lapic_hz=%lu tsc_hz=%lu boot_tsc=%lu\n",
            STATUS_VERSION, ncpus, mp.ncpus, mem, cfg.hz, cfg.interval, cfg.dirty_pages, cfg.dirty_ms, area,
            STATUS->area_gpa, cfg.poweroff_after, STATUS_GPA, lapic_hz, tsc_hz, rdtsc() - tsc0);

    STATUS->flags |= STATUS_FLAG_READY;
    workload_start();
    lapic_timer_start(cfg.hz);
    cpu_idle(bsp);
}
