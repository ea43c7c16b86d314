/* colod: the coordinator of one COLO-protected VM on this node (issue 11;
 * docs/colod.md, colod(8)): joins the cluster, runs the decision state
 * machine, drives colo-vmm (vmm-driver.c) and colo-proxy (proxy-driver.c).
 * Exit codes: 0 clean stop, 1 bad usage, 2 configuration, 3 state file,
 * 4 corosync or quorum set-up, 5 corosync went away, 6 the control socket
 * cannot be created. */
#include "config.h"

#include "cluster-fsm.h"
#include "cluster-link.h"
#include "colod-config.h"
#include "common/log.h"
#include "common/sd-notify.h"
#include "common/unix-socket.h"
#include "control.h"
#include "cpg-msg.h"
#include "guest-tap.h"
#include "hooks.h"
#include "state-file.h"
#include "proxy-driver.h"
#include "vmm-driver.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ColodConfig *config;
    ClusterLink *link;
    ClusterFsm *fsm;
    VmmDriver *vmm;
    ColodControl *control;
    ProxyDriver *proxy;
    ColodHooks *hooks;          /* [hooks] role-change */
    ColodHooks *state_hooks;    /* [hooks] state-change, --state-change-hook */
    GMainLoop *loop;
    guint timer;
    guint watchdog;             /* WATCHDOG=1 to systemd (WatchdogSec=) */
    bool ready;                 /* READY=1 sent */
    char *run_dir;              /* /run/colo/VM */
    int sole_copy_marked;       /* the run dir's sole-copy marker: 1, 0, -1 not known yet */
    int unprotected_marked;     /* the run dir's unprotected marker: 1, 0, -1 not known yet */
    bool replay_after_hook;     /* a takeover: the proxy replays once the role hook made us primary */
    bool protect_after_hook;    /* and a protect waits for that (its new proxy replaces the old) */
    /* A protected primary's colo-vmm died: its proxy lingers until the
     * secondary serves (proxy_driver_linger), with the guest's tap kept up,
     * and a colo-vmm to start meanwhile waits for that. */
    GuestTap *tap;
    pid_t tap_refused_pid;      /* its tap could not be copied (logged once) */
    bool lingering;
    bool start_deferred;
    VmmKind deferred_kind;
    bool deferred_relocation;
    int exit_code;
} Colod;

static int64_t colod_now_ms(void *opaque)
{
    return g_get_monotonic_time() / 1000;
}

static void colod_schedule(Colod *c);
static void colod_on_vmm_event(VmmEvent ev, const char *detail, void *opaque);

static char *colod_sole_copy_path(Colod *c)
{
    return g_build_filename(c->run_dir, "sole-copy", NULL);
}

/* The primary's proxy answers: the initial sync may begin. */
static void colod_on_proxy_ready(bool ok, const char *detail, void *opaque)
{
    Colod *c = opaque;

    if (ok) {
        g_autofree char *sole_copy = colod_sole_copy_path(c);

        /* Not marked (paused, managed, or it could not be written): colo-vmm
         * has no file to remove, and binds nothing to this colod. */
        vmm_driver_protect(c->vmm, g_file_test(sole_copy, G_FILE_TEST_EXISTS) ? sole_copy : NULL);
    } else {
        colod_on_vmm_event(VMM_EV_PROTECT_FAILED, "colo-proxy did not start", c);
    }
}

static bool colod_vmm_alive(void *opaque)
{
    return vmm_driver_pid(((Colod *)opaque)->vmm) != 0;
}

/* A primary alone holds nothing (its proxy starts at protect); a
 * secondary's proxy keeps its guest off the wire before it ever runs. A
 * relocation target's guest serves as soon as it runs (postcopy), as a
 * primary alone: no proxy. */
