/* ELF kernels booted through the Xen PVH entry (XEN_ELFNOTE_PHYS32_ENTRY):
 * our test guest and a Linux vmlinux built with CONFIG_PVH. The kernel is
 * entered in 32-bit flat protected mode with ebx pointing at an
 * hvm_start_info (version 1: command line, one module for the initrd, the
 * e820-style memmap). ELF32 and ELF64 are both accepted; every header
 * field is checked against the file and guest RAM before a byte is
 * copied. */
#include "config.h"

#include <elf.h>
#include <inttypes.h>

#include "boot-internal.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define XEN_HVM_START_MAGIC      0x336ec578U
#define XEN_HVM_START_VERSION    1
#define PVH_MAX_PHDRS            64       /* bounds the work on hostile input */

/* hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h), version 1. */
#define SI_MAGIC          0
#define SI_VERSION        4
#define SI_FLAGS          8
#define SI_NR_MODULES     12
#define SI_MODLIST_PADDR  16
#define SI_CMDLINE_PADDR  24
#define SI_RSDP_PADDR     32
#define SI_MEMMAP_PADDR   40
#define SI_MEMMAP_ENTRIES 48
#define SI_SIZE           56
#define MODLIST_ENTRY_SIZE 32             /* paddr, size, cmdline_paddr, reserved */
#define MEMMAP_ENTRY_SIZE  24             /* addr, size, type, reserved */

/* One program header, whatever the ELF class. */
typedef struct PvhPhdr {
    uint32_t type;
    uint64_t offset, paddr, filesz, memsz, align;
} PvhPhdr;

typedef struct PvhElf {
    const uint8_t *buf;
    size_t len;
    PvhPhdr phdrs[PVH_MAX_PHDRS];
    unsigned nphdrs;
} PvhElf;

bool boot_pvh_probe(const uint8_t *buf, size_t len)
{
    return len >= SELFMAG && memcmp(buf, ELFMAG, SELFMAG) == 0;
}

static bool pvh_elf_parse(PvhElf *elf, GError **error)
{
    const uint8_t *buf = elf->buf;
    size_t len = elf->len;
    bool is64;
    uint64_t phoff;
    unsigned phentsize, phnum;

    if (!boot_pvh_probe(buf, len)) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_FORMAT, "not an ELF file");
        return false;
    }
    if (len < EI_NIDENT) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID, "ELF file truncated in its header");
        return false;
    }
    if (buf[EI_CLASS] != ELFCLASS32 && buf[EI_CLASS] != ELFCLASS64) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID, "ELF class %u unknown", buf[EI_CLASS]);
        return false;
    }
    is64 = buf[EI_CLASS] == ELFCLASS64;
    if (len < (is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr))) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID, "ELF file truncated in its header");
        return false;
    }
    if (buf[EI_DATA] != ELFDATA2LSB) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID, "ELF file is not little-endian");
        return false;
    }
    unsigned type, machine;
    if (is64) {
        Elf64_Ehdr eh;
        memcpy(&eh, buf, sizeof(eh));
        type = eh.e_type, machine = eh.e_machine;
        phoff = eh.e_phoff, phentsize = eh.e_phentsize, phnum = eh.e_phnum;
    } else {
        Elf32_Ehdr eh;
        memcpy(&eh, buf, sizeof(eh));
        type = eh.e_type, machine = eh.e_machine;
        phoff = eh.e_phoff, phentsize = eh.e_phentsize, phnum = eh.e_phnum;
    }
    /* ELF32 kernels may be tagged x86-64 (a 64-bit kernel with a 32-bit
     * container, as Xen builds some); ELF64 ones must be. */
    if (machine != EM_X86_64 && (is64 || machine != EM_386)) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID, "ELF%s file for machine %u, not x86%s",
                    is64 ? "64" : "32", machine, is64 ? "-64" : "");
        return false;
    }
    if (type != ET_EXEC) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID, "ELF file is not an executable (type %u)",
                    type);
        return false;
    }
    if (phentsize != (is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr))) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID, "ELF program header size %u is wrong",
                    phentsize);
        return false;
    }
    if (phnum == 0 || phnum > PVH_MAX_PHDRS) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID,
                    "ELF file has %u program headers (1 to %u supported)", phnum, PVH_MAX_PHDRS);
        return false;
    }
    if (phoff > len || (uint64_t)phnum * phentsize > len - phoff) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID,
                    "ELF program headers at offset %" PRIu64 " lie beyond the end of the file (%zu bytes)",
                    phoff, len);
        return false;
    }

    for (unsigned i = 0; i < phnum; i++) {
        const uint8_t *p = buf + phoff + (uint64_t)i * phentsize;
        PvhPhdr *ph = &elf->phdrs[i];
        if (is64) {
            Elf64_Phdr h;
            memcpy(&h, p, sizeof(h));
            *ph = (PvhPhdr){ h.p_type, h.p_offset, h.p_paddr, h.p_filesz, h.p_memsz, h.p_align };
        } else {
            Elf32_Phdr h;
            memcpy(&h, p, sizeof(h));
            *ph = (PvhPhdr){ h.p_type, h.p_offset, h.p_paddr, h.p_filesz, h.p_memsz, h.p_align };
        }
        if (ph->type != PT_LOAD && ph->type != PT_NOTE) {
            continue;
        }
        if (ph->offset > len || ph->filesz > len - ph->offset) {
            g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID,
                        "ELF segment %u (offset %" PRIu64 ", %" PRIu64 " bytes) lies beyond the end "
                        "of the file (%zu bytes)", i, ph->offset, ph->filesz, len);
            return false;
        }
    }
    elf->nphdrs = phnum;
    return true;
}

