/* Linux bzImage per the x86 boot protocol (Documentation/arch/x86/boot.rst),
 * entered through its 64-bit entry point: the protected-mode kernel is
 * copied to pref_address (or 1 MiB), the setup header is copied into a
 * zero page at BOOT_ZERO_PAGE_ADDR with the loader's fields filled in
 * (type_of_loader, cmd_line_ptr, ramdisk_image/size, e820 table), and the
 * vCPU starts at load address + 0x200 in long mode with rsi = zero page.
 * The real-mode setup code is never run. */
#include "config.h"

#include <inttypes.h>

#include "boot-internal.h"

/* Offsets in the file's first sectors, which are also the offsets in the
 * zero page (struct boot_params) where the setup header is copied. */
#define ZP_ACPI_RSDP_ADDR    0x070
#define ZP_EXT_RAMDISK_IMAGE 0x0c0
#define ZP_EXT_RAMDISK_SIZE  0x0c4
#define ZP_EXT_CMD_LINE_PTR  0x0c8
#define ZP_E820_ENTRIES      0x1e8
#define ZP_E820_TABLE        0x2d0
#define HDR_START            0x1f1   /* struct setup_header */
#define HDR_SETUP_SECTS      0x1f1
#define HDR_BOOT_FLAG        0x1fe
#define HDR_JUMP             0x200   /* its second byte gives the header's length */
#define HDR_MAGIC            0x202   /* "HdrS" */
#define HDR_VERSION          0x206
#define HDR_TYPE_OF_LOADER   0x210
#define HDR_LOADFLAGS        0x211
#define HDR_CODE32_START     0x214
#define HDR_RAMDISK_IMAGE    0x218
#define HDR_RAMDISK_SIZE     0x21c
#define HDR_CMD_LINE_PTR     0x228
#define HDR_INITRD_ADDR_MAX  0x22c
#define HDR_KERNEL_ALIGNMENT 0x230
#define HDR_RELOCATABLE      0x234
#define HDR_XLOADFLAGS       0x236
#define HDR_CMDLINE_SIZE     0x238
#define HDR_PREF_ADDRESS     0x258
#define HDR_INIT_SIZE        0x260
#define HDR_MAX_END          0x290   /* the zero page's next field after the header */

#define BOOT_FLAG_MAGIC      0xaa55
#define LOADED_HIGH          0x01
#define XLF_KERNEL_64        0x01
#define LOADER_UNDEFINED     0xff    /* type_of_loader: no assigned id */
#define ENTRY64_OFFSET       0x200
#define PROTOCOL_MIN         0x0206
#define PROTOCOL_XLOADFLAGS  0x020c  /* 2.12: xloadflags */

bool boot_bzimage_probe(const uint8_t *buf, size_t len)
{
    return len >= HDR_MAGIC + 4 && memcmp(buf + HDR_MAGIC, "HdrS", 4) == 0;
}

/* The header copied into a zeroed zero page, and what it says about the
 * kernel once validated. */
typedef struct BzImage {
    uint8_t zp[GUEST_PAGE_SIZE];
    const uint8_t *payload;
    uint64_t payload_size;
    uint64_t load;           /* where the protected-mode kernel goes */
    uint64_t need;           /* bytes it claims from there (init_size) */
} BzImage;

