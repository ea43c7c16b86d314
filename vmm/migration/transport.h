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

/* Just check the URI's syntax. */
bool transport_check_uri(const char *uri, GError **error);

#endif
