/* Logging set-up shared by every colo binary: qb_log to stderr in the
 * foreground, to syslog when daemonized, optionally to a file (-D), and a
 * blackbox ring buffer in /dev/shm for post-mortems. */
#ifndef COLO_COMMON_LOG_H
#define COLO_COMMON_LOG_H

#include <stdbool.h>
#include <glib.h>
#include <qb/qblog.h>

/* Longest ident, in bytes, that log lines show for a name. */
#define COLO_LOG_IDENT_MAX 64

/* Start logging for @program ("colo-vmm"), whose name also names the
 * blackbox files; log lines and syslog show @name (NULL: @program), cut
 * and cleaned by colo_log_ident(). Removes stale blackbox files first
 * (colo_log_remove_stale_blackboxes). @to_syslog replaces stderr by
 * syslog; @logfile (may be NULL) adds a file target. @debug lowers the
 * threshold from info to debug. Returns false and sets @error if the file
 * cannot be opened. */
bool colo_log_init(const char *program, const char *name, bool to_syslog, const char *logfile,
                   bool debug, GError **error);

/* In the child after fork(): takes blackbox files named after its own pid
 * (the parent's go), so that the sweep at start-up can tell them apart. */
void colo_log_after_fork(void);

/* Switch from stderr to syslog, after daemonizing. */
void colo_log_to_syslog(void);

/* Log messages up to @priority (LOG_ERR .. LOG_DEBUG) from now on, on
 * stderr, syslog and the file; the blackbox keeps everything. */
void colo_log_set_threshold(int priority);

/* Route GLib's g_warning/g_message/g_critical through qb_log too. */
void colo_log_route_glib(void);

/* Flush and close every target. */
void colo_log_fini(void);

/* @name as a log ident: at most COLO_LOG_IDENT_MAX bytes, cut at a
 * character boundary, with '%' and control characters (and the bytes of
 * invalid UTF-8 above 0x7f) replaced by '_'. libqb aborts on an ident that
 * does not fit its 256-byte format buffer. Free with g_free. */
char *colo_log_ident(const char *name);

/* Removes from @dir the libqb blackbox files (qb-PROGRAM-PID-blackbox-
 * header/data) of colo programs (PROGRAM starting with "colo") whose PID
 * is not a running process of that program, or is our own pid (the files
 * of a killed process that had it before us). Returns how many files went. */
unsigned colo_log_remove_stale_blackboxes(const char *dir);

#endif
