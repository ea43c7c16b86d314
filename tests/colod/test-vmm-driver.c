/* colod's colo-vmm driver against the real colo-vmm and the test guest:
 * start (READY), pause and resume, stop (nothing reported), a colo-vmm
 * killed from outside (EXITED), a frozen one (a command times out, it is
 * killed: EXITED), and protect between a primary and a secondary on this
 * machine (PROTECT_DONE on both), then either dies: the survivor reports
 * the peer lost and fails over. */
#include "config.h"

#include "vmm-driver.h"

#include "common/log.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

typedef struct {
    GArray *events; /* VmmEvent */
    char *peer_lost; /* the detail of the last VMM_EV_PEER_LOST */
} Seen;

/* How often the drivers poll colo-vmm (query-status, query-colo-status). */
static unsigned int poll_ms = 100;

static void on_event(VmmEvent ev, const char *detail, void *opaque)
{
    Seen *s = opaque;

    g_test_message("event %s (%s)", vmm_event_name(ev), detail);
    g_array_append_val(s->events, ev);
    if (ev == VMM_EV_PEER_LOST) {
        g_free(s->peer_lost);
        s->peer_lost = g_strdup(detail);
    }
}

static void seen_free(Seen *s)
{
    g_array_free(s->events, TRUE);
    g_free(s->peer_lost);
}

static bool saw(Seen *s, VmmEvent ev)
{
    for (guint i = 0; i < s->events->len; i++) {
        if (g_array_index(s->events, VmmEvent, i) == ev) {
            return true;
        }
    }
    return false;
}

/* Runs the main loop until @s saw @ev, at most @ms. */
static bool wait_for(Seen *s, VmmEvent ev, int ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;

    while (!saw(s, ev) && g_get_monotonic_time() < end) {
        g_main_context_iteration(NULL, FALSE);
        g_usleep(1000);
    }
    return saw(s, ev);
}

static void spin(int ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;

    while (g_get_monotonic_time() < end) {
        g_main_context_iteration(NULL, FALSE);
        g_usleep(1000);
    }
}

typedef struct {
    char *dir;
    char *vmm;
    char *guest;
    char **argv;
} Env;

static bool env_get(Env *e)
{
    const char *build = g_getenv("COLO_BUILDDIR");
    g_autoptr(GError) err = NULL;

    if (!build) {
        build = ".";
    }
    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        g_test_skip("no /dev/kvm: colo-vmm cannot run");
        return false;
    }
    e->vmm = g_build_filename(build, "vmm", "colo-vmm", NULL);
    e->guest = g_build_filename(build, "tests", "guest", "colo-testguest", NULL);
    g_assert_true(g_file_test(e->vmm, G_FILE_TEST_IS_EXECUTABLE));
    g_assert_true(g_file_test(e->guest, G_FILE_TEST_EXISTS));
    e->dir = g_dir_make_tmp("colod-vmm-XXXXXX", &err);
    g_assert_no_error(err);
    e->argv = g_new0(char *, 7);
    e->argv[0] = g_strdup("-m");
    e->argv[1] = g_strdup("64M");
    e->argv[2] = g_strdup("-kernel");
    e->argv[3] = g_strdup(e->guest);
    /* Not stdio: the guest's console would interleave with the TAP lines
     * (an "ok" line lost in the middle of one made the run incomplete). */
    e->argv[4] = g_strdup("-serial");
    e->argv[5] = g_strdup("none");
    return true;
}

static void env_free(Env *e)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", e->dir);

    g_assert_cmpint(system(cmd), ==, 0);
    g_free(e->dir);
    g_free(e->vmm);
    g_free(e->guest);
    g_strfreev(e->argv);
}

