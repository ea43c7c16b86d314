/* coloctl: the administrator's command line of colod (coloctl(8)). It
 * talks QMP to colod's control socket (/run/colo/VM/colod.sock) with
 * common/qmp's client. Exit codes: 0 done, 1 bad usage, 2 colod cannot
 * be reached (or the connection broke), 3 colod refused the command (its
 * reason on stderr), 4 no answer in time. */
#include "config.h"

#include "coloctl.h"

#include "common/qmp/qmp-client.h"
#include "common/qmp/qmp-server.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 1
#define EXIT_UNREACHABLE 2
#define EXIT_REFUSED 3
#define EXIT_TIMEOUT 4

#define RUN_DIR "/run/colo"

typedef struct Cli Cli;

/* A command: its name, how many arguments it takes, the QMP command it
 * sends (NULL: handled by @start), and how its reply is shown. */
typedef struct {
    const char *name;
    int nargs;
    const char *usage;
    const char *help;
    const char *qmp;
    void (*start)(Cli *cli);
    void (*show)(Cli *cli, JsonObject *ret);
} Command;

struct Cli {
    const Command *cmd;
    char **args;        /* the command's arguments */
    char *socket;
    bool json;
    guint timeout_ms;
    GMainLoop *loop;
    QmpClient *qmp;
    int exit_code;
};

static void finish(Cli *cli, int code)
{
    cli->exit_code = code;
    g_main_loop_quit(cli->loop);
}

static void print_json(JsonObject *o)
{
    g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), o);
    g_autofree char *text = json_to_string(n, FALSE);

    printf("%s\n", text);
    fflush(stdout);
}

/* ---- what each command shows ------------------------------------------------ */

static void show_status(Cli *cli, JsonObject *ret)
{
    g_autofree char *text = NULL;

    if (cli->json) {
        print_json(ret);
        return;
    }
    text = coloctl_status_text(ret);
    fputs(text, stdout);
}

static void show_metrics(Cli *cli, JsonObject *ret)
{
    g_autofree char *text = coloctl_metrics_text(ret);

    fputs(text, stdout);
}

static void show_admin(Cli *cli, JsonObject *ret)
{
    if (cli->json) {
        print_json(ret);
        return;
    }
    printf("%s: accepted (state %s): %s\n", cli->cmd->name, coloctl_str(ret, "state", "?"),
           coloctl_str(ret, "reason", ""));
}

static void show_set(Cli *cli, JsonObject *ret)
{
    if (cli->json) {
        print_json(ret);
        return;
    }
    printf("%s = %s\n", coloctl_str(ret, "key", "?"), coloctl_str(ret, "value", "?"));
}

/* ---- events ------------------------------------------------------------------- */

static void on_event(QmpClient *c, const char *event, JsonObject *data, JsonObject *ts, gpointer opaque)
{
    Cli *cli = opaque;

    if (cli->json) {
        g_autoptr(JsonObject) o = json_object_new();

        json_object_set_string_member(o, "event", event);
        if (data) {
            json_object_set_object_member(o, "data", json_object_ref(data));
        }
        if (ts) {
            json_object_set_object_member(o, "timestamp", json_object_ref(ts));
        }
        print_json(o);
    } else {
        g_autofree char *line = coloctl_event_text(event, data, ts);

        printf("%s\n", line);
        fflush(stdout);
    }
}

static void on_closed(QmpClient *c, const GError *error, gpointer opaque)
{
    Cli *cli = opaque;

    fprintf(stderr, "coloctl: colod closed the connection: %s\n", error ? error->message : "");
    finish(cli, EXIT_UNREACHABLE);
}

static gboolean on_stop_signal(gpointer opaque)
{
    finish(opaque, 0);
    return G_SOURCE_CONTINUE;
}

/* Events come to every client once negotiated: nothing to send. */
static void start_events(Cli *cli)
{
    JsonObject *colod = coloctl_obj(qmp_client_greeting(cli->qmp), "colod");

    fprintf(stderr, "coloctl: following the events of colod (VM %s); Ctrl-C ends\n",
            coloctl_str(colod, "vm", "?"));
    qmp_client_set_event_handler(cli->qmp, on_event, cli);
    qmp_client_set_closed_handler(cli->qmp, on_closed, cli);
    g_unix_signal_add(SIGINT, on_stop_signal, cli);
    g_unix_signal_add(SIGTERM, on_stop_signal, cli);
}

/* ---- the table ----------------------------------------------------------------- */

static void start_set(Cli *cli);

