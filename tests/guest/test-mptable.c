/* Unit tests of the guest's MP table parser against synthetic low memory
 * (host build). */
#include <glib.h>
#include <string.h>

#include "mptable.h"

#define MEM_SIZE 0x100000

typedef struct {
    uint8_t *mem;
} Mem;

static const uint8_t *map(void *opaque, uint64_t gpa, size_t len)
{
    Mem *m = opaque;

    if (gpa > MEM_SIZE || len > MEM_SIZE - gpa) {
        return NULL;
    }
    return m->mem + gpa;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}

static uint8_t csum(const uint8_t *p, size_t len)
{
    uint8_t s = 0;

    for (size_t i = 0; i < len; i++) {
        s = (uint8_t)(s + p[i]);
    }
    return (uint8_t)-s;
}

/* Writes a floating pointer at @fps and a table at @table with @ncpus
 * processors (APIC ids 0..; every third disabled if @holes), a bus, an
 * IOAPIC and an interrupt entry. Returns the table length. */
static size_t build(uint8_t *mem, uint32_t fps, uint32_t table, unsigned ncpus, bool holes)
{
    uint8_t *t = mem + table, *p = t + 44;
    unsigned count = 0;

    memset(t, 0, 44);
    for (unsigned i = 0; i < ncpus; i++, count++) {
        memset(p, 0, 20);
        p[0] = 0;
        p[1] = (uint8_t)(i * 2);        /* sparse APIC ids */
        p[3] = (holes && i % 3 == 2) ? 0 : 1;
        if (i == 0) {
            p[3] |= 2;
        }
        p += 20;
    }
    memcpy(p, "\x01\x00ISA   ", 8);
    p += 8, count++;
    p[0] = 2, p[1] = 9, p[2] = 0x11, p[3] = 1;
    put32(p + 4, 0xfec00000);
    p += 8, count++;
    memcpy(p, "\x03\x00\x00\x00\x00\x00\x09\x00", 8);
    p += 8, count++;

    size_t len = (size_t)(p - t);
    memcpy(t, "PCMP", 4);
    put16(t + 4, (uint16_t)len);
    t[6] = 4;
    put16(t + 34, (uint16_t)count);
    put32(t + 36, 0xfee00000);
    t[7] = csum(t, len);

    uint8_t *f = mem + fps;
    memset(f, 0, 16);
    memcpy(f, "_MP_", 4);
    put32(f + 4, table);
    f[8] = 1;
    f[9] = 4;
    f[10] = csum(f, 16);
    return len;
}

static void test_found_in_fseg(void)
{
    Mem m = { g_malloc0(MEM_SIZE) };
    struct mp_info mp;

    build(m.mem, 0xf5ba0, 0xf5bb0, 4, false);
    g_assert_true(mptable_find(map, &m, &mp));
    g_assert_null(mp.error);
    g_assert_cmpuint(mp.fps_gpa, ==, 0xf5ba0);
    g_assert_cmpuint(mp.table_gpa, ==, 0xf5bb0);
    g_assert_cmpuint(mp.ncpus, ==, 4);
    g_assert_cmpuint(mp.ncpus_listed, ==, 4);
    g_assert_cmpint(mp.bsp, ==, 0);
    g_assert_cmpuint(mp.apic_id[3], ==, 6);
    g_assert_cmpuint(mp.lapic_addr, ==, 0xfee00000);
    g_assert_cmpuint(mp.ioapic_addr, ==, 0xfec00000);
    g_free(m.mem);
}

static void test_disabled_skipped_and_ebda(void)
{
    Mem m = { g_malloc0(MEM_SIZE) };
    struct mp_info mp;

    put16(m.mem + 0x40e, 0x9fc0);               /* EBDA at 0x9fc00 */
    build(m.mem, 0x9fc10, 0x9fc20, 6, true);
    g_assert_true(mptable_find(map, &m, &mp));
    g_assert_cmpuint(mp.fps_gpa, ==, 0x9fc10);
    g_assert_cmpuint(mp.ncpus, ==, 4);          /* ids 0, 2, 6, 8 */
    g_assert_cmpuint(mp.apic_id[2], ==, 6);
    g_free(m.mem);
}

