/* Boot-time tables: the e820 map, the MP table (parsed back with a reader
 * written from the Intel MP spec 1.4), the ACPI tables (RSDP, XSDT/RSDT,
 * FADT, FACS, DSDT, MADT) and the boot vCPU's state against
 * the GDT and page tables in guest memory. */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "boot-images.h"
#include "boot/boot.h"
#include "pci/pci.h"

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return GUINT16_FROM_LE(v); }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return GUINT32_FROM_LE(v); }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return GUINT64_FROM_LE(v); }

static bool load_kind(GuestMemory *mem, bool is_linux, unsigned ncpus, BootEntry *e, GError **error)
{
    TestBzOpts bo = test_bz_defaults();
    TestElfOpts eo = test_elf_defaults();
    g_autoptr(GBytes) k = is_linux ? test_bz_build(&bo) : test_elf_build(&eo);
    gsize len;
    const uint8_t *p = g_bytes_get_data(k, &len);
    BootImages img = { .kernel = p, .kernel_size = len, .ncpus = ncpus };
    return boot_load_images(mem, &img, e, error);
}

/* ---- e820 ---- */

static void test_e820_small(void)
{
    GuestMemory *mem = test_mem_new(64);
    struct boot_e820_entry map[BOOT_E820_MAX];
    unsigned n = boot_e820_build(mem, map, BOOT_E820_MAX);

    g_assert_cmpuint(n, ==, 4);
    g_assert_cmphex(map[0].addr, ==, 0);
    g_assert_cmphex(map[0].size, ==, 0x9fc00);
    g_assert_cmpuint(map[0].type, ==, BOOT_E820_RAM);
    g_assert_cmphex(map[1].addr, ==, 0x9fc00);
    g_assert_cmphex(map[1].addr + map[1].size, ==, 0xa0000);
    g_assert_cmpuint(map[1].type, ==, BOOT_E820_RESERVED);
    g_assert_cmphex(map[2].addr, ==, 0xf0000);
    g_assert_cmphex(map[2].addr + map[2].size, ==, 0x100000);
    g_assert_cmpuint(map[2].type, ==, BOOT_E820_RESERVED);
    g_assert_cmphex(map[3].addr, ==, 0x100000);
    g_assert_cmphex(map[3].addr + map[3].size, ==, 64 << 20);
    g_assert_cmpuint(map[3].type, ==, BOOT_E820_RAM);
    g_assert_cmpuint(sizeof(map[0]), ==, 20);          /* the zero page's layout */

    /* A short output array gets the first entries only. */
    g_assert_cmpuint(boot_e820_build(mem, map, 2), ==, 2);
    g_assert_cmphex(map[1].addr, ==, 0x9fc00);
    guest_memory_free(mem);
}

static void test_e820_high(void)
{
    /* 3 GiB + 64 MiB: the last 64 MiB are mapped from 4 GiB (memfd pages
     * are only allocated when touched). */
    GuestMemory *mem = test_mem_new(3 * 1024 + 64);
    struct boot_e820_entry map[BOOT_E820_MAX];
    unsigned n = boot_e820_build(mem, map, BOOT_E820_MAX);

    g_assert_cmpuint(n, ==, 5);
    g_assert_cmphex(map[3].addr + map[3].size, ==, 0xc0000000);
    g_assert_cmphex(map[4].addr, ==, 0x100000000ULL);
    g_assert_cmphex(map[4].size, ==, 64 << 20);
    g_assert_cmpuint(map[4].type, ==, BOOT_E820_RAM);
    for (unsigned i = 0; i < n; i++) {
        /* Nothing usable in the MMIO hole (IOAPIC, LAPIC). */
        if (map[i].type == BOOT_E820_RAM) {
            g_assert_false(map[i].addr < 0x100000000ULL && map[i].addr + map[i].size > 0xc0000000);
        }
    }
    guest_memory_free(mem);
}

/* ---- MP table ---- */

typedef struct MpTable {
    unsigned cpus, bsp_count, buses, ioapics, iointr, lintr;
    uint8_t apic_ids[256];
    uint8_t ioapic_id;
    uint32_t ioapic_addr;
    uint8_t irq_pin[16];
    uint8_t irq_dst[16];
    uint8_t lint_type[2];
} MpTable;

