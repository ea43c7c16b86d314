/* virtio-blk driver for the disk service: one request at a time, its
 * completion interrupt (VEC_BLK) on the boot CPU. */
#ifndef TESTGUEST_VIRTIO_BLK_H
#define TESTGUEST_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

/* Finds and starts the disk. False if there is none usable. */
bool vblk_init(uint32_t apic_id);

/* Reports a finished request to the disk service. */
void vblk_poll(void);

/* Capacity in 512-byte blocks (0: no disk). */
uint64_t vblk_blocks(void);

#endif
