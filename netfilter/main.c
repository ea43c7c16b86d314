/* colo-proxy: the network half of COLO. See docs/colo-proxy.md and
 * colo-proxy(8). Exit codes: 0 clean stop, 1 bad usage, 2 start-up failure. */
#include "config.h"

#include "common/daemon.h"
#include "common/log.h"
#include "carry.h"
#include "proxy.h"

#include <glib-unix.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static gboolean main_on_signal(gpointer data)
{
    g_main_loop_quit(data);
    return G_SOURCE_CONTINUE;
}

/* --cleanup: what a colo-proxy killed with SIGKILL could not remove. */
static int main_cleanup(const char *role, const char *iface)
{
    const char *roles[] = { role ? role : "primary", role ? NULL : "secondary", NULL };
    g_autoptr(GError) error = NULL;
    unsigned int total = 0;

    if (!iface || (role && g_strcmp0(role, "primary") && g_strcmp0(role, "secondary"))) {
        fprintf(stderr, "colo-proxy: --cleanup needs --guest-iface (and optionally --role primary|secondary)\n");
        return 1;
    }
    for (const char **r = roles; *r; r++) {
        g_autofree char *tag = rules_tag(*r, iface);
        unsigned int n;

        if (!rules_cleanup(tag, &n, &error)) {
            fprintf(stderr, "colo-proxy: --cleanup: %s\n", error->message);
            return 2;
        }
        total += n;
    }
    printf("removed %u rule%s\n", total, total == 1 ? "" : "s");
    return 0;
}