static const Command commands[] = {
    { "status", 0, "status", "colod's state, role, quorum, peer, COLO (--json: one object)", "query-status", NULL,
      show_status },
    { "failover", 0, "failover", "make this node the primary (or start the VM here when colod waits)", "failover",
      NULL, show_admin },
    { "switchover", 0, "switchover", "hand the primary role to the healthy secondary", "switchover", NULL,
      show_admin },
    { "protect", 0, "protect", "allow (and start) protection", "protect", NULL, show_admin },
    { "unprotect", 0, "unprotect", "drop the secondary, run alone, do not re-protect", "unprotect", NULL,
      show_admin },
    { "promote", 0, "promote", "managed mode (pacemaker): become the primary", "promote", NULL, show_admin },
    { "demote", 0, "demote", "managed mode (pacemaker): give the primary role up, the VM stops here", "demote", NULL,
      show_admin },
    { "set", 2, "set KEY VALUE", "change a runtime setting (checkpoint-delay MS, log-level LEVEL, protect-mode precopy|snapshot)", "set", start_set,
      show_set },
    { "events", 0, "events", "print colod's events until Ctrl-C (--json: one object per line)", NULL, start_events,
      NULL },
    { "metrics", 0, "metrics", "the status in Prometheus's text format", "query-status", NULL, show_metrics },
};

/* ---- running a command --------------------------------------------------------- */

static void on_reply(QmpClient *c, JsonNode *ret, const GError *error, gpointer opaque)
{
    Cli *cli = opaque;

    if (error) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
            fprintf(stderr, "coloctl: %s: colod did not answer within %u ms\n", cli->cmd->name, cli->timeout_ms);
            finish(cli, EXIT_TIMEOUT);
        } else if (error->domain == QMP_ERROR) {
            fprintf(stderr, "coloctl: %s refused: %s\n", cli->cmd->name, error->message);
            finish(cli, EXIT_REFUSED);
        } else {
            fprintf(stderr, "coloctl: %s: %s\n", cli->cmd->name, error->message);
            finish(cli, EXIT_UNREACHABLE);
        }
        return;
    }
    if (!JSON_NODE_HOLDS_OBJECT(ret)) {
        fprintf(stderr, "coloctl: %s: colod's answer is not an object\n", cli->cmd->name);
        finish(cli, EXIT_UNREACHABLE);
        return;
    }
    cli->cmd->show(cli, json_node_get_object(ret));
    finish(cli, 0);
}

static void execute(Cli *cli, JsonObject *args)
{
    qmp_client_execute(cli->qmp, cli->cmd->qmp, args, cli->timeout_ms, on_reply, cli);
}

static void start_set(Cli *cli)
{
    JsonObject *args = json_object_new();

    json_object_set_string_member(args, "key", cli->args[0]);
    json_object_set_string_member(args, "value", cli->args[1]);
    execute(cli, args);
}

static void on_ready(QmpClient *c, const GError *error, gpointer opaque)
{
    Cli *cli = opaque;

    if (error) {
        /* A socket that takes the connection but says nothing: colod
         * hangs (or is stopped). */
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
            fprintf(stderr, "coloctl: colod at %s did not answer within %u ms\n", cli->socket, cli->timeout_ms);
            finish(cli, EXIT_TIMEOUT);
            return;
        }
        fprintf(stderr, "coloctl: cannot reach colod at %s: %s\n", cli->socket, error->message);
        finish(cli, EXIT_UNREACHABLE);
        return;
    }
    if (!coloctl_obj(qmp_client_greeting(c), "colod")) {
        fprintf(stderr, "coloctl: %s is not colod's control socket (its greeting does not say colod)\n",
                cli->socket);
        finish(cli, EXIT_UNREACHABLE);
        return;
    }
    /* A command's own reply reports a broken connection. */
    if (cli->cmd->start) {
        cli->cmd->start(cli);
    } else {
        execute(cli, NULL);
    }
}

/* ---- arguments ----------------------------------------------------------------- */

static char *usage_text(void)
{
    GString *s = g_string_new("Commands:\n");

    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
        g_string_append_printf(s, "  %-15s %s\n", commands[i].usage, commands[i].help);
    }
    g_string_append(s, "\nExit status: 0 done, 1 bad usage, 2 colod cannot be reached, 3 colod refused the "
                       "command, 4 no answer in time (coloctl(8)).");
    return g_string_free(s, FALSE);
}

static int usage_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("coloctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (coloctl --help)\n", stderr);
    return EXIT_USAGE;
}

