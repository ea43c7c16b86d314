/* colod's colo-vmm driver (vmm-driver.h). One Instance per started
 * colo-vmm: its process and QMP connection (child-process.c), its pending
 * commands and COLO state; a stopped or replaced one
 * reports nothing more, so the state machine never hears of a process it
 * already let go. */
#include "config.h"

#include "vmm-driver.h"

#include "child-process.h"
#include "common/qmp/qmp-client.h"
#include "leftover.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <qb/qblog.h>

/* colo-vmm's tls-creds-x509 objects with [tls] dir (docs/operations.md, "TLS"). */
#define VMM_TLS_SERVER "colo-tls-server"
#define VMM_TLS_CLIENT "colo-tls-client"

typedef struct Instance Instance;

struct VmmDriver {
    VmmDriverParams p;
    char **argv_copy;
    VmmDriverEventFunc fn;
    void *opaque;
    Instance *cur;
    bool snapshot_protect; /* protect-mode snapshot: x-colo with postcopy-ram */
};

struct Instance {
    VmmDriver *d;          /* NULL once let go: reports nothing */
    VmmKind kind;
    ChildProcess *proc;    /* the process and its QMP */
    GPtrArray *calls;      /* Call * waiting for their reply */
    bool in_colo;
    bool relocation;       /* source or target of a relocation by postcopy */
    bool postcopy_seen;
    JsonNode *colo_status; /* the last query-colo-status result, for status */
};

static void inst_report(Instance *in, VmmEvent ev, const char *detail)
{
    if (in->d) {
        in->d->fn(ev, detail, in->d->opaque);
    }
}

typedef struct {
    Instance *in;
    char *command;
    VmmEvent on_error; /* VMM_EV__MAX: only logged */
} Call;

static void call_free(gpointer p)
{
    Call *call = p;

    g_free(call->command);
    g_free(call);
}

static void inst_free(Instance *in)
{
    /* The socket file stays: a newer colo-vmm may listen on that path
     * already (the next start removes a stale one). */
    child_process_free(in->proc); /* no reply runs after this */
    g_ptr_array_free(in->calls, TRUE);
    g_clear_pointer(&in->colo_status, json_node_unref);
    g_free(in);
}

static guint inst_qmp_ms(void *owner)
{
    Instance *in = owner;

    return in->d ? in->d->p.qmp_ms : 1000;
}

static void inst_ended(void *owner, const char *detail)
{
    Instance *in = owner;

    qb_log(LOG_INFO, "colo-vmm (pid %d) ended: %s", child_process_pid(in->proc), detail);
    if (in->d) {
        VmmDriver *d = in->d;

        d->cur = NULL;
        in->d = NULL;
        d->fn(VMM_EV_EXITED, detail, d->opaque);
    }
    inst_free(in);
}

/* ---- QMP ---------------------------------------------------------------- */

static void on_reply(QmpClient *c, JsonNode *ret, const GError *error, gpointer opaque)
{
    Call *call = opaque;
    Instance *in = call->in;

    if (error) {
        qb_log(LOG_ERR, "colo-vmm's %s: %s", call->command, error->message);
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
            /* A colo-vmm that does not answer is not waited for. */
            child_process_kill(in->proc, "a QMP command timed out");
        } else if (call->on_error != VMM_EV__MAX) {
            inst_report(in, call->on_error, error->message);
        }
    }
    g_ptr_array_remove_fast(in->calls, call); /* frees it */
}

static void inst_execute(Instance *in, const char *command, JsonObject *args, VmmEvent on_error)
{
    Call *call = g_new0(Call, 1);

    call->in = in;
    call->command = g_strdup(command);
    call->on_error = on_error;
    g_ptr_array_add(in->calls, call);
    qmp_client_execute(child_process_qmp(in->proc), command, args, inst_qmp_ms(in), on_reply, call);
}

/* migrate-set-capabilities with events on, and x-colo and postcopy-ram
 * as given. */
