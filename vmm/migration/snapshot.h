/* Snapshot protect (docs/colo.md, "Snapshot protect"): the initial sync of
 * COLO as one copy-on-write snapshot instead of precopy passes, for a guest
 * that dirties memory faster than the link carries it.
 *
 * The primary pauses once to start dirty logging and write-protect guest
 * RAM with userfaultfd, and runs on. The migration thread streams every
 * page once, as it was at the pause; a guest (or device) write to a page
 * not yet streamed traps, and the fault thread ("mig/snap-wp") copies the
 * page aside before letting the write through. Once every page is out, the
 * usual final phase (stop, the pages dirtied since the snapshot, disks,
 * devices) leads into COLO. The secondary sees an ordinary x-colo stream
 * and waits for all of it, as for a precopy sync.
 *
 * Threads: snapshot_start, snapshot_stream and snapshot_stop run on the
 * migration thread; snapshot_query on any, with the Migration's lock. */
#ifndef COLO_VMM_MIGRATION_SNAPSHOT_H
#define COLO_VMM_MIGRATION_SNAPSHOT_H

#include <stdbool.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "migration/migration.h"

typedef struct Snapshot Snapshot;

/* x-colo with postcopy-ram selects it. */
bool migration_snapshot_selected(const Migration *m);

/* The pause: dirty logging from here (m->src.ram set up, its bitmaps
 * cleared), RAM write-protected. Then stream every page on m->src.out. */
bool snapshot_start(Migration *m, GError **error);
bool snapshot_stream(Migration *m, GError **error);
/* Write protection off, copies freed, fault thread gone; the numbers stay
 * for query-migrate. Idempotent; also after a failure. */
void snapshot_stop(Migration *m);
/* Everything, at the next migrate or at the end. */
void snapshot_free(Snapshot *s);

/* query-migrate's and query-colo-status's "snapshot" member; nothing before
 * a snapshot protect. With m->lock held. */
void snapshot_query_locked(Migration *m, JsonObject *ret);

#endif
