/* Processes an earlier colod left (leftover.h). */
#include "config.h"

#include "leftover.h"

#include "common/qmp/qmp-client.h"

#include <errno.h>
#include <glib-unix.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

GPid leftover_pid(const char *pidfile, const char *exe_suffix)
{
    g_autofree char *text = NULL;
    g_autofree char *exe_link = NULL;
    g_autofree char *exe = NULL;
    guint64 pid;

    if (!g_file_get_contents(pidfile, &text, NULL, NULL) ||
        !g_ascii_string_to_unsigned(g_strstrip(text), 10, 2, G_MAXINT32, &pid, NULL)) {
        return 0;
    }
    exe_link = g_strdup_printf("/proc/%" G_GUINT64_FORMAT "/exe", pid);
    exe = g_file_read_link(exe_link, NULL);
    /* A recycled pid runs something else: not ours. */
    return exe && g_str_has_suffix(exe, exe_suffix) ? (GPid)pid : 0;
}

void leftover_kill(GPid pid)
{
    if (pid <= 0 || kill(pid, SIGKILL) < 0) {
        return;
    }
    /* Not our child: wait for it to be gone from /proc (a zombie of its
     * adoptive parent counts as gone once that one reaps it). */
    for (int i = 0; i < 200 && kill(pid, 0) == 0; i++) {
        g_usleep(5000);
    }
}

struct LeftoverWatch {
    int pidfd;
    guint source;
    void (*fn)(gpointer data);
    gpointer data;
};

static gboolean on_pidfd(gint fd, GIOCondition cond, gpointer data)
{
    LeftoverWatch *w = data;

    w->source = 0;
    w->fn(w->data);
    return G_SOURCE_REMOVE;
}

LeftoverWatch *leftover_watch(GPid pid, void (*fn)(gpointer data), gpointer data)
{
    /* A pidfd becomes readable when the process ends, whoever its parent. */
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    LeftoverWatch *w;

    if (fd < 0) {
        return NULL;
    }
    w = g_new0(LeftoverWatch, 1);
    w->pidfd = fd;
    w->fn = fn;
    w->data = data;
    w->source = g_unix_fd_add(fd, G_IO_IN, on_pidfd, w);
    return w;
}

void leftover_unwatch(LeftoverWatch *w)
{
    if (!w) {
        return;
    }
    g_clear_handle_id(&w->source, g_source_remove);
    close(w->pidfd);
    g_free(w);
}

typedef struct {
    int state; /* 0 waiting, 1 done, -1 failed */
    JsonNode *reply;
} Probe;

static void probe_ready(QmpClient *c, const GError *error, gpointer opaque)
{
    Probe *p = opaque;

    p->state = error ? -1 : 1;
}

static void probe_reply(QmpClient *c, JsonNode *ret, const GError *error, gpointer opaque)
{
    Probe *p = opaque;

    p->state = error ? -1 : 1;
    p->reply = error ? NULL : json_node_copy(ret);
}

JsonObject *leftover_qmp_probe(const char *path, guint timeout_ms, const char *const *commands, JsonNode **replies)
{
    g_autoptr(GMainContext) ctx = g_main_context_new();
    QmpClient *c = qmp_client_new(ctx);
    JsonObject *greeting = NULL;
    Probe p = { 0 };

    qmp_client_connect(c, path, timeout_ms, probe_ready, &p);
    while (p.state == 0) {
        g_main_context_iteration(ctx, TRUE);
    }
    if (p.state > 0) {
        greeting = json_object_ref(qmp_client_greeting(c));
        for (size_t i = 0; commands && commands[i]; i++) {
            p = (Probe){ 0 };
            qmp_client_execute(c, commands[i], NULL, timeout_ms, probe_reply, &p);
            while (p.state == 0) {
                g_main_context_iteration(ctx, TRUE);
            }
            replies[i] = p.reply;
        }
    }
    qmp_client_free(c);
    return greeting;
}
