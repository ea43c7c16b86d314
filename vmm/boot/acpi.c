/* ACPI tables: the same machine the MP table describes, for kernels that
 * only look at ACPI (distribution kernels built without
 * CONFIG_X86_MPPARSE find neither the IOAPIC nor the other CPUs in an MP
 * table). Minimal on purpose: RSDP, RSDT and XSDT, a FADT for the PM1
 * blocks of vmm/devices/acpi-pm (0x600, SCI on GSI 9) and the reset
 * register 0xcf9, a FACS, the DSDT compiled from boot/dsdt.asl (\_S5 for
 * power-off, the memory hot-plug controller and its DIMM slots), and a
 * MADT. All in the reserved BIOS area after the MP table. */
#include "config.h"

#include <inttypes.h>

#include "boot-internal.h"

/* Offsets of each table from BOOT_ACPI_ADDR. */
#define ACPI_RSDP   0x000
#define ACPI_FACS   0x040      /* 64-byte aligned */
#define ACPI_RSDT   0x080
#define ACPI_XSDT   0x0c0
#define ACPI_FADT   0x100
#define ACPI_MADT   0x200
#define ACPI_DSDT   0x1000     /* after a MADT for BOOT_MAX_CPUS */
#define ACPI_DSDT_MAX 0x4000
#define ACPI_HDR    36         /* the common table header */
#define ACPI_FADT_LEN 244      /* revision 3 (ACPI 2.0) */
#define ACPI_FACS_LEN 64

/* The PC's fixed hardware as vmm/devices/ emulates it. */
#define PM_BASE        0x600   /* PM1a event block; control at +4, timer at +8 */
#define PM_SCI_GSI     9
#define GPE0_BASE      0x620   /* 8 status bytes, 8 enable bytes (vmm/devices/acpi-pm) */
#define GPE0_LEN       16
#define RESET_PORT     0xcf9
#define RESET_VALUE    0x06    /* system reset | hard reset */
#define LAPIC_ADDR     0xfee00000U
#define IOAPIC_ADDR    0xfec00000U

/* FADT flags and IA-PC boot architecture flags. */
#define FADT_WBINVD          (1U << 0)
#define FADT_PROC_C1         (1U << 2)
#define FADT_SLP_BUTTON      (1U << 5)   /* no fixed sleep button */
#define FADT_RESET_REG_SUP   (1U << 10)
#define IAPC_LEGACY_DEVICES  (1U << 0)   /* ISA devices: serial, CMOS */
#define IAPC_VGA_NOT_PRESENT (1U << 2)   /* (no 8042 bit: there is none) */

/* MADT entry types. */
enum { MADT_LAPIC, MADT_IOAPIC, MADT_ISO, MADT_NMI_SRC, MADT_LAPIC_NMI };
#define MADT_PCAT_COMPAT     1           /* dual 8259s present (KVM's PIC) */
#define MPS_ACTIVE_HIGH      0x1
#define MPS_LEVEL            0xc

static void acpi_header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
    memcpy(t, sig, 4);
    boot_wr32(t + 4, len);
    t[8] = rev;
    memcpy(t + 10, "COLO  ", 6);          /* OEM id */
    memcpy(t + 16, "COLO-VMM", 8);        /* OEM table id */
    boot_wr32(t + 24, 1);                 /* OEM revision */
    memcpy(t + 28, "COLO", 4);            /* creator id */
    boot_wr32(t + 32, 1);                 /* creator revision */
}

static void acpi_finish(uint8_t *t)
{
    t[9] = 0;
    t[9] = boot_checksum(t, boot_rd32(t + 4));
}

/* A Generic Address Structure for @len bytes of system I/O at @port. */
static void acpi_gas_io(uint8_t *g, unsigned len, uint16_t port)
{
    g[0] = 1;                             /* SystemIO */
    g[1] = (uint8_t)(len * 8);            /* bit width */
    g[2] = 0;                             /* bit offset */
    g[3] = (uint8_t)(len == 1 ? 1 : len == 2 ? 2 : 3);  /* access size: byte/word/dword */
    boot_wr64(g + 4, port);
}