static void colod_start_vmm(Colod *c, VmmKind kind, bool relocation)
{
    if (c->lingering) {
        c->start_deferred = true;
        c->deferred_kind = kind;
        c->deferred_relocation = relocation;
        qb_log(LOG_INFO, "colo-vmm starts once the dead one's colo-proxy has handed over to the secondary");
        return;
    }
    /* A tap takes one queue: the new colo-vmm's, not our copy. */
    guest_tap_release(c->tap);
    if (relocation) {
        proxy_driver_stop(c->proxy);
        vmm_driver_start_relocation_target(c->vmm);
        return;
    }
    if (kind == VMM_SECONDARY) {
        proxy_driver_start(c->proxy, VMM_SECONDARY, NULL, NULL);
    } else {
        proxy_driver_stop(c->proxy);
    }
    vmm_driver_start(c->vmm, kind);
}

/* The proxy of the dead colo-vmm is gone (proxy_driver_linger): the tap
 * may go down, and a colo-vmm asked for meanwhile starts. */
static void colod_on_linger_done(void *opaque)
{
    Colod *c = opaque;

    c->lingering = false;
    guest_tap_release(c->tap);
    if (c->start_deferred) {
        c->start_deferred = false;
        colod_start_vmm(c, c->deferred_kind, c->deferred_relocation);
    }
}

/* colod stops or replaces the lingering proxy itself. */
static void colod_linger_cancel(Colod *c)
{
    c->lingering = false;
    c->start_deferred = false;
}

/* A protected primary's tap is kept up by a copy (guest-tap.h), else
 * released: it must not hold a tap another colo-vmm opens. */
static void colod_keep_tap(Colod *c)
{
    g_autoptr(GError) err = NULL;
    pid_t pid = vmm_driver_pid(c->vmm);

    if (c->lingering) {
        return;
    }
    if (cluster_fsm_state(c->fsm) != CLUSTER_PRIMARY_PROTECTED || pid <= 0) {
        guest_tap_release(c->tap);
        return;
    }
    if (pid == c->tap_refused_pid || guest_tap_keep(c->tap, pid, &err)) {
        return;
    }
    c->tap_refused_pid = pid;
    qb_log(LOG_WARNING, "no copy of the guest's tap: %s (should colo-vmm die, what clients send here before the "
           "secondary takes over is lost)", err->message);
}

/* Makes the run dir's marker file @name exist (with @text) or not, as
 * @want says, unless *@marked already says so; @level and @if_lost tell
 * the log what a failure means. */
static void colod_mark(Colod *c, const char *name, int want, int *marked, const char *text, int level,
                       const char *if_lost)
{
    g_autofree char *path = g_build_filename(c->run_dir, name, NULL);
    g_autoptr(GError) err = NULL;

    if (want == *marked) {
        return;
    }
    if (want) {
        if (!g_file_set_contents(path, text, -1, &err)) {
            qb_log(level, "%s (%s)", err->message, if_lost);
            return;
        }
    } else if (g_unlink(path) < 0 && errno != ENOENT) {
        qb_log(level, "cannot remove %s: %s (%s)", path, g_strerror(errno), if_lost);
        return;
    }
    *marked = want;
}

/* RUN_DIR/sole-copy exists while this node's VM is the only copy
 * (cluster_fsm_sole_copy): after an unclean end of colod, colod@.service's
 * ExecStopPost (and the test harness's colod-unit) leave colo-vmm and
 * colo-proxy running for the next colod instead of killing the last copy
 * of the VM. Updated before the actions run. While protecting it is
 * colo-vmm's: the protect hands it over (vmm_driver_protect), and colo-vmm
 * removes it at the commit of the initial sync. */