static uint8_t sum(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    while (n--) {
        s += *p++;
    }
    return s;
}

/* Finds the floating pointer the way a guest does (16-byte aligned in the
 * BIOS area), checks both checksums and walks the entries. */
static void mp_parse(GuestMemory *mem, MpTable *t)
{
    const uint8_t *bios = guest_memory_ptr(mem, 0xf0000, 0x10000);
    const uint8_t *fps = NULL;

    memset(t, 0, sizeof(*t));
    for (size_t off = 0; off < 0x10000; off += 16) {
        if (memcmp(bios + off, "_MP_", 4) == 0) {
            fps = bios + off;
            break;
        }
    }
    g_assert_nonnull(fps);
    g_assert_cmpuint(fps[8], ==, 1);
    g_assert_cmpuint(fps[9], ==, 4);
    g_assert_cmpuint(sum(fps, 16), ==, 0);
    g_assert_cmpuint(fps[11], ==, 0);                   /* feature1: config table present */
    uint32_t cfg = rd32(fps + 4);
    g_assert_cmphex(cfg, >=, 0xf0000);
    const uint8_t *h = guest_memory_ptr(mem, cfg, 44);
    g_assert_cmpmem(h, 4, "PCMP", 4);
    uint16_t len = rd16(h + 4);
    g_assert_cmphex(cfg + len, <=, 0x100000);
    g_assert_cmpuint(h[6], ==, 4);
    g_assert_cmpuint(sum(h, len), ==, 0);
    g_assert_cmphex(rd32(h + 36), ==, 0xfee00000);
    unsigned count = rd16(h + 34);

    const uint8_t *p = h + 44, *end = h + len;
    for (unsigned i = 0; i < count; i++) {
        g_assert_true(p < end);
        switch (p[0]) {
        case 0:
            g_assert_true(p[3] & 1);                    /* enabled */
            t->apic_ids[t->cpus++] = p[1];
            t->bsp_count += (p[3] & 2) != 0;
            if (p[3] & 2) {
                g_assert_cmpuint(p[1], ==, 0);
            }
            p += 20;
            break;
        case 1:
            g_assert_cmpmem(p + 2, 6, "ISA   ", 6);
            t->buses++;
            p += 8;
            break;
        case 2:
            g_assert_true(p[3] & 1);
            t->ioapics++;
            t->ioapic_id = p[1];
            t->ioapic_addr = rd32(p + 4);
            p += 8;
            break;
        case 3:
            g_assert_cmpuint(p[1], ==, 0);              /* INT */
            g_assert_cmpuint(p[4], ==, 0);              /* ISA bus */
            g_assert_cmpuint(p[5], <, 16);
            t->irq_pin[p[5]] = p[7];
            t->irq_dst[p[5]] = p[6];
            t->iointr++;
            p += 8;
            break;
        case 4:
            g_assert_cmpuint(p[6], ==, 0xff);           /* all local APICs */
            g_assert_cmpuint(p[7], <, 2);
            t->lint_type[p[7]] = p[1];
            t->lintr++;
            p += 8;
            break;
        default:
            g_error("unknown MP entry type %u", p[0]);
        }
    }
    g_assert_true(p == end);
}

static void test_mptable(gconstpointer data)
{
    unsigned ncpus = GPOINTER_TO_UINT(data);
    GuestMemory *mem = test_mem_new(32);
    BootEntry e;
    GError *error = NULL;
    MpTable t;

    g_assert_true(load_kind(mem, false, ncpus, &e, &error));
    g_assert_no_error(error);
    mp_parse(mem, &t);
    g_assert_cmpuint(t.cpus, ==, ncpus);
    g_assert_cmpuint(t.bsp_count, ==, 1);
    for (unsigned i = 0; i < ncpus; i++) {
        g_assert_cmpuint(t.apic_ids[i], ==, i);
    }
    g_assert_cmpuint(t.buses, ==, 1);
    g_assert_cmpuint(t.ioapics, ==, 1);
    g_assert_cmpuint(t.ioapic_id, ==, ncpus);
    g_assert_cmphex(t.ioapic_addr, ==, 0xfec00000);
    g_assert_cmpuint(t.iointr, ==, 16);
    for (unsigned irq = 0; irq < 16; irq++) {
        g_assert_cmpuint(t.irq_pin[irq], ==, irq);     /* identity: PIT on pin 0 */
        g_assert_cmpuint(t.irq_dst[irq], ==, ncpus);
    }
    g_assert_cmpuint(t.lintr, ==, 2);
    g_assert_cmpuint(t.lint_type[0], ==, 3);           /* ExtINT on LINT0 */
    g_assert_cmpuint(t.lint_type[1], ==, 1);           /* NMI on LINT1 */
    guest_memory_free(mem);
}

