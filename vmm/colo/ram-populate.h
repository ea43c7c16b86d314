/* The secondary's guest RAM, faulted in by a background thread once COLO
 * runs (docs/colo.md, "The secondary's memory").
 *
 * A checkpoint's commit copies the pages either side dirtied into the
 * secondary guest's RAM with both guests paused. Pages the initial sync
 * never wrote (they were zero) are not there yet: the first copy into each
 * faults, and with transparent huge pages each such fault clears 2 MiB. The
 * first checkpoints after a protect paid 150-190 ms for that in the
 * two-node harness, against about 1 ms later. The thread takes those
 * faults ahead of the commits instead, at the lowest priority. The
 * secondary then holds the guest's whole RAM, as a replica ends up doing
 * anyway once the guest has touched it all. */
#ifndef COLO_VMM_COLO_RAM_POPULATE_H
#define COLO_VMM_COLO_RAM_POPULATE_H

#include "memory.h"

typedef struct RamPopulate RamPopulate;

/* Starts the thread on every block of @mem (which must outlive it). */
RamPopulate *ram_populate_start(const GuestMemory *mem);
/* Stops it (where it got to stays populated) and frees it; NULL is fine. */
void ram_populate_stop(RamPopulate *rp);

#endif