static JsonObject *capabilities_args(bool x_colo, bool postcopy)
{
    JsonObject *args = json_object_new();
    JsonArray *caps = json_array_new();
    const char *names[] = { "events", "x-colo", "postcopy-ram" };
    const bool states[] = { true, x_colo, postcopy };

    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        JsonObject *c = json_object_new();

        json_object_set_string_member(c, "capability", names[i]);
        json_object_set_boolean_member(c, "state", states[i]);
        json_array_add_object_element(caps, c);
    }
    json_object_set_array_member(args, "capabilities", caps);
    return args;
}

static void on_status_reply(QmpClient *c, JsonNode *ret, const GError *error, gpointer opaque)
{
    Instance *in = opaque;
    JsonObject *o;

    if (error) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
            child_process_kill(in->proc, "query-colo-status timed out");
        }
        return;
    }
    o = JSON_NODE_HOLDS_OBJECT(ret) ? json_node_get_object(ret) : NULL;
    if (o) {
        g_clear_pointer(&in->colo_status, json_node_unref);
        in->colo_status = json_node_copy(ret);
    }
    if (in->in_colo && o && json_object_get_boolean_member_with_default(o, "x-broken", FALSE)) {
        in->in_colo = false;
        inst_report(in, VMM_EV_PEER_LOST, "query-colo-status: x-broken");
    }
}

static void on_poll(void *owner, QmpClient *qmp)
{
    Instance *in = owner;

    if (in->in_colo) {
        qmp_client_execute(qmp, "query-colo-status", NULL, inst_qmp_ms(in), on_status_reply, in);
    }
}

static void on_event(QmpClient *c, const char *event, JsonObject *data, JsonObject *ts, gpointer opaque)
{
    Instance *in = opaque;
    const char *status = data ? json_object_get_string_member_with_default(data, "status", "") : "";

    if (g_strcmp0(event, "MIGRATION") == 0) {
        if (g_strcmp0(status, "colo") == 0 && !in->in_colo) {
            in->in_colo = true;
            inst_report(in, VMM_EV_PROTECT_DONE, "COLO runs");
        } else if (g_strcmp0(status, "failed") == 0) {
            in->relocation = false;
            inst_report(in, VMM_EV_PROTECT_FAILED, "migration failed");
        } else if (in->relocation && g_strcmp0(status, "postcopy-active") == 0 && !in->postcopy_seen) {
            in->postcopy_seen = true;
            inst_report(in, VMM_EV_POSTCOPY, "postcopy-active");
        } else if (in->relocation && g_strcmp0(status, "postcopy-paused") == 0) {
            in->relocation = false;
            inst_report(in, VMM_EV_PROTECT_FAILED, "postcopy broke (postcopy-paused)");
        } else if (in->relocation && g_strcmp0(status, "completed") == 0) {
            /* Not after COLO: that "completed" is a failover's. */
            in->relocation = false;
            inst_report(in, VMM_EV_MIGRATED, "relocation completed");
        }
    } else if (g_strcmp0(event, "COLO_BROKEN") == 0) {
        /* The peer or the stream failed: the same as query-colo-status's
         * x-broken, without waiting for the next poll. */
        if (in->in_colo) {
            g_autofree char *why = g_strdup_printf(
                "COLO_BROKEN: %s", data ? json_object_get_string_member_with_default(data, "reason", "") : "");

            in->in_colo = false;
            inst_report(in, VMM_EV_PEER_LOST, why);
        }
    } else if (g_strcmp0(event, "COLO_EXIT") == 0) {
        const char *reason = data ? json_object_get_string_member_with_default(data, "reason", "") : "";

        in->in_colo = false;
        if (g_strcmp0(reason, "error") == 0) {
            inst_report(in, VMM_EV_PEER_LOST, "COLO_EXIT: error");
        }
    }
}