static void test_mptable_bad_ncpus(void)
{
    GuestMemory *mem = test_mem_new(32);
    BootEntry e;
    GError *error = NULL;

    g_assert_false(load_kind(mem, false, 0, &e, &error));
    g_assert_error(error, BOOT_ERROR, BOOT_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_false(load_kind(mem, false, BOOT_MAX_CPUS + 1, &e, &error));
    g_assert_error(error, BOOT_ERROR, BOOT_ERROR_INVALID);
    g_assert_nonnull(strstr(error->message, "vCPUs"));
    g_clear_error(&error);
    guest_memory_free(mem);
}

/* ---- ACPI ---- */

/* A table found through a pointer: signature, length inside the BIOS
 * area, checksum. */
static const uint8_t *acpi_table(GuestMemory *mem, uint64_t gpa, const char *sig)
{
    const uint8_t *t = guest_memory_ptr(mem, gpa, 36);
    g_assert_nonnull(t);
    g_assert_cmpmem(t, 4, sig, 4);
    uint32_t len = rd32(t + 4);
    g_assert_cmpuint(len, >=, 36);
    g_assert_cmphex(gpa + len, <=, 0x100000);
    g_assert_cmpuint(sum(t, len), ==, 0);
    return t;
}

/* The RSDP the way Linux looks for it without a pointer: 16-byte aligned
 * in 0xe0000-0xfffff. */
static const uint8_t *acpi_find_rsdp(GuestMemory *mem)
{
    const uint8_t *area = guest_memory_ptr(mem, 0xe0000, 0x20000);
    for (size_t off = 0; off < 0x20000; off += 16) {
        if (memcmp(area + off, "RSD PTR ", 8) == 0) {
            return area + off;
        }
    }
    return NULL;
}

/* The bytes of the first "[Buffer] Length N =" dump after @after in
 * acpiexec's output ("0000: 88 0D 00 ...  // ..." lines). */
static GByteArray *acpiexec_buffer(const char *out, const char *after)
{
    const char *p = strstr(out, after);
    g_assert_nonnull(p);
    p = strstr(p, "[Buffer] Length ");
    g_assert_nonnull(p);
    unsigned len = (unsigned)strtoul(p + 16, NULL, 16);     /* printed in hex */
    GByteArray *b = g_byte_array_new();
    p = strchr(p, '\n');
    while (p && b->len < len) {
        p++;
        const char *colon = strchr(p, ':'), *eol = strchr(p, '\n');
        g_assert_true(colon && (!eol || colon < eol));
        for (const char *h = colon + 1; b->len < len && h[0] == ' ' && g_ascii_isxdigit(h[1]); h += 3) {
            guint8 v = (guint8)(g_ascii_xdigit_value(h[1]) << 4 | g_ascii_xdigit_value(h[2]));
            g_byte_array_append(b, &v, 1);
        }
        p = eol;
    }
    g_assert_cmpuint(b->len, ==, len);
    return b;
}

/* Walks the PCI host bridge's _CRS (ACPI 6.x section 6.4 resource
 * descriptors): bus 0 only, the configuration ports, the MMIO window of
 * vmm/pci, and an end tag. */
static void check_pci0_crs(const GByteArray *crs)
{
    bool bus = false, cfg = false, window = false, end = false;

    for (guint at = 0; at < crs->len && !end;) {
        const uint8_t *d = crs->data + at;
        if (d[0] & 0x80) {                       /* large descriptor */
            uint16_t len = rd16(d + 1);
            g_assert_cmpuint(at + 3 + len, <=, crs->len);
            if (d[0] == 0x88 && d[3] == 2) {     /* Word address space, bus numbers */
                g_assert_cmphex(rd16(d + 8), ==, 0);
                g_assert_cmphex(rd16(d + 10), ==, 0);
                bus = true;
            } else if (d[0] == 0x87 && d[3] == 0) {   /* DWord memory */
                if (rd32(d + 10) == PCI_MMIO_WINDOW_BASE) {
                    g_assert_cmphex(rd32(d + 14), ==, PCI_MMIO_WINDOW_END - 1);
                    g_assert_cmphex(rd32(d + 22), ==, PCI_MMIO_WINDOW_END - PCI_MMIO_WINDOW_BASE);
                    window = true;
                }
            }
            at += 3u + len;
        } else {                                 /* small descriptor */
            unsigned len = d[0] & 7, type = (d[0] >> 3) & 0xf;
            if (type == 0x8 && rd16(d + 2) == PCI_CONFIG_ADDRESS_PORT) {   /* I/O port */
                g_assert_cmpuint(d[7], ==, 8);
                cfg = true;
            }
            end = type == 0xf;
            at += 1u + len;
        }
    }
    g_assert_true(bus);
    g_assert_true(cfg);
    g_assert_true(window);
    g_assert_true(end);
}

/* The DSDT describes the PCI host bridge, and the memory hot-plug
 * controller with as many DIMM slots as -m slots= gives, and its AML runs
 * in ACPICA's interpreter (acpiexec, from acpica-tools, which the build
 * needs for iasl anyway). */
static void test_acpi_dsdt(void)
{
    GuestMemory *mem = test_mem_new(32);
    TestElfOpts eo = test_elf_defaults();
    g_autoptr(GBytes) k = test_elf_build(&eo);
    gsize len;
    const uint8_t *p = g_bytes_get_data(k, &len);
    BootImages img = { .kernel = p, .kernel_size = len, .ncpus = 1, .mem_slots = 4 };
    BootEntry e;
    g_autoptr(GError) error = NULL;

    g_assert_true(boot_load_images(mem, &img, &e, &error));
    const uint8_t *rsdp = acpi_find_rsdp(mem);
    g_assert_nonnull(rsdp);
    const uint8_t *rsdt = acpi_table(mem, rd32(rsdp + 16), "RSDT");
    const uint8_t *fadt = acpi_table(mem, rd32(rsdt + 36), "FACP");
    const uint8_t *dsdt = acpi_table(mem, rd32(fadt + 40), "DSDT");
    uint32_t dlen = rd32(dsdt + 4);
    static const uint8_t mdnr[] = { 'M', 'D', 'N', 'R', 0x0c, 4, 0, 0, 0 };
    g_assert_nonnull(memmem(dsdt, dlen, mdnr, sizeof(mdnr)));
    g_assert_nonnull(memmem(dsdt, dlen, "MHPC", 4));
    g_assert_nonnull(memmem(dsdt, dlen, "_E03", 4));

    g_autofree char *acpiexec = g_find_program_in_path("acpiexec");
    if (!acpiexec) {
        g_test_skip("not installed: acpiexec (Debian: acpica-tools): the AML is not run");
        guest_memory_free(mem);
        return;
    }
    g_autofree char *dir = g_dir_make_tmp("colo-dsdt-XXXXXX", NULL);
    g_autofree char *file = g_build_filename(dir, "dsdt.aml", NULL);
    g_assert_true(g_file_set_contents(file, (const char *)dsdt, dlen, NULL));
    const char *argv[] = {
        acpiexec, "-b",
        "evaluate \\_SB.MHPC._STA; evaluate \\_SB.MP03._STA; evaluate \\_SB.MP00._CRS; "
        "evaluate \\_SB.MP01._PXM; evaluate \\_GPE._E03; "
        "evaluate \\_SB.PCI0._HID; evaluate \\_SB.PCI0._CRS",
        file, NULL,
    };
    g_autofree char *out = NULL, *err = NULL;
    gint status = 0;
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                               &status, &error));
    g_assert_no_error(error);
    g_autofree char *all = g_strconcat(out, err, NULL);
    if (strstr(all, "AE_") || strstr(all, "ACPI Error") || !g_spawn_check_wait_status(status, NULL)) {
        g_error("acpiexec found a problem in the DSDT:\n%s", all);
    }
    /* The controller is there with slots; a slot reads as empty (ACPICA
     * simulates the I/O ports as zeros); the GPE handler scans them all. */
    g_assert_nonnull(strstr(all, "Evaluation of \\_SB.MHPC._STA returned"));
    g_assert_nonnull(strstr(all, "[Integer] = 000000000000000B"));
    g_assert_nonnull(strstr(all, "Evaluating \\_GPE._E03"));
    /* The PCI host bridge (Linux scans bus 0 only through it): PNP0A03
     * as an EISA id, and its resources. */
    g_assert_nonnull(strstr(all, "Evaluation of \\_SB.PCI0._HID returned"));
    g_assert_nonnull(strstr(all, "[Integer] = 00000000030AD041"));
    g_autoptr(GByteArray) crs = acpiexec_buffer(all, "Evaluation of \\_SB.PCI0._CRS returned");
    check_pci0_crs(crs);
    unlink(file);
    g_rmdir(dir);
    guest_memory_free(mem);
}

