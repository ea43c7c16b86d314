/* virtio-blk (5.2) on a block node (vmm/block/block.h): one request
 * queue, write-back with FLUSH honoured (the node's flush before the
 * request completes). Without FLUSH negotiated the device is
 * write-through: every write is flushed before it completes. Requests go
 * to the node straight from and into guest memory, on the device's I/O
 * thread. */
#ifndef COLO_VMM_VIRTIO_VIRTIO_BLK_H
#define COLO_VMM_VIRTIO_VIRTIO_BLK_H

#include <stdbool.h>
#include <glib.h>

#include "block/block.h"
#include "virtio/virtio-pci.h"

typedef struct VirtioBlkConfig {
    char *file;
    bool readonly;
    char *id;                   /* -drive id=, for -device virtio-blk-pci,drive=ID */
} VirtioBlkConfig;

typedef struct VirtioBlk VirtioBlk;

/* A disk on the raw image @cfg->file. */
VirtioBlk *virtio_blk_new(PciBus *bus, GuestMemory *mem, const VirtioBlkConfig *cfg,
                          unsigned index, GError **error);
/* A disk on the block stack @node, owned by the device from now on (closed
 * on failure too). Its size and read-only flag are the disk's. */
VirtioBlk *virtio_blk_new_node(PciBus *bus, GuestMemory *mem, BlockNode *node, unsigned index,
                               GError **error);
/* Closes the device's block stack. */
void virtio_blk_free(VirtioBlk *blk);
VirtioDev *virtio_blk_dev(VirtioBlk *blk);

/* The top of the device's block stack. */
BlockNode *virtio_blk_node(VirtioBlk *blk);
/* Make @node (same size and read-only flag) the top of the stack, with the
 * I/O thread paused around the switch; no request sees half of it. Any
 * thread but the I/O thread. The old top is not closed: the device owns
 * @node instead, normally a filter over the old top; to take a filter
 * out, set its child, then block_node_remove_filter() the filter. */
void virtio_blk_set_node(VirtioBlk *blk, BlockNode *node);
/* Take the top filter out of the stack with the I/O thread paused
 * throughout: @drain (NULL: nothing) runs on the filter first, say
 * block_overlay_commit to write an overlay's data into the node below;
 * only if it returns 0 does the child become the top and the filter get
 * closed. No guest write can land in the filter after @drain and be lost
 * with it. Returns @drain's result. Any thread but the I/O thread. */
int virtio_blk_remove_filter(VirtioBlk *blk, int (*drain)(BlockNode *filter));

#endif