static void colod_mark_sole_copy(Colod *c)
{
    ClusterSoleCopy sole = cluster_fsm_sole_copy(c->fsm);
    int want = sole == CLUSTER_SOLE_COPY_YES;

    if (sole == CLUSTER_SOLE_COPY_UNTIL_COMMIT) {
        c->sole_copy_marked = -1;   /* colo-vmm may remove it: look again after */
        return;
    }
    /* Left behind, it would spare a VM the peer may take over from. */
    colod_mark(c, "sole-copy", want, &c->sole_copy_marked,
               "the VM runs only here: an unclean end of colod leaves it running\n", want ? LOG_WARNING : LOG_ERR,
               want ? "an unclean end of colod would take the VM down with it"
                    : "an unclean end of colod would leave the VM running beside the peer's");
}

/* RUN_DIR/unprotected exists while protection is off (`coloctl
 * unprotect`, or a failover claimed with it): the administrator's wish
 * outlives this colod when its VM does (a crash, an upgrade restart), not
 * a stop of colod with its VM nor the node's reboot. The next colod reads
 * it (cluster_fsm_keep_unprotected). */
static void colod_mark_unprotected(Colod *c)
{
    int want = !cluster_fsm_protect_enabled(c->fsm);

    colod_mark(c, "unprotected", want, &c->unprotected_marked,
               "protection disabled by an administrator (coloctl protect enables it)\n", LOG_WARNING,
               want ? "a restarted colod would protect the VM again" : "a restarted colod would not protect the VM");
}

/* Carries out @acts in order (cluster-fsm.h's contract). */
static void colod_execute(Colod *c, ClusterActions *acts)
{
    colod_mark_sole_copy(c);
    colod_mark_unprotected(c);
    for (guint i = 0; i < acts->len; i++) {
        ClusterAction *a = cluster_action_at(acts, i);
        g_autoptr(GError) err = NULL;

        switch (a->type) {
        case ACT_LOG:
            qb_log(a->level, "%s", a->text);
            break;
        case ACT_ARM_TIMER:
            break; /* colod_schedule() below */
        case ACT_SEND: {
            uint8_t buf[CPG_MSG_MAX];
            size_t len = cpg_msg_encode(&a->msg, c->config->vm_name, buf);

            if (!cluster_link_send(c->link, buf, len, &err)) {
                qb_log(LOG_ERR, "%s not sent: %s", cpg_msg_type_name(a->msg.type), err->message);
            }
            break;
        }
        case ACT_PERSIST: {
            ColodStateRecord rec = { a->role, a->generation };

            if (!colod_state_save(c->config->state_dir, &rec, &err)) {
                g_autoptr(GArray) more = cluster_actions_new();
                ClusterAction failed = *a;

                qb_log(LOG_ERR, "%s", err->message);
                failed.text = NULL;
                cluster_fsm_persist_failed(c->fsm, &failed, err->message, more);
                colod_execute(c, more);
                return;
            }
            break;
        }
        case ACT_START_VMM:
            colod_start_vmm(c, a->vmm, a->relocation);
            break;
        case ACT_STOP_VMM:
            c->replay_after_hook = c->protect_after_hook = false;
            colod_linger_cancel(c);
            vmm_driver_stop(c->vmm);
            proxy_driver_stop(c->proxy);
            break;
        case ACT_START_PROTECT:
            if (c->replay_after_hook) {
                /* The new proxy replaces the one holding the guest's last
                 * output: the role hook (a few ms) goes first. */
                c->protect_after_hook = true;
                break;
            }
            /* colo-vmm connects to its proxy when COLO begins. */
            colod_linger_cancel(c);
            proxy_driver_start(c->proxy, VMM_PRIMARY, colod_on_proxy_ready, c);
            break;
        case ACT_CANCEL_PROTECT:
            c->protect_after_hook = false;
            vmm_driver_cancel_protect(c->vmm);
            /* The guest runs alone again: nothing to hold. */
            proxy_driver_protect_cancelled(c->proxy);
            break;
        case ACT_FAILOVER:
            vmm_driver_failover(c->vmm);
            proxy_driver_failover(c->proxy);
            /* The guest's last output goes to the clients once they
             * reach this node: after the role hook moved the address.
             * An idle hook runs for this change next (colod_execute's
             * end), so its end is the moment. */
            if (proxy_driver_role(c->proxy) == VMM_SECONDARY) {
                if (colod_hooks_configured(c->hooks) && !colod_hooks_busy(c->hooks)) {
                    c->replay_after_hook = true;
                } else {
                    proxy_driver_replay_output(c->proxy);
                }
            }
            break;
        case ACT_PAUSE:
            vmm_driver_pause(c->vmm);
            break;
        case ACT_RESUME:
            vmm_driver_resume(c->vmm);
            break;
        case ACT_RELOCATE:
            vmm_driver_relocate(c->vmm);
            break;
        }
    }
    colod_keep_tap(c);
    colod_schedule(c);
    colod_control_update(c->control);
    colod_hooks_role(c->hooks, hook_role_of(cluster_fsm_vmm(c->fsm), cluster_fsm_paused(c->fsm)),
                     cluster_fsm_reason(c->fsm));
    colod_hooks_run(c->state_hooks, cluster_state_name(cluster_fsm_state(c->fsm)), cluster_fsm_reason(c->fsm));
}