/* Searches the PT_NOTE segments for Xen's PHYS32_ENTRY note; false with
 * @error set only for a malformed note, *found tells whether it exists. */
static bool pvh_find_entry(const PvhElf *elf, bool *found, uint64_t *entry, GError **error)
{
    *found = false;
    for (unsigned i = 0; i < elf->nphdrs; i++) {
        const PvhPhdr *ph = &elf->phdrs[i];
        if (ph->type != PT_NOTE) {
            continue;
        }
        /* Notes are 4-byte aligned, or 8 in segments that say so. */
        uint64_t align = ph->align == 8 ? 8 : 4;
        const uint8_t *p = elf->buf + ph->offset;
        uint64_t left = ph->filesz;
        while (left >= 12) {
            uint64_t namesz = boot_rd32(p), descsz = boot_rd32(p + 4);
            uint32_t type = boot_rd32(p + 8);
            uint64_t name_pad = (namesz + align - 1) & ~(align - 1);
            uint64_t desc_pad = (descsz + align - 1) & ~(align - 1);
            if (name_pad > left - 12 || descsz > left - 12 - name_pad) {
                break;              /* a truncated last note: nothing more to find */
            }
            const uint8_t *name = p + 12, *desc = name + name_pad;
            if (namesz == 4 && memcmp(name, "Xen", 4) == 0 && type == XEN_ELFNOTE_PHYS32_ENTRY) {
                if (descsz == 4) {
                    *entry = boot_rd32(desc);
                } else if (descsz == 8) {
                    *entry = boot_rd64(desc);
                } else {
                    g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID,
                                "Xen PVH entry note has a %" PRIu64 "-byte value (4 or 8 expected)",
                                descsz);
                    return false;
                }
                *found = true;
                return true;
            }
            uint64_t step = 12 + name_pad + MIN(desc_pad, left - 12 - name_pad);
            p += step;
            left -= step;
        }
    }
    return true;
}

/* Checks every PT_LOAD segment against guest RAM, then copies them. */
static bool pvh_load_segments(GuestMemory *mem, const PvhElf *elf, uint64_t pvh_entry,
                              BootEntry *entry, GError **error)
{
    uint64_t low = guest_memory_low_size(mem);
    uint64_t start = UINT64_MAX, end = 0;
    bool entry_loaded = false;

    for (unsigned i = 0; i < elf->nphdrs; i++) {
        const PvhPhdr *ph = &elf->phdrs[i];
        if (ph->type != PT_LOAD || ph->memsz == 0) {
            continue;
        }
        if (ph->filesz > ph->memsz) {
            g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID,
                        "ELF segment %u has more file bytes (%" PRIu64 ") than memory (%" PRIu64 ")",
                        i, ph->filesz, ph->memsz);
            return false;
        }
        if (ph->paddr < BOOT_KERNEL_MIN) {
            g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID,
                        "ELF segment %u at 0x%" PRIx64 " overlaps the boot area below 1 MiB",
                        i, ph->paddr);
            return false;
        }
        /* The 32-bit entry runs without paging: everything below 4 GiB. */
        if (ph->paddr >= low || ph->memsz > low - ph->paddr) {
            g_set_error(error, BOOT_ERROR, BOOT_ERROR_NO_ROOM,
                        "ELF segment %u [0x%" PRIx64 ", +0x%" PRIx64 ") lies outside guest RAM below "
                        "4 GiB (which ends at 0x%" PRIx64 ")", i, ph->paddr, ph->memsz, low);
            return false;
        }
        start = MIN(start, ph->paddr);
        end = MAX(end, ph->paddr + ph->memsz);
        if (pvh_entry >= ph->paddr && pvh_entry - ph->paddr < ph->memsz) {
            entry_loaded = true;
        }
    }
    if (end == 0) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID, "ELF file has no loadable segment");
        return false;
    }
    if (!entry_loaded) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID,
                    "PVH entry point 0x%" PRIx64 " is not inside a loaded segment", pvh_entry);
        return false;
    }

    for (unsigned i = 0; i < elf->nphdrs; i++) {
        const PvhPhdr *ph = &elf->phdrs[i];
        if (ph->type != PT_LOAD || ph->memsz == 0) {
            continue;
        }
        uint8_t *dst = guest_memory_ptr(mem, ph->paddr, ph->memsz);
        g_assert(dst);      /* checked above: inside the low region */
        memcpy(dst, elf->buf + ph->offset, ph->filesz);
        memset(dst + ph->filesz, 0, ph->memsz - ph->filesz);
    }
    entry->kernel_start = start;
    entry->kernel_end = end;
    return true;
}

