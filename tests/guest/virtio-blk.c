/* virtio-blk: header, data and status descriptors, FLUSH negotiated so a
 * write is durable only after a flush (the disk service waits for it). */
#include "console.h"
#include "disksvc.h"
#include "io.h"
#include "layout.h"
#include "virtio-blk.h"
#include "virtio.h"

#define VIRTIO_BLK_F_FLUSH  9
#define VIRTIO_BLK_T_IN     0
#define VIRTIO_BLK_T_OUT    1
#define VIRTIO_BLK_T_FLUSH  4

struct blk_req_hdr {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

static struct virtio_dev dev;
static struct virtq q;
static struct blk_req_hdr hdr;
static volatile uint8_t status;
static uint64_t blocks;
static bool busy;

bool vblk_init(uint32_t apic_id)
{
    if (!virtio_dev_init(&dev, VIRTIO_DEV_BLK, 1ULL << VIRTIO_BLK_F_FLUSH, "virtio-blk")) {
        return false;
    }
    if (!virtio_msix(&dev, 0, VEC_BLK, apic_id) || !virtio_queue_setup(&dev, &q, 0, 16, 0)) {
        kprintf("colo-testguest: virtio-blk: no MSI-X or queue, disk ignored\n");
        virtio_dev_fail(&dev);
        return false;
    }
    blocks = (uint64_t)mmio_read32(dev.device_cfg) | (uint64_t)mmio_read32(dev.device_cfg + 4) << 32;
    virtio_dev_ready(&dev);
    return true;
}

uint64_t vblk_blocks(void)
{
    return blocks;
}

uint64_t diskdev_blocks(void)
{
    return blocks;
}

bool diskdev_submit(enum diskdev_op op, uint64_t block, uint8_t *buf)
{
    uint16_t n = 0;

    if (!blocks || busy) {
        return false;
    }
    hdr.type = op == DISKDEV_READ ? VIRTIO_BLK_T_IN : op == DISKDEV_WRITE ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_FLUSH;
    hdr.reserved = 0;
    hdr.sector = op == DISKDEV_FLUSH ? 0 : block;
    status = 0xff;
    q.desc[n] = (struct virtq_desc){ (uint64_t)(uintptr_t)&hdr, sizeof(hdr), VIRTQ_DESC_F_NEXT, 1 };
    n++;
    if (op != DISKDEV_FLUSH) {
        q.desc[n] = (struct virtq_desc){ (uint64_t)(uintptr_t)buf, DISK_BLOCK,
                                         (uint16_t)(VIRTQ_DESC_F_NEXT | (op == DISKDEV_READ ? VIRTQ_DESC_F_WRITE : 0)),
                                         2 };
        n++;
    } else {
        q.desc[0].next = 2;
    }
    q.desc[2] = (struct virtq_desc){ (uint64_t)(uintptr_t)&status, 1, VIRTQ_DESC_F_WRITE, 0 };
    busy = true;
    virtq_push_avail(&q, 0);
    virtq_kick(&q);
    return true;
}

void vblk_poll(void)
{
    const struct virtq_used_elem *e;

    if (!blocks) {
        return;
    }
    while ((e = virtq_next_used(&q))) {
        if (busy) {
            busy = false;
            disksvc_done(status == 0);
        }
    }
}