static void colod_on_role_hook_done(void *opaque, const char *value, bool ok)
{
    Colod *c = opaque;

    /* The run started by the takeover (see ACT_FAILOVER). Replayed even
     * after a failed hook: the address may have moved by other means, and
     * a replay that reaches nobody costs nothing. Another role (the VM
     * paused at once) serves nobody: nothing to replay. */
    if (!c->replay_after_hook) {
        return;
    }
    c->replay_after_hook = false;
    if (c->protect_after_hook) {
        /* Its swap of the proxies replays first (proxy-driver.c). */
        c->protect_after_hook = false;
        proxy_driver_start(c->proxy, VMM_PRIMARY, colod_on_proxy_ready, c);
    } else if (g_strcmp0(value, "primary") == 0) {
        proxy_driver_replay_output(c->proxy);
    }
}

static void colod_execute_cb(ClusterActions *acts, gpointer opaque)
{
    colod_execute(opaque, acts);
}

static gboolean colod_on_timer(gpointer data)
{
    Colod *c = data;
    g_autoptr(GArray) acts = cluster_actions_new();

    c->timer = 0;
    cluster_fsm_tick(c->fsm, acts);
    colod_execute(c, acts);
    return G_SOURCE_REMOVE;
}

static void colod_schedule(Colod *c)
{
    int64_t next = cluster_fsm_next_deadline(c->fsm);

    g_clear_handle_id(&c->timer, g_source_remove);
    if (next >= 0) {
        int64_t wait = next - colod_now_ms(NULL);

        c->timer = g_timeout_add((guint)CLAMP(wait, 0, G_MAXINT), colod_on_timer, c);
    }
}

static void colod_on_vmm_event(VmmEvent ev, const char *detail, void *opaque)
{
    Colod *c = opaque;
    g_autoptr(GArray) acts = cluster_actions_new();

    qb_log(LOG_INFO, "colo-vmm: %s (%s)", vmm_event_name(ev), detail);
    if (ev == VMM_EV_READY) {
        colod_control_vmm_ready(c->control);
    }
    if (ev == VMM_EV_EXITED) {
        /* A protected primary's proxy goes on mirroring the clients' input
         * to the secondary until it serves them (docs/colod.md, "A primary
         * whose colo-vmm died"); else nothing is left to hold or compare. */
        if (cluster_fsm_state(c->fsm) == CLUSTER_PRIMARY_PROTECTED &&
            proxy_driver_linger(c->proxy, c->config->timeouts.linger_ms, colod_on_linger_done, c)) {
            c->lingering = true;
        } else {
            proxy_driver_stop(c->proxy);
            guest_tap_release(c->tap);
        }
    }
    cluster_fsm_vmm_event(c->fsm, ev, acts);
    colod_execute(c, acts);
}