static VmmDriver *driver_tls(Env *e, const char *sub, const char *incoming, const char *peer, const char *tls_dir,
                             Seen *s)
{
    g_autofree char *run = g_build_filename(e->dir, sub, NULL);
    /* The secondary accepts only the primary's address, as colod sets it. */
    VmmDriverParams p = { .vmm_path = e->vmm, .vmm_argv = e->argv, .run_dir = run, .incoming = incoming,
                          .allowed_peer = incoming ? "127.0.0.1" : NULL, .peer_uri = peer, .qmp_ms = 1000,
                          .poll_ms = poll_ms, .die_with_colod = true, .tls_dir = tls_dir };

    s->events = g_array_new(FALSE, FALSE, sizeof(VmmEvent));
    s->peer_lost = NULL;
    return vmm_driver_new(&p, on_event, s);
}

static VmmDriver *driver(Env *e, const char *sub, const char *incoming, const char *peer, Seen *s)
{
    return driver_tls(e, sub, incoming, peer, NULL, s);
}

static bool pid_alive(GPid pid)
{
    return kill(pid, 0) == 0;
}

static void test_life(void)
{
    Env e;
    Seen s;
    VmmDriver *d;
    GPid pid;

    if (!env_get(&e)) {
        return;
    }
    d = driver(&e, "a", NULL, NULL, &s);
    vmm_driver_start(d, VMM_PRIMARY);
    g_assert_true(wait_for(&s, VMM_EV_READY, 20000));
    pid = vmm_driver_pid(d);
    g_assert_cmpint(pid, >, 0);
    vmm_driver_pause(d);
    vmm_driver_resume(d);
    spin(300);
    g_assert_cmpuint(s.events->len, ==, 1);
    /* Stopped by colod: nothing reported, the process goes. */
    vmm_driver_stop(d);
    spin(1000);
    g_assert_cmpuint(s.events->len, ==, 1);
    g_assert_false(pid_alive(pid));
    /* Killed from outside: EXITED. */
    g_array_set_size(s.events, 0);
    vmm_driver_start(d, VMM_PRIMARY);
    g_assert_true(wait_for(&s, VMM_EV_READY, 20000));
    kill(vmm_driver_pid(d), SIGKILL);
    g_assert_true(wait_for(&s, VMM_EV_EXITED, 5000));
    g_assert_cmpint(vmm_driver_pid(d), ==, 0);
    vmm_driver_free(d);
    seen_free(&s);
    env_free(&e);
}

/* A colo-vmm left running by an earlier colod of the VM (same run
 * directory) is killed before a new one starts: never two guests on the
 * VM's disks. */
static void test_leftover_killed(void)
{
    Env e;
    Seen s1, s2;
    VmmDriver *d1, *d2;
    GPid old;

    if (!env_get(&e)) {
        return;
    }
    d1 = driver(&e, "a", NULL, NULL, &s1);
    d2 = driver(&e, "a", NULL, NULL, &s2);
    vmm_driver_start(d1, VMM_PRIMARY);
    g_assert_true(wait_for(&s1, VMM_EV_READY, 20000));
    old = vmm_driver_pid(d1);
    vmm_driver_start(d2, VMM_PRIMARY);
    g_assert_true(wait_for(&s1, VMM_EV_EXITED, 5000));
    g_assert_true(wait_for(&s2, VMM_EV_READY, 20000));
    g_assert_cmpint(vmm_driver_pid(d2), !=, old);
    vmm_driver_free(d1);
    vmm_driver_free(d2);
    spin(300);
    seen_free(&s1);
    seen_free(&s2);
    env_free(&e);
}

/* A frozen colo-vmm is not waited for: the command times out, it is
 * killed, and the exit is reported. */
static void test_hang_escape(void)
{
    Env e;
    Seen s;
    VmmDriver *d;
    gint64 t0;

    if (!env_get(&e)) {
        return;
    }
    d = driver(&e, "a", NULL, NULL, &s);
    vmm_driver_start(d, VMM_PRIMARY);
    g_assert_true(wait_for(&s, VMM_EV_READY, 20000));
    kill(vmm_driver_pid(d), SIGSTOP);
    t0 = g_get_monotonic_time();
    vmm_driver_pause(d);
    g_assert_true(wait_for(&s, VMM_EV_EXITED, 5000));
    g_test_message("killed %.2f s after the command", (g_get_monotonic_time() - t0) / 1e6);
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 3000000);
    vmm_driver_free(d);
    seen_free(&s);
    env_free(&e);
}