static void test_too_many_cpus(void)
{
    Mem m = { g_malloc0(MEM_SIZE) };
    struct mp_info mp;

    build(m.mem, 0xf0000, 0xf0010, MP_MAX_CPUS + 8, false);
    g_assert_true(mptable_find(map, &m, &mp));
    g_assert_cmpuint(mp.ncpus, ==, MP_MAX_CPUS);
    g_assert_cmpuint(mp.ncpus_listed, ==, MP_MAX_CPUS + 8);
    g_free(m.mem);
}

static void test_absent(void)
{
    Mem m = { g_malloc0(MEM_SIZE) };
    struct mp_info mp;

    g_assert_false(mptable_find(map, &m, &mp));
    g_assert_cmpstr(mp.error, ==, "no MP floating pointer found");
    /* A signature without a valid checksum is not a floating pointer. */
    memcpy(m.mem + 0xf1000, "_MP_\x10\x10\x0f\x00\x01", 9);
    g_assert_false(mptable_find(map, &m, &mp));
    g_assert_cmpstr(mp.error, ==, "no MP floating pointer found");
    g_free(m.mem);
}

static void expect_bad(void (*damage)(uint8_t *t, size_t len), const char *error)
{
    Mem m = { g_malloc0(MEM_SIZE) };
    struct mp_info mp;
    size_t len = build(m.mem, 0xf0000, 0xf0100, 2, false);

    damage(m.mem + 0xf0100, len);
    g_assert_false(mptable_find(map, &m, &mp));
    g_assert_cmpstr(mp.error, ==, error);
    g_free(m.mem);
}

static void damage_checksum(uint8_t *t, size_t len)
{
    t[40] ^= 1;
}

static void damage_signature(uint8_t *t, size_t len)
{
    t[0] = 'X';
}

static void damage_count(uint8_t *t, size_t len)
{
    put16(t + 34, 200);                      /* more entries than bytes */
    t[7] = 0;
    t[7] = csum(t, len);
}

static void damage_type(uint8_t *t, size_t len)
{
    t[44 + 40] = 9;                          /* the bus entry */
    t[7] = 0;
    t[7] = csum(t, len);
}

static void damage_length(uint8_t *t, size_t len)
{
    put16(t + 4, 20);
}

static void damage_cut_entry(uint8_t *t, size_t len)
{
    put16(t + 4, 44 + 30);                   /* second processor entry cut in half */
    put16(t + 34, 2);
    t[7] = 0;
    t[7] = csum(t, 44 + 30);
}

static void damage_no_cpu(uint8_t *t, size_t len)
{
    t[44 + 3] = 0;
    t[44 + 20 + 3] = 0;
    t[7] = 0;
    t[7] = csum(t, len);
}

static void test_malformed(void)
{
    expect_bad(damage_checksum, "MP configuration table checksum is wrong");
    expect_bad(damage_signature, "MP configuration table signature missing");
    expect_bad(damage_count, "MP table entries run past its length");
    expect_bad(damage_type, "MP table has an unknown entry type");
    expect_bad(damage_length, "MP configuration table length is invalid");
    expect_bad(damage_cut_entry, "MP table entry runs past its length");
    expect_bad(damage_no_cpu, "MP table lists no enabled processor");
}

static void test_table_outside_memory(void)
{
    Mem m = { g_malloc0(MEM_SIZE) };
    struct mp_info mp;

    build(m.mem, 0xf0000, 0xf0100, 2, false);
    put32(m.mem + 0xf0004, 0xfffffff0);      /* table pointer past the end */
    m.mem[0xf000a] = 0;
    m.mem[0xf000a] = csum(m.mem + 0xf0000, 16);
    g_assert_false(mptable_find(map, &m, &mp));
    g_assert_cmpstr(mp.error, ==, "MP configuration table signature missing");
    g_free(m.mem);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/guest/mptable/found-in-fseg", test_found_in_fseg);
    g_test_add_func("/guest/mptable/disabled-and-ebda", test_disabled_skipped_and_ebda);
    g_test_add_func("/guest/mptable/too-many-cpus", test_too_many_cpus);
    g_test_add_func("/guest/mptable/absent", test_absent);
    g_test_add_func("/guest/mptable/malformed", test_malformed);
    g_test_add_func("/guest/mptable/outside-memory", test_table_outside_memory);
    return g_test_run();
}
