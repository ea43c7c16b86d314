#include "config.h"

#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where libqb keeps every process's blackbox ring buffer (two files,
 * qb-PROGRAM-PID-blackbox-header and -data). */
#define BLACKBOX_DIR "/dev/shm"

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

char *colo_log_ident(const char *name)
{
    GString *ident = g_string_sized_new(COLO_LOG_IDENT_MAX);
    bool utf8 = g_utf8_validate(name, -1, NULL);

    for (const char *p = name; *p; p = utf8 ? g_utf8_next_char(p) : p + 1) {
        size_t len = utf8 ? (size_t)(g_utf8_next_char(p) - p) : 1;
        unsigned char c = (unsigned char)*p;

        if (ident->len + len > COLO_LOG_IDENT_MAX) {
            break;
        }
        /* libqb copies the ident into its format string, where '%' would
         * start a directive; control characters would break log lines. */
        if (c < 0x20 || c == 0x7f || c == '%' || (!utf8 && c >= 0x80)) {
            g_string_append_c(ident, '_');
        } else {
            g_string_append_len(ident, p, (gssize)len);
        }
    }
    return g_string_free(ident, FALSE);
}

/* True if process @pid runs and is the program @program (by its command
 * name, which the kernel cuts to 15 characters). */
static bool log_pid_runs_program(long pid, const char *program)
{
    g_autofree char *path = g_strdup_printf("/proc/%ld/comm", pid);
    g_autofree char *comm = NULL;

    if (!g_file_get_contents(path, &comm, NULL, NULL)) {
        return false;
    }
    g_strchomp(comm);
    return strncmp(comm, program, 15) == 0 && strlen(comm) == MIN(strlen(program), 15);
}

/* Splits "qb-PROGRAM-PID-blackbox-PART" into PROGRAM and PID; false for
 * any other name. */
static bool log_parse_blackbox_name(const char *name, char **program, long *pid)
{
    static const char *const suffixes[] = { "-blackbox-header", "-blackbox-data" };
    size_t len = strlen(name);

    if (!g_str_has_prefix(name, "qb-")) {
        return false;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(suffixes); i++) {
        if (!g_str_has_suffix(name, suffixes[i])) {
            continue;
        }
        g_autofree char *stem = g_strndup(name + 3, len - 3 - strlen(suffixes[i]));
        char *dash = strrchr(stem, '-');
        char *end;

        if (!dash || dash == stem || !g_ascii_isdigit(dash[1])) {
            return false;
        }
        errno = 0;
        *pid = strtol(dash + 1, &end, 10);
        if (errno || *end || *pid <= 0) {
            return false;
        }
        *program = g_strndup(stem, (gsize)(dash - stem));
        return true;
    }
    return false;
}

unsigned colo_log_remove_stale_blackboxes(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;
    unsigned removed = 0;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *program = NULL;
        long pid;

        if (!log_parse_blackbox_name(name, &program, &pid) || !g_str_has_prefix(program, "colo")) {
            continue;
        }
        /* Our own pid: left by a killed process that had it before us (we
         * have not made ours yet), and libqb could not create ours over
         * it. Another pid: stale unless that process runs the program
         * that made the files (a pid reused by anything else does not
         * keep them). */
        if (pid != (long)getpid() && log_pid_runs_program(pid, program)) {
            continue;
        }
        g_autofree char *path = g_build_filename(dir, name, NULL);
        if (unlink(path) == 0) {
            removed++;
        }
    }
    return removed;
}

/* Sets the ident of a text target before its format: libqb copies the
 * ident into the format when it is set. */
static void log_target_setup(int32_t target, const char *ident, int threshold)
{
    qb_log_ctl2(target, QB_LOG_CONF_IDENT, QB_LOG_CTL2_S(ident));
    /* Milliseconds: failovers are measured in them. */
    qb_log_format_set(target, "%T %N[%P] %p: %b");
    qb_log_filter_ctl(target, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", threshold);
}

static void log_blackbox_enable(void)
{
    qb_log_ctl(QB_LOG_BLACKBOX, QB_LOG_CONF_SIZE, 256 * 1024);
    qb_log_ctl(QB_LOG_BLACKBOX, QB_LOG_CONF_ENABLED, QB_TRUE);
}

bool colo_log_init(const char *program, const char *name, bool to_syslog, const char *logfile,
                   bool debug, GError **error)
{
    int threshold = debug ? LOG_DEBUG : LOG_INFO;
    g_autofree char *ident = colo_log_ident(name ? name : program);

    /* COLO kills processes by design (SIGKILL leaves the blackbox behind):
     * every colo process sweeps up after the dead ones as it starts. */
    colo_log_remove_stale_blackboxes(BLACKBOX_DIR);
    /* The program's name, not @name, names the blackbox files: it is
     * short, has no '/' and is what the sweep above looks for. */
    qb_log_init(program, LOG_DAEMON, threshold);
    log_target_setup(QB_LOG_STDERR, ident, threshold);
    /* Syslog adds time, ident and pid itself. */
    qb_log_ctl2(QB_LOG_SYSLOG, QB_LOG_CONF_IDENT, QB_LOG_CTL2_S(ident));
    qb_log_filter_ctl(QB_LOG_SYSLOG, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", threshold);
    qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, to_syslog ? QB_TRUE : QB_FALSE);
    qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, to_syslog ? QB_FALSE : QB_TRUE);
    /* The blackbox keeps the last events for a post-mortem dump. */
    log_blackbox_enable();
    qb_log_filter_ctl(QB_LOG_BLACKBOX, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", LOG_DEBUG);

    if (logfile) {
        log_file_target = qb_log_file_open(logfile);
        if (log_file_target < 0) {
            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(-log_file_target),
                        "cannot open log file %s: %s", logfile, strerror(-log_file_target));
            return false;
        }
        log_target_setup(log_file_target, ident, threshold);
        qb_log_ctl(log_file_target, QB_LOG_CONF_ENABLED, QB_TRUE);
    }
    return true;
}

void colo_log_after_fork(void)
{
    /* Closing unlinks the files named after the parent's pid (the parent
     * leaves without closing); enabling again names new ones after ours. */
    qb_log_ctl(QB_LOG_BLACKBOX, QB_LOG_CONF_ENABLED, QB_FALSE);
    log_blackbox_enable();
}

void colo_log_to_syslog(void)
{
    qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_TRUE);
    qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_FALSE);
}

void colo_log_set_threshold(int priority)
{
    int32_t targets[] = { QB_LOG_STDERR, QB_LOG_SYSLOG, log_file_target };

    for (size_t i = 0; i < G_N_ELEMENTS(targets); i++) {
        if (targets[i] >= 0) {
            qb_log_filter_ctl(targets[i], QB_LOG_FILTER_CLEAR_ALL, QB_LOG_FILTER_FILE, "*", LOG_TRACE);
            qb_log_filter_ctl(targets[i], QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", priority);
        }
    }
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
