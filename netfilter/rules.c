#include "config.h"

#include "rules.h"

#include <gio/gio.h>
#include <qb/qblog.h>
#include <string.h>

struct proxy_rules {
    char *tag;
    /* Per family (rules_tools' order): the specs of the rules this object
     * has in FORWARD (GStrv), in chain order. */
    GPtrArray *installed[2];
};

static const char *const rules_tools[] = { "iptables", "ip6tables" };
static const char *const rules_restore_tools[] = { "iptables-restore", "ip6tables-restore" };

char *rules_tag(const char *role, const char *guest_iface)
{
    return g_strdup_printf("colo-proxy-%s-%s", !strcmp(role, "primary") ? "p" : "s", guest_iface);
}

ProxyRules *rules_new(const char *tag)
{
    ProxyRules *r = g_new0(ProxyRules, 1);

    r->tag = g_strdup(tag);
    for (size_t t = 0; t < G_N_ELEMENTS(r->installed); t++) {
        r->installed[t] = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
    }
    return r;
}

static char *rules_find_tool(const char *name)
{
    char *path = g_find_program_in_path(name);

    if (!path) {
        /* sbin is not on every PATH. */
        path = g_build_filename("/usr/sbin", name, NULL);
        if (!g_file_test(path, G_FILE_TEST_IS_EXECUTABLE)) {
            g_free(path);
            path = NULL;
        }
    }
    return path;
}

/* Run "@tool -w @op FORWARD @spec... [-m comment --comment @tag]"; its
 * standard output in *@out if @out. */
static bool rules_exec(const char *tool, const char *op, const char *const *spec, const char *tag, char **out,
                       GError **error)
{
    g_autofree char *path = rules_find_tool(tool);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autofree char *err = NULL;
    int status = 0;

    if (!path) {
        g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_NOENT, "%s not found (Debian: iptables)", tool);
        return false;
    }
    g_ptr_array_add(argv, path);
    g_ptr_array_add(argv, (char *)"-w");
    g_ptr_array_add(argv, (char *)op);
    g_ptr_array_add(argv, (char *)"FORWARD");
    for (const char *const *s = spec; s && *s; s++) {
        g_ptr_array_add(argv, (char *)*s);
    }
    if (tag) {
        g_ptr_array_add(argv, (char *)"-m");
        g_ptr_array_add(argv, (char *)"comment");
        g_ptr_array_add(argv, (char *)"--comment");
        g_ptr_array_add(argv, (char *)tag);
    }
    g_ptr_array_add(argv, NULL);
    if (!g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, out, &err, &status, error)) {
        return false;
    }
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED, "%s %s FORWARD failed: %s", tool, op,
                    err ? g_strstrip(err) : "");
        return false;
    }
    return true;
}

/* True if the rule @argv (from "iptables -S") carries "--comment @tag". */
static bool rules_has_tag(char **argv, const char *tag)
{
    for (int i = 0; argv[i] && argv[i + 1]; i++) {
        if (!strcmp(argv[i], "--comment") && !strcmp(argv[i + 1], tag)) {
            return true;
        }
    }
    return false;
}

bool rules_cleanup(const char *tag, unsigned int *removed, GError **error)
{
    *removed = 0;
    for (size_t t = 0; t < G_N_ELEMENTS(rules_tools); t++) {
        g_autofree char *listing = NULL;
        g_auto(GStrv) lines = NULL;

        if (!rules_exec(rules_tools[t], "-S", NULL, NULL, &listing, error)) {
            return false;
        }
        lines = g_strsplit(listing, "\n", -1);
        for (char **l = lines; *l; l++) {
            g_auto(GStrv) argv = NULL;

            /* "-A FORWARD <spec...>": the spec deletes it again. */
            if (!g_str_has_prefix(*l, "-A FORWARD ") || !g_shell_parse_argv(*l, NULL, &argv, NULL) ||
                !rules_has_tag(argv, tag)) {
                continue;
            }
            if (!rules_exec(rules_tools[t], "-D", (const char *const *)argv + 2, NULL, NULL, error)) {
                return false;
            }
            qb_log(LOG_NOTICE, "removed stale %s rule: %s", rules_tools[t], *l);
            (*removed)++;
        }
    }
    return true;
}

/* One line of an iptables-restore transaction: "@op FORWARD @spec... -m
 * comment --comment @tag". The words go unquoted: interface names, numbers
 * and our tags have no blanks or quotes (checked). */
static bool rules_restore_line(GString *in, const char *op, const char *const *spec, const char *tag,
                               GError **error)
{
    g_string_append_printf(in, "%s FORWARD", op);
    for (const char *const *w = spec; *w; w++) {
        if (!**w || strpbrk(*w, " \t\n\"'\\#")) {
            g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_INVAL, "rule word '%s' cannot be restored", *w);
            return false;
        }
        g_string_append_printf(in, " %s", *w);
    }
    g_string_append_printf(in, " -m comment --comment %s\n", tag);
    return true;
}

