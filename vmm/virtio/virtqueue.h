/* The split virtqueue (virtio 1.x, 2.7): descriptor table, available ring
 * and used ring in guest memory, parsed with everything the guest controls
 * checked. A malformed queue (descriptor index out of range, a ring or
 * buffer outside guest RAM, a loop, a chain longer than the queue, a
 * device-readable buffer after a writable one, an indirect descriptor we
 * did not offer) is logged once and makes the queue broken: the transport
 * then sets DEVICE_NEEDS_RESET and stops using it until the driver resets.
 *
 * Descriptors and ring indices are copied out of guest memory before they
 * are checked, so a guest changing them concurrently cannot race a check.
 * Every write to guest memory (the used ring, device-writable buffers)
 * goes through guest_memory_write, which marks the pages dirty.
 *
 * Not thread-safe: one queue is used by one thread at a time (its device's
 * I/O thread, or a vCPU thread under the device lock for configuration). */
#ifndef COLO_VMM_VIRTIO_VIRTQUEUE_H
#define COLO_VMM_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memory.h"

#define VIRTQ_MAX_SIZE 1024     /* queue size limit (and longest chain) */
#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

typedef struct VirtqBuf {
    uint64_t gpa;
    uint32_t len;
} VirtqBuf;

/* One request: device-readable buffers first (out), then writable (in). */
typedef struct VirtqElem {
    uint16_t head;
    unsigned nr_out, nr_in;
    uint64_t out_len, in_len;   /* bytes */
    VirtqBuf bufs[VIRTQ_MAX_SIZE];
} VirtqElem;

typedef struct Virtqueue {
    GuestMemory *mem;
    const char *name;           /* for log lines: "virtio-blk0 q0" */
    uint16_t size;              /* power of two, 1..VIRTQ_MAX_SIZE */
    bool enabled;
    bool broken;
    uint64_t desc, avail, used; /* guest-physical ring addresses */
    uint16_t last_avail;        /* next available entry to take */
    uint16_t used_idx;          /* next used entry to fill */
    uint16_t vector;            /* MSI-X vector of the queue */
} Virtqueue;

/* Back to the reset state (disabled, indices 0). */
void virtq_reset(Virtqueue *vq, uint16_t max_size);

/* Check the rings lie in guest RAM and start using the queue. False (and
 * broken) if not. */
bool virtq_enable(Virtqueue *vq);

/* Take the next available request. 1: @elem filled; 0: none available;
 * -EINVAL: the queue is malformed (logged, now broken). */
int virtq_pop(Virtqueue *vq, VirtqElem *elem);

/* Return @elem with @written bytes put into its writable buffers. False if
 * the used ring cannot be written (queue broken). */
bool virtq_push(Virtqueue *vq, const VirtqElem *elem, uint32_t written);

/* Should the device interrupt after pushing? (VIRTQ_AVAIL_F_NO_INTERRUPT) */
bool virtq_should_notify(Virtqueue *vq);

/* Gather the readable part of @elem from @skip on into @buf (at most @len
 * bytes); returns the bytes copied, or -EFAULT. */
ssize_t virtq_elem_read(Virtqueue *vq, const VirtqElem *elem, uint64_t skip, void *buf, size_t len);
/* Scatter @len bytes into the writable part from @skip on (through the
 * dirty-marking write path); returns the bytes written (less if the
 * buffers are shorter), or -EFAULT. */
ssize_t virtq_elem_write(Virtqueue *vq, const VirtqElem *elem, uint64_t skip, const void *buf, size_t len);

#endif
