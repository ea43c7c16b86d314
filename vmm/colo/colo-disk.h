/* COLO's disks (docs/colo.md). The primary logs every write of an epoch
 * (a write-log filter on each disk) and sends the log with the epoch's
 * checkpoint. The secondary's guest writes into a copy-on-write overlay
 * that each checkpoint drops; the primary's writes of an epoch are kept
 * until the whole checkpoint has arrived, then written to the image and
 * flushed before LOADED. At failover the secondary's overlay (its guest's
 * view) is written into the image, and an unfinished epoch's writes are
 * dropped. Disks are the virtio-blk devices in command-line order. */
#ifndef COLO_VMM_COLO_COLO_DISK_H
#define COLO_VMM_COLO_COLO_DISK_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "migration/channel.h"

/* ---- primary (the guest paused in each call but send) ---- */
typedef struct ColoDiskPrimary {
    GPtrArray *disks;           /* VirtioBlk, the VM's */
    GPtrArray *logs;            /* per disk, its write-log filter */
    GPtrArray *captured;        /* per disk, the epoch's writes (GPtrArray) */
} ColoDiskPrimary;

void colo_disk_primary_start(ColoDiskPrimary *d, GPtrArray *disks);
/* The writes since the last capture, kept for colo_disk_send. */
void colo_disk_capture(ColoDiskPrimary *d);
/* The captured writes as MIG_REC_DISK records, in the order they were made. */
void colo_disk_send(ColoDiskPrimary *d, MigChannel *c);
void colo_disk_primary_stop(ColoDiskPrimary *d);

/* ---- secondary ---- */
typedef struct ColoDiskSecondary {
    GPtrArray *disks;           /* VirtioBlk, the VM's */
    GPtrArray *overlays;        /* per disk, the overlay on top */
    GQueue pending;             /* this checkpoint's writes of the primary */
    uint64_t pending_bytes;
} ColoDiskSecondary;

/* The initial sync's copy made durable, then an overlay on every disk. */
bool colo_disk_secondary_start(ColoDiskSecondary *d, GPtrArray *disks, GError **error);
/* One MIG_REC_DISK record (after its kind byte) into the pending writes. */
bool colo_disk_receive(ColoDiskSecondary *d, MigChannel *c, GError **error);
/* Guest paused: the pending writes onto the images, flushed, and the
 * guest's own writes since the last checkpoint dropped. */
bool colo_disk_commit(ColoDiskSecondary *d, GError **error);
/* Leave COLO (guest paused): drop pending writes, write the overlays into
 * the images, take them out. */
bool colo_disk_secondary_stop(ColoDiskSecondary *d, GError **error);

#endif