static void on_ready(void *owner, QmpClient *qmp)
{
    Instance *in = owner;

    inst_execute(in, "migrate-set-capabilities", capabilities_args(true, false), VMM_EV__MAX);
    inst_report(in, VMM_EV_READY, "QMP answers");
}

static const ChildProcessKind vmm_process = {
    .name = "colo-vmm",
    .qmp_silent = "its QMP socket does not answer",
    .qmp_closed = "its QMP connection closed",
    .adopted_exit = "picked up from an earlier colod: exit status unknown",
    .qmp_ms = inst_qmp_ms,
    .ready = on_ready,
    .poll = on_poll,
    .exited = inst_ended,
    .event = on_event,
};

static Instance *inst_new(VmmDriver *d, VmmKind kind, const char *qmp_path)
{
    Instance *in = g_new0(Instance, 1);

    in->d = d;
    in->calls = g_ptr_array_new_with_free_func(call_free);
    in->kind = kind;
    in->proc = child_process_new(&vmm_process, in, qmp_path);
    return in;
}

/* ---- the driver ---------------------------------------------------------- */

VmmDriver *vmm_driver_new(const VmmDriverParams *params, VmmDriverEventFunc fn, void *opaque)
{
    VmmDriver *d = g_new0(VmmDriver, 1);

    d->p = *params;
    d->p.vmm_path = g_strdup(params->vmm_path);
    d->argv_copy = g_strdupv(params->vmm_argv);
    d->p.vmm_argv = d->argv_copy;
    d->p.run_dir = g_strdup(params->run_dir);
    d->p.socket_group = g_strdup(params->socket_group);
    d->p.allowed_peer = g_strdup(params->allowed_peer);
    d->p.incoming = g_strdup(params->incoming);
    d->p.peer_uri = g_strdup(params->peer_uri);
    d->p.proxy_path = g_strdup(params->proxy_path);
    d->p.tls_dir = g_strdup(params->tls_dir);
    d->fn = fn;
    d->opaque = opaque;
    return d;
}

static gboolean inst_free_idle(gpointer data)
{
    inst_free(data);
    return G_SOURCE_REMOVE;
}

/* Lets the current instance go: killed, and it reports nothing more. */
static void driver_release(VmmDriver *d, const char *why)
{
    Instance *in = d->cur;

    if (!in) {
        return;
    }
    d->cur = NULL;
    in->d = NULL;
    if (child_process_exited(in->proc)) {
        g_idle_add(inst_free_idle, in); /* we may be inside one of its callbacks */
        return;
    }
    child_process_kill(in->proc, why);
    /* Freed by its child watch once reaped. */
}

void vmm_driver_free(VmmDriver *d)
{
    if (!d) {
        return;
    }
    driver_release(d, "colod ends");
    g_free((char *)d->p.vmm_path);
    g_strfreev(d->argv_copy);
    g_free((char *)d->p.run_dir);
    g_free((char *)d->p.socket_group);
    g_free((char *)d->p.allowed_peer);
    g_free((char *)d->p.incoming);
    g_free((char *)d->p.peer_uri);
    g_free((char *)d->p.proxy_path);
    g_free((char *)d->p.tls_dir);
    g_free(d);
}

static void driver_start(VmmDriver *d, VmmKind kind, bool relocation_target);

void vmm_driver_start(VmmDriver *d, VmmKind kind)
{
    driver_start(d, kind, false);
}

void vmm_driver_start_relocation_target(VmmDriver *d)
{
    driver_start(d, VMM_SECONDARY, true);
}