static void test_acpi(gconstpointer data)
{
    unsigned ncpus = GPOINTER_TO_UINT(data);
    GuestMemory *mem = test_mem_new(32);
    BootEntry e;
    GError *error = NULL;

    g_assert_true(load_kind(mem, true, ncpus, &e, &error));
    g_assert_no_error(error);

    const uint8_t *rsdp = acpi_find_rsdp(mem);
    g_assert_nonnull(rsdp);
    g_assert_cmpuint(sum(rsdp, 20), ==, 0);
    g_assert_cmpuint(rsdp[15], ==, 2);
    g_assert_cmpuint(rd32(rsdp + 20), ==, 36);
    g_assert_cmpuint(sum(rsdp, 36), ==, 0);
    /* The zero page points at the same RSDP. */
    const uint8_t *zp = guest_memory_ptr(mem, e.params, 4096);
    g_assert_true(guest_memory_ptr(mem, rd64(zp + 0x70), 36) == rsdp);

    /* XSDT and RSDT list the same tables: FACP and APIC. */
    const uint8_t *xsdt = acpi_table(mem, rd64(rsdp + 24), "XSDT");
    const uint8_t *rsdt = acpi_table(mem, rd32(rsdp + 16), "RSDT");
    unsigned n = (rd32(xsdt + 4) - 36) / 8;
    g_assert_cmpuint(n, ==, (rd32(rsdt + 4) - 36) / 4);
    const uint8_t *fadt = NULL, *madt = NULL;
    for (unsigned i = 0; i < n; i++) {
        uint64_t gpa = rd64(xsdt + 36 + 8 * i);
        g_assert_cmphex(gpa, ==, rd32(rsdt + 36 + 4 * i));
        const uint8_t *t = guest_memory_ptr(mem, gpa, 4);
        if (memcmp(t, "FACP", 4) == 0) {
            fadt = acpi_table(mem, gpa, "FACP");
        } else if (memcmp(t, "APIC", 4) == 0) {
            madt = acpi_table(mem, gpa, "APIC");
        }
    }
    g_assert_nonnull(fadt);
    g_assert_nonnull(madt);

    /* FADT: the PM hardware of vmm/devices/acpi-pm, reset via 0xcf9. */
    g_assert_cmpuint(rd32(fadt + 4), >=, 244);
    g_assert_cmpuint(rd16(fadt + 46), ==, 9);             /* SCI_INT */
    g_assert_cmphex(rd32(fadt + 48), ==, 0);              /* SMI_CMD: always ACPI mode */
    g_assert_cmphex(rd32(fadt + 56), ==, 0x600);          /* PM1a_EVT_BLK */
    g_assert_cmphex(rd32(fadt + 64), ==, 0x604);          /* PM1a_CNT_BLK */
    g_assert_cmphex(rd32(fadt + 76), ==, 0x608);          /* PM_TMR_BLK */
    g_assert_cmpuint(fadt[88], ==, 4);
    g_assert_cmpuint(fadt[89], ==, 2);
    g_assert_cmpuint(fadt[91], ==, 4);
    g_assert_true(rd32(fadt + 112) & (1u << 10));         /* RESET_REG_SUP */
    g_assert_cmpuint(fadt[116], ==, 1);                   /* SystemIO */
    g_assert_cmphex(rd64(fadt + 120), ==, 0xcf9);
    g_assert_cmphex(fadt[128], ==, 0x06);
    g_assert_cmphex(rd64(fadt + 140), ==, rd32(fadt + 40)); /* X_DSDT == DSDT */
    g_assert_cmphex(rd64(fadt + 132), ==, rd32(fadt + 36)); /* X_FIRMWARE_CTRL == FACS */
    g_assert_cmphex(rd64(fadt + 152), ==, 0x600);         /* X_PM1a_EVT_BLK: GAS at 148, address at +4 */
    g_assert_cmphex(rd64(fadt + 176), ==, 0x604);
    g_assert_cmphex(rd64(fadt + 212), ==, 0x608);
    g_assert_cmphex(rd32(fadt + 80), ==, 0x620);          /* GPE0_BLK of vmm/devices/acpi-pm */
    g_assert_cmpuint(fadt[92], ==, 16);                   /* GPE0_BLK_LEN */
    g_assert_cmphex(rd64(fadt + 224), ==, 0x620);         /* X_GPE0_BLK */
    const uint8_t *facs = guest_memory_ptr(mem, rd32(fadt + 36), 64);
    g_assert_cmphex(rd32(fadt + 36) % 64, ==, 0);
    g_assert_cmpmem(facs, 4, "FACS", 4);
    g_assert_cmpuint(rd32(facs + 4), ==, 64);

    /* DSDT: \_S5 = Package { 0, ... } (SLP_TYP 0, what acpi-pm powers off on). */
    const uint8_t *dsdt = acpi_table(mem, rd32(fadt + 40), "DSDT");
    static const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12 };
    g_assert_nonnull(memmem(dsdt + 36, rd32(dsdt + 4) - 36, s5, sizeof(s5)));

    /* MADT: the same machine as the MP table. */
    g_assert_cmphex(rd32(madt + 36), ==, 0xfee00000);
    g_assert_cmpuint(rd32(madt + 40) & 1, ==, 1);         /* PCAT_COMPAT */
    unsigned lapics = 0, ioapics = 0, isos = 0, nmis = 0;
    const uint8_t *p = madt + 44, *end = madt + rd32(madt + 4);
    while (p < end) {
        g_assert_cmpuint(p[1], >=, 2);
        g_assert_true(p + p[1] <= end);
        switch (p[0]) {
        case 0:
            g_assert_cmpuint(p[1], ==, 8);
            g_assert_cmpuint(p[3], ==, lapics);           /* APIC ids 0..n-1 */
            g_assert_cmpuint(rd32(p + 4) & 1, ==, 1);
            lapics++;
            break;
        case 1:
            g_assert_cmpuint(p[1], ==, 12);
            g_assert_cmpuint(p[2], ==, ncpus);
            g_assert_cmphex(rd32(p + 4), ==, 0xfec00000);
            g_assert_cmpuint(rd32(p + 8), ==, 0);
            ioapics++;
            break;
        case 2:
            g_assert_cmpuint(p[1], ==, 10);
            g_assert_cmpuint(p[3], ==, 9);                /* only the SCI is overridden */
            g_assert_cmpuint(rd32(p + 4), ==, 9);
            g_assert_cmphex(rd16(p + 8), ==, 0xd);        /* level, active high */
            isos++;
            break;
        case 4:
            g_assert_cmpuint(p[1], ==, 6);
            g_assert_cmpuint(p[5], ==, 1);                /* LINT1 */
            nmis++;
            break;
        default:
            g_error("unexpected MADT entry type %u", p[0]);
        }
        p += p[1];
    }
    g_assert_true(p == end);
    g_assert_cmpuint(lapics, ==, ncpus);
    g_assert_cmpuint(ioapics, ==, 1);
    g_assert_cmpuint(isos, ==, 1);
    g_assert_cmpuint(nmis, ==, 1);
    guest_memory_free(mem);
}

