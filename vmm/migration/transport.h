/* Migration URIs: tcp:HOST:PORT and unix:PATH, to connected sockets. */
#ifndef COLO_VMM_MIGRATION_TRANSPORT_H
#define COLO_VMM_MIGRATION_TRANSPORT_H

#include <stdbool.h>
#include <glib.h>

/* Connect; returns the socket or -1 with @error. Blocking: call from the
 * migration thread. */
int transport_connect(const char *uri, GError **error);

/* Listen; returns the socket or -1 with @error. */
int transport_listen(const char *uri, GError **error);

/* Closes a socket from transport_listen(); a unix socket's file goes
 * too (as in QEMU), so no stale path is left for the next -incoming. */
void transport_close_listener(int fd);

/* tcp:HOST:PORT's HOST, or NULL (unix:, or no host); g_free() it. */
char *transport_uri_host(const char *uri);

/* Just check the URI's syntax (a port number must be 1..65535). */
bool transport_check_uri(const char *uri, GError **error);

#endif
