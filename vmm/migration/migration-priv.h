/* Internals shared by the migration files. */
#ifndef COLO_VMM_MIGRATION_PRIV_H
#define COLO_VMM_MIGRATION_PRIV_H

#include "migration/migration.h"

/* Set the status (under the lock) and emit MIGRATION if events are on. */
void migration_set_status(Migration *m, MigStatus status);
void migration_emit_status(Migration *m, MigStatus status);
void migration_set_error(Migration *m, const char *message);
void migration_reset_outgoing(Migration *m);

/* Run @fn(m) on the main thread and wait for it (stop/cont the VM). */
void migration_call_main(Migration *m, GSourceFunc fn);

bool migration_save_devices(Migration *m, MigChannel *c, GError **error);

/* Incoming side (incoming.c): the loader, also the fuzz target's entry. */
bool migration_incoming_load(Migration *m, MigChannel *c, GError **error);
void migration_incoming_cleanup(Migration *m);

/* Incoming postcopy (postcopy.c): RAM records (placed atomically once
 * postcopy listens), the postcopy commands, teardown. */
bool migration_incoming_ram(Migration *m, MigChannel *c, GError **error);
bool migration_incoming_postcopy_command(Migration *m, MigChannel *c, uint16_t cmd,
                                         const uint8_t *payload, uint16_t len, GError **error);
void migration_incoming_postcopy_cleanup(Migration *m);

/* Postcopy figures for query-migrate, under m->lock (postcopy.c). */
void migration_query_postcopy(Migration *m, JsonObject *ret);

/* Postcopy, source side (postcopy.c). */
bool migration_postcopy_requested(Migration *m);
bool migration_postcopy_run(Migration *m, GError **error);
bool migration_postcopy_queue_request(Migration *m, const uint8_t *payload, uint16_t len);

#endif
