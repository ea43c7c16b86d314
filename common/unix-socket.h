/* Unix stream sockets, the one copy every binary uses: listening (a stale
 * socket file replaced, the backlog at SOMAXCONN so a burst of clients is
 * never refused, the file 0600 or 0660 with a group from the moment it
 * exists) and connecting; the private run directory they live in. */
#ifndef COLO_COMMON_UNIX_SOCKET_H
#define COLO_COMMON_UNIX_SOCKET_H

#include <stdbool.h>
#include <sys/types.h>
#include <glib.h>

/* False with @error if @path does not fit a sockaddr_un (or is empty). */
bool colo_unix_path_check(const char *path, GError **error);

/* A socket listening on @path (close-on-exec; non-blocking if @nonblock),
 * replacing a socket file left by an earlier run, as QEMU does. -1 with
 * @error (G_IO_ERROR) on failure. The caller unlinks @path when done.
 * The file is mode 0600 (only its owner may connect: connecting needs
 * write permission) from the moment bind() creates it, whatever the umask. */
int colo_unix_listen(const char *path, bool nonblock, GError **error);

/* The same, but with @group (a group name or number; NULL: as
 * colo_unix_listen()) the file is then given to that group, mode 0660, so
 * its members may connect too. It is never wider than 0600 before that. */
int colo_unix_listen_group(const char *path, bool nonblock, const char *group, GError **error);

/* @group (a name or a decimal number) as a gid; false with @error if there
 * is no such group. */
bool colo_group_lookup(const char *group, gid_t *gid, GError **error);

/* Creates @dir (and its parents, 0711: a group member must pass through
 * /run/colo, nobody needs to list it) if missing and
 * sets it to 0700, or with @group to 0750 and that group, so that a
 * directory left by an earlier run with other rights is corrected too. */
bool colo_run_dir_prepare(const char *dir, const char *group, GError **error);

/* A close-on-exec socket connected to @path, or -1 with @error. A
 * blocking connect waits while the server's listen backlog is full; a
 * non-blocking one (@nonblock, the socket stays non-blocking) fails then
 * with G_IO_ERROR_WOULD_BLOCK, to be tried again. */
int colo_unix_connect(const char *path, bool nonblock, GError **error);

#endif
