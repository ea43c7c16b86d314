/* Internals shared by the migration files. */
#ifndef COLO_VMM_MIGRATION_PRIV_H
#define COLO_VMM_MIGRATION_PRIV_H

#include "migration/migration.h"
#include "migration/postcopy.h"

/* Set the status (under the lock) and emit MIGRATION if events are on. */
void migration_set_status(Migration *m, MigStatus status);
void migration_emit_status(Migration *m, MigStatus status);
void migration_set_error(Migration *m, const char *message);
void migration_reset_outgoing(Migration *m);
/* migrate_cancel unless the commit (owner.h) has begun; true if it
 * cancelled something. Main thread. */
bool migration_cancel_uncommitted(Migration *m);

/* Run @fn(m) on the main thread and wait for it (stop/cont the VM). */
void migration_call_main(Migration *m, GSourceFunc fn);

/* Every device section and the RUN_STATE command, on @c. */
bool migration_save_devices(Migration *m, MigChannel *c, GError **error);

/* Stop the VM for the final phase (main thread, waits); remembers
 * whether it ran. */
void migration_stop_vm(Migration *m);

/* Wait for the destination's SHUT; false with @error unless it is 0. */
bool migration_wait_shut(Migration *m, GError **error);

/* Incoming side (incoming.c): the hello every connection opens with, the
 * loader of the main stream (also the fuzz target's entry), teardown. */
bool migration_read_hello(MigChannel *c, uint8_t *kind, uint8_t *index, GError **error);
bool migration_incoming_load(Migration *m, MigChannel *c, GError **error);
void migration_incoming_cleanup(Migration *m);
void migration_incoming_set_status(Migration *m, MigStatus status);
/* A COLO checkpoint's device state (every device, then the end record),
 * loaded from memory. */
bool migration_load_devices_chunk(Migration *m, const uint8_t *buf, uint32_t size, GError **error);
/* Every device section and RUN_STATE, then @last_cmd unless 0, then the end
 * record, as one buffer of *@size bytes (a packaged chunk's content, or a
 * COLO checkpoint's device state). */
uint8_t *migration_devices_chunk(Migration *m, uint16_t last_cmd, uint32_t *size, GError **error);
/* The load is done (or postcopy runs the guest): run or pause it. Main thread. */
void migration_incoming_start_guest(Migration *m);

#endif