static void acpi_fadt(uint8_t *t)
{
    uint64_t facs = BOOT_ACPI_ADDR + ACPI_FACS, dsdt = BOOT_ACPI_ADDR + ACPI_DSDT;

    acpi_header(t, "FACP", ACPI_FADT_LEN, 3);
    boot_wr32(t + 36, (uint32_t)facs);
    boot_wr32(t + 40, (uint32_t)dsdt);
    boot_wr16(t + 46, PM_SCI_GSI);
    /* SMI_CMD 0: there is no SMM, the machine is always in ACPI mode. */
    boot_wr32(t + 56, PM_BASE);           /* PM1a_EVT_BLK */
    boot_wr32(t + 64, PM_BASE + 4);       /* PM1a_CNT_BLK */
    boot_wr32(t + 76, PM_BASE + 8);       /* PM_TMR_BLK (24-bit) */
    boot_wr32(t + 80, GPE0_BASE);         /* GPE0_BLK */
    t[88] = 4;                            /* PM1_EVT_LEN */
    t[89] = 2;                            /* PM1_CNT_LEN */
    t[91] = 4;                            /* PM_TMR_LEN */
    t[92] = GPE0_LEN;                     /* GPE0_BLK_LEN */
    boot_wr16(t + 96, 0x0fff);            /* P_LVL2_LAT > 100: no C2 */
    boot_wr16(t + 98, 0x0fff);            /* P_LVL3_LAT > 1000: no C3 */
    boot_wr16(t + 109, IAPC_LEGACY_DEVICES | IAPC_VGA_NOT_PRESENT);
    boot_wr32(t + 112, FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_RESET_REG_SUP);
    acpi_gas_io(t + 116, 1, RESET_PORT);
    t[128] = RESET_VALUE;
    boot_wr64(t + 132, facs);             /* X_FIRMWARE_CTRL */
    boot_wr64(t + 140, dsdt);             /* X_DSDT */
    acpi_gas_io(t + 148, 4, PM_BASE);     /* X_PM1a_EVT_BLK */
    acpi_gas_io(t + 172, 2, PM_BASE + 4); /* X_PM1a_CNT_BLK */
    acpi_gas_io(t + 208, 4, PM_BASE + 8); /* X_PM_TMR_BLK */
    acpi_gas_io(t + 220, 1, GPE0_BASE);   /* X_GPE0_BLK */
    t[221] = GPE0_LEN * 8;
    acpi_finish(t);
}

/* The compiled DSDT with the number of DIMM slots filled in: the ASL has
 * Name (MDNR, 0x4D444E52) as a placeholder. */
static size_t acpi_dsdt(uint8_t *t, unsigned mem_slots)
{
    static const uint8_t placeholder[] = { 'M', 'D', 'N', 'R', 0x0c, 0x52, 0x4e, 0x44, 0x4d };

    G_STATIC_ASSERT(sizeof(placeholder) == 9);
    g_assert(boot_dsdt_aml_len <= ACPI_DSDT_MAX);
    memcpy(t, boot_dsdt_aml, boot_dsdt_aml_len);
    uint8_t *at = memmem(t + ACPI_HDR, boot_dsdt_aml_len - ACPI_HDR, placeholder, sizeof(placeholder));
    g_assert(at);       /* the build put it there */
    boot_wr32(at + 5, mem_slots);
    acpi_finish(t);
    return boot_dsdt_aml_len;
}

