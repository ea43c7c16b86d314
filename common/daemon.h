/* Daemonizing and pid files for every colo binary (colo-vmm's -daemonize
 * and -pidfile, as QEMU does them; colo-proxy's --daemonize and --pidfile):
 * fork early, let the parent exit only once the child reports that it
 * started (or failed). */
#ifndef COLO_COMMON_DAEMON_H
#define COLO_COMMON_DAEMON_H

#include <stdbool.h>
#include <glib.h>

typedef struct DaemonNotify DaemonNotify;

/* Returns in the child only; the parent waits and exits with 0 when the
 * child called daemon_ready, 1 otherwise. */
DaemonNotify *daemon_start(GError **error);

/* Child: start-up succeeded; detach stdio and free @notify. */
void daemon_ready(DaemonNotify *notify);

/* Child: start-up failed (the message already went to stderr). */
void daemon_failed(DaemonNotify *notify);

/* Write our pid to @path, locked so that a second instance using the same
 * file fails. The file stays locked until the process ends; the caller
 * removes it at a clean exit. */
bool daemon_write_pidfile(const char *path, GError **error);

#endif
