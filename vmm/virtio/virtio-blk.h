/* virtio-blk (5.2) on a raw image: one request queue, write-back with
 * FLUSH honoured (fdatasync before the request completes). Without FLUSH
 * negotiated the device is write-through: every write is synced before it
 * completes. */
#ifndef COLO_VMM_VIRTIO_VIRTIO_BLK_H
#define COLO_VMM_VIRTIO_VIRTIO_BLK_H

#include <stdbool.h>
#include <glib.h>

#include "virtio/virtio-pci.h"

typedef struct VirtioBlkConfig {
    char *file;
    bool readonly;
    char *id;                   /* -drive id=, for -device virtio-blk-pci,drive=ID */
} VirtioBlkConfig;

typedef struct VirtioBlk VirtioBlk;

VirtioBlk *virtio_blk_new(PciBus *bus, GuestMemory *mem, const VirtioBlkConfig *cfg,
                          unsigned index, GError **error);
void virtio_blk_free(VirtioBlk *blk);
VirtioDev *virtio_blk_dev(VirtioBlk *blk);

#endif
