/* Shared by the files of vmm/boot/ only: the low-memory layout the loader
 * uses and the per-format loaders boot.c dispatches to. */
#ifndef COLO_VMM_BOOT_INTERNAL_H
#define COLO_VMM_BOOT_INTERNAL_H

#include <string.h>

#include "boot.h"

/* Everything the loader writes itself lives below 1 MiB; kernels are
 * placed at or above BOOT_KERNEL_MIN, so the two never overlap. */
#define BOOT_GDT_ADDR        UINT64_C(0x1000)
#define BOOT_START_INFO_ADDR UINT64_C(0x6000)   /* hvm_start_info (PVH) */
#define BOOT_MODLIST_ADDR    UINT64_C(0x6040)   /* one hvm_modlist_entry: the initrd */
#define BOOT_MEMMAP_ADDR     UINT64_C(0x6100)   /* hvm_memmap_table_entry[] */
#define BOOT_ZERO_PAGE_ADDR  UINT64_C(0x7000)   /* struct boot_params (Linux) */
#define BOOT_STACK_TOP       UINT64_C(0x8ff0)   /* stack page 0x8000-0x8fff */
#define BOOT_PML4_ADDR       UINT64_C(0x9000)   /* then PDPT 0xa000, 4 PDs 0xb000-0xefff */
#define BOOT_CMDLINE_ADDR    UINT64_C(0x20000)
#define BOOT_CMDLINE_MAX     UINT64_C(0x10000)  /* bytes including the NUL */
#define BOOT_MPTABLE_ADDR    UINT64_C(0xf0000)  /* BIOS area, reserved in e820 */
#define BOOT_ACPI_ADDR       UINT64_C(0xf2000)  /* RSDP first, then the other ACPI tables */
#define BOOT_KERNEL_MIN      UINT64_C(0x100000)

/* The areas boot.c clears before a load, so nothing of a previous boot
 * (or of a fuzz iteration) leaks into the next one. */
#define BOOT_SCRATCH_START   UINT64_C(0x1000)
#define BOOT_SCRATCH_END     (BOOT_CMDLINE_ADDR + BOOT_CMDLINE_MAX)

/* GDT selectors (Linux: __BOOT_CS 0x10, __BOOT_DS 0x18). */
#define BOOT_SEL_CODE32 0x08
#define BOOT_SEL_CODE64 0x10
#define BOOT_SEL_DATA   0x18
#define BOOT_SEL_TSS    0x20
#define BOOT_GDT_SIZE   0x30   /* null, code32, code64, data, 16-byte TSS */

/* Little-endian field access in byte buffers (file headers, tables). */
static inline uint16_t boot_rd16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof(v));
    return GUINT16_FROM_LE(v);
}

static inline uint32_t boot_rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return GUINT32_FROM_LE(v);
}

static inline uint64_t boot_rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return GUINT64_FROM_LE(v);
}

static inline void boot_wr16(uint8_t *p, uint16_t v)
{
    v = GUINT16_TO_LE(v);
    memcpy(p, &v, sizeof(v));
}

static inline void boot_wr32(uint8_t *p, uint32_t v)
{
    v = GUINT32_TO_LE(v);
    memcpy(p, &v, sizeof(v));
}

static inline void boot_wr64(uint8_t *p, uint64_t v)
{
    v = GUINT64_TO_LE(v);
    memcpy(p, &v, sizeof(v));
}

/* Table checksum: the byte that makes @len bytes sum to zero. */
static inline uint8_t boot_checksum(const uint8_t *p, size_t len)
{
    uint8_t sum = 0;

    for (size_t i = 0; i < len; i++) {
        sum += p[i];
    }
    return (uint8_t)-sum;
}

/* Per-format loaders: validate the image, load kernel, initrd and command
 * line, write the boot parameters; fill mode, entry, params, page_tables
 * and kernel_start/end of @entry. They check their own magic, so they are
 * safe to call on arbitrary bytes (the fuzz targets do). */
bool boot_pvh_load(GuestMemory *mem, const BootImages *img, BootEntry *entry, GError **error);
bool boot_bzimage_load(GuestMemory *mem, const BootImages *img, BootEntry *entry, GError **error);

/* True if @buf starts like the format (used by the dispatcher). */
bool boot_pvh_probe(const uint8_t *buf, size_t len);
bool boot_bzimage_probe(const uint8_t *buf, size_t len);

/* Writes the command line at BOOT_CMDLINE_ADDR; @max_len excludes the NUL. */
bool boot_cmdline_write(GuestMemory *mem, const char *cmdline, uint64_t max_len, GError **error);

/* Places the initrd as high as possible in [@lowest, @limit), page
 * aligned, and copies it there. */
bool boot_initrd_place(GuestMemory *mem, const BootImages *img, uint64_t lowest, uint64_t limit,
                       uint64_t *addr, GError **error);

/* MP table (floating pointer + configuration table) at BOOT_MPTABLE_ADDR. */
bool boot_mptable_write(GuestMemory *mem, unsigned ncpus, GError **error);

/* ACPI tables (RSDP at BOOT_ACPI_ADDR, RSDT/XSDT, FADT, FACS, DSDT,
 * MADT) describing the same CPUs, IOAPIC and PM hardware as the MP table. */
bool boot_acpi_write(GuestMemory *mem, unsigned ncpus, unsigned mem_slots, GError **error);

/* boot/dsdt.asl as compiled by iasl (boot/dsdt-aml.c, made by the build). */
extern const unsigned char boot_dsdt_aml[];
extern const size_t boot_dsdt_aml_len;

/* The GDT every mode uses, and the identity page tables of Linux64. */
bool boot_gdt_write(GuestMemory *mem, BootEntry *entry);
bool boot_page_tables_write(GuestMemory *mem, BootEntry *entry);

/* The GDT's descriptors, indexed by selector / 8 (the TSS takes two slots). */
uint64_t boot_gdt_descriptor(unsigned index);

#endif
