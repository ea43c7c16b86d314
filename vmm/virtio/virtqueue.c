#include "config.h"

#include "virtio/virtqueue.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include <qb/qblog.h>

typedef struct VirtqDesc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
} VirtqDesc;

/* Ring layout sizes (2.7): flags, idx, ring[size], used_event/avail_event. */
static uint64_t virtq_desc_bytes(uint16_t size)
{
    return 16ULL * size;
}

static uint64_t virtq_avail_bytes(uint16_t size)
{
    return 6 + 2ULL * size;
}

static uint64_t virtq_used_bytes(uint16_t size)
{
    return 6 + 8ULL * size;
}

void virtq_reset(Virtqueue *vq, uint16_t max_size)
{
    vq->size = max_size;
    vq->enabled = false;
    vq->broken = false;
    vq->desc = vq->avail = vq->used = 0;
    vq->last_avail = vq->used_idx = 0;
    vq->vector = 0xffff;
}

static void G_GNUC_PRINTF(2, 3) virtq_fail(Virtqueue *vq, const char *fmt, ...)
{
    va_list ap;
    char msg[160];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!vq->broken) {
        qb_log(LOG_ERR, "%s: malformed virtqueue, device needs reset: %s", vq->name, msg);
    }
    vq->broken = true;
}

static bool virtq_range_ok(const Virtqueue *vq, uint64_t gpa, uint64_t len)
{
    return len == 0 ? true : guest_memory_ptr(vq->mem, gpa, len) != NULL;
}

bool virtq_enable(Virtqueue *vq)
{
    if (vq->size == 0 || vq->size > VIRTQ_MAX_SIZE || (vq->size & (vq->size - 1))) {
        virtq_fail(vq, "queue size %u is not a power of two up to %u", vq->size, VIRTQ_MAX_SIZE);
        return false;
    }
    /* Alignment from 2.7: 16 for descriptors, 2 and 4 for the rings. */
    if ((vq->desc & 15) || (vq->avail & 1) || (vq->used & 3)) {
        virtq_fail(vq, "misaligned ring (desc 0x%" PRIx64 ", avail 0x%" PRIx64 ", used 0x%" PRIx64 ")",
                   vq->desc, vq->avail, vq->used);
        return false;
    }
    if (!virtq_range_ok(vq, vq->desc, virtq_desc_bytes(vq->size)) ||
        !virtq_range_ok(vq, vq->avail, virtq_avail_bytes(vq->size)) ||
        !virtq_range_ok(vq, vq->used, virtq_used_bytes(vq->size))) {
        virtq_fail(vq, "ring outside guest RAM (desc 0x%" PRIx64 ", avail 0x%" PRIx64
                   ", used 0x%" PRIx64 ", size %u)", vq->desc, vq->avail, vq->used, vq->size);
        return false;
    }
    vq->enabled = true;
    return true;
}

static bool virtq_read16(Virtqueue *vq, uint64_t gpa, uint16_t *v)
{
    uint8_t b[2];

    if (!guest_memory_read(vq->mem, gpa, b, 2)) {
        return false;
    }
    *v = (uint16_t)(b[0] | b[1] << 8);
    return true;
}

static bool virtq_read_desc(Virtqueue *vq, uint16_t i, VirtqDesc *d)
{
    uint8_t b[16];

    if (!guest_memory_read(vq->mem, vq->desc + 16ULL * i, b, sizeof(b))) {
        return false;
    }
    d->addr = 0;
    for (int k = 7; k >= 0; k--) {
        d->addr = d->addr << 8 | b[k];
    }
    d->len = (uint32_t)b[8] | (uint32_t)b[9] << 8 | (uint32_t)b[10] << 16 | (uint32_t)b[11] << 24;
    d->flags = (uint16_t)(b[12] | b[13] << 8);
    d->next = (uint16_t)(b[14] | b[15] << 8);
    return true;
}