/* ---- CPU state ---- */

/* Decodes GDT entry @sel from guest memory and checks that the segment
 * register KVM gets is what a segment load would produce from it. */
static void check_segment(GuestMemory *mem, const struct kvm_sregs *s, const struct kvm_segment *seg)
{
    g_assert_cmpuint(seg->selector % 8, ==, 0);
    g_assert_cmpuint(seg->selector + 7u, <=, s->gdt.limit);
    uint64_t d = rd64(guest_memory_ptr(mem, s->gdt.base + seg->selector, 8));
    uint32_t limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));
    bool g = (d >> 55) & 1;
    g_assert_cmphex(seg->base, ==, ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000));
    g_assert_cmphex(seg->limit, ==, g ? (limit << 12) | 0xfff : limit);
    g_assert_cmpuint(seg->type, ==, (d >> 40) & 0xf);
    g_assert_cmpuint(seg->s, ==, (d >> 44) & 1);
    g_assert_cmpuint(seg->dpl, ==, (d >> 45) & 3);
    g_assert_cmpuint(seg->present, ==, (d >> 47) & 1);
    g_assert_cmpuint(seg->l, ==, (d >> 53) & 1);
    g_assert_cmpuint(seg->db, ==, (d >> 54) & 1);
    g_assert_cmpuint(seg->g, ==, g);
    g_assert_cmpuint(seg->present, ==, 1);
    g_assert_cmpuint(seg->unusable, ==, 0);
}

