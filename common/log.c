#include "config.h"

#include "log.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static int32_t log_file_target = -1;

static void log_glib_handler(const gchar *domain, GLogLevelFlags level,
                             const gchar *message, gpointer data)
{
    int prio = LOG_INFO;

    if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) {
        prio = LOG_ERR;
    } else if (level & G_LOG_LEVEL_WARNING) {
        prio = LOG_WARNING;
    } else if (level & G_LOG_LEVEL_DEBUG) {
        prio = LOG_DEBUG;
    }
    qb_log(prio, "%s%s%s", domain ? domain : "", domain ? ": " : "", message);
}

bool colo_log_init(const char *name, bool to_syslog, const char *logfile,
                   bool debug, GError **error)
{
    int threshold = debug ? LOG_DEBUG : LOG_INFO;

    qb_log_init(name, LOG_DAEMON, threshold);
    qb_log_format_set(QB_LOG_STDERR, "%t %N[%P] %p: %b");
    qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, to_syslog ? QB_TRUE : QB_FALSE);
    qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, to_syslog ? QB_FALSE : QB_TRUE);
    qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", threshold);
    qb_log_filter_ctl(QB_LOG_SYSLOG, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", threshold);
    /* The blackbox keeps the last events for a post-mortem dump. Its files
     * are named by program and pid; a process killed by SIGKILL leaves
     * them behind, and one that later gets the same pid could not create
     * its own: those stale files are ours to remove. */
    for (const char *const *part = (const char *const[]){ "header", "data", NULL }; *part; part++) {
        g_autofree char *stale = g_strdup_printf("/dev/shm/qb-%s-%d-blackbox-%s", name, (int)getpid(), *part);
        unlink(stale);
    }
    qb_log_ctl(QB_LOG_BLACKBOX, QB_LOG_CONF_SIZE, 256 * 1024);
    qb_log_ctl(QB_LOG_BLACKBOX, QB_LOG_CONF_ENABLED, QB_TRUE);
    qb_log_filter_ctl(QB_LOG_BLACKBOX, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", LOG_DEBUG);

    if (logfile) {
        log_file_target = qb_log_file_open(logfile);
        if (log_file_target < 0) {
            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(-log_file_target),
                        "cannot open log file %s: %s", logfile, strerror(-log_file_target));
            return false;
        }
        qb_log_format_set(log_file_target, "%t %N[%P] %p: %b");
        qb_log_filter_ctl(log_file_target, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", threshold);
        qb_log_ctl(log_file_target, QB_LOG_CONF_ENABLED, QB_TRUE);
    }
    return true;
}

void colo_log_to_syslog(void)
{
    qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_TRUE);
    qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_FALSE);
}

void colo_log_route_glib(void)
{
    g_log_set_default_handler(log_glib_handler, NULL);
}

void colo_log_fini(void)
{
    if (log_file_target >= 0) {
        qb_log_file_close(log_file_target);
        log_file_target = -1;
    }
    qb_log_fini();
}
