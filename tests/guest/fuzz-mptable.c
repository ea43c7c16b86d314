/* libFuzzer target: the guest's MP table parser on arbitrary low memory.
 * The input is the F segment (0xF0000-0xFFFFF, where VMMs put the table);
 * 0xE0000-0xEFFFF reads as zeros, everything else is unreadable. When the
 * input's last byte is odd the harness fixes both checksums, so mutations
 * reach the entry walk instead of dying at the checksum. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mptable.h"

#define WIN_BASE 0xe0000u
#define WIN_SIZE 0x20000u
#define FSEG     0xf0000u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *map(void *opaque, uint64_t gpa, size_t len)
{
    uint8_t *win = opaque;

    if (gpa < WIN_BASE || gpa - WIN_BASE > WIN_SIZE || len > WIN_SIZE - (gpa - WIN_BASE)) {
        return NULL;
    }
    return win + (gpa - WIN_BASE);
}

static void fix_sum(uint8_t *p, size_t len, size_t at)
{
    uint8_t s = 0;

    p[at] = 0;
    for (size_t i = 0; i < len; i++) {
        s = (uint8_t)(s + p[i]);
    }
    p[at] = (uint8_t)-s;
}

static void fix_checksums(uint8_t *win)
{
    for (uint32_t off = 0; off + 16 <= 0x10000; off += 16) {
        uint8_t *f = win + (FSEG - WIN_BASE) + off;
        if (memcmp(f, "_MP_", 4) != 0) {
            continue;
        }
        fix_sum(f, 16, 10);
        uint32_t table = (uint32_t)f[4] | (uint32_t)f[5] << 8 | (uint32_t)f[6] << 16 | (uint32_t)f[7] << 24;
        if (table >= WIN_BASE && table - WIN_BASE + 44 <= WIN_SIZE) {
            uint8_t *t = win + (table - WIN_BASE);
            size_t len = (size_t)(t[4] | t[5] << 8);
            if (len >= 44 && table - WIN_BASE + len <= WIN_SIZE) {
                fix_sum(t, len, 7);
            }
        }
        return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *win = calloc(1, WIN_SIZE);
    struct mp_info mp;

    if (!win) {
        return 0;
    }
    memcpy(win + (FSEG - WIN_BASE), data, size < 0x10000 ? size : 0x10000);
    if (size && (data[size - 1] & 1)) {
        fix_checksums(win);
    }
    if (mptable_find(map, win, &mp)) {
        if (mp.ncpus == 0 || mp.ncpus > MP_MAX_CPUS || mp.ncpus > mp.ncpus_listed ||
            (mp.bsp >= 0 && (unsigned)mp.bsp >= mp.ncpus)) {
            abort();
        }
    } else if (!mp.error) {
        abort();
    }
    free(win);
    return 0;
}
