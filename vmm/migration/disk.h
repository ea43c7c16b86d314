/* Disks in the migration stream, for COLO (docs/colo.md): the initial sync
 * copies every disk of the source while its guest runs (a dirty-block
 * bitmap sends again what the guest rewrote), and each checkpoint carries
 * the primary's writes of its epoch. Disks are the virtio-blk devices in
 * command-line order on both sides, of equal sizes. */
#ifndef COLO_VMM_MIGRATION_DISK_H
#define COLO_VMM_MIGRATION_DISK_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "migration/channel.h"

/* A MIG_REC_DISK record. */
void disk_put_record(MigChannel *c, uint8_t disk, uint64_t offset, const void *data, uint32_t len);

/* One MIG_REC_DISK record, after its kind byte, checked against @disks
 * (VirtioBlk): *@data (g_free) holds *@len bytes for disk *@disk at *@offset. */
bool disk_read_record(MigChannel *c, GPtrArray *disks, uint8_t *disk, uint64_t *offset, uint8_t **data,
                      uint32_t *len, GError **error);

/* The source's copy of its disks. */
typedef struct DiskSave {
    GPtrArray *disks;           /* VirtioBlk, the VM's */
    GPtrArray *bitmaps;         /* per disk, the dirty-bitmap filter on top */
    uint8_t *buf;               /* one block */
} DiskSave;

/* Track writes to every disk of @disks (VirtioBlk) and mark all of each
 * disk to send. Main thread, or with the guest paused. */
void disk_save_setup(DiskSave *ds, GPtrArray *disks);
/* Send every block marked now (cleared as it goes; a block the guest
 * writes meanwhile is marked again). Migration thread. */
bool disk_save_pass(DiskSave *ds, MigChannel *c, GError **error);
/* Stop tracking (take the filters out). Guest paused, or main thread. */
void disk_save_cleanup(DiskSave *ds);

#endif
