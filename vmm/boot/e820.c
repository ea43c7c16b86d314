/* The e820 memory map: the same table feeds the Linux zero page and the
 * PVH memmap. No entry for the IOAPIC or LAPIC pages: QEMU, kvmtool and
 * Firecracker report none either; the kernel learns those addresses from
 * the MP table and reserves them itself. */
#include "config.h"

#include "boot-internal.h"

#define E820_EBDA_START 0x9fc00ULL
#define E820_EBDA_END   0xa0000ULL

unsigned boot_e820_build(const GuestMemory *mem, struct boot_e820_entry *out, unsigned max)
{
    uint64_t low = guest_memory_low_size(mem);
    uint64_t high = guest_memory_high_size(mem);
    struct boot_e820_entry map[] = {
        /* Conventional memory, minus the EBDA a real BIOS keeps at its top. */
        { 0, MIN(low, E820_EBDA_START), BOOT_E820_RAM },
        { E820_EBDA_START, E820_EBDA_END - E820_EBDA_START, BOOT_E820_RESERVED },
        /* The BIOS area, where the MP table lives. */
        { BOOT_MPTABLE_ADDR, BOOT_KERNEL_MIN - BOOT_MPTABLE_ADDR, BOOT_E820_RESERVED },
        { BOOT_KERNEL_MIN, low > BOOT_KERNEL_MIN ? low - BOOT_KERNEL_MIN : 0, BOOT_E820_RAM },
        { GUEST_HIGH_RAM_BASE, high, BOOT_E820_RAM },
    };
    unsigned n = 0;

    for (unsigned i = 0; i < G_N_ELEMENTS(map) && n < max; i++) {
        if (map[i].size) {
            out[n++] = map[i];
        }
    }
    return n;
}
