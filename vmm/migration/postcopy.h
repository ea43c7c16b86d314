/* Postcopy live migration (postcopy.c). */
#ifndef COLO_VMM_MIGRATION_POSTCOPY_H
#define COLO_VMM_MIGRATION_POSTCOPY_H

#include "migration/migration.h"

typedef struct Postcopy Postcopy;

Postcopy *postcopy_new(void);
void postcopy_free(Postcopy *pc, GuestMemory *mem);

/* Source */
bool migration_postcopy_requested(Migration *m);
void migration_postcopy_advise(Migration *m, MigChannel *c);
void migration_postcopy_set_demand_channel(Migration *m, MigChannel *c);
/* Stop the VM, send discards, devices, RUN, then the rest in the background. */
bool migration_postcopy_run(Migration *m, GError **error);
/* A REQ_PAGES payload from the return path; false if malformed. */
bool migration_postcopy_serve_request(Migration *m, const uint8_t *payload, uint16_t len);

/* Destination */
bool migration_incoming_ram(Migration *m, MigChannel *c, GError **error);
bool migration_incoming_postcopy_command(Migration *m, MigChannel *c, uint16_t cmd,
                                         const uint8_t *payload, uint16_t len, GError **error);
bool migration_incoming_in_postcopy(Migration *m);
/* Guest RAM is registered with userfaultfd: its layout is fixed now. */
bool migration_incoming_postcopy_listening(Migration *m);
gpointer migration_postcopy_demand_thread(gpointer opaque);
void migration_incoming_postcopy_cleanup(Migration *m);

void migration_query_postcopy(Migration *m, JsonObject *ret);

/* The threads on a demand fault's path (fault thread, return path, demand
 * channel; snapshot protect's fault thread) run ahead of the bulk stream's,
 * at SCHED_FIFO priority 1 where allowed, else nice -10: a vCPU waits on
 * them. */
void postcopy_thread_urgent(void);

#endif
