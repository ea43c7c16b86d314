#include "config.h"

#include <gio/gio.h>

#include "virtio/virtio-blk.h"

#include <errno.h>
#include <string.h>

#include <qb/qblog.h>

#include "block/block.h"
#include "block/raw.h"

#define VIRTIO_ID_BLOCK 2
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_ID_BYTES 20
#define SECTOR 512
#define BLK_QUEUE_SIZE 256
#define BLK_BATCH 64            /* requests per turn before others get the lock */

struct VirtioBlk {
    VirtioDev *vd;
    BlockNode *node;            /* top of the disk's block stack, owned */
    bool write_back;            /* FLUSH negotiated */
    char serial[VIRTIO_BLK_ID_BYTES + 1];
    /* The request's data buffers as host pointers into guest memory, and
     * their guest addresses (I/O thread scratch, VIRTQ_MAX_SIZE each). */
    struct iovec *iov;
    uint64_t *gpa;
};

/* Config (5.2.4): capacity in sectors, size_max, seg_max. */
static void virtio_blk_config_read(VirtioDev *vd, unsigned offset, uint8_t *data, unsigned len)
{
    VirtioBlk *blk = vd->opaque;
    uint8_t cfg[16] = { 0 };
    uint64_t sectors = blk->node->size / SECTOR;
    uint32_t seg_max = BLK_QUEUE_SIZE - 2;

    for (unsigned i = 0; i < 8; i++) {
        cfg[i] = (uint8_t)(sectors >> (8 * i));
    }
    for (unsigned i = 0; i < 4; i++) {
        cfg[12 + i] = (uint8_t)(seg_max >> (8 * i));
    }
    memset(data, 0, len);
    if (offset < sizeof(cfg)) {
        memcpy(data, cfg + offset, MIN(len, sizeof(cfg) - offset));
    }
}

static bool virtio_blk_features_ok(VirtioDev *vd, uint64_t features)
{
    VirtioBlk *blk = vd->opaque;

    blk->write_back = features & (1ULL << VIRTIO_BLK_F_FLUSH);
    return true;
}

/* Point blk->iov at the request's data in guest memory: for a write the
 * readable buffers after the 16-byte header, for a read the writable ones
 * before the status byte. Returns the entries used or -EFAULT. */
static int virtio_blk_map(VirtioBlk *blk, Virtqueue *vq, const VirtqElem *elem, bool write, uint64_t len)
{
    unsigned k = write ? 0 : elem->nr_out, end = write ? elem->nr_out : elem->nr_out + elem->nr_in;
    uint64_t skip = write ? 16 : 0;
    int n = 0;

    for (; k < end && len > 0; k++) {
        const VirtqBuf *b = &elem->bufs[k];
        if (skip >= b->len) {
            skip -= b->len;
            continue;
        }
        uint64_t take = MIN(b->len - skip, len);
        void *p = guest_memory_ptr(vq->mem, b->gpa + skip, take);
        if (!p) {
            return -EFAULT;
        }
        blk->gpa[n] = b->gpa + skip;
        blk->iov[n++] = (struct iovec) { p, (size_t)take };
        len -= take;
        skip = 0;
    }
    return n;
}

/* Read or write straight between the node and guest memory: no bounce
 * copy. Pages a read filled are marked dirty once it is done (even if it
 * failed part way), never before, so a collector cannot miss them. */
static int virtio_blk_rw(VirtioBlk *blk, Virtqueue *vq, const VirtqElem *elem, bool write,
                         uint64_t offset, uint64_t len)
{
    int n = virtio_blk_map(blk, vq, elem, write, len);
    int r;

    if (n < 0) {
        return n;
    }
    if (write) {
        return block_pwritev(blk->node, offset, blk->iov, n);
    }
    r = block_preadv(blk->node, offset, blk->iov, n);
    for (int i = 0; i < n; i++) {
        guest_memory_mark_dirty(vq->mem, blk->gpa[i], blk->iov[i].iov_len);
    }
    return r;
}

/* One request: header (type, reserved, sector), data, status byte last. */
static uint32_t virtio_blk_handle(VirtioBlk *blk, Virtqueue *vq, const VirtqElem *elem)
{
    uint8_t hdr[16], status = VIRTIO_BLK_S_OK;
    uint32_t written = 0;

    if (elem->out_len < sizeof(hdr) || elem->in_len < 1 ||
        virtq_elem_read(vq, elem, 0, hdr, sizeof(hdr)) != sizeof(hdr)) {
        qb_log(LOG_WARNING, "%s: request %u without header or status byte", vq->name, elem->head);
        return 0;   /* nowhere to put a status: complete it empty */
    }
    uint32_t type = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
    uint64_t sector = 0;
    for (int k = 15; k >= 8; k--) {
        sector = sector << 8 | hdr[k];
    }
    uint64_t data_in = elem->in_len - 1, data_out = elem->out_len - sizeof(hdr);
    int r = 0;

    switch (type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT: {
        bool write = type == VIRTIO_BLK_T_OUT;
        uint64_t len = write ? data_out : data_in;
        if (len % SECTOR || sector > UINT64_MAX / SECTOR) {
            r = -EINVAL;
            break;
        }
        r = virtio_blk_rw(blk, vq, elem, write, sector * SECTOR, len);
        if (r == 0 && write && !blk->write_back) {
            r = block_flush(blk->node);
        }
        written = write ? 0 : (uint32_t)len;
        break;
    }
    case VIRTIO_BLK_T_FLUSH:
        r = block_flush(blk->node);
        break;
    case VIRTIO_BLK_T_GET_ID: {
        size_t n = MIN(data_in, (uint64_t)VIRTIO_BLK_ID_BYTES);
        if (virtq_elem_write(vq, elem, 0, blk->serial, n) != (ssize_t)n) {
            r = -EFAULT;
        }
        written = (uint32_t)n;
        break;
    }
    default:
        status = VIRTIO_BLK_S_UNSUPP;
        break;
    }
    if (r < 0) {
        qb_log(LOG_WARNING, "%s: request type %u sector %" G_GUINT64_FORMAT ": %s", vq->name, type,
               sector, strerror(-r));
        status = VIRTIO_BLK_S_IOERR;
        written = 0;
    }
    if (virtq_elem_write(vq, elem, elem->in_len - 1, &status, 1) != 1) {
        return written;
    }
    return written + 1;
}

