/* MP table parser. Every length comes from guest memory the VMM wrote, so
 * each one is checked before it is used. */
#include "mptable.h"

#define MP_FPS_SIZE     16
#define MP_HDR_SIZE     44
#define MP_CPU_SIZE     20
#define MP_ENTRY_SIZE   8
#define MP_MAX_TABLE    0x10000

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint8_t sum8(const uint8_t *p, size_t len)
{
    uint8_t s = 0;

    for (size_t i = 0; i < len; i++) {
        s = (uint8_t)(s + p[i]);
    }
    return s;
}

static bool fps_valid(const uint8_t *p)
{
    return p[0] == '_' && p[1] == 'M' && p[2] == 'P' && p[3] == '_' && p[8] == 1 && sum8(p, MP_FPS_SIZE) == 0;
}

static bool fail(struct mp_info *out, const char *why)
{
    out->error = why;
    return false;
}

static bool mptable_walk(const uint8_t *t, size_t len, unsigned count, struct mp_info *out)
{
    size_t off = MP_HDR_SIZE;

    for (unsigned i = 0; i < count; i++) {
        if (off >= len) {
            return fail(out, "MP table entries run past its length");
        }
        uint8_t type = t[off];
        size_t esize = type == 0 ? MP_CPU_SIZE : MP_ENTRY_SIZE;
        if (type > 4) {
            return fail(out, "MP table has an unknown entry type");
        }
        if (esize > len - off) {
            return fail(out, "MP table entry runs past its length");
        }
        const uint8_t *e = t + off;
        if (type == 0 && (e[3] & 1)) {
            if (out->ncpus < MP_MAX_CPUS) {
                if (e[3] & 2) {
                    out->bsp = (int)out->ncpus;
                }
                out->apic_id[out->ncpus++] = e[1];
            }
            out->ncpus_listed++;
        } else if (type == 2 && (e[3] & 1) && !out->ioapic_addr) {
            out->ioapic_addr = rd32(e + 4);
        }
        off += esize;
    }
    return true;
}

bool mptable_parse_at(mp_map_fn map, void *opaque, uint64_t fps_gpa, struct mp_info *out)
{
    const uint8_t *fps = map(opaque, fps_gpa, MP_FPS_SIZE);

    *out = (struct mp_info){ .bsp = -1 };
    if (!fps || !fps_valid(fps)) {
        return fail(out, "no valid MP floating pointer there");
    }
    out->fps_gpa = fps_gpa;
    out->table_gpa = rd32(fps + 4);
    if (!out->table_gpa) {
        return fail(out, "MP default configurations are not supported");
    }
    const uint8_t *hdr = map(opaque, out->table_gpa, MP_HDR_SIZE);
    if (!hdr || hdr[0] != 'P' || hdr[1] != 'C' || hdr[2] != 'M' || hdr[3] != 'P') {
        return fail(out, "MP configuration table signature missing");
    }
    size_t len = rd16(hdr + 4);
    if (len < MP_HDR_SIZE || len > MP_MAX_TABLE) {
        return fail(out, "MP configuration table length is invalid");
    }
    const uint8_t *t = map(opaque, out->table_gpa, len);
    if (!t) {
        return fail(out, "MP configuration table lies outside readable memory");
    }
    if (sum8(t, len) != 0) {
        return fail(out, "MP configuration table checksum is wrong");
    }
    out->lapic_addr = rd32(t + 36);
    if (!mptable_walk(t, len, rd16(t + 34), out)) {
        return false;
    }
    if (!out->ncpus) {
        return fail(out, "MP table lists no enabled processor");
    }
    out->error = 0;
    return true;
}

static bool mptable_scan(mp_map_fn map, void *opaque, uint64_t base, size_t len, struct mp_info *out)
{
    const uint8_t *p = map(opaque, base, len);

    if (!p) {
        return false;
    }
    for (size_t off = 0; off + MP_FPS_SIZE <= len; off += 16) {
        if (p[off] == '_' && fps_valid(p + off) && mptable_parse_at(map, opaque, base + off, out)) {
            return true;
        }
    }
    return false;
}

bool mptable_find(mp_map_fn map, void *opaque, struct mp_info *out)
{
    const uint8_t *bda = map(opaque, 0x40e, 2);
    uint64_t ebda = bda ? (uint64_t)rd16(bda) << 4 : 0;

    *out = (struct mp_info){ .bsp = -1, .error = "no MP floating pointer found" };
    if (ebda >= 0x80000 && ebda < 0xa0000 && mptable_scan(map, opaque, ebda, 1024, out)) {
        return true;
    }
    if (mptable_scan(map, opaque, 0x9fc00, 1024, out)) {
        return true;
    }
    if (mptable_scan(map, opaque, 0xf0000, 0x10000, out)) {
        return true;
    }
    /* A floating pointer whose table was bad left its reason in @out. */
    return false;
}