static void driver_start(VmmDriver *d, VmmKind kind, bool relocation_target)
{
    g_autofree char *pidfile = g_build_filename(d->p.run_dir, "vmm.pid", NULL);
    g_autofree char *qmp_path = g_build_filename(d->p.run_dir, "vmm.qmp", NULL);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GError) err = NULL;
    g_autofree char *qmp_arg = NULL;
    g_autofree char *allowed = NULL;
    g_autofree char *tls_server = NULL, *tls_client = NULL;
    Instance *in;

    driver_release(d, "replaced");
    in = inst_new(d, kind, qmp_path);
    in->relocation = relocation_target;
    g_mkdir_with_parents(d->p.run_dir, 0700);
    /* A colo-vmm an earlier colod of this VM left running that was not
     * picked up (vmm_driver_adopt): two guests must never share the VM's
     * disks, so it goes before a new one starts. */
    child_process_kill_leftover("colo-vmm", pidfile);
    g_unlink(qmp_path);
    qmp_arg = g_strdup_printf("unix:%s,server=on,wait=off%s%s", qmp_path, d->p.socket_group ? ",group=" : "",
                              d->p.socket_group ? d->p.socket_group : "");
    g_ptr_array_add(argv, (char *)d->p.vmm_path);
    for (char **a = d->p.vmm_argv; a && *a; a++) {
        g_ptr_array_add(argv, *a);
    }
    g_ptr_array_add(argv, "-qmp");
    g_ptr_array_add(argv, qmp_arg);
    if (d->p.proxy_path) {
        g_ptr_array_add(argv, "-colo-proxy");
        g_ptr_array_add(argv, (char *)d->p.proxy_path);
    }
    if (d->p.tls_dir) {
        /* Both endpoints: a secondary that takes over protects the next one
         * as a client (vmm_driver_protect switches tls-creds). */
        tls_server = g_strdup_printf("tls-creds-x509,id=" VMM_TLS_SERVER ",dir=%s,endpoint=server,verify-peer=on",
                                     d->p.tls_dir);
        tls_client = g_strdup_printf("tls-creds-x509,id=" VMM_TLS_CLIENT ",dir=%s,endpoint=client,verify-peer=on",
                                     d->p.tls_dir);
        g_ptr_array_add(argv, "-object");
        g_ptr_array_add(argv, tls_server);
        g_ptr_array_add(argv, "-object");
        g_ptr_array_add(argv, tls_client);
        g_ptr_array_add(argv, "-global");
        g_ptr_array_add(argv, kind == VMM_SECONDARY ? "migration.tls-creds=" VMM_TLS_SERVER
                                                    : "migration.tls-creds=" VMM_TLS_CLIENT);
    }
    if (kind == VMM_SECONDARY) {
        g_ptr_array_add(argv, "-incoming");
        g_ptr_array_add(argv, (char *)d->p.incoming);
        if (d->p.allowed_peer) {
            /* Only the primary may connect (docs/qmp.md, x-allowed-peer). */
            allowed = g_strdup_printf("migration.x-allowed-peer=%s", d->p.allowed_peer);
            g_ptr_array_add(argv, "-global");
            g_ptr_array_add(argv, allowed);
        }
    }
    g_ptr_array_add(argv, NULL);
    d->cur = in;
    if (!child_process_spawn(in->proc, (char **)argv->pdata, pidfile, d->p.die_with_colod, &err)) {
        qb_log(LOG_ERR, "cannot start colo-vmm: %s", err->message);
        d->cur = NULL;
        in->d = NULL;
        inst_free(in);
        d->fn(VMM_EV_EXITED, "could not be started", d->opaque);
        return;
    }
    qb_log(LOG_INFO, "colo-vmm started as %s (pid %d)", relocation_target ? "relocation target" : vmm_kind_name(kind),
           child_process_pid(in->proc));
    child_process_connect(in->proc, d->p.qmp_ms * 4, d->p.poll_ms ? d->p.poll_ms : 500);
}

