/* Unix stream sockets, the one copy every binary uses: listening (a stale
 * socket file replaced, the backlog at SOMAXCONN so a burst of clients is
 * never refused) and connecting. */
#ifndef COLO_COMMON_UNIX_SOCKET_H
#define COLO_COMMON_UNIX_SOCKET_H

#include <stdbool.h>
#include <glib.h>

/* False with @error if @path does not fit a sockaddr_un (or is empty). */
bool colo_unix_path_check(const char *path, GError **error);

/* A socket listening on @path (close-on-exec; non-blocking if @nonblock),
 * replacing a socket file left by an earlier run, as QEMU does. -1 with
 * @error (G_IO_ERROR) on failure. The caller unlinks @path when done. */
int colo_unix_listen(const char *path, bool nonblock, GError **error);

/* A close-on-exec socket connected to @path, or -1 with @error. A
 * blocking connect waits while the server's listen backlog is full; a
 * non-blocking one (@nonblock, the socket stays non-blocking) fails then
 * with G_IO_ERROR_WOULD_BLOCK, to be tried again. */
int colo_unix_connect(const char *path, bool nonblock, GError **error);

#endif