static void check_flat(const struct kvm_segment *seg)
{
    g_assert_cmphex(seg->base, ==, 0);
    g_assert_cmphex(seg->limit, ==, 0xffffffff);
    g_assert_cmpuint(seg->dpl, ==, 0);
}

static void get_state(GuestMemory *mem, bool is_linux, BootEntry *e, struct kvm_regs *r,
                      struct kvm_sregs *s)
{
    GError *error = NULL;

    g_assert_true(load_kind(mem, is_linux, 1, e, &error));
    g_assert_no_error(error);
    memset(r, 0xee, sizeof(*r));
    memset(s, 0, sizeof(*s));
    s->apic_base = 0xfee00900;            /* as KVM_GET_SREGS returns it */
    boot_cpu_state(e, r, s);
    g_assert_cmphex(s->apic_base, ==, 0xfee00900);   /* left alone */
}

static void test_cpu_pvh(void)
{
    GuestMemory *mem = test_mem_new(32);
    BootEntry e;
    struct kvm_regs r;
    struct kvm_sregs s;

    get_state(mem, false, &e, &r, &s);
    g_assert_cmpint(e.mode, ==, BOOT_MODE_PVH);

    /* PVH ABI: 32-bit flat protected mode, paging off. */
    g_assert_cmphex(r.rip, ==, e.entry);
    g_assert_cmphex(r.rbx, ==, e.params);
    g_assert_cmphex(r.rflags, ==, 0x2);
    g_assert_cmphex(r.rsp, ==, e.stack);
    g_assert_cmphex(r.rax, ==, 0);
    g_assert_cmphex(s.cr0, ==, 0x11);                 /* PE | ET */
    g_assert_cmphex(s.cr4, ==, 0);
    g_assert_cmphex(s.efer, ==, 0);
    g_assert_cmphex(s.gdt.base, ==, e.gdt);
    g_assert_cmphex(s.gdt.limit, ==, e.gdt_limit);

    g_assert_cmphex(s.cs.selector, ==, 0x8);
    check_segment(mem, &s, &s.cs);
    check_flat(&s.cs);
    g_assert_cmpuint(s.cs.type, ==, 0xb);              /* execute/read, accessed */
    g_assert_cmpuint(s.cs.db, ==, 1);
    g_assert_cmpuint(s.cs.l, ==, 0);
    const struct kvm_segment *data[] = { &s.ds, &s.es, &s.fs, &s.gs, &s.ss };
    for (unsigned i = 0; i < G_N_ELEMENTS(data); i++) {
        check_segment(mem, &s, data[i]);
        check_flat(data[i]);
        g_assert_cmpuint(data[i]->type, ==, 0x3);     /* read/write, accessed */
        g_assert_cmpuint(data[i]->s, ==, 1);
    }
    /* TR: a busy 32-bit TSS, base 0, limit 0x67 (PVH ABI). */
    check_segment(mem, &s, &s.tr);
    g_assert_cmpuint(s.tr.type, ==, 0xb);
    g_assert_cmpuint(s.tr.s, ==, 0);
    g_assert_cmphex(s.tr.base, ==, 0);
    g_assert_cmphex(s.tr.limit, ==, 0x67);
    g_assert_cmpuint(s.ldt.unusable, ==, 1);
    guest_memory_free(mem);
}