/* What the adopted colo-vmm runs, from its replies (see vmm_driver_adopt). */
static bool adopt_decide(JsonNode **r, VmmKind *kind, bool *in_colo, bool *paused, bool *cancel, const char **why)
{
    JsonObject *st = r[0] && JSON_NODE_HOLDS_OBJECT(r[0]) ? json_node_get_object(r[0]) : NULL;
    JsonObject *colo = r[1] && JSON_NODE_HOLDS_OBJECT(r[1]) ? json_node_get_object(r[1]) : NULL;
    JsonObject *mig = r[2] && JSON_NODE_HOLDS_OBJECT(r[2]) ? json_node_get_object(r[2]) : NULL;
    const char *status = st ? json_object_get_string_member_with_default(st, "status", "") : "";
    const char *mode = colo ? json_object_get_string_member_with_default(colo, "mode", "none") : "none";
    const char *migration = mig ? json_object_get_string_member_with_default(mig, "status", "") : "";

    if (!st || !colo) {
        *why = "query-status or query-colo-status failed";
        return false;
    }
    *paused = !json_object_get_boolean_member_with_default(st, "running", FALSE);
    *in_colo = g_strcmp0(mode, "none") != 0;
    *cancel = false;
    if (g_strcmp0(mode, "primary") == 0) {
        *kind = VMM_PRIMARY;
    } else if (g_strcmp0(mode, "secondary") == 0) {
        *kind = VMM_SECONDARY;
    } else if (g_strcmp0(status, "inmigrate") == 0) {
        /* A secondary whose initial sync had not ended: that sync is lost
         * with the colod that drove it (it is redone from the start). */
        *why = "it waits for an initial sync";
        return false;
    } else {
        /* A primary alone (or a secondary that took over). An initial sync
         * under way is cancelled: its driver is gone, the peer retries. */
        *kind = VMM_PRIMARY;
        *cancel = g_strcmp0(migration, "active") == 0 || g_strcmp0(migration, "setup") == 0;
    }
    return true;
}

bool vmm_driver_adopt(VmmDriver *d, VmmKind *kind, bool *in_colo, bool *paused)
{
    g_autofree char *pidfile = g_build_filename(d->p.run_dir, "vmm.pid", NULL);
    g_autofree char *qmp_path = g_build_filename(d->p.run_dir, "vmm.qmp", NULL);
    const char *const commands[] = { "query-status", "query-colo-status", "query-migrate", NULL };
    JsonNode *replies[G_N_ELEMENTS(commands)] = { NULL };
    g_autoptr(JsonObject) greeting = NULL;
    GPid pid = leftover_pid(pidfile, "colo-vmm");
    const char *why = "its QMP socket does not answer";
    bool cancel = false, ok;
    Instance *in;

    if (pid <= 0) {
        return false;
    }
    greeting = leftover_qmp_probe(qmp_path, d->p.qmp_ms, commands, replies);
    ok = greeting && adopt_decide(replies, kind, in_colo, paused, &cancel, &why);
    for (size_t i = 0; i < G_N_ELEMENTS(replies); i++) {
        if (replies[i]) {
            json_node_unref(replies[i]);
        }
    }
    if (!ok) {
        qb_log(LOG_WARNING, "colo-vmm pid %d left by an earlier colod is not picked up: %s", pid, why);
        return false; /* the next start kills it */
    }
    driver_release(d, "replaced");
    in = inst_new(d, *kind, qmp_path);
    in->in_colo = *in_colo;
    if (!child_process_adopt(in->proc, pid)) {
        in->d = NULL;
        inst_free(in);
        return false;
    }
    d->cur = in;
    child_process_connect(in->proc, d->p.qmp_ms, d->p.poll_ms ? d->p.poll_ms : 500);
    if (cancel) {
        inst_execute(in, "migrate_cancel", NULL, VMM_EV__MAX);
    }
    qb_log(LOG_NOTICE, "picked up colo-vmm pid %d left by an earlier colod: %s%s%s%s", pid, vmm_kind_name(*kind),
           *in_colo ? ", in COLO" : "", *paused ? ", paused" : ", running",
           cancel ? " (its initial sync is cancelled)" : "");
    return true;
}

