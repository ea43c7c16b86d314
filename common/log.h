/* Logging set-up shared by every colo binary: qb_log to stderr in the
 * foreground, to syslog when daemonized, optionally to a file (-D). */
#ifndef COLO_COMMON_LOG_H
#define COLO_COMMON_LOG_H

#include <stdbool.h>
#include <glib.h>
#include <qb/qblog.h>

/* Start logging for program @name. @to_syslog replaces stderr by syslog;
 * @logfile (may be NULL) adds a file target. @debug lowers the threshold
 * from info to debug. Returns false and sets @error if the file cannot be
 * opened. */
bool colo_log_init(const char *name, bool to_syslog, const char *logfile,
                   bool debug, GError **error);

/* Switch from stderr to syslog, after daemonizing. */
void colo_log_to_syslog(void);

/* Route GLib's g_warning/g_message/g_critical through qb_log too. */
void colo_log_route_glib(void);

/* Flush and close every target. */
void colo_log_fini(void);

#endif