/* hvm_start_info, its module list (the initrd) and the memmap. */
static bool pvh_start_info_write(GuestMemory *mem, bool has_initrd, uint64_t initrd,
                                 uint64_t initrd_size)
{
    struct boot_e820_entry map[BOOT_E820_MAX];
    unsigned n = boot_e820_build(mem, map, G_N_ELEMENTS(map));
    uint8_t memmap[BOOT_E820_MAX * MEMMAP_ENTRY_SIZE] = { 0 };
    uint8_t mod[MODLIST_ENTRY_SIZE] = { 0 };
    uint8_t si[SI_SIZE] = { 0 };

    for (unsigned i = 0; i < n; i++) {
        uint8_t *e = memmap + i * MEMMAP_ENTRY_SIZE;
        boot_wr64(e, map[i].addr);
        boot_wr64(e + 8, map[i].size);
        boot_wr32(e + 16, map[i].type);    /* XEN_HVM_MEMMAP_TYPE_* match e820 */
    }
    boot_wr64(mod, initrd);
    boot_wr64(mod + 8, initrd_size);

    boot_wr32(si + SI_MAGIC, XEN_HVM_START_MAGIC);
    boot_wr32(si + SI_VERSION, XEN_HVM_START_VERSION);
    boot_wr32(si + SI_NR_MODULES, has_initrd ? 1 : 0);
    boot_wr64(si + SI_MODLIST_PADDR, has_initrd ? BOOT_MODLIST_ADDR : 0);
    boot_wr64(si + SI_CMDLINE_PADDR, BOOT_CMDLINE_ADDR);
    boot_wr64(si + SI_RSDP_PADDR, BOOT_ACPI_ADDR);   /* written by boot.c */
    boot_wr64(si + SI_MEMMAP_PADDR, BOOT_MEMMAP_ADDR);
    boot_wr32(si + SI_MEMMAP_ENTRIES, n);

    return guest_memory_write(mem, BOOT_MEMMAP_ADDR, memmap, n * MEMMAP_ENTRY_SIZE) &&
           (!has_initrd || guest_memory_write(mem, BOOT_MODLIST_ADDR, mod, sizeof(mod))) &&
           guest_memory_write(mem, BOOT_START_INFO_ADDR, si, sizeof(si));
}

bool boot_pvh_load(GuestMemory *mem, const BootImages *img, BootEntry *entry, GError **error)
{
    g_autofree PvhElf *elf = g_new0(PvhElf, 1);
    uint64_t pvh_entry = 0, initrd = 0;
    bool found;

    elf->buf = img->kernel;
    elf->len = img->kernel_size;
    if (!pvh_elf_parse(elf, error) || !pvh_find_entry(elf, &found, &pvh_entry, error)) {
        return false;
    }
    if (!found) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_FORMAT,
                    "ELF kernel has no Xen PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); "
                    "ELF kernels boot only through PVH");
        return false;
    }
    if (pvh_entry > UINT32_MAX) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID,
                    "PVH entry point 0x%" PRIx64 " is above 4 GiB", pvh_entry);
        return false;
    }
    if (!pvh_load_segments(mem, elf, pvh_entry, entry, error)) {
        return false;
    }
    if (img->initrd &&
        !boot_initrd_place(mem, img, entry->kernel_end, UINT64_MAX, &initrd, error)) {
        return false;
    }
    if (!boot_cmdline_write(mem, img->cmdline, BOOT_CMDLINE_MAX - 1, error)) {
        return false;
    }
    if (!pvh_start_info_write(mem, img->initrd != NULL, initrd, img->initrd_size)) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_NO_ROOM, "no guest RAM for hvm_start_info");
        return false;
    }
    entry->mode = BOOT_MODE_PVH;
    entry->entry = pvh_entry;
    entry->params = BOOT_START_INFO_ADDR;
    entry->page_tables = 0;
    return true;
}
