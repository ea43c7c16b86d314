#include "config.h"

#include <gio/gio.h>

#include "virtio/virtio-blk.h"

#include <errno.h>
#include <string.h>

#include <qb/qblog.h>

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
#define BLK_BOUNCE (128 * 1024)
#define BLK_BATCH 64            /* requests per turn before others get the lock */

struct VirtioBlk {
    VirtioDev *vd;
    BlockRaw *raw;
    bool write_back;            /* FLUSH negotiated */
    char serial[VIRTIO_BLK_ID_BYTES + 1];
    uint8_t *bounce;
};

/* Config (5.2.4): capacity in sectors, size_max, seg_max. */
static void virtio_blk_config_read(VirtioDev *vd, unsigned offset, uint8_t *data, unsigned len)
{
    VirtioBlk *blk = vd->opaque;
    uint8_t cfg[16] = { 0 };
    uint64_t sectors = blk->raw->size / SECTOR;
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

/* Copy between the image and the request's buffers in bounce-sized steps. */
static int virtio_blk_rw(VirtioBlk *blk, Virtqueue *vq, const VirtqElem *elem, bool write,
                         uint64_t offset, uint64_t len)
{
    for (uint64_t done = 0; done < len;) {
        size_t n = (size_t)MIN(len - done, (uint64_t)BLK_BOUNCE);
        int r;
        if (write) {
            if (virtq_elem_read(vq, elem, 16 + done, blk->bounce, n) != (ssize_t)n) {
                return -EFAULT;
            }
            r = block_raw_write(blk->raw, offset + done, blk->bounce, n);
        } else {
            r = block_raw_read(blk->raw, offset + done, blk->bounce, n);
            if (r == 0 && virtq_elem_write(vq, elem, done, blk->bounce, n) != (ssize_t)n) {
                r = -EFAULT;
            }
        }
        if (r < 0) {
            return r;
        }
        done += n;
    }
    return 0;
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
            r = block_raw_flush(blk->raw);
        }
        written = write ? 0 : (uint32_t)len;
        break;
    }
    case VIRTIO_BLK_T_FLUSH:
        r = block_raw_flush(blk->raw);
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

VirtioBlk *virtio_blk_new(PciBus *bus, GuestMemory *mem, const VirtioBlkConfig *cfg,
                          unsigned index, GError **error)
{
    VirtioBlk *blk = g_new0(VirtioBlk, 1);
    g_autofree char *name = g_strdup_printf("virtio-blk%u", index);
    uint64_t features = 1ULL << VIRTIO_BLK_F_FLUSH | 1ULL << VIRTIO_BLK_F_SEG_MAX;

    blk->raw = block_raw_open(cfg->file, cfg->readonly, error);
    if (!blk->raw) {
        g_free(blk);
        return NULL;
    }
    if (cfg->readonly) {
        features |= 1ULL << VIRTIO_BLK_F_RO;
    }
    g_snprintf(blk->serial, sizeof(blk->serial), "colo-blk%u", index);
    blk->bounce = g_malloc(BLK_BOUNCE);
    blk->vd = virtio_dev_new(bus, mem, &virtio_blk_ops, blk, name, features, error);
    if (!blk->vd) {
        virtio_blk_free(blk);
        return NULL;
    }
    qb_log(LOG_INFO, "%s: %s, %" G_GUINT64_FORMAT " sectors%s", name, cfg->file,
           blk->raw->size / SECTOR, cfg->readonly ? ", read-only" : "");
    return blk;
}

void virtio_blk_free(VirtioBlk *blk)
{
    if (blk) {
        virtio_dev_free(blk->vd);
        block_raw_close(blk->raw);
        g_free(blk->bounce);
        g_free(blk);
    }
}

VirtioDev *virtio_blk_dev(VirtioBlk *blk)
{
    return blk->vd;
}