static void colod_on_membership(const uint32_t *members, size_t n, bool quorate, void *opaque)
{
    Colod *c = opaque;
    g_autoptr(GArray) acts = cluster_actions_new();

    cluster_fsm_membership(c->fsm, members, n, quorate, acts);
    colod_execute(c, acts);
    /* The first membership: joined the CPG group, quorum read. systemd
     * (Type=notify) counts colod@VM as started from here. */
    if (!c->ready) {
        c->ready = true;
        colo_sd_notify("READY=1");
    }
}

/* From the main loop: a colod stuck anywhere stops these, and systemd
 * kills it (colod@.service, WatchdogSec=). */
static gboolean colod_on_watchdog(gpointer data)
{
    colo_sd_notify("WATCHDOG=1");
    return G_SOURCE_CONTINUE;
}

static void colod_on_message(const uint8_t *buf, size_t len, uint32_t from, void *opaque)
{
    Colod *c = opaque;
    g_autoptr(GArray) acts = cluster_actions_new();
    g_autoptr(GError) err = NULL;
    CpgMsg m;

    if (!cpg_msg_decode(buf, len, from, c->config->vm_name, &m, &err)) {
        qb_log(LOG_WARNING, "from node %u: %s", from, err->message);
        return;
    }
    cluster_fsm_message(c->fsm, &m, acts);
    colod_execute(c, acts);
}

static void colod_on_lost(const char *why, void *opaque)
{
    Colod *c = opaque;
    g_autoptr(GArray) acts = cluster_actions_new();
    uint32_t self = cluster_link_local_id(c->link);

    /* Without corosync there is no quorum: the VM must not serve. */
    qb_log(LOG_ERR, "%s", why);
    cluster_fsm_membership(c->fsm, &self, 1, false, acts);
    colod_execute(c, acts);
    c->exit_code = 5;
    g_main_loop_quit(c->loop);
}

static void colod_stop(Colod *c, bool restart)
{
    g_autoptr(GArray) acts = cluster_actions_new();

    colo_sd_notify("STOPPING=1");
    cluster_fsm_shutdown(c->fsm, restart, acts);
    colod_execute(c, acts);
    if (restart) {
        /* The next colod of this VM picks them up (docs/colod.md). */
        vmm_driver_detach(c->vmm);
        proxy_driver_detach(c->proxy);
    } else {
        /* Stopped with its VM: the next start is a fresh one. */
        colod_mark(c, "unprotected", 0, &c->unprotected_marked, NULL, LOG_WARNING,
                   "the next colod would not protect the VM");
    }
    g_main_loop_quit(c->loop);
}

static gboolean colod_on_signal(gpointer data)
{
    colod_stop(data, false);
    return G_SOURCE_CONTINUE;
}

/* SIGUSR1: colod ends for a restart (an upgrade): the VM runs on, the peer
 * waits restart-grace-ms for the next colod, which picks the VM up. */
static gboolean colod_on_restart_signal(gpointer data)
{
    colod_stop(data, true);
    return G_SOURCE_CONTINUE;
}

/* Before the main loop: a colo-vmm (and colo-proxy) an earlier colod of
 * this VM left running is taken over untouched if it answers; else it is
 * killed (when the state machine starts a VM) and the proxy's rules go. */
static void colod_pick_up(Colod *c)
{
    g_autoptr(GArray) acts = cluster_actions_new();
    VmmKind kind, proxy_role;
    bool in_colo, paused;

    if (!vmm_driver_adopt(c->vmm, &kind, &in_colo, &paused)) {
        proxy_driver_kill_leftover(c->proxy);
        return;
    }
    if (!proxy_driver_adopt(c->proxy, &proxy_role) && kind == VMM_SECONDARY) {
        /* A secondary's guest must stay off the wire. */
        proxy_driver_start(c->proxy, VMM_SECONDARY, NULL, NULL);
    }
    cluster_fsm_adopt(c->fsm, kind, in_colo, paused, acts);
    colod_execute(c, acts);
}