void vmm_driver_detach(VmmDriver *d)
{
    Instance *in = d->cur;

    if (in) {
        qb_log(LOG_INFO, "colo-vmm (pid %d) is left running", child_process_pid(in->proc));
        d->cur = NULL;
        in->d = NULL;
        inst_free(in);
    }
}

void vmm_driver_stop(VmmDriver *d)
{
    driver_release(d, "stopped by colod");
}

static void driver_command(VmmDriver *d, const char *command, JsonObject *args, VmmEvent on_error)
{
    if (!d->cur || !child_process_qmp(d->cur->proc)) {
        qb_log(LOG_ERR, "%s: no colo-vmm to tell", command);
        if (args) {
            json_object_unref(args);
        }
        return;
    }
    inst_execute(d->cur, command, args, on_error);
}

static void driver_migrate(VmmDriver *d, const char *sole_copy_file)
{
    JsonObject *args = json_object_new();

    if (d->p.tls_dir) {
        JsonObject *tls = json_object_new();
        json_object_set_string_member(tls, "tls-creds", VMM_TLS_CLIENT);
        driver_command(d, "migrate-set-parameters", tls, VMM_EV_PROTECT_FAILED);
    }
    json_object_set_string_member(args, "uri", d->p.peer_uri);
    if (sole_copy_file) {
        json_object_set_string_member(args, "x-sole-copy-file", sole_copy_file);
    }
    driver_command(d, "migrate", args, VMM_EV_PROTECT_FAILED);
}

void vmm_driver_protect(VmmDriver *d, const char *sole_copy_file)
{
    /* Set each time: a relocation or the other mode may have changed them. */
    driver_command(d, "migrate-set-capabilities", capabilities_args(true, d->snapshot_protect), VMM_EV_PROTECT_FAILED);
    driver_migrate(d, sole_copy_file);
}

void vmm_driver_set_snapshot_protect(VmmDriver *d, bool snapshot)
{
    d->snapshot_protect = snapshot;
}

bool vmm_driver_snapshot_protect(VmmDriver *d)
{
    return d->snapshot_protect;
}

void vmm_driver_relocate(VmmDriver *d)
{
    if (!d->cur || !child_process_qmp(d->cur->proc)) {
        qb_log(LOG_ERR, "relocate: no colo-vmm to tell");
        return;
    }
    d->cur->relocation = true;
    d->cur->postcopy_seen = false;
    driver_command(d, "migrate-set-capabilities", capabilities_args(false, true), VMM_EV_PROTECT_FAILED);
    driver_migrate(d, NULL);
    /* At once: the guest stops only for the switch (device state and the
     * list of pages not sent), whatever its dirty rate. Refused only if the
     * migration already ended, which its MIGRATION event reports. */
    driver_command(d, "migrate-start-postcopy", NULL, VMM_EV__MAX);
}

void vmm_driver_cancel_protect(VmmDriver *d)
{
    driver_command(d, "migrate_cancel", NULL, VMM_EV__MAX);
}

void vmm_driver_failover(VmmDriver *d)
{
    if (d->cur) {
        d->cur->in_colo = false;
    }
    driver_command(d, "x-colo-lost-heartbeat", NULL, VMM_EV__MAX);
}

void vmm_driver_pause(VmmDriver *d)
{
    driver_command(d, "stop", NULL, VMM_EV__MAX);
}

void vmm_driver_resume(VmmDriver *d)
{
    driver_command(d, "cont", NULL, VMM_EV__MAX);
}

GPid vmm_driver_pid(VmmDriver *d)
{
    return d->cur ? child_process_pid(d->cur->proc) : 0;
}

JsonObject *vmm_driver_colo_status(VmmDriver *d)
{
    return d->cur && d->cur->colo_status ? json_node_get_object(d->cur->colo_status) : NULL;
}

void vmm_driver_execute(VmmDriver *d, const char *command, JsonObject *args)
{
    driver_command(d, command, args, VMM_EV__MAX);
}
