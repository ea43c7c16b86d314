/* A migration bound to the QMP client that started it, for a source that
 * holds the only complete copy of its guest (migrate's x-sole-copy-file,
 * docs/qmp.md). colod keeps a file that says "the VM runs only here" while
 * that is true; after colod's unclean end, colod@.service leaves a VM with
 * that file running and kills any other, since a peer may take that one
 * over. Sending the VM to a secondary ends the "only here" at one instant,
 * the point after which the destination may hold a complete copy: the
 * commit. So, with the file named:
 *
 *   - the file is removed at the commit, before the destination can have
 *     the last byte it needs;
 *   - if the client that started the migration is gone by then (colod
 *     died), there is no commit: the migration is cancelled, the file
 *     written back, and the guest runs on here for the next colod;
 *   - the client going away earlier cancels the migration at once.
 *
 * The client's hang-up is read from a duplicate of its socket, so the
 * commit can check it from the migration thread in one poll(): a dead
 * process's sockets are closed before its parent (systemd) hears of its
 * end, so an ExecStopPost that finds the file finds a migration that will
 * never commit. */
#ifndef COLO_VMM_MIGRATION_OWNER_H
#define COLO_VMM_MIGRATION_OWNER_H

#include <stdbool.h>
#include <glib.h>

struct Migration;
typedef struct MigOwner MigOwner;

/* Binds the migration being started to the client of the QMP command
 * running now and to @sole_copy_file. Main thread, inside the command. */
MigOwner *mig_owner_new(struct Migration *m, const char *sole_copy_file, GError **error);

/* The point of no return, on the migration thread, just before the bytes
 * that let the destination run the guest: removes the file; false with
 * @error if the migration must not go on (the owner is gone: the file is
 * written back and the migration marked cancelled; or the file could not
 * be removed). Without an owner, true unless migrate_cancel came. */
bool mig_owner_commit(struct Migration *m, GError **error);

/* Has the commit passed (or begun)? Under m->lock. */
bool mig_owner_committing(const MigOwner *o);

/* Stops watching the client and frees. Main thread (the watch runs
 * there); NULL is fine. */
void mig_owner_free(MigOwner *o);

#endif