static const ClusterLinkOps link_ops = {
    .membership = colod_on_membership,
    .message = colod_on_message,
    .lost = colod_on_lost,
};

/* Everything up to the main loop; returns the exit code on failure, 0 on
 * success. */
static int colod_setup(Colod *c, const char *config_path, const char *control_path, bool to_syslog,
                       const char *logfile, bool debug, bool managed, const char *state_hook)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *ident = NULL;
    ColodStateRecord rec;
    bool found, two_node, qdevice;
    ClusterFsmParams params;
    ClusterClock clock = { colod_now_ms, NULL };
    VmmDriverParams vp;
    ProxyDriverParams pp;
    g_autofree char *proxy_sock = NULL;
    g_autofree char *proxy_listen = NULL;
    g_autofree char *proxy_connect = NULL;
    g_autofree char *run_dir = NULL;
    g_autofree char *unprotected = NULL;
    g_autofree char *incoming = NULL;
    g_autofree char *peer_uri = NULL;
    g_autofree char *default_control = NULL;
    ColodControlParams cp;

    c->config = colod_config_load_file(config_path, &err);
    if (!c->config) {
        fprintf(stderr, "colod: %s\n", err->message);
        return 2;
    }
    ident = g_strdup_printf("colod-%s", c->config->vm_name);
    if (!colo_log_init("colod", ident, to_syslog, logfile, debug, &err)) {
        fprintf(stderr, "colod: %s\n", err->message);
        return 1;
    }
    if (g_mkdir_with_parents(c->config->state_dir, 0700) < 0) {
        qb_log(LOG_ERR, "cannot create %s: %s", c->config->state_dir, g_strerror(errno));
        return 3;
    }
    if (!colod_state_load(c->config->state_dir, &rec, &found, &err)) {
        qb_log(LOG_ERR, "%s", err->message);
        return 3;
    }
    qb_log(LOG_INFO, "VM %s: %s, generation %" G_GUINT64_FORMAT "%s", c->config->vm_name, colod_role_name(rec.role),
           rec.generation, found ? "" : " (no state file yet)");
    c->link = cluster_link_new(c->config->vm_name, &link_ops, c, &err);
    if (!c->link) {
        qb_log(LOG_ERR, "%s", err->message);
        return 4;
    }
    if (cluster_link_local_id(c->link) == c->config->peer_node_id) {
        qb_log(LOG_ERR, "%s: [cluster] peer-node-id %u is this node's own id", c->config->path,
               c->config->peer_node_id);
        return 2;
    }
    if (state_hook) {
        if (!g_path_is_absolute(state_hook)) {
            qb_log(LOG_ERR, "--state-change-hook: \"%s\" is not an absolute path", state_hook);
            return 2;
        }
        g_free(c->config->state_change_hook);
        c->config->state_change_hook = g_strdup(state_hook);
    }
    if (managed) {
        c->config->managed = true;
    }
    if (!cluster_link_quorum_setup(c->link, &two_node, &qdevice, &err) ||
        !cluster_quorum_policy_check(two_node, qdevice, c->config->allow_split_brain, c->config->managed, &err)) {
        qb_log(LOG_ERR, "%s", err->message);
        return 4;
    }
    if (c->config->managed) {
        qb_log(LOG_INFO, "managed mode: pacemaker decides who is primary (promote/demote)%s",
               two_node && !qdevice ? "; two_node without a quorum device: only pacemaker's fencing keeps a "
                                      "partition from serving the VM on both sides" : "");
    } else if (two_node && !qdevice) {
        qb_log(LOG_WARNING, "allow-split-brain=true: two_node without a quorum device, a partition lets both "
                            "nodes serve the VM (UNSAFE)");
    }
    run_dir = g_build_filename("/run/colo", c->config->vm_name, NULL);
    c->run_dir = g_strdup(run_dir);
    c->sole_copy_marked = -1;
    c->unprotected_marked = -1;
    /* 0700 (0750 with [vm] socket-group): the sockets in it are for root
     * (and that group) only. */
    if (!colo_run_dir_prepare(run_dir, c->config->socket_group, &err)) {
        qb_log(LOG_ERR, "%s", err->message);
        return 2;
    }
    incoming = g_strdup_printf(strchr(c->config->address, ':') ? "tcp:[%s]:%u" : "tcp:%s:%u", c->config->address,
                               c->config->migration_port);
    peer_uri = g_strdup_printf(strchr(c->config->peer_address, ':') ? "tcp:[%s]:%u" : "tcp:%s:%u",
                               c->config->peer_address, c->config->migration_port);
    proxy_sock = g_build_filename(run_dir, "proxy.sock", NULL);
    proxy_listen = g_strdup_printf(strchr(c->config->address, ':') ? "[%s]:%u" : "%s:%u", c->config->address,
                                   c->config->proxy_port);
    proxy_connect = g_strdup_printf(strchr(c->config->peer_address, ':') ? "[%s]:%u" : "%s:%u",
                                    c->config->peer_address, c->config->proxy_port);
    vp = (VmmDriverParams){ .vmm_path = c->config->vmm_binary, .vmm_argv = c->config->vmm_argv,
                            .run_dir = run_dir, .socket_group = c->config->socket_group, .incoming = incoming,
                            .allowed_peer = c->config->peer_address, .peer_uri = peer_uri,
                            .proxy_path = proxy_sock, .tls_dir = c->config->tls_dir, .qmp_ms = c->config->timeouts.qmp_ms, .poll_ms = 500 };
    c->vmm = vmm_driver_new(&vp, colod_on_vmm_event, c);
    vmm_driver_set_snapshot_protect(c->vmm, c->config->protect_snapshot);
    pp = (ProxyDriverParams){ .proxy_path = c->config->proxy_binary, .run_dir = run_dir,
                              .guest_iface = c->config->guest_iface, .uplink = c->config->uplink,
                              .queue_num = c->config->queue_num, .listen = proxy_listen, .connect = proxy_connect,
                              .peer = c->config->peer_address, .socket_group = c->config->socket_group,
                              .tls_dir = c->config->tls_dir,
                              .qmp_ms = c->config->timeouts.qmp_ms, .poll_ms = 2000,
                              .link_wait_ms = c->config->timeouts.proxy_link_ms };
    c->proxy = proxy_driver_new(&pp, colod_vmm_alive, c);
    c->tap = guest_tap_new(c->config->guest_iface);
    params = (ClusterFsmParams){ .local_id = cluster_link_local_id(c->link), .peer_id = c->config->peer_node_id,
                                 .timeouts = c->config->timeouts, .managed = c->config->managed,
                                 .has_disks = colod_config_has_disks(c->config) };
    c->fsm = cluster_fsm_new(&params, &rec, &clock);
    unprotected = g_build_filename(run_dir, "unprotected", NULL);
    if (g_file_test(unprotected, G_FILE_TEST_EXISTS)) {
        cluster_fsm_keep_unprotected(c->fsm);
        c->unprotected_marked = 1;
        qb_log(LOG_NOTICE, "protection stays disabled: 'coloctl unprotect' was given to an earlier colod (%s); "
               "'coloctl protect' enables it", unprotected);
    }
    c->hooks = colod_hooks_new("role-change", c->config->role_change_hook, c->config->vm_name,
                               c->config->role_change_timeout_ms);
    colod_hooks_on_done(c->hooks, colod_on_role_hook_done, c);
    c->state_hooks = colod_hooks_new("state-change", c->config->state_change_hook, c->config->vm_name,
                                     c->config->state_change_timeout_ms);
    default_control = colod_control_default_path(c->config->vm_name);
    cp = (ColodControlParams){ .vm_name = c->config->vm_name, .fsm = c->fsm, .vmm = c->vmm, .proxy = c->proxy,
                               .log_level = debug ? LOG_DEBUG : LOG_INFO, .socket_group = c->config->socket_group,
                               .execute = colod_execute_cb, .opaque = c };
    c->control = colod_control_new(&cp, control_path ? control_path : default_control, &err);
    if (!c->control) {
        qb_log(LOG_ERR, "%s", err->message);
        return 6;
    }
    colod_pick_up(c);
    return 0;
}

