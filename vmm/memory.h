/* Guest RAM: the host mappings behind guest-physical memory and the
 * translation from guest-physical addresses to host pointers.
 *
 * Layout (the PC's): RAM starts at 0 and runs up to GUEST_LOW_RAM_END
 * (3 GiB); RAM beyond that is placed from 4 GiB up, leaving the hole below
 * 4 GiB for MMIO (IOAPIC, LAPIC, PCI). One RamBlock ("pc.ram") backs both
 * parts; each part is one KVM memory slot. */
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
    int fd;             /* memfd or the -mem-path file */
    uint64_t ram_offset; /* first byte in the page numbering of the dirty log */
} RamBlock;

/* A guest-physical range backed by part of a RamBlock (one KVM slot). */
typedef struct MemRegion {
    uint64_t gpa;
    uint64_t size;
    RamBlock *block;
    uint64_t offset;    /* into block */
    uint32_t slot;      /* KVM slot id */
} MemRegion;

#define GUEST_MAX_REGIONS 8

typedef struct GuestMemory {
    uint64_t ram_size;          /* all RAM, bytes */
    RamBlock *blocks[GUEST_MAX_REGIONS];
    unsigned nr_blocks;
    MemRegion regions[GUEST_MAX_REGIONS];
    unsigned nr_regions;
    DirtyLog dirty;             /* pages written by devices (not vCPUs: KVM logs those) */
} GuestMemory;

typedef struct GuestMemoryConfig {
    uint64_t size;              /* bytes */
    const char *mem_path;       /* NULL: anonymous memfd; a directory (such as
                                 * a hugetlbfs mount): an unlinked file in it */
} GuestMemoryConfig;

/* Allocate guest RAM and lay it out; does not touch KVM. */
GuestMemory *guest_memory_new(const GuestMemoryConfig *cfg, GError **error);
void guest_memory_free(GuestMemory *mem);

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
