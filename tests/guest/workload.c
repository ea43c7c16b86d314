/* Memory workload. Per CPU and per tick: work out how many periods are
 * due, write share pages per period, record each write in the status page
 * after the page itself, so the record never runs ahead of memory. */
#include "console.h"
#include "pattern.h"
#include "status.h"
#include "workload.h"

#define MAX_CATCH_UP 10     /* periods made up after a long stall, at most */

extern char _end[];

static uint64_t area_gpa;
static uint64_t area_pages;
static uint32_t dirty_ms;
static uint32_t hz;
static volatile int running;

static uint64_t workload_clamp(const struct guest_config *cfg, const struct memmap_entry *map, unsigned nmap)
{
    uint64_t base = (cfg->area_base + PATTERN_PAGE_SIZE - 1) & ~(uint64_t)(PATTERN_PAGE_SIZE - 1);
    uint64_t pages = cfg->area / PATTERN_PAGE_SIZE;
    uint64_t image_end = (uint64_t)(uintptr_t)_end;

    if (!pages || !cfg->dirty_pages || !cfg->dirty_ms) {
        return 0;
    }
    if (base < image_end) {
        kprintf("colo-testguest: workload: area_base 0x%lx overlaps the guest image (ends 0x%lx), no workload\n",
                base, image_end);
        return 0;
    }
    for (unsigned i = 0; i < nmap; i++) {
        if (map[i].type != 1 || base < map[i].addr || base >= map[i].addr + map[i].size) {
            continue;
        }
        uint64_t room = (map[i].addr + map[i].size - base) / PATTERN_PAGE_SIZE;
        if (pages > room) {
            kprintf("colo-testguest: workload: area shrunk from %lu to %lu pages to fit RAM\n", pages, room);
            pages = room;
        }
        if (pages > UINT32_MAX) {
            pages = UINT32_MAX;
        }
        area_gpa = base;
        return pages;
    }
    kprintf("colo-testguest: workload: no RAM at area_base 0x%lx, no workload\n", base);
    return 0;
}

void workload_setup(const struct guest_config *cfg, const struct memmap_entry *map, unsigned nmap,
                    unsigned ncpus)
{
    uint64_t first = 0;

    area_pages = workload_clamp(cfg, map, nmap);
    dirty_ms = cfg->dirty_ms;
    hz = cfg->hz;
    STATUS->area_gpa = area_gpa;
    STATUS->area_pages = area_pages;
    for (unsigned i = 0; i < ncpus; i++) {
        struct percpu *c = &cpu_areas[i].pc;
        uint64_t slice = area_pages / ncpus + (i < area_pages % ncpus ? 1 : 0);

        c->share = cfg->dirty_pages / ncpus + (i < cfg->dirty_pages % ncpus ? 1 : 0);
        c->slice_first = first;
        c->slice_pages = area_pages ? slice : 0;
        c->writes = 0;
        STATUS->cpu[i].slice_first = first;
        STATUS->cpu[i].slice_pages = c->slice_pages;
        STATUS->cpu[i].writes = 0;
        first += slice;
    }
}

void workload_start(void)
{
    if (area_pages) {
        STATUS->flags |= STATUS_FLAG_WORKLOAD;
        running = 1;
    }
}

bool workload_running(void)
{
    return running;
}

static void workload_write(struct percpu *c)
{
    uint64_t w = c->writes;
    uint64_t page = c->slice_first + w % c->slice_pages;

    pattern_write((void *)(uintptr_t)(area_gpa + page * PATTERN_PAGE_SIZE), (uint32_t)page,
                  w / c->slice_pages + 1);
    c->writes = w + 1;
    STATUS->cpu[c->index].writes = w + 1;
}

void workload_tick(struct percpu *c)
{
    if (!running || !c->share || !c->slice_pages) {
        return;
    }
    if (!c->wl_started) {
        c->wl_started = 1;
        c->start_tick = c->ticks;
    }
    uint64_t due = (c->ticks - c->start_tick) * 1000 / hz / dirty_ms;
    if (due > c->periods + MAX_CATCH_UP) {
        c->periods = due - MAX_CATCH_UP;
    }
    while (c->periods < due) {
        c->periods++;
        for (uint32_t i = 0; i < c->share; i++) {
            workload_write(c);
        }
    }
}
