#include "config.h"

#include "colo/colo-disk.h"

#include <gio/gio.h>
#include <qb/qblog.h>

#include "block/overlay.h"
#include "block/write-log.h"
#include "migration/disk.h"
#include "virtio/virtio-blk.h"

static VirtioBlk *colo_disk(GPtrArray *disks, guint i)
{
    return disks->pdata[i];
}

/* Take the filter @node, on top of disk @i, out of its stack. */
static void colo_disk_remove_filter(GPtrArray *disks, guint i, BlockNode *node)
{
    virtio_blk_set_node(colo_disk(disks, i), node->child);
    block_node_remove_filter(node);
}

/* ---- primary ---------------------------------------------------------------- */

void colo_disk_primary_start(ColoDiskPrimary *d, GPtrArray *disks)
{
    d->disks = disks;
    d->logs = g_ptr_array_new();
    d->captured = g_ptr_array_new_with_free_func((GDestroyNotify)g_ptr_array_unref);
    for (guint i = 0; i < disks->len; i++) {
        BlockNode *image = virtio_blk_node(colo_disk(disks, i));
        /* A read-only disk never changes: nothing to replicate. */
        BlockNode *log = image->readonly ? NULL : block_write_log_new(image);
        if (log) {
            virtio_blk_set_node(colo_disk(disks, i), log);
        }
        g_ptr_array_add(d->logs, log);
        g_ptr_array_add(d->captured, g_ptr_array_new());
    }
}

void colo_disk_capture(ColoDiskPrimary *d)
{
    for (guint i = 0; i < d->logs->len; i++) {
        if (!d->logs->pdata[i]) {
            continue;
        }
        GPtrArray *writes = block_write_log_take(d->logs->pdata[i]);
        g_ptr_array_unref(d->captured->pdata[i]);
        d->captured->pdata[i] = writes;
    }
}

void colo_disk_send(ColoDiskPrimary *d, MigChannel *c)
{
    for (guint i = 0; i < d->captured->len; i++) {
        GPtrArray *writes = d->captured->pdata[i];
        for (guint w = 0; w < writes->len; w++) {
            const BlockLoggedWrite *lw = writes->pdata[w];
            disk_put_record(c, (uint8_t)i, lw->offset, lw->data, lw->len);
        }
    }
}

void colo_disk_primary_stop(ColoDiskPrimary *d)
{
    for (guint i = 0; d->logs && i < d->logs->len; i++) {
        if (d->logs->pdata[i]) {
            colo_disk_remove_filter(d->disks, i, d->logs->pdata[i]);
        }
    }
    g_clear_pointer(&d->logs, g_ptr_array_unref);
    g_clear_pointer(&d->captured, g_ptr_array_unref);
}

/* ---- secondary ---------------------------------------------------------------- */

typedef struct {
    uint8_t disk;
    uint32_t len;
    uint64_t offset;
    uint8_t *data;
} PendingWrite;

static void pending_write_free(gpointer p)
{
    PendingWrite *w = p;

    g_free(w->data);
    g_free(w);
}

static void colo_disk_drop_pending(ColoDiskSecondary *d)
{
    g_queue_clear_full(&d->pending, pending_write_free);
    d->pending_bytes = 0;
}

bool colo_disk_secondary_start(ColoDiskSecondary *d, GPtrArray *disks, GError **error)
{
    d->disks = disks;
    d->overlays = g_ptr_array_new();
    g_queue_init(&d->pending);
    d->pending_bytes = 0;
    for (guint i = 0; i < disks->len; i++) {
        BlockNode *image = virtio_blk_node(colo_disk(disks, i));
        if (image->readonly) {
            g_ptr_array_add(d->overlays, NULL);     /* its guest cannot write it either */
            continue;
        }
        int r = block_flush(image);
        BlockNode *overlay = r < 0 ? NULL : block_overlay_new(image, 0, NULL, error);
        if (!overlay) {
            if (r < 0) {
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(-r), "disk %u: flush: %s", i,
                            g_strerror(-r));
            }
            g_prefix_error(error, "COLO: disk %u: ", i);
            colo_disk_secondary_stop(d, NULL);
            return false;
        }
        virtio_blk_set_node(colo_disk(disks, i), overlay);
        g_ptr_array_add(d->overlays, overlay);
    }
    return true;
}

bool colo_disk_receive(ColoDiskSecondary *d, MigChannel *c, GError **error)
{
    PendingWrite *w = g_new0(PendingWrite, 1);

    if (!disk_read_record(c, d->disks, &w->disk, &w->offset, &w->data, &w->len, error)) {
        g_free(w);
        return false;
    }
    if (!d->overlays->pdata[w->disk]) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "COLO: the primary writes disk %u, which is read-only here", w->disk);
        pending_write_free(w);
        return false;
    }
    /* Bounded like a device state: a checkpoint holds what one epoch wrote. */
    if (d->pending_bytes + w->len > (1ULL << 30)) {
        pending_write_free(w);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "COLO: more than 1 GiB of disk writes in one checkpoint");
        return false;
    }
    d->pending_bytes += w->len;
    g_queue_push_tail(&d->pending, w);
    return true;
}

bool colo_disk_commit(ColoDiskSecondary *d, GError **error)
{
    int r = 0;

    for (GList *l = d->pending.head; l && r == 0; l = l->next) {
        PendingWrite *w = l->data;
        BlockNode *overlay = d->overlays->pdata[w->disk];
        r = block_pwrite(overlay->child, w->offset, w->data, w->len);
    }
    colo_disk_drop_pending(d);
    for (guint i = 0; i < d->overlays->len && r == 0; i++) {
        BlockNode *overlay = d->overlays->pdata[i];
        if (!overlay) {
            continue;
        }
        r = block_flush(overlay->child);
        if (r == 0) {
            r = block_overlay_discard_all(overlay);
        }
    }
    if (r < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(-r), "COLO: applying the primary's disk writes: %s",
                    g_strerror(-r));
        return false;
    }
    return true;
}

bool colo_disk_secondary_stop(ColoDiskSecondary *d, GError **error)
{
    bool ok = true;

    colo_disk_drop_pending(d);
    for (guint i = 0; d->overlays && i < d->overlays->len; i++) {
        if (!d->overlays->pdata[i]) {
            continue;
        }
        /* Commit and take the overlay out with the device paused
         * throughout: the guest runs again by now, and a write landing in
         * the overlay after the commit would be closed with it. */
        int r = virtio_blk_remove_filter(colo_disk(d->disks, i), block_overlay_commit);
        if (r < 0) {
            /* Keep the overlay: the guest's view stays whole, in memory. */
            qb_log(LOG_ERR, "COLO: disk %u: writing the guest's own writes into the image: %s; "
                   "they stay in memory", i, g_strerror(-r));
            if (ok) {
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(-r), "disk %u: %s", i, g_strerror(-r));
            }
            ok = false;
        }
    }
    g_clear_pointer(&d->overlays, g_ptr_array_unref);
    return ok;
}