int virtq_pop(Virtqueue *vq, VirtqElem *elem)
{
    uint16_t avail_idx, head;

    if (!vq->enabled || vq->broken) {
        return vq->broken ? -EINVAL : 0;
    }
    if (!virtq_read16(vq, vq->avail + 2, &avail_idx)) {
        virtq_fail(vq, "available ring unreadable");
        return -EINVAL;
    }
    uint16_t pending = (uint16_t)(avail_idx - vq->last_avail);
    if (pending == 0) {
        return 0;
    }
    if (pending > vq->size) {
        virtq_fail(vq, "available index jumped by %u (queue size %u)", pending, vq->size);
        return -EINVAL;
    }
    /* The ring entry is read after the index (x86 keeps loads in order;
     * the fence documents it and keeps the compiler honest). */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (!virtq_read16(vq, vq->avail + 4 + 2ULL * (vq->last_avail % vq->size), &head)) {
        virtq_fail(vq, "available ring unreadable");
        return -EINVAL;
    }
    if (head >= vq->size) {
        virtq_fail(vq, "head descriptor %u out of range (size %u)", head, vq->size);
        return -EINVAL;
    }

    elem->head = head;
    elem->nr_out = elem->nr_in = 0;
    elem->out_len = elem->in_len = 0;
    uint16_t i = head;
    /* A chain has at most vq->size descriptors; one more is a loop. */
    for (unsigned n = 0;; n++) {
        VirtqDesc d;
        if (n >= vq->size) {
            virtq_fail(vq, "descriptor chain from %u loops or exceeds the queue size %u", head, vq->size);
            return -EINVAL;
        }
        if (!virtq_read_desc(vq, i, &d)) {
            virtq_fail(vq, "descriptor table unreadable");
            return -EINVAL;
        }
        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            virtq_fail(vq, "indirect descriptor %u, a feature not negotiated", i);
            return -EINVAL;
        }
        if (!virtq_range_ok(vq, d.addr, d.len)) {
            virtq_fail(vq, "descriptor %u buffer 0x%" PRIx64 "+%u outside guest RAM", i, d.addr, d.len);
            return -EINVAL;
        }
        if (d.flags & VIRTQ_DESC_F_WRITE) {
            elem->in_len += d.len;
            elem->bufs[elem->nr_out + elem->nr_in++] = (VirtqBuf) { d.addr, d.len };
        } else if (elem->nr_in) {
            virtq_fail(vq, "descriptor %u: device-readable buffer after a writable one", i);
            return -EINVAL;
        } else {
            elem->out_len += d.len;
            elem->bufs[elem->nr_out++] = (VirtqBuf) { d.addr, d.len };
        }
        if (!(d.flags & VIRTQ_DESC_F_NEXT)) {
            break;
        }
        if (d.next >= vq->size) {
            virtq_fail(vq, "descriptor %u: next %u out of range (size %u)", i, d.next, vq->size);
            return -EINVAL;
        }
        i = d.next;
    }
    vq->last_avail++;
    return 1;
}

bool virtq_push(Virtqueue *vq, const VirtqElem *elem, uint32_t written)
{
    uint8_t e[8], idx[2];
    uint32_t id = elem->head;
    uint64_t slot = vq->used + 4 + 8ULL * (vq->used_idx % vq->size);

    if (!vq->enabled || vq->broken) {
        return false;
    }
    for (unsigned k = 0; k < 4; k++) {
        e[k] = (uint8_t)(id >> (8 * k));
        e[4 + k] = (uint8_t)(written >> (8 * k));
    }
    vq->used_idx++;
    idx[0] = (uint8_t)vq->used_idx;
    idx[1] = (uint8_t)(vq->used_idx >> 8);
    if (!guest_memory_write(vq->mem, slot, e, sizeof(e))) {
        virtq_fail(vq, "used ring unwritable");
        return false;
    }
    /* The entry must be visible before the index that publishes it. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    if (!guest_memory_write(vq->mem, vq->used + 2, idx, sizeof(idx))) {
        virtq_fail(vq, "used ring unwritable");
        return false;
    }
    return true;
}

bool virtq_should_notify(Virtqueue *vq)
{
    uint16_t flags;

    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return !virtq_read16(vq, vq->avail, &flags) || !(flags & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

ssize_t virtq_elem_read(Virtqueue *vq, const VirtqElem *elem, uint64_t skip, void *buf, size_t len)
{
    size_t done = 0;

    for (unsigned k = 0; k < elem->nr_out && done < len; k++) {
        const VirtqBuf *b = &elem->bufs[k];
        if (skip >= b->len) {
            skip -= b->len;
            continue;
        }
        size_t n = MIN((size_t)(b->len - skip), len - done);
        if (!guest_memory_read(vq->mem, b->gpa + skip, (uint8_t *)buf + done, n)) {
            return -EFAULT;
        }
        done += n;
        skip = 0;
    }
    return (ssize_t)done;
}

ssize_t virtq_elem_write(Virtqueue *vq, const VirtqElem *elem, uint64_t skip, const void *buf, size_t len)
{
    size_t done = 0;

    for (unsigned k = elem->nr_out; k < elem->nr_out + elem->nr_in && done < len; k++) {
        const VirtqBuf *b = &elem->bufs[k];
        if (skip >= b->len) {
            skip -= b->len;
            continue;
        }
        size_t n = MIN((size_t)(b->len - skip), len - done);
        if (!guest_memory_write(vq->mem, b->gpa + skip, (const uint8_t *)buf + done, n)) {
            return -EFAULT;
        }
        done += n;
        skip = 0;
    }
    return (ssize_t)done;
}