static int free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    g_assert_cmpint(bind(fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
    g_assert_cmpint(getsockname(fd, (struct sockaddr *)&a, &len), ==, 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Protect between a primary and a secondary here, then one of them dies
 * (@victim 0: the primary): the survivor's colo-vmm reports the peer lost
 * (x-broken, or at once its COLO_BROKEN event: @by_event polls only once a
 * minute), fails over on request and runs on. */
static void protect_then_lose(int victim, bool by_event)
{
    Env e;
    Seen seen[2];
    VmmDriver *d[2];
    g_autofree char *uri = NULL;
    int survivor = !victim;

    if (!env_get(&e)) {
        return;
    }
    uri = g_strdup_printf("tcp:127.0.0.1:%d", free_port());
    d[1] = driver(&e, "s", uri, NULL, &seen[1]);
    d[0] = driver(&e, "p", NULL, uri, &seen[0]);
    vmm_driver_start(d[1], VMM_SECONDARY);
    vmm_driver_start(d[0], VMM_PRIMARY);
    g_assert_true(wait_for(&seen[1], VMM_EV_READY, 20000));
    g_assert_true(wait_for(&seen[0], VMM_EV_READY, 20000));
    spin(200); /* the capabilities go first */
    /* colod's sole-copy marker: colo-vmm removes it at its commit. */
    g_autofree char *marker = g_build_filename(e.dir, "p-sole-copy", NULL);
    g_assert_true(g_file_set_contents(marker, "the VM runs only here\n", -1, NULL));
    vmm_driver_protect(d[0], marker);
    g_assert_true(wait_for(&seen[0], VMM_EV_PROTECT_DONE, 60000));
    g_assert_true(wait_for(&seen[1], VMM_EV_PROTECT_DONE, 30000));
    g_assert_false(g_file_test(marker, G_FILE_TEST_EXISTS));
    kill(vmm_driver_pid(d[victim]), SIGKILL);
    g_assert_true(wait_for(&seen[victim], VMM_EV_EXITED, 5000));
    if (by_event) {
        /* Its return path breaks: the primary hears of it at once. */
        g_assert_true(wait_for(&seen[survivor], VMM_EV_PEER_LOST, 5000));
        g_assert_true(g_str_has_prefix(seen[survivor].peer_lost, "COLO_BROKEN: "));
    }
    /* Else a primary may notice only at its next checkpoint:
     * x-checkpoint-delay is QEMU's 20 s by default. */
    g_assert_true(wait_for(&seen[survivor], VMM_EV_PEER_LOST, 45000));
    vmm_driver_failover(d[survivor]);
    spin(500);
    g_assert_false(saw(&seen[survivor], VMM_EV_EXITED));
    g_assert_cmpint(vmm_driver_pid(d[survivor]), >, 0);
    for (int i = 0; i < 2; i++) {
        vmm_driver_free(d[i]);
    }
    spin(300);
    for (int i = 0; i < 2; i++) {
        seen_free(&seen[i]);
    }
    env_free(&e);
}

static void test_protect_lose_primary(void)
{
    protect_then_lose(0, false);
}

static void test_protect_lose_secondary(void)
{
    protect_then_lose(1, false);
}

static void test_peer_lost_event(void)
{
    poll_ms = 60000;
    protect_then_lose(1, true);
    poll_ms = 100;
}

/* [tls] dir: certificates made with certtool as docs/operations.md says
 * (tests/lib/tls_certs.py's layout), both endpoints in one directory. */
static char *make_pki(const char *dir)
{
    g_autofree char *script = g_strdup_printf(
        "set -e; cd '%s'; mkdir pki; cd pki\n"
        "printf 'cn = ca\\nca\\ncert_signing_key\\n' >ca.info\n"
        "certtool --generate-privkey --key-type=ecdsa --outfile ca-key.pem\n"
        "certtool --generate-self-signed --load-privkey ca-key.pem --template ca.info --outfile ca-cert.pem\n"
        "for r in server client; do\n"
        "  printf 'cn = node\\nip_address = 127.0.0.1\\ntls_www_%%s\\nsigning_key\\nencryption_key\\n' $r >$r.info\n"
        "  certtool --generate-privkey --key-type=ecdsa --outfile $r-key.pem\n"
        "  certtool --generate-certificate --load-privkey $r-key.pem --load-ca-certificate ca-cert.pem"
        " --load-ca-privkey ca-key.pem --template $r.info --outfile $r-cert.pem\n"
        "done\n", dir);
    g_autoptr(GError) err = NULL;
    int status = 0;
    char *argv[] = { "sh", "-c", script, NULL };

    g_assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL |
                               G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL, NULL, &status, &err));
    g_assert_no_error(err);
    g_assert_cmpint(status, ==, 0);
    return g_build_filename(dir, "pki", NULL);
}

/* With tls_dir colod gives both colo-vmm TLS credentials and tls-creds:
 * protect works over TLS; a primary without them is refused by a TLS
 * secondary (no plaintext fallback) and reports the failure. */
static void test_protect_tls(void)
{
    Env e;
    Seen seen[3];
    VmmDriver *d[3];
    g_autofree char *uri = NULL, *pki = NULL, *certtool = g_find_program_in_path("certtool");

    if (!certtool) {
        g_test_skip("not installed: certtool (Debian: gnutls-bin)");
        return;
    }
    if (!env_get(&e)) {
        return;
    }
    pki = make_pki(e.dir);
    uri = g_strdup_printf("tcp:127.0.0.1:%d", free_port());
    d[1] = driver_tls(&e, "s", uri, NULL, pki, &seen[1]);
    d[2] = driver(&e, "x", NULL, uri, &seen[2]);
    d[0] = driver_tls(&e, "p", NULL, uri, pki, &seen[0]);
    vmm_driver_start(d[1], VMM_SECONDARY);
    vmm_driver_start(d[2], VMM_PRIMARY);
    vmm_driver_start(d[0], VMM_PRIMARY);
    for (int i = 0; i < 3; i++) {
        g_assert_true(wait_for(&seen[i], VMM_EV_READY, 20000));
    }
    spin(200);
    vmm_driver_protect(d[2], NULL);
    g_assert_true(wait_for(&seen[2], VMM_EV_PROTECT_FAILED, 30000));
    g_assert_false(saw(&seen[1], VMM_EV_EXITED));
    vmm_driver_protect(d[0], NULL);
    g_assert_true(wait_for(&seen[0], VMM_EV_PROTECT_DONE, 60000));
    g_assert_true(wait_for(&seen[1], VMM_EV_PROTECT_DONE, 30000));
    for (int i = 0; i < 3; i++) {
        vmm_driver_free(d[i]);
    }
    spin(300);
    for (int i = 0; i < 3; i++) {
        seen_free(&seen[i]);
    }
    env_free(&e);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    colo_log_init("colod-test", NULL, false, NULL, false, NULL);
    g_test_add_func("/colod/vmm-driver/life", test_life);
    g_test_add_func("/colod/vmm-driver/hang-escape", test_hang_escape);
    g_test_add_func("/colod/vmm-driver/leftover-killed", test_leftover_killed);
    g_test_add_func("/colod/vmm-driver/protect-lose-primary", test_protect_lose_primary);
    g_test_add_func("/colod/vmm-driver/protect-lose-secondary", test_protect_lose_secondary);
    g_test_add_func("/colod/vmm-driver/peer-lost-event", test_peer_lost_event);
    g_test_add_func("/colod/vmm-driver/protect-tls", test_protect_tls);
    return g_test_run();
}
