/* Kernel loading and boot-time tables: puts a kernel (ELF with the Xen PVH
 * note, or a Linux bzImage), its initrd and command line into guest RAM,
 * writes what the kernel expects to find there (hvm_start_info or the
 * Linux zero page, an e820 map, an MP table, a GDT, page tables) and
 * computes the boot vCPU's initial registers. No KVM ioctls here: the VMM
 * core applies the result. docs/boot.md describes the memory map. */
#ifndef COLO_VMM_BOOT_H
#define COLO_VMM_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>
#include <linux/kvm.h>

#include "memory.h"

typedef enum { BOOT_MODE_PVH, BOOT_MODE_LINUX64 } BootMode;

typedef struct BootConfig {
    const char *kernel;    /* path */
    const char *initrd;    /* path or NULL */
    const char *cmdline;   /* or NULL */
    unsigned ncpus;        /* for the MP table, 1..BOOT_MAX_CPUS */
    unsigned mem_slots;    /* DIMM slots the DSDT describes (-m slots=) */
} BootConfig;

typedef struct BootEntry {
    BootMode mode;
    uint64_t entry;        /* guest-physical entry point (PVH: 32-bit entry; Linux: code32_start+0x200) */
    uint64_t params;       /* PVH: hvm_start_info GPA (ebx); Linux: zero page GPA (rsi) */
    uint64_t gdt;          /* GDT built in guest memory by the loader */
    uint64_t gdt_limit;    /* its size in bytes minus one */
    uint64_t page_tables;  /* Linux64: identity-mapped PML4 GPA (CR3); 0 for PVH */
    uint64_t stack;        /* initial stack pointer (both modes get a small one), else 0 */
    uint64_t kernel_start; /* where the kernel image was placed (informational, tests) */
    uint64_t kernel_end;   /* end of the memory it claims (init_size or the ELF's memsz) */
} BootEntry;

/* The same images in memory, for callers that already hold the bytes
 * (and for the fuzz targets). */
typedef struct BootImages {
    const uint8_t *kernel;
    size_t kernel_size;
    const uint8_t *initrd;   /* NULL: none */
    size_t initrd_size;
    const char *cmdline;     /* NULL: empty */
    unsigned ncpus;
    unsigned mem_slots;      /* DIMM slots the DSDT describes (-m slots=) */
} BootImages;

/* One e820 entry, laid out exactly as in the Linux zero page (20 bytes). */
struct boot_e820_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
} __attribute__((packed));

#define BOOT_E820_RAM      1
#define BOOT_E820_RESERVED 2
#define BOOT_E820_MAX      128   /* the zero page's e820_table */
#define BOOT_MAX_CPUS      254   /* APIC ids 0..ncpus-1 and the IOAPIC id ncpus fit in 8 bits */

#define BOOT_ERROR (boot_error_quark())
GQuark boot_error_quark(void);

typedef enum {
    BOOT_ERROR_FORMAT,    /* not an ELF or bzImage, or an ELF without the PVH note */
    BOOT_ERROR_VERSION,   /* boot protocol too old or no 64-bit entry */
    BOOT_ERROR_INVALID,   /* malformed or truncated image, bad header field, bad config */
    BOOT_ERROR_NO_ROOM,   /* kernel, initrd or command line does not fit */
} BootError;

/* Detects the kernel format (ELF with PVH note, or bzImage by its "HdrS"
 * header), loads kernel, initrd and command line into guest RAM, writes the
 * boot parameters (hvm_start_info with memmap, or the zero page with
 * e820), the MP table and a GDT (plus identity page tables for Linux64).
 * Sets @error (BOOT_ERROR or G_FILE_ERROR) for every unusable input and
 * leaves @entry untouched then. */
bool boot_load(GuestMemory *mem, const BootConfig *cfg, BootEntry *entry, GError **error);

/* boot_load() on images already in memory. */
bool boot_load_images(GuestMemory *mem, const BootImages *img, BootEntry *entry, GError **error);

/* Reads the file at @path whole; @what ("the kernel") names it in errors.
 * Sized first, as QEMU does: what is not a regular file (/dev/zero, a
 * pipe) is refused (BOOT_ERROR_INVALID), and so is a file larger than
 * @max_size (BOOT_ERROR_NO_ROOM), the guest RAM that must hold it, before
 * anything is read. Open and read failures are G_FILE_ERROR. */
GBytes *boot_read_file(const char *path, const char *what, uint64_t max_size, GError **error);

/* The e820 map for this RAM layout (shared by PVH memmap and the zero
 * page); returns the number of entries written (at most @max). */
unsigned boot_e820_build(const GuestMemory *mem, struct boot_e820_entry *out, unsigned max);

/* Initial register state of the boot vCPU for @entry, without any ioctl.
 * @regs is filled completely. @sregs: only the segment registers, GDT/IDT,
 * CR0/CR2/CR3/CR4 and EFER are written, so start from KVM_GET_SREGS (APIC base
 * and pending interrupts stay as KVM set them), then KVM_SET_SREGS. */
void boot_cpu_state(const BootEntry *entry, struct kvm_regs *regs, struct kvm_sregs *sregs);

#endif