static void virtio_blk_queue_notify(VirtioDev *vd, unsigned q)
{
    VirtioBlk *blk = vd->opaque;
    Virtqueue *vq = &vd->vqs[q];
    unsigned done = 0;

    /* Drain the queue; notify once per batch, not per request. */
    for (;;) {
        int r = virtq_pop(vq, vd->elem);
        if (r <= 0) {
            break;
        }
        uint32_t written = virtio_blk_handle(blk, vq, vd->elem);
        if (!virtq_push(vq, vd->elem, written)) {
            break;
        }
        if (++done % BLK_BATCH == 0) {
            virtio_dev_notify(vd, q);
        }
    }
    if (done % BLK_BATCH) {
        virtio_dev_notify(vd, q);
    }
}

static const VirtioDevOps virtio_blk_ops = {
    .type = "virtio-blk",
    .device_id = VIRTIO_ID_BLOCK,
    .class_code = 0x010000,     /* mass storage, SCSI (what virtio-blk reports) */
    .num_queues = 1,
    .queue_size = BLK_QUEUE_SIZE,
    .config_size = 16,
    .config_read = virtio_blk_config_read,
    .features_ok = virtio_blk_features_ok,
    .queue_notify = virtio_blk_queue_notify,
};

VirtioBlk *virtio_blk_new_node(PciBus *bus, GuestMemory *mem, BlockNode *node, unsigned index,
                               GError **error)
{
    VirtioBlk *blk = g_new0(VirtioBlk, 1);
    g_autofree char *name = g_strdup_printf("virtio-blk%u", index);
    uint64_t features = 1ULL << VIRTIO_BLK_F_FLUSH | 1ULL << VIRTIO_BLK_F_SEG_MAX;

    blk->node = node;
    if (node->readonly) {
        features |= 1ULL << VIRTIO_BLK_F_RO;
    }
    g_snprintf(blk->serial, sizeof(blk->serial), "colo-blk%u", index);
    blk->iov = g_new(struct iovec, VIRTQ_MAX_SIZE);
    blk->gpa = g_new(uint64_t, VIRTQ_MAX_SIZE);
    blk->vd = virtio_dev_new(bus, mem, &virtio_blk_ops, blk, name, features, error);
    if (!blk->vd) {
        virtio_blk_free(blk);
        return NULL;
    }
    qb_log(LOG_INFO, "%s: %s, %" G_GUINT64_FORMAT " sectors%s", name, node->name,
           node->size / SECTOR, node->readonly ? ", read-only" : "");
    return blk;
}

VirtioBlk *virtio_blk_new(PciBus *bus, GuestMemory *mem, const VirtioBlkConfig *cfg,
                          unsigned index, GError **error)
{
    BlockNode *node = block_raw_open(cfg->file, cfg->readonly, error);

    return node ? virtio_blk_new_node(bus, mem, node, index, error) : NULL;
}

void virtio_blk_free(VirtioBlk *blk)
{
    if (blk) {
        virtio_dev_free(blk->vd);
        block_node_close(blk->node);
        g_free(blk->iov);
        g_free(blk->gpa);
        g_free(blk);
    }
}

BlockNode *virtio_blk_node(VirtioBlk *blk)
{
    return blk->node;
}

void virtio_blk_set_node(VirtioBlk *blk, BlockNode *node)
{
    g_return_if_fail(node->size == blk->node->size && node->readonly == blk->node->readonly);
    virtio_dev_pause(blk->vd);
    blk->node = node;
    virtio_dev_resume(blk->vd);
}

int virtio_blk_remove_filter(VirtioBlk *blk, int (*drain)(BlockNode *filter))
{
    BlockNode *filter = blk->node;
    int r;

    if (!filter->child) {
        return -EINVAL;
    }
    /* Paused from before @drain to after the switch (set_node's pause
     * nests): a request in between would go to the drained filter. */
    virtio_dev_pause(blk->vd);
    r = drain ? drain(filter) : 0;
    if (r == 0) {
        virtio_blk_set_node(blk, filter->child);
        block_node_remove_filter(filter);
    }
    virtio_dev_resume(blk->vd);
    return r;
}

VirtioDev *virtio_blk_dev(VirtioBlk *blk)
{
    return blk->vd;
}
