#include "config.h"

#include "migration/disk.h"

#include <gio/gio.h>

#include "block/dirty-bitmap.h"
#include "migration/format.h"
#include "virtio/virtio-blk.h"

#define DISK_COPY_GRANULARITY (256 * 1024)

void disk_put_record(MigChannel *c, uint8_t disk, uint64_t offset, const void *data, uint32_t len)
{
    mig_put_u8(c, MIG_REC_DISK);
    mig_put_u8(c, disk);
    mig_put_be64(c, offset);
    mig_put_be32(c, len);
    mig_put_bytes(c, data, len);
}

bool disk_read_record(MigChannel *c, GPtrArray *disks, uint8_t *disk, uint64_t *offset, uint8_t **data,
                      uint32_t *len, GError **error)
{
    *disk = mig_get_u8(c);
    *offset = mig_get_be64(c);
    *len = mig_get_be32(c);
    *data = NULL;
    if (mig_channel_error(c)) {
        return false;
    }
    if (*disk >= disks->len) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "the source has a disk %u, this VM %u disk(s)", *disk, disks->len);
        return false;
    }
    uint64_t size = block_length(virtio_blk_node(disks->pdata[*disk]));
    if (*len == 0 || *len > MIG_MAX_DISK_RECORD || *offset > size || *len > size - *offset) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "disk %u record of %u bytes at %" G_GUINT64_FORMAT " (the disk has %" G_GUINT64_FORMAT ")",
                    *disk, *len, *offset, size);
        return false;
    }
    *data = g_malloc(*len);
    mig_get_bytes(c, *data, *len);
    if (mig_channel_error(c)) {
        g_clear_pointer(data, g_free);
        return false;
    }
    return true;
}

void disk_save_setup(DiskSave *ds, GPtrArray *disks)
{
    ds->disks = disks;
    ds->bitmaps = g_ptr_array_new();
    ds->buf = g_malloc(DISK_COPY_GRANULARITY);
    for (guint i = 0; i < disks->len; i++) {
        VirtioBlk *blk = disks->pdata[i];
        if (virtio_blk_node(blk)->readonly) {
            /* The secondary needs the same image: nothing to copy into it. */
            g_ptr_array_add(ds->bitmaps, NULL);
            continue;
        }
        /* Cannot fail with a valid granularity. */
        BlockNode *bm = block_dirty_bitmap_new(virtio_blk_node(blk), DISK_COPY_GRANULARITY, NULL);
        block_dirty_bitmap_set(bm, 0, block_dirty_bitmap_blocks(bm));
        virtio_blk_set_node(blk, bm);
        g_ptr_array_add(ds->bitmaps, bm);
    }
}

bool disk_save_pass(DiskSave *ds, MigChannel *c, GError **error)
{
    for (guint i = 0; i < ds->bitmaps->len; i++) {
        BlockNode *bm = ds->bitmaps->pdata[i];
        uint64_t block = 0;
        while (bm && block_dirty_bitmap_next(bm, block, &block)) {
            if (block_dirty_bitmap_test_and_clear(bm, block)) {
                uint64_t offset = block * DISK_COPY_GRANULARITY;
                uint32_t len = (uint32_t)MIN((uint64_t)DISK_COPY_GRANULARITY, bm->size - offset);
                /* After the clear: a write landing now marks it again. */
                int r = block_pread(bm->child, offset, ds->buf, len);
                if (r < 0) {
                    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(-r), "reading disk %u: %s", i,
                                g_strerror(-r));
                    return false;
                }
                disk_put_record(c, (uint8_t)i, offset, ds->buf, len);
                if (mig_channel_error(c)) {
                    return false;
                }
            }
            block++;
        }
    }
    return true;
}

void disk_save_cleanup(DiskSave *ds)
{
    for (guint i = 0; ds->bitmaps && i < ds->bitmaps->len; i++) {
        VirtioBlk *blk = ds->disks->pdata[i];
        BlockNode *bm = ds->bitmaps->pdata[i];
        if (!bm) {
            continue;
        }
        virtio_blk_set_node(blk, bm->child);
        block_node_remove_filter(bm);
    }
    g_clear_pointer(&ds->bitmaps, g_ptr_array_unref);
    g_clear_pointer(&ds->buf, g_free);
}
