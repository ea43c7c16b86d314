/* libFuzzer target: the split-virtqueue parser. The input is a queue
 * configuration (size, ring addresses, last_avail) followed by bytes laid
 * over the rings' guest memory; the parser must pop, read, write and push
 * without touching memory outside guest RAM, and a malformed queue must
 * end up broken, never crash. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <qb/qblog.h>

#include "memory.h"
#include "virtio/virtqueue.h"

#define FUZZ_RAM (2u << 20)
#define FUZZ_AREA 0x10000u      /* where the input's memory image goes */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static GuestMemory *mem;
    static VirtqElem elem;
    static uint8_t scratch[4096];

    if (!mem) {
        GuestMemoryConfig cfg = { .size = FUZZ_RAM };
        qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_FALSE);
        mem = guest_memory_new(&cfg, NULL);
    }
    if (size < 16) {
        return 0;
    }
    Virtqueue vq;
    virtq_reset(&vq, 256);
    vq.mem = mem;
    vq.name = "fuzz";
    vq.size = (uint16_t)(data[0] | data[1] << 8);
    /* Ring addresses: offsets into the fuzzed area, or (high bit) raw. */
    uint32_t a[3] = { rd32(data + 2), rd32(data + 6), rd32(data + 10) };
    uint64_t *dst[3] = { &vq.desc, &vq.avail, &vq.used };
    for (unsigned i = 0; i < 3; i++) {
        *dst[i] = (a[i] & 0x80000000u) ? (uint64_t)a[i] << 1 : FUZZ_AREA + (a[i] & 0xffff);
    }
    vq.last_avail = data[14];
    size_t n = MIN(size - 16, (size_t)(FUZZ_RAM - FUZZ_AREA));
    memset(guest_memory_ptr(mem, 0, FUZZ_RAM), 0, FUZZ_RAM);
    guest_memory_write(mem, FUZZ_AREA, data + 16, n);

    if (!virtq_enable(&vq)) {
        return 0;
    }
    for (unsigned round = 0; round < 64; round++) {
        int r = virtq_pop(&vq, &elem);
        if (r <= 0) {
            break;
        }
        if (elem.nr_out + elem.nr_in > vq.size) {
            __builtin_trap();   /* a chain longer than the queue got through */
        }
        virtq_elem_read(&vq, &elem, data[15], scratch, sizeof(scratch));
        virtq_elem_write(&vq, &elem, data[15], scratch, MIN(elem.in_len, (uint64_t)sizeof(scratch)));
        if (!virtq_push(&vq, &elem, (uint32_t)elem.in_len)) {
            break;
        }
    }
    return 0;
}