int main(int argc, char **argv)
{
    g_autofree char *role = NULL, *iface = NULL, *listen_on = NULL, *connect_to = NULL, *control = NULL,
                    *logfile = NULL, *uplink = NULL, *pidfile = NULL, *peer = NULL, *control_group = NULL,
                    *tls_dir = NULL, *carry_file = NULL;
    g_autoptr(GArray) carried = NULL;
    g_auto(GStrv) ports = NULL;
    int queue_num = 0, queue_maxlen = 16384, timeout = 3000, scan = 1000, max_queue = 16384, fence_after = 1000,
        replay_kib = 4096;
    gboolean no_rules = FALSE, no_cp_mismatch = FALSE, debug = FALSE, use_syslog = FALSE, forward_all = FALSE,
             kernel_ts = FALSE, cleanup = FALSE, daemonize = FALSE, version = FALSE;
    GOptionEntry entries[] = {
        { "role", 'r', 0, G_OPTION_ARG_STRING, &role, "primary or secondary", "ROLE" },
        { "guest-iface", 'i', 0, G_OPTION_ARG_STRING, &iface, "host side of the guest's tap or veth", "IFACE" },
        { "queue-num", 'q', 0, G_OPTION_ARG_INT, &queue_num, "NFQUEUE number (default 0)", "N" },
        { "queue-maxlen", 0, 0, G_OPTION_ARG_INT, &queue_maxlen, "kernel queue length (default 16384)", "N" },
        { "listen", 'L', 0, G_OPTION_ARG_STRING, &listen_on, "accept the peer proxy on ADDR:PORT", "ADDR:PORT" },
        { "connect", 'C', 0, G_OPTION_ARG_STRING, &connect_to, "connect to the peer proxy", "HOST:PORT" },
        { "peer", 0, 0, G_OPTION_ARG_STRING, &peer,
          "with --listen: accept the link only from this address (others are refused and logged)", "ADDR" },
        { "tls-creds", 0, 0, G_OPTION_ARG_FILENAME, &tls_dir,
          "TLS on the link, certificates in DIR (ca-cert.pem; server-cert.pem and server-key.pem with --listen, "
          "client-cert.pem and client-key.pem with --connect)", "DIR" },
        { "control", 'c', 0, G_OPTION_ARG_FILENAME, &control, "control socket path (mode 0600)", "PATH" },
        { "control-group", 0, 0, G_OPTION_ARG_STRING, &control_group,
          "let this group's members use the control socket too (mode 0660)", "GROUP" },
        { "compare-timeout", 't', 0, G_OPTION_ARG_INT, &timeout, "ms a packet may wait (default 3000)", "MS" },
        { "scan-cycle", 0, 0, G_OPTION_ARG_INT, &scan, "ms between timeout scans (default 1000)", "MS" },
        { "fence-after-ms", 0, 0, G_OPTION_ARG_INT, &fence_after,
          "primary: not scheduled for this long (a frozen host), hold all output until the secondary answers "
          "on the link, since it may have taken over (default 1000, 0: never)", "MS" },
        { "replay-kib", 0, 0, G_OPTION_ARG_INT, &replay_kib,
          "secondary: keep up to KIB of the guest's TCP output since the last checkpoint, sent once more after a "
          "takeover by replay-output (default 4096, 0: none)", "KIB" },
        { "max-queue-size", 0, 0, G_OPTION_ARG_INT, &max_queue, "held packets before asking for a checkpoint",
          "N" },
        { "no-checkpoint-on-mismatch", 0, 0, G_OPTION_ARG_NONE, &no_cp_mismatch,
          "on a mismatch wait for the timeout instead", NULL },
        { "passthrough-port", 'p', 0, G_OPTION_ARG_STRING_ARRAY, &ports,
          "release this TCP/UDP port's packets uncompared (repeatable)", "PORT" },
        { "no-rules", 0, 0, G_OPTION_ARG_NONE, &no_rules, "do not install iptables rules", NULL },
        { "cleanup", 0, 0, G_OPTION_ARG_NONE, &cleanup,
          "remove the rules a killed colo-proxy of this --role (default: both) on --guest-iface left, and exit",
          NULL },
        { "uplink", 0, 0, G_OPTION_ARG_STRING, &uplink,
          "primary: carry every frame (ARP and IPv6 too) between IFACE and UPLINK in user space", "UPLINK" },
        { "forward-all", 0, 0, G_OPTION_ARG_NONE, &forward_all,
          "secondary: forward every frame for comparison (the primary runs with --uplink)", NULL },
        { "kernel-timestamps", 0, 0, G_OPTION_ARG_NONE, &kernel_ts,
          "primary: measure verdict latency from the kernel's receipt of each packet (turns on receive "
          "timestamps system-wide)", NULL },
        { "carry-flows", 0, 0, G_OPTION_ARG_FILENAME, &carry_file,
          "primary: keep rewriting the flows in FILE (JSON, a taken-over secondary's query-rewriter reply)",
          "FILE" },
        { "debug", 'd', 0, G_OPTION_ARG_NONE, &debug, "debug logging", NULL },
        { "version", 'V', 0, G_OPTION_ARG_NONE, &version, "print the version and exit", NULL },
        { "syslog", 0, 0, G_OPTION_ARG_NONE, &use_syslog, "log to syslog instead of stderr", NULL },
        { "logfile", 'l', 0, G_OPTION_ARG_FILENAME, &logfile, "also log to FILE", "FILE" },
        { "daemonize", 0, 0, G_OPTION_ARG_NONE, &daemonize,
          "run in the background (the command returns once the proxy is ready) and log to syslog", NULL },
        { "pidfile", 0, 0, G_OPTION_ARG_FILENAME, &pidfile, "write the pid to FILE, locked", "FILE" },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- hold, compare and release guest packets (COLO)");
    g_autoptr(GError) error = NULL;
    struct proxy_config cfg = { 0 };
    DaemonNotify *notify = NULL;
    GMainLoop *loop;
    Proxy *p;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        fprintf(stderr, "colo-proxy: %s\n", error->message);
        return 1;
    }
    if (version) {
        puts("colo-proxy " PACKAGE_VERSION);
        return 0;
    }
    if (cleanup) {
        return main_cleanup(role, iface);
    }
    if (!role || (g_strcmp0(role, "primary") && g_strcmp0(role, "secondary")) || !iface ||
        !listen_on == !connect_to || queue_num < 0 || queue_num > 65535 || timeout < 1 || scan < 1 ||
        max_queue < 1 || queue_maxlen < 1 || fence_after < 0) {
        fprintf(stderr, "colo-proxy: need --role primary|secondary, --guest-iface, and one of --listen or "
                        "--connect (see --help)\n");
        return 1;
    }
    if (replay_kib < 0 || replay_kib > 1048576) {
        fprintf(stderr, "colo-proxy: --replay-kib %d: give 0 to 1048576 (1 GiB)\n", replay_kib);
        return 1;
    }
    if ((peer && !listen_on) || (control_group && !control)) {
        fprintf(stderr, "colo-proxy: --peer goes with --listen, --control-group with --control\n");
        return 1;
    }
    if (carry_file) {
        g_autofree char *text = NULL;
        gsize len;

        if (g_strcmp0(role, "primary") || uplink || queue_num >= (int)PROXY_CARRY_QUEUE_BASE) {
            fprintf(stderr, "colo-proxy: --carry-flows goes with --role primary, without --uplink, and a "
                            "--queue-num below %u (its queue is --queue-num + %u)\n", PROXY_CARRY_QUEUE_BASE,
                    PROXY_CARRY_QUEUE_BASE);
            return 1;
        }
        if (!g_file_get_contents(carry_file, &text, &len, &error) || !(carried = carry_parse(text, len, &error))) {
            fprintf(stderr, "colo-proxy: --carry-flows %s: %s\n", carry_file, error->message);
            return 1;
        }
    }
    cmp_params_init(&cfg.params);
    cfg.role = g_str_equal(role, "primary") ? PROXY_PRIMARY : PROXY_SECONDARY;
    cfg.guest_iface = iface;
    cfg.queue_num = (uint16_t)queue_num;
    cfg.queue_maxlen = (uint32_t)queue_maxlen;
    cfg.listen = listen_on;
    cfg.connect = connect_to;
    cfg.peer = peer;
    cfg.tls_dir = tls_dir;
    cfg.control = control;
    cfg.control_group = control_group;
    cfg.install_rules = !no_rules;
    cfg.uplink = uplink;
    cfg.forward_all = forward_all;
    cfg.kernel_timestamps = kernel_ts;
    cfg.fence_after_ms = (uint32_t)fence_after;
    cfg.replay_max_bytes = (size_t)replay_kib * 1024;
    cfg.carried = carried;
    cfg.params.compare_timeout_ms = (uint32_t)timeout;
    cfg.params.expired_scan_cycle_ms = (uint32_t)scan;
    cfg.params.max_queue_size = (uint32_t)max_queue;
    cfg.params.checkpoint_on_mismatch = !no_cp_mismatch;
    for (char **s = ports; s && *s; s++) {
        long v = strtol(*s, NULL, 10);

        if (v < 1 || v > 65535 || cfg.params.n_passthrough == CMP_MAX_PASSTHROUGH) {
            fprintf(stderr, "colo-proxy: bad or too many passthrough ports (%s)\n", *s);
            return 1;
        }
        cfg.params.passthrough_ports[cfg.params.n_passthrough++] = (uint16_t)v;
    }
    if (!colo_log_init("colo-proxy", NULL, use_syslog, logfile, debug, &error)) {
        fprintf(stderr, "colo-proxy: %s\n", error->message);
        return 2;
    }
    colo_log_route_glib();
    /* The parent waits until the proxy is ready: its exit status says
     * whether it started. */
    if (daemonize) {
        notify = daemon_start(&error);
        if (!notify) {
            qb_log(LOG_ERR, "cannot daemonize: %s", error->message);
            colo_log_fini();
            return 2;
        }
        colo_log_after_fork();
    }
    /* Packets of up to 64 KiB are held, kept and freed all the time: keep
     * the freed memory (up to 64 MiB) for the next ones rather than give
     * it back and have every new packet fault in and clear fresh pages. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    loop = g_main_loop_new(NULL, FALSE);
    p = proxy_new(&cfg, &error);
    if (p && pidfile && !daemon_write_pidfile(pidfile, &error)) {
        proxy_free(p);
        p = NULL;
    }
    if (!p) {
        qb_log(LOG_ERR, "%s", error->message);
        if (notify) {
            daemon_failed(notify);
        }
        g_main_loop_unref(loop);
        colo_log_fini();
        return 2;
    }
    if (notify) {
        daemon_ready(notify);
        colo_log_to_syslog();
    }
    /* Every signal that would end us lets the rules go first. */
    g_unix_signal_add(SIGINT, main_on_signal, loop);
    g_unix_signal_add(SIGTERM, main_on_signal, loop);
    g_unix_signal_add(SIGHUP, main_on_signal, loop);
    g_main_loop_run(loop);
    qb_log(LOG_NOTICE, "stopping");
    proxy_free(p);
    if (pidfile) {
        unlink(pidfile);
    }
    g_main_loop_unref(loop);
    colo_log_fini();
    return 0;
}
