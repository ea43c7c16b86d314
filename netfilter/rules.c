#include "config.h"

#include "rules.h"

#include <qb/qblog.h>
#include <string.h>

struct proxy_rules {
    char *tag;
    GPtrArray *installed;   /* GStrv: the argv after "-I"/"-D" plus the tool */
};

static const char *const rules_tools[] = { "iptables", "ip6tables" };

char *rules_tag(const char *role, const char *guest_iface)
{
    return g_strdup_printf("colo-proxy-%s-%s", !strcmp(role, "primary") ? "p" : "s", guest_iface);
}

ProxyRules *rules_new(const char *tag)
{
    ProxyRules *r = g_new0(ProxyRules, 1);

    r->tag = g_strdup(tag);
    r->installed = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
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

static bool rules_run(const ProxyRules *r, const char *tool, const char *op, const char *const *spec,
                      GError **error)
{
    return rules_exec(tool, op, spec, r->tag, NULL, error);
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

bool rules_add_forward(ProxyRules *r, const char *const *spec, GError **error)
{
    for (size_t t = 0; t < G_N_ELEMENTS(rules_tools); t++) {
        g_autofree char *text = g_strjoinv(" ", (char **)spec);
        GStrvBuilder *b;

        if (!rules_run(r, rules_tools[t], "-I", spec, error)) {
            return false;
        }
        b = g_strv_builder_new();
        g_strv_builder_add(b, rules_tools[t]);
        g_strv_builder_addv(b, (const char **)spec);
        g_ptr_array_add(r->installed, g_strv_builder_end(b));
        g_strv_builder_unref(b);
        qb_log(LOG_INFO, "installed %s rule: FORWARD %s", rules_tools[t], text);
    }
    return true;
}

void rules_remove_all(ProxyRules *r)
{
    while (r->installed->len) {
        char **rule = g_ptr_array_index(r->installed, r->installed->len - 1);
        GError *err = NULL;

        if (!rules_run(r, rule[0], "-D", (const char *const *)rule + 1, &err)) {
            qb_log(LOG_ERR, "removing rule: %s", err->message);
            g_error_free(err);
        }
        g_ptr_array_remove_index(r->installed, r->installed->len - 1);
    }
}

void rules_free(ProxyRules *r)
{
    if (r) {
        rules_remove_all(r);
        g_ptr_array_unref(r->installed);
        g_free(r->tag);
        g_free(r);
    }
}
