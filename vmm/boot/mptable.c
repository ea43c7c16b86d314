/* Intel MultiProcessor Specification 1.4 tables: how the guest finds its
 * CPUs, the IOAPIC and the ISA interrupt routing without ACPI. Layout:
 * the 16-byte floating pointer at BOOT_MPTABLE_ADDR, the configuration
 * table right after it. */
#include "config.h"

#include <inttypes.h>

#include "boot-internal.h"

#define MP_FPS_SIZE        16
#define MP_HEADER_SIZE     44
#define MP_CPU_SIZE        20
#define MP_ENTRY_SIZE      8
#define MP_SPEC_REV        4            /* 1.4 */
#define MP_LAPIC_ADDR      0xfee00000U
#define MP_LAPIC_VERSION   0x14         /* integrated APIC */
#define MP_IOAPIC_ADDR     0xfec00000U
#define MP_IOAPIC_VERSION  0x11         /* what KVM's in-kernel IOAPIC reports */
#define MP_ISA_IRQS        16
#define MP_CPU_SIGNATURE   0x600        /* family 6; the guest reads the real one from CPUID */
#define MP_CPU_FEATURES    0x201        /* FPU, APIC */

enum { MP_PROCESSOR, MP_BUS, MP_IOAPIC, MP_IOINTR, MP_LINTR };
enum { MP_INT, MP_NMI, MP_SMI, MP_EXTINT };
#define MP_CPU_ENABLED     0x01
#define MP_CPU_BSP         0x02
#define MP_ISA_BUS_ID      0

/* An I/O or local interrupt entry: flags 0 = polarity and trigger conform
 * to the bus (ISA: active high, edge). */
static uint8_t *mp_put_intr(uint8_t *p, uint8_t kind, uint8_t type, uint8_t bus, uint8_t irq,
                            uint8_t dst, uint8_t pin)
{
    p[0] = kind;
    p[1] = type;
    boot_wr16(p + 2, 0);
    p[4] = bus;
    p[5] = irq;
    p[6] = dst;
    p[7] = pin;
    return p + MP_ENTRY_SIZE;
}

bool boot_mptable_write(GuestMemory *mem, unsigned ncpus, GError **error)
{
    unsigned nentries = ncpus + 1 + 1 + MP_ISA_IRQS + 2;
    size_t table_len = MP_HEADER_SIZE + ncpus * MP_CPU_SIZE + (nentries - ncpus) * MP_ENTRY_SIZE;
    g_autofree uint8_t *buf = g_malloc0(MP_FPS_SIZE + table_len);
    uint8_t *fps = buf;
    uint8_t *hdr = buf + MP_FPS_SIZE;
    uint8_t *p = hdr + MP_HEADER_SIZE;
    uint8_t ioapic_id = (uint8_t)ncpus;

    g_assert(ncpus >= 1 && ncpus <= BOOT_MAX_CPUS);

    for (unsigned i = 0; i < ncpus; i++) {
        p[0] = MP_PROCESSOR;
        p[1] = (uint8_t)i;                               /* local APIC id */
        p[2] = MP_LAPIC_VERSION;
        p[3] = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0);
        boot_wr32(p + 4, MP_CPU_SIGNATURE);
        boot_wr32(p + 8, MP_CPU_FEATURES);
        p += MP_CPU_SIZE;
    }

    p[0] = MP_BUS;
    p[1] = MP_ISA_BUS_ID;
    memcpy(p + 2, "ISA   ", 6);
    p += MP_ENTRY_SIZE;

    p[0] = MP_IOAPIC;
    p[1] = ioapic_id;
    p[2] = MP_IOAPIC_VERSION;
    p[3] = 1;                                            /* enabled */
    boot_wr32(p + 4, MP_IOAPIC_ADDR);
    p += MP_ENTRY_SIZE;

    /* Identity routing, ISA IRQ n -> IOAPIC pin n: KVM's default GSI
     * routing, which puts the in-kernel PIT on pin 0. */
    for (uint8_t irq = 0; irq < MP_ISA_IRQS; irq++) {
        p = mp_put_intr(p, MP_IOINTR, MP_INT, MP_ISA_BUS_ID, irq, ioapic_id, irq);
    }
    /* The 8259 through LINT0 (virtual wire mode), NMI on LINT1, all CPUs. */
    p = mp_put_intr(p, MP_LINTR, MP_EXTINT, MP_ISA_BUS_ID, 0, 0xff, 0);
    p = mp_put_intr(p, MP_LINTR, MP_NMI, MP_ISA_BUS_ID, 0, 0xff, 1);
    g_assert((size_t)(p - hdr) == table_len);

    memcpy(hdr, "PCMP", 4);
    boot_wr16(hdr + 4, (uint16_t)table_len);
    hdr[6] = MP_SPEC_REV;
    memcpy(hdr + 8, "COLO    ", 8);                      /* OEM id */
    memcpy(hdr + 16, "COLO-VMM    ", 12);                /* product id */
    boot_wr16(hdr + 34, (uint16_t)nentries);
    boot_wr32(hdr + 36, MP_LAPIC_ADDR);
    hdr[7] = boot_checksum(hdr, table_len);

    memcpy(fps, "_MP_", 4);
    boot_wr32(fps + 4, (uint32_t)(BOOT_MPTABLE_ADDR + MP_FPS_SIZE));
    fps[8] = 1;                                          /* length in 16-byte units */
    fps[9] = MP_SPEC_REV;
    /* Feature bytes 0: a configuration table is present, no IMCR. */
    fps[10] = boot_checksum(fps, MP_FPS_SIZE);

    if (!guest_memory_write(mem, BOOT_MPTABLE_ADDR, buf, MP_FPS_SIZE + table_len)) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_NO_ROOM,
                    "no guest RAM at 0x%" PRIx64 " for the MP table", BOOT_MPTABLE_ADDR);
        return false;
    }
    return true;
}
