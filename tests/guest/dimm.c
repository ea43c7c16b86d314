/* Hot-added RAM. The controller is QEMU's ACPI memory hotplug interface
 * (docs/test-guest.md): select a slot, read its status, base and size,
 * clear its insert event. Each slot costs two exits to look at, so slots
 * are only scanned at boot and on a hotplug SCI. Added DIMMs are identity
 * mapped (entry.S maps 0-4 GiB; above, page directories from a pool, one
 * per GiB touched) and written by the boot CPU in its ticks: dirty_pages
 * pages per dirty_ms, shared over all DIMMs, while the workload runs. */
#include "acpi.h"
#include "console.h"
#include "dimm.h"
#include "io.h"
#include "lib.h"
#include "pattern.h"
#include "status.h"
#include "workload.h"

#define MHP_BASE_LO     0xa00     /* write: slot selector */
#define MHP_BASE_HI     0xa04
#define MHP_SIZE_LO     0xa08
#define MHP_SIZE_HI     0xa0c
#define MHP_STATUS      0xa14     /* write: control */
#define MHP_ENABLED     0x01
#define MHP_INSERT      0x02      /* also the control bit that clears it */
#define MHP_REMOVE      0x04
#define MHP_SLOTS       32

#define GIB             (1ULL << 30)
#define HOTPLUG_LOW     (4 * GIB)     /* the hotplug area never starts below */
#define MAP_LIMIT       (512 * GIB)   /* what our one PDPT can map */
#define PD_POOL         8             /* GiBs mappable above 4 GiB: all of 4-12 GiB */
#define PTE_2M_WB       0x83          /* P, RW, PS */
#define PTE_TABLE       0x03          /* P, RW */
#define MAX_CATCH_UP    10            /* as workload.c */

struct dimm {
    uint64_t gpa;
    uint64_t pages;
    uint64_t writes;
    uint32_t share;       /* pages per period */
    uint32_t slot;
};

extern uint64_t pdpt[512];    /* entry.S */

/* Not cleared at boot (not loaded, no rep stos): a directory is filled
 * completely before the PDPT points at it. Filling one costs ~1,500
 * instructions, once, against ~6,000 per GiB to build them all at boot. */
static uint64_t pd_pool[PD_POOL][512] __attribute__((aligned(4096), section(".bss.pagepool")));
static unsigned pd_used;

static struct dimm dimms[STATUS_MAX_DIMMS];
static unsigned ndimms;
static uint32_t slots_added;  /* bit per slot */
static bool controller;
static uint32_t dirty_pages;
static uint32_t dirty_ms;
static uint32_t hz;
static bool started;
static uint64_t start_tick;
static uint64_t periods;

static uint64_t mhp_read64(uint16_t lo)
{
    return inl(lo) | (uint64_t)inl((uint16_t)(lo + 4)) << 32;
}

/* All-or-nothing: the page directories every GiB of [base, base+size)
 * needs, or false. No TLB flush: a not-present entry is never cached. */
static bool dimm_map(uint64_t base, uint64_t size)
{
    uint64_t first = base / GIB;
    uint64_t last = (base + size - 1) / GIB;
    unsigned need = 0;

    if (last >= MAP_LIMIT / GIB) {
        return false;
    }
    for (uint64_t g = first; g <= last; g++) {
        need += !pdpt[g];
    }
    if (need > PD_POOL - pd_used) {
        return false;
    }
    for (uint64_t g = first; g <= last; g++) {
        if (pdpt[g]) {
            continue;
        }
        uint64_t *pd = pd_pool[pd_used++];
        for (unsigned i = 0; i < 512; i++) {
            pd[i] = g * GIB + (uint64_t)i * 0x200000 + PTE_2M_WB;
        }
        __asm__ volatile("" ::: "memory");
        pdpt[g] = (uint64_t)(uintptr_t)pd + PTE_TABLE;
    }
    return true;
}

static const char *dimm_refuse(uint64_t base, uint64_t size)
{
    if (!size || size % PATTERN_PAGE_SIZE || base % PATTERN_PAGE_SIZE || base < HOTPLUG_LOW ||
        base + size < base) {
        return "bad range";
    }
    for (unsigned i = 0; i < ndimms; i++) {
        if (base < dimms[i].gpa + dimms[i].pages * PATTERN_PAGE_SIZE &&
            dimms[i].gpa < base + size) {
            return "overlaps another DIMM";
        }
    }
    if (ndimms == STATUS_MAX_DIMMS) {
        return "no room for its record (16 DIMMs)";
    }
    if (!dimm_map(base, size)) {
        return "outside what the guest can map";
    }
    return 0;
}

static void dimm_shares(void)
{
    for (unsigned i = 0; i < ndimms; i++) {
        dimms[i].share = dirty_pages / ndimms + (i < dirty_pages % ndimms ? 1 : 0);
    }
}

