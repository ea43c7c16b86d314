/* Guest RAM: the host mappings behind guest-physical memory and the
 * translation from guest-physical addresses to host pointers.
 *
 * Layout (the PC's): RAM starts at 0 and runs up to GUEST_LOW_RAM_END
 * (3 GiB); RAM beyond that is placed from 4 GiB up, leaving the hole below
 * 4 GiB for MMIO (IOAPIC, LAPIC, PCI). One RamBlock ("pc.ram") backs both
 * parts; each part is one KVM memory slot. RAM added at run time (a
 * pc-dimm, vmm/dimm.h) is one more RamBlock and one more slot, published
 * while other threads use the layout: entries are filled in before the
 * counts that make them visible, and never change afterwards. */
#ifndef COLO_VMM_MEMORY_H
#define COLO_VMM_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "dirty-log.h"

#define GUEST_PAGE_SIZE     4096ULL
#define GUEST_LOW_RAM_END   0xC0000000ULL
#define GUEST_HIGH_RAM_BASE 0x100000000ULL

/* One host allocation of guest RAM, named for the migration stream. */
typedef struct RamBlock {
    char *id;           /* "pc.ram" */
    uint8_t *host;      /* mapping of the whole block */
    uint64_t size;      /* bytes, a multiple of GUEST_PAGE_SIZE */
    int fd;             /* memfd or the -mem-path file; -1: anonymous memory */
    uint64_t ram_offset; /* first byte in the page numbering of the dirty log */
    /* RAM of a pc-dimm: the device's id, slot and guest-physical address
     * (device_id NULL for the boot RAM). */
    char *device_id;
    unsigned slot;
    uint64_t addr;
} RamBlock;

/* A guest-physical range backed by part of a RamBlock (one KVM slot). */
typedef struct MemRegion {
    uint64_t gpa;
    uint64_t size;
    RamBlock *block;
    uint64_t offset;    /* into block */
    uint32_t slot;      /* KVM slot id */
} MemRegion;

#define GUEST_MAX_DIMMS   32
#define GUEST_MAX_REGIONS (2 + GUEST_MAX_DIMMS)

typedef struct GuestMemory {
    uint64_t ram_size;          /* boot RAM (-m), bytes */
    RamBlock *blocks[GUEST_MAX_REGIONS];
    unsigned nr_blocks;         /* read with guest_memory_nr_blocks() off the main thread */
    MemRegion regions[GUEST_MAX_REGIONS];
    unsigned nr_regions;        /* read with acquire semantics: see guest_memory_plug */
    uint64_t ram_pages;         /* pages of all blocks: where the next block's numbering starts */
    DirtyLog dirty;             /* pages written by devices (not vCPUs: KVM logs those) */
    /* Serialises layout changes with whole-layout KVM operations (dirty
     * logging on and off), so that no new slot misses the logging flag. */
    GMutex layout_lock;
} GuestMemory;

typedef struct GuestMemoryConfig {
    uint64_t size;              /* bytes */
    const char *mem_path;       /* NULL: anonymous memory (or a memfd with
                                 * mem_share); a directory (such as a
                                 * hugetlbfs mount): an unlinked file in it */
    bool mem_share;             /* a memfd (MAP_SHARED) instead of anonymous memory */
} GuestMemoryConfig;

/* Allocate guest RAM and lay it out; does not touch KVM. */
GuestMemory *guest_memory_new(const GuestMemoryConfig *cfg, GError **error);
void guest_memory_free(GuestMemory *mem);

/* A RamBlock of @size bytes named @id, not yet in any layout: a file at
 * @mem_path (a directory: an unlinked file in it), else with @share a memfd,
 * else (the default) anonymous private memory, aligned to 2 MiB with
 * MADV_HUGEPAGE so that transparent huge pages back it where the host
 * allows them, and named "guest-ram:ID" in /proc/PID/maps where the kernel
 * names anonymous mappings. All of them MADV_DONTDUMP and MADV_DONTFORK.
 * Nothing in colo-vmm needs a file: postcopy, snapshot protect, dirty
 * logging and the COLO RAM cache work on either (ram_block_data_map,
 * ram_block_discard). */
RamBlock *ram_block_new(const char *id, uint64_t size, const char *mem_path, bool share, GError **error);
void ram_block_free(RamBlock *block);

/* Sets the bit of every page of @b that may hold data in @map (one bit per
 * guest page, cleared by the caller); a page left clear reads as zero.
 * Holes of a file; pages neither present nor swapped out (pagemap) of
 * anonymous memory. Where neither can be told, every page is set. */
void ram_block_data_map(const RamBlock *b, unsigned long *map);

/* Drops [offset, offset+len) of @b (page aligned): it reads as zero after,
 * and a userfaultfd registered for missing pages sees it missing. */
bool ram_block_discard(const RamBlock *b, uint64_t offset, uint64_t len, GError **error);

/* Add @block to the layout at guest-physical @gpa, as one region: numbers
 * its pages after all others, grows the device dirty log, calls @map (the
 * KVM slot) under the layout lock, then publishes block and region. Any
 * thread; vCPU, device and migration threads go on using the layout. */
typedef bool (*GuestMemoryMapFunc)(void *opaque, const MemRegion *region, GError **error);
bool guest_memory_plug(GuestMemory *mem, RamBlock *block, uint64_t gpa, GuestMemoryMapFunc map,
                       void *opaque, GError **error);

static inline unsigned guest_memory_nr_blocks(const GuestMemory *mem)
{
    return __atomic_load_n(&mem->nr_blocks, __ATOMIC_ACQUIRE);
}

/* All RAM, boot RAM and DIMMs, bytes. Any thread. */
static inline uint64_t guest_memory_total_size(const GuestMemory *mem)
{
    return __atomic_load_n(&mem->ram_pages, __ATOMIC_RELAXED) * GUEST_PAGE_SIZE;
}

static inline unsigned guest_memory_nr_regions(const GuestMemory *mem)
{
    return __atomic_load_n(&mem->nr_regions, __ATOMIC_ACQUIRE);
}

/* Host pointer for [gpa, gpa+len) if the whole range lies in one region,
 * NULL otherwise. Never returns a pointer for a range that crosses into
 * unbacked space. */
void *guest_memory_ptr(const GuestMemory *mem, uint64_t gpa, uint64_t len);

/* Copy between guest and host memory; false if any part is outside RAM.
 * The range may span regions. guest_memory_write is the device write path:
 * it marks the pages dirty for migration and checkpoints. */
bool guest_memory_read(const GuestMemory *mem, uint64_t gpa, void *buf, size_t len);
bool guest_memory_write(GuestMemory *mem, uint64_t gpa, const void *buf, size_t len);

/* A device that wrote through a guest_memory_ptr() pointer calls this once
 * the write is done (marking before would let a collector clear the bit
 * while the write is still in flight). Ranges outside RAM are ignored. */
void guest_memory_mark_dirty(GuestMemory *mem, uint64_t gpa, uint64_t len);

/* RAM mapped below 4 GiB / from 4 GiB up. */
uint64_t guest_memory_low_size(const GuestMemory *mem);
uint64_t guest_memory_high_size(const GuestMemory *mem);

/* Parse a QEMU-style size ("64M", "1G", "512", "2048k"; plain numbers
 * are MiB as in QEMU's -m). Returns false on malformed input. */
bool guest_memory_parse_size(const char *text, uint64_t *bytes, GError **error);

#endif