/* The socket when neither -s nor --vm names one: the one VM's under
 * /run/colo. Returns an exit code, 0 with *path set. */
static int find_socket(char **path)
{
    g_autoptr(GDir) dir = g_dir_open(RUN_DIR, 0, NULL);
    g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GString) names = g_string_new(NULL);
    const char *name;

    while (dir && (name = g_dir_read_name(dir))) {
        char *sock = g_build_filename(RUN_DIR, name, "colod.sock", NULL);

        if (g_file_test(sock, G_FILE_TEST_EXISTS)) {
            g_string_append_printf(names, "%s%s", found->len ? ", " : "", name);
            g_ptr_array_add(found, sock);
        } else {
            g_free(sock);
        }
    }
    if (found->len == 0) {
        fprintf(stderr, "coloctl: no colod control socket under %s (is colod running? --vm NAME or -s SOCKET "
                        "names one)\n", RUN_DIR);
        return EXIT_UNREACHABLE;
    }
    if (found->len > 1) {
        return usage_error("colod runs for several VMs (%s): name one with --vm", names->str);
    }
    *path = g_strdup(g_ptr_array_index(found, 0));
    return 0;
}

/* Parses the command line into @cli; returns -1 to go on, else the exit
 * code. */
static int parse_args(Cli *cli, int argc, char **argv)
{
    g_autofree char *vm = NULL;
    gint timeout = 5000;
    gboolean version = FALSE;
    GOptionEntry entries[] = {
        { "socket", 's', 0, G_OPTION_ARG_FILENAME, &cli->socket, "colod's control socket", "SOCKET" },
        { "vm", 0, 0, G_OPTION_ARG_STRING, &vm, "the VM (its socket: /run/colo/NAME/colod.sock)", "NAME" },
        { "json", 'j', 0, G_OPTION_ARG_NONE, &cli->json, "JSON output", NULL },
        { "timeout", 't', 0, G_OPTION_ARG_INT, &timeout, "how long to wait for colod (default 5000)", "MS" },
        { "version", 'V', 0, G_OPTION_ARG_NONE, &version, "print the version", NULL },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("COMMAND [ARGUMENTS] - drive colod, the COLO coordinator");
    g_autoptr(GError) err = NULL;
    g_autofree char *summary = usage_text();

    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_description(ctx, summary);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        return usage_error("%s", err->message);
    }
    if (version) {
        printf("coloctl %s\n", PACKAGE_VERSION);
        return 0;
    }
    if (argc < 2) {
        return usage_error("no command given");
    }
    for (size_t i = 0; i < G_N_ELEMENTS(commands) && !cli->cmd; i++) {
        if (!strcmp(argv[1], commands[i].name)) {
            cli->cmd = &commands[i];
        }
    }
    if (!cli->cmd) {
        return usage_error("unknown command '%s'", argv[1]);
    }
    if (argc - 2 != cli->cmd->nargs) {
        return usage_error("usage: coloctl [OPTIONS] %s", cli->cmd->usage);
    }
    cli->args = g_strdupv(argv + 2);
    if (timeout <= 0) {
        return usage_error("--timeout wants a positive number of milliseconds");
    }
    cli->timeout_ms = (guint)timeout;
    if (cli->socket && vm) {
        return usage_error("-s and --vm name the socket both: give one");
    }
    if (vm) {
        if (!*vm || strchr(vm, '/') || !strcmp(vm, ".") || !strcmp(vm, "..")) {
            return usage_error("--vm '%s' is no VM name", vm);
        }
        cli->socket = g_build_filename(RUN_DIR, vm, "colod.sock", NULL);
    }
    if (!cli->socket) {
        int code = find_socket(&cli->socket);

        if (code) {
            return code;
        }
    }
    return -1;
}

int main(int argc, char **argv)
{
    Cli cli = { 0 };
    int code = parse_args(&cli, argc, argv);

    if (code >= 0) {
        g_free(cli.socket);
        g_strfreev(cli.args);
        return code;
    }
    cli.loop = g_main_loop_new(NULL, FALSE);
    cli.qmp = qmp_client_new(NULL);
    qmp_client_connect(cli.qmp, cli.socket, cli.timeout_ms, on_ready, &cli);
    g_main_loop_run(cli.loop);
    qmp_client_free(cli.qmp);
    g_main_loop_unref(cli.loop);
    g_free(cli.socket);
    g_strfreev(cli.args);
    return cli.exit_code;
}