static size_t acpi_madt(uint8_t *t, unsigned ncpus)
{
    uint8_t *p = t + ACPI_HDR + 8;

    for (unsigned i = 0; i < ncpus; i++) {
        p[0] = MADT_LAPIC;
        p[1] = 8;
        p[2] = (uint8_t)i;                /* ACPI processor UID */
        p[3] = (uint8_t)i;                /* APIC id */
        boot_wr32(p + 4, 1);              /* enabled */
        p += 8;
    }
    p[0] = MADT_IOAPIC;
    p[1] = 12;
    p[2] = (uint8_t)ncpus;                /* the MP table's IOAPIC id */
    boot_wr32(p + 4, IOAPIC_ADDR);
    boot_wr32(p + 8, 0);                  /* GSI base */
    p += 12;
    /* ISA IRQs map to GSIs 1:1 (KVM's default routing, PIT on pin 0), so
     * the only override says the SCI is level-triggered, active high. */
    p[0] = MADT_ISO;
    p[1] = 10;
    p[2] = 0;                             /* ISA */
    p[3] = PM_SCI_GSI;
    boot_wr32(p + 4, PM_SCI_GSI);
    boot_wr16(p + 8, MPS_ACTIVE_HIGH | MPS_LEVEL);
    p += 10;
    p[0] = MADT_LAPIC_NMI;
    p[1] = 6;
    p[2] = 0xff;                          /* all processors */
    boot_wr16(p + 3, 0);
    p[5] = 1;                             /* LINT1 */
    p += 6;

    size_t len = (size_t)(p - t);
    acpi_header(t, "APIC", (uint32_t)len, 1);
    boot_wr32(t + ACPI_HDR, LAPIC_ADDR);
    boot_wr32(t + ACPI_HDR + 4, MADT_PCAT_COMPAT);
    acpi_finish(t);
    return len;
}

bool boot_acpi_write(GuestMemory *mem, unsigned ncpus, unsigned mem_slots, GError **error)
{
    size_t size = ACPI_DSDT + ACPI_DSDT_MAX;
    g_autofree uint8_t *buf = g_malloc0(size);
    uint64_t fadt = BOOT_ACPI_ADDR + ACPI_FADT, madt = BOOT_ACPI_ADDR + ACPI_MADT;

    g_assert(ncpus >= 1 && ncpus <= BOOT_MAX_CPUS);
    G_STATIC_ASSERT(ACPI_MADT + ACPI_HDR + 8 + BOOT_MAX_CPUS * 8 + 12 + 10 + 6 <= ACPI_DSDT);

    uint8_t *facs = buf + ACPI_FACS;
    memcpy(facs, "FACS", 4);
    boot_wr32(facs + 4, ACPI_FACS_LEN);

    acpi_fadt(buf + ACPI_FADT);
    size_t dsdt_len = acpi_dsdt(buf + ACPI_DSDT, mem_slots);
    acpi_madt(buf + ACPI_MADT, ncpus);

    uint8_t *rsdt = buf + ACPI_RSDT;
    acpi_header(rsdt, "RSDT", ACPI_HDR + 2 * 4, 1);
    boot_wr32(rsdt + ACPI_HDR, (uint32_t)fadt);
    boot_wr32(rsdt + ACPI_HDR + 4, (uint32_t)madt);
    acpi_finish(rsdt);

    uint8_t *xsdt = buf + ACPI_XSDT;
    acpi_header(xsdt, "XSDT", ACPI_HDR + 2 * 8, 1);
    boot_wr64(xsdt + ACPI_HDR, fadt);
    boot_wr64(xsdt + ACPI_HDR + 8, madt);
    acpi_finish(xsdt);

    /* RSDP 2.0: checksum over the first 20 bytes, extended over all 36. */
    uint8_t *rsdp = buf + ACPI_RSDP;
    memcpy(rsdp, "RSD PTR ", 8);
    memcpy(rsdp + 9, "COLO  ", 6);
    rsdp[15] = 2;
    boot_wr32(rsdp + 16, (uint32_t)(BOOT_ACPI_ADDR + ACPI_RSDT));
    boot_wr32(rsdp + 20, 36);
    boot_wr64(rsdp + 24, BOOT_ACPI_ADDR + ACPI_XSDT);
    rsdp[8] = boot_checksum(rsdp, 20);
    rsdp[32] = boot_checksum(rsdp, 36);

    if (!guest_memory_write(mem, BOOT_ACPI_ADDR, buf, ACPI_DSDT + dsdt_len)) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_NO_ROOM,
                    "no guest RAM at 0x%" PRIx64 " for the ACPI tables", BOOT_ACPI_ADDR);
        return false;
    }
    return true;
}
