/* The node's durable memory of a VM: its last role and the generation, a
 * number that grows at each protect and failover, so that after both nodes
 * failed the one with the newest data is known. Kept in STATE_DIR/state as
 * a small key file, replaced atomically (temporary file, fsync, rename,
 * fsync of the directory). */
#ifndef COLOD_STATE_FILE_H
#define COLOD_STATE_FILE_H

#include "colod-types.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define COLOD_STATE_ERROR (colod_state_error_quark())
GQuark colod_state_error_quark(void);

typedef enum {
    COLOD_STATE_ERROR_IO,      /* cannot read or write */
    COLOD_STATE_ERROR_CORRUPT, /* the file exists but is not a valid state */
} ColodStateError;

typedef struct {
    ColodRole role;
    uint64_t generation;
} ColodStateRecord;

/* Loads STATE_DIR/state into @out. A missing file is not an error: @out is
 * role none, generation 0, and *@found (may be NULL) false. A file that
 * exists and is not exactly a valid state is COLOD_STATE_ERROR_CORRUPT,
 * never read as zero. */
bool colod_state_load(const char *dir, ColodStateRecord *out, bool *found, GError **error);

/* Writes @rec durably: when this returns true the new state survives a
 * power loss, and a crash at any point leaves either the old or the new. */
bool colod_state_save(const char *dir, const ColodStateRecord *rec, GError **error);

/* The file's text for @rec (the format, shared with the tests). */
char *colod_state_format(const ColodStateRecord *rec);

/* Parses the file's text; @origin names it in errors. */
bool colod_state_parse(const char *data, gsize len, const char *origin, ColodStateRecord *out, GError **error);

#endif