/* Walks PML4 -> PDPT -> PD (2 MiB pages) in guest memory. */
static uint64_t translate(GuestMemory *mem, uint64_t cr3, uint64_t va)
{
    uint64_t pml4e = rd64(guest_memory_ptr(mem, (cr3 & ~0xfffULL) + 8 * ((va >> 39) & 511), 8));
    g_assert_true(pml4e & 1);
    uint64_t pdpte = rd64(guest_memory_ptr(mem, (pml4e & 0xffffffffff000ULL) + 8 * ((va >> 30) & 511), 8));
    g_assert_true(pdpte & 1);
    g_assert_false(pdpte & 0x80);
    uint64_t pde = rd64(guest_memory_ptr(mem, (pdpte & 0xffffffffff000ULL) + 8 * ((va >> 21) & 511), 8));
    g_assert_true(pde & 1);
    g_assert_true(pde & 2);                           /* writable */
    g_assert_true(pde & 0x80);
    return (pde & 0xfffffffe00000ULL) | (va & 0x1fffff);
}

static void test_cpu_linux64(void)
{
    GuestMemory *mem = test_mem_new(32);
    BootEntry e;
    struct kvm_regs r;
    struct kvm_sregs s;

    get_state(mem, true, &e, &r, &s);
    g_assert_cmpint(e.mode, ==, BOOT_MODE_LINUX64);

    /* Boot protocol, 64-bit: long mode, identity paging, rsi = zero page. */
    g_assert_cmphex(r.rip, ==, e.entry);
    g_assert_cmphex(r.rsi, ==, e.params);
    g_assert_cmphex(r.rflags & 0x200, ==, 0);         /* interrupts off */
    g_assert_cmphex(s.cr0 & 0x80000001, ==, 0x80000001);
    g_assert_cmphex(s.cr4 & 0x20, ==, 0x20);
    g_assert_cmphex(s.efer & 0x500, ==, 0x500);
    g_assert_cmphex(s.cr3, ==, e.page_tables);

    g_assert_cmphex(s.cs.selector, ==, 0x10);          /* __BOOT_CS */
    check_segment(mem, &s, &s.cs);
    g_assert_cmpuint(s.cs.l, ==, 1);
    g_assert_cmpuint(s.cs.db, ==, 0);
    g_assert_cmphex(s.ds.selector, ==, 0x18);          /* __BOOT_DS */
    g_assert_cmphex(s.ss.selector, ==, 0x18);
    check_segment(mem, &s, &s.ds);
    check_segment(mem, &s, &s.ss);
    check_segment(mem, &s, &s.tr);
    check_flat(&s.ds);

    /* Identity mapping covers the kernel, the zero page, the command line
     * and everything up to 4 GiB. */
    const uint64_t probes[] = { 0, e.params, 0x20000, e.entry, e.kernel_end - 1, 0xc0000000,
                                0xfee00000, 0xffffffff };
    for (unsigned i = 0; i < G_N_ELEMENTS(probes); i++) {
        g_assert_cmphex(translate(mem, s.cr3, probes[i]), ==, probes[i]);
    }
    /* The tables do not overlap the zero page or the GDT. */
    g_assert_true(e.page_tables >= e.params + 4096 || e.page_tables + 6 * 4096 <= e.params);
    g_assert_true(e.gdt + e.gdt_limit < e.page_tables || e.gdt >= e.page_tables + 6 * 4096);
    guest_memory_free(mem);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/boot/e820/small", test_e820_small);
    g_test_add_func("/boot/e820/high", test_e820_high);
    g_test_add_data_func("/boot/mptable/1-cpu", GUINT_TO_POINTER(1), test_mptable);
    g_test_add_data_func("/boot/mptable/4-cpus", GUINT_TO_POINTER(4), test_mptable);
    g_test_add_data_func("/boot/mptable/254-cpus", GUINT_TO_POINTER(254), test_mptable);
    g_test_add_func("/boot/mptable/bad-ncpus", test_mptable_bad_ncpus);
    g_test_add_data_func("/boot/acpi/1-cpu", GUINT_TO_POINTER(1), test_acpi);
    g_test_add_data_func("/boot/acpi/254-cpus", GUINT_TO_POINTER(254), test_acpi);
    g_test_add_func("/boot/acpi/dsdt", test_acpi_dsdt);
    g_test_add_func("/boot/cpu/pvh", test_cpu_pvh);
    g_test_add_func("/boot/cpu/linux64", test_cpu_linux64);
    return g_test_run();
}