static bool bz_header_parse(BzImage *bz, const uint8_t *buf, size_t len, uint64_t low_ram,
                            GError **error)
{
    uint8_t *zp = bz->zp;

    if (!boot_bzimage_probe(buf, len)) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_FORMAT, "not a bzImage (no \"HdrS\" header)");
        return false;
    }
    size_t hdr_end = HDR_JUMP + 2 + buf[HDR_JUMP + 1];
    if (hdr_end > len) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID,
                    "bzImage truncated: setup header ends at %zu, file has %zu bytes", hdr_end, len);
        return false;
    }
    /* Fields beyond the header's own length stay zero. */
    memcpy(zp + HDR_START, buf + HDR_START, MIN(hdr_end, (size_t)HDR_MAX_END) - HDR_START);

    uint16_t version = boot_rd16(zp + HDR_VERSION);
    if (version < PROTOCOL_MIN) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_VERSION,
                    "boot protocol %u.%02u is too old (2.06 or later needed for a 64-bit boot)",
                    version >> 8, version & 0xff);
        return false;
    }
    if (version < PROTOCOL_XLOADFLAGS || !(boot_rd16(zp + HDR_XLOADFLAGS) & XLF_KERNEL_64)) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_VERSION,
                    "kernel (boot protocol %u.%02u) has no 64-bit entry point "
                    "(xloadflags XLF_KERNEL_64, protocol 2.12 or later)", version >> 8, version & 0xff);
        return false;
    }
    if (boot_rd16(zp + HDR_BOOT_FLAG) != BOOT_FLAG_MAGIC) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID, "bzImage boot_flag is 0x%04x, not 0xaa55",
                    boot_rd16(zp + HDR_BOOT_FLAG));
        return false;
    }
    if (!(zp[HDR_LOADFLAGS] & LOADED_HIGH)) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID,
                    "kernel wants to be loaded at 0x10000 (zImage, LOADED_HIGH clear): not supported");
        return false;
    }
    uint32_t align = boot_rd32(zp + HDR_KERNEL_ALIGNMENT);
    if (zp[HDR_RELOCATABLE] && (align == 0 || (align & (align - 1)))) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID,
                    "bzImage kernel_alignment 0x%x is not a power of two", align);
        return false;
    }

    unsigned setup_sects = zp[HDR_SETUP_SECTS] ? zp[HDR_SETUP_SECTS] : 4;
    size_t setup_size = (setup_sects + 1) * 512;
    if (setup_size < hdr_end || setup_size >= len) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID,
                    "bzImage truncated: %u setup sectors (%zu bytes) leave no kernel in a %zu-byte file",
                    setup_sects, setup_size, len);
        return false;
    }
    bz->payload = buf + setup_size;
    bz->payload_size = len - setup_size;
    /* init_size: memory the kernel needs from its load address while it
     * decompresses itself; at least the payload. */
    bz->need = MAX((uint64_t)boot_rd32(zp + HDR_INIT_SIZE), bz->payload_size);

    /* A relocatable kernel still decompresses itself to no lower than
     * pref_address (LOAD_PHYSICAL_ADDR), so that is where it must fit. */
    uint64_t pref = boot_rd64(zp + HDR_PREF_ADDRESS);
    bz->load = pref ? pref : BOOT_KERNEL_MIN;
    if (bz->load < BOOT_KERNEL_MIN || bz->load % GUEST_PAGE_SIZE) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID,
                    "bzImage pref_address 0x%" PRIx64 " is below 1 MiB or not page aligned", pref);
        return false;
    }
    if (bz->load >= low_ram || bz->need > low_ram - bz->load) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_NO_ROOM,
                    "kernel needs 0x%" PRIx64 " bytes from 0x%" PRIx64 " (init_size) but RAM below "
                    "4 GiB ends at 0x%" PRIx64, bz->need, bz->load, low_ram);
        return false;
    }
    return true;
}

static bool bz_zero_page_write(GuestMemory *mem, BzImage *bz, uint64_t initrd, uint64_t initrd_size)
{
    struct boot_e820_entry map[BOOT_E820_MAX];
    unsigned n = boot_e820_build(mem, map, G_N_ELEMENTS(map));
    uint8_t *zp = bz->zp;

    zp[HDR_TYPE_OF_LOADER] = LOADER_UNDEFINED;
    boot_wr32(zp + HDR_CODE32_START, (uint32_t)bz->load);
    boot_wr32(zp + HDR_CMD_LINE_PTR, (uint32_t)BOOT_CMDLINE_ADDR);
    boot_wr32(zp + HDR_RAMDISK_IMAGE, (uint32_t)initrd);
    boot_wr32(zp + HDR_RAMDISK_SIZE, (uint32_t)initrd_size);
    /* Everything lives below 4 GiB: the ext_ upper halves stay zero. */
    boot_wr32(zp + ZP_EXT_RAMDISK_IMAGE, 0);
    boot_wr32(zp + ZP_EXT_RAMDISK_SIZE, 0);
    boot_wr32(zp + ZP_EXT_CMD_LINE_PTR, 0);
    boot_wr64(zp + ZP_ACPI_RSDP_ADDR, BOOT_ACPI_ADDR);   /* written by boot.c; 2.14+ read it */
    zp[ZP_E820_ENTRIES] = (uint8_t)n;
    memcpy(zp + ZP_E820_TABLE, map, n * sizeof(map[0]));
    return guest_memory_write(mem, BOOT_ZERO_PAGE_ADDR, zp, sizeof(bz->zp));
}

bool boot_bzimage_load(GuestMemory *mem, const BootImages *img, BootEntry *entry, GError **error)
{
    g_autofree BzImage *bz = g_new0(BzImage, 1);
    uint64_t low = guest_memory_low_size(mem);
    uint64_t initrd = 0, initrd_size = 0;

    if (!bz_header_parse(bz, img->kernel, img->kernel_size, low, error)) {
        return false;
    }
    if (!boot_cmdline_write(mem, img->cmdline, boot_rd32(bz->zp + HDR_CMDLINE_SIZE), error)) {
        return false;
    }
    if (img->initrd) {
        uint64_t limit = (uint64_t)boot_rd32(bz->zp + HDR_INITRD_ADDR_MAX) + 1;
        if (!boot_initrd_place(mem, img, bz->load + bz->need, limit, &initrd, error)) {
            return false;
        }
        initrd_size = img->initrd_size;
    }
    if (!guest_memory_write(mem, bz->load, bz->payload, bz->payload_size) ||
        !bz_zero_page_write(mem, bz, initrd, initrd_size)) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_NO_ROOM, "no guest RAM for the kernel or zero page");
        return false;
    }
    entry->mode = BOOT_MODE_LINUX64;
    entry->entry = bz->load + ENTRY64_OFFSET;
    entry->params = BOOT_ZERO_PAGE_ADDR;
    entry->kernel_start = bz->load;
    entry->kernel_end = bz->load + bz->need;
    return true;
}