/* Starts "@tool -w --noflush" with @input on its standard input. */
static GSubprocess *rules_restore_start(const char *tool, const GString *input, GError **error)
{
    g_autofree char *path = rules_find_tool(tool);
    g_autoptr(GSubprocess) proc = NULL;

    if (!path) {
        g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_NOENT, "%s not found (Debian: iptables)", tool);
        return NULL;
    }
    proc = g_subprocess_new(G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                            G_SUBPROCESS_FLAGS_STDERR_PIPE, error, path, "-w", "--noflush", NULL);
    if (!proc) {
        return NULL;
    }
    /* A few hundred bytes: the pipe takes them without waiting. Its end
     * is closed by rules_restore_wait (g_subprocess_communicate_utf8). */
    if (!g_output_stream_write_all(g_subprocess_get_stdin_pipe(proc), input->str, input->len, NULL, NULL, error)) {
        g_subprocess_force_exit(proc);
        g_subprocess_wait(proc, NULL, NULL);
        return NULL;
    }
    return g_steal_pointer(&proc);
}

static bool rules_restore_wait(GSubprocess *proc, const char *tool, GError **error)
{
    g_autofree char *err = NULL;

    if (!g_subprocess_communicate_utf8(proc, NULL, NULL, NULL, &err, error)) {
        return false;
    }
    if (!g_subprocess_get_successful(proc)) {
        g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED, "%s failed: %s", tool, err ? g_strstrip(err) : "");
        return false;
    }
    return true;
}

/* One iptables-restore per family, both
 * running at once. Each is one transaction (iptables-nft commits the batch
 * atomically), so FORWARD never holds neither the old nor the new rules:
 * at a takeover no packet of the secondary guest slips out between its
 * DROP rule and the NFQUEUE rules that replace it. One process per family
 * instead of one per rule also keeps a failover within colo-vmm's
 * deadline on a slow host. */
bool rules_set_forward(ProxyRules *r, const char *const *const *specs, size_t n, GError **error)
{
    GSubprocess *proc[G_N_ELEMENTS(rules_restore_tools)] = { NULL };
    GError *errs[G_N_ELEMENTS(rules_restore_tools)] = { NULL };
    bool ok = true;

    for (size_t t = 0; t < G_N_ELEMENTS(rules_restore_tools); t++) {
        g_autoptr(GString) in = g_string_new("*filter\n");
        bool built = true;

        for (guint i = 0; built && i < r->installed[t]->len; i++) {
            built = rules_restore_line(in, "-D", g_ptr_array_index(r->installed[t], i), r->tag, &errs[t]);
        }
        /* Each -I goes to the top: the last spec first. */
        for (size_t i = n; built && i > 0; i--) {
            built = rules_restore_line(in, "-I", specs[i - 1], r->tag, &errs[t]);
        }
        g_string_append(in, "COMMIT\n");
        if (built) {
            proc[t] = rules_restore_start(rules_restore_tools[t], in, &errs[t]);
        }
    }
    for (size_t t = 0; t < G_N_ELEMENTS(rules_restore_tools); t++) {
        if (proc[t] && rules_restore_wait(proc[t], rules_restore_tools[t], &errs[t])) {
            g_ptr_array_set_size(r->installed[t], 0);
            for (size_t i = 0; i < n; i++) {
                g_autofree char *text = g_strjoinv(" ", (char **)specs[i]);

                g_ptr_array_add(r->installed[t], g_strdupv((char **)specs[i]));
                qb_log(LOG_INFO, "installed %s rule: FORWARD %s", rules_tools[t], text);
            }
        }
        g_clear_object(&proc[t]);
        if (errs[t]) {
            if (ok) {
                g_propagate_error(error, errs[t]);
            } else {
                qb_log(LOG_ERR, "%s", errs[t]->message);
                g_error_free(errs[t]);
            }
            ok = false;
        }
    }
    return ok;
}

void rules_remove_all(ProxyRules *r)
{
    GError *err = NULL;

    if (!rules_set_forward(r, NULL, 0, &err)) {
        qb_log(LOG_ERR, "removing rules: %s", err->message);
        g_error_free(err);
    }
}

void rules_free(ProxyRules *r)
{
    if (r) {
        rules_remove_all(r);
        for (size_t t = 0; t < G_N_ELEMENTS(r->installed); t++) {
            g_ptr_array_unref(r->installed[t]);
        }
        g_free(r->tag);
        g_free(r);
    }
}