static void dimm_add(uint32_t slot, uint64_t base, uint64_t size, uint32_t how)
{
    const char *why = dimm_refuse(base, size);
    char sz[24];

    if (size % (1 << 20) == 0) {
        ksnprintf(sz, sizeof(sz), "%luM", size >> 20);
    } else {
        ksnprintf(sz, sizeof(sz), "%lu", size);
    }
    STATUS->dimms_seen++;
    slots_added |= 1u << slot;
    kprintf("colo-testguest: dimm slot=%u addr=0x%lx size=%s%s%s\n", slot, base, sz,
            why ? " ignored: " : "", why ? why : "");
    if (why) {
        STATUS->dimms_ignored++;
        return;
    }
    /* Record first, count last: a reader never sees a half-filled one. */
    volatile struct status_dimm *rec = &STATUS->dimm[ndimms];
    rec->slot = slot;
    rec->flags = how;
    rec->gpa = base;
    rec->pages = size / PATTERN_PAGE_SIZE;
    rec->writes = 0;
    dimms[ndimms] = (struct dimm){ .gpa = base, .pages = size / PATTERN_PAGE_SIZE, .slot = slot };
    ndimms++;
    STATUS->dimm_count = ndimms;
    dimm_shares();
}

/* @boot: also take DIMMs present without an insert event. */
static void dimm_scan(bool boot)
{
    for (uint32_t slot = 0; slot < MHP_SLOTS; slot++) {
        outl(MHP_BASE_LO, slot);
        uint8_t st = inb(MHP_STATUS);

        if (!(st & MHP_INSERT) && !(boot && (st & MHP_ENABLED))) {
            continue;
        }
        uint64_t base = mhp_read64(MHP_BASE_LO);
        uint64_t size = mhp_read64(MHP_SIZE_LO);
        if (st & MHP_INSERT) {
            outb(MHP_STATUS, MHP_INSERT);
        }
        if (slots_added & (1u << slot)) {
            continue;       /* seen at boot, its event came after */
        }
        if (!(st & MHP_ENABLED)) {
            kprintf("colo-testguest: dimm slot=%u: insert event without a DIMM, ignored\n", slot);
            continue;
        }
        dimm_add(slot, base, size, boot ? STATUS_DIMM_BOOT : STATUS_DIMM_HOTPLUG);
    }
}

void dimm_init(const struct guest_config *cfg)
{
    dirty_pages = cfg->dirty_pages;
    dirty_ms = cfg->dirty_ms;
    hz = cfg->hz;
    /* No device answers 0xff; the controller's status has bits 0-2 only. */
    outl(MHP_BASE_LO, 0);
    if (inb(MHP_STATUS) & ~(MHP_ENABLED | MHP_INSERT | MHP_REMOVE)) {
        return;
    }
    controller = true;
    STATUS->flags |= STATUS_FLAG_MEMHP;
    /* The pool restarts empty: entries from before a reset that did not
     * reload the image would share directories with new ones. */
    memset(&pdpt[HOTPLUG_LOW / GIB], 0, sizeof(pdpt) - HOTPLUG_LOW / GIB * sizeof(pdpt[0]));
    acpi_gpe_enable(DIMM_GPE);
    dimm_scan(true);
}

void dimm_sci(void)
{
    STATUS->hotplug_scis++;
    if (controller) {
        dimm_scan(false);
    }
}

static void dimm_write(unsigned i)
{
    struct dimm *d = &dimms[i];
    uint64_t w = d->writes;
    uint64_t off = w % d->pages;
    uint64_t gpa = d->gpa + off * PATTERN_PAGE_SIZE;

    pattern_write((void *)(uintptr_t)gpa, (uint32_t)(gpa / PATTERN_PAGE_SIZE), w / d->pages + 1);
    d->writes = w + 1;
    STATUS->dimm[i].writes = w + 1;
}

void dimm_tick(struct percpu *c)
{
    if (!workload_running() || !dirty_ms) {
        return;
    }
    if (!started) {
        started = true;
        start_tick = c->ticks;
    }
    /* Periods pass without DIMMs too: one added later starts at once,
     * without a burst of make-up writes. */
    uint64_t due = (c->ticks - start_tick) * 1000 / hz / dirty_ms;
    if (!ndimms || due > periods + MAX_CATCH_UP) {
        periods = ndimms ? due - MAX_CATCH_UP : due;
    }
    while (periods < due) {
        periods++;
        for (unsigned i = 0; i < ndimms; i++) {
            for (uint32_t n = 0; n < dimms[i].share; n++) {
                dimm_write(i);
            }
        }
    }
}

uint64_t dimm_writes(void)
{
    uint64_t sum = 0;

    for (unsigned i = 0; i < ndimms; i++) {
        sum += dimms[i].writes;
    }
    return sum;
}

unsigned dimm_count(void)
{
    return ndimms;
}