int main(int argc, char **argv)
{
    g_autofree char *config_path = NULL;
    g_autofree char *logfile = NULL;
    g_autofree char *state_hook = NULL;
    g_autofree char *control_path = NULL;
    gboolean debug = FALSE, to_syslog = FALSE, version = FALSE, managed = FALSE;
    GOptionEntry entries[] = {
        { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path, "the VM's file (colo.conf(5))", "FILE" },
        { "control", 0, 0, G_OPTION_ARG_FILENAME, &control_path, "the control socket (default /run/colo/VM/colod.sock)",
          "PATH" },
        { "debug", 'd', 0, G_OPTION_ARG_NONE, &debug, "log debug messages", NULL },
        { "managed", 0, 0, G_OPTION_ARG_NONE, &managed, "pacemaker decides who is primary (as managed = true)", NULL },
        { "state-change-hook", 0, 0, G_OPTION_ARG_FILENAME, &state_hook,
          "run PROGRAM VM STATE REASON at each state change (as [hooks] state-change)", "PROGRAM" },
        { "syslog", 0, 0, G_OPTION_ARG_NONE, &to_syslog, "log to syslog instead of stderr", NULL },
        { "logfile", 'l', 0, G_OPTION_ARG_FILENAME, &logfile, "also log to FILE", "FILE" },
        { "version", 'V', 0, G_OPTION_ARG_NONE, &version, "print the version", NULL },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- the COLO coordinator of one VM");
    g_autoptr(GError) err = NULL;
    Colod c = { 0 };
    int code;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err) || argc > 1) {
        fprintf(stderr, "colod: %s\n", err ? err->message : "unexpected arguments");
        return 1;
    }
    if (version) {
        printf("colod %s\n", PACKAGE_VERSION);
        return 0;
    }
    if (!config_path) {
        fprintf(stderr, "colod: --config FILE is required (colo.conf(5))\n");
        return 1;
    }
    code = colod_setup(&c, config_path, control_path, to_syslog, logfile, debug, managed, state_hook);
    if (code == 0) {
        c.loop = g_main_loop_new(NULL, FALSE);
        g_unix_signal_add(SIGTERM, colod_on_signal, &c);
        g_unix_signal_add(SIGINT, colod_on_signal, &c);
        g_unix_signal_add(SIGUSR1, colod_on_restart_signal, &c);
        if (colo_sd_watchdog_usec() > 0) {
            c.watchdog = g_timeout_add((guint)MAX(colo_sd_watchdog_usec() / 2000, 1), colod_on_watchdog, &c);
        }
        g_main_loop_run(c.loop);
        g_main_loop_unref(c.loop);
        code = c.exit_code;
    }
    g_clear_handle_id(&c.watchdog, g_source_remove);
    if (c.timer) {
        g_source_remove(c.timer);
    }
    colod_control_free(c.control);
    cluster_fsm_free(c.fsm);
    vmm_driver_free(c.vmm);
    proxy_driver_free(c.proxy);
    guest_tap_free(c.tap);
    colod_hooks_free(c.hooks);
    colod_hooks_free(c.state_hooks);
    cluster_link_free(c.link);
    colod_config_free(c.config);
    g_free(c.run_dir);
    colo_log_fini();
    return code;
}
