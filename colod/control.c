/* colod's control socket (control.h): the command table, the commands,
 * the events. query-status's object is built in control-status.c. */
#include "config.h"

#include "control.h"

#include "cluster-fsm-query.h"
#include "common/log.h"
#include "colod-config.h"
#include "common/qmp/qmp-server.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

typedef struct ControlCommand ControlCommand;

struct ColodControl {
    ColodControlParams p;
    char *vm_name;
    char *socket_group;
    QmpServer *qmp;
    GPtrArray *bindings;       /* Binding *: a command row with its server */
    ClusterFsmStatus last;     /* as the last events told it */
    guint64 checkpoint_delay;  /* ms; 0: never set (colo-vmm's default) */
};

/* One row of the command table. @admin is the state machine's command for
 * rows handled by ctl_admin(). */
struct ControlCommand {
    const char *name;
    JsonNode *(*fn)(ColodControl *ctl, const ControlCommand *cmd, JsonObject *args, GError **error);
    AdminCommand admin;
};

typedef struct {
    ColodControl *ctl;
    const ControlCommand *cmd;
} Binding;

static JsonNode *node_take_object(JsonObject *o)
{
    JsonNode *n = json_node_init_object(json_node_alloc(), o);

    json_object_unref(o);
    return n;
}

/* ---- settings (set {key, value}) ---------------------------------------- */

static const struct {
    const char *name;
    int level;
} log_levels[] = {
    { "err", LOG_ERR }, { "warning", LOG_WARNING }, { "notice", LOG_NOTICE }, { "info", LOG_INFO },
    { "debug", LOG_DEBUG },
};

static const char *log_level_name(int level)
{
    for (size_t i = 0; i < G_N_ELEMENTS(log_levels); i++) {
        if (log_levels[i].level == level) {
            return log_levels[i].name;
        }
    }
    return "info";
}

static void apply_checkpoint_delay(ColodControl *ctl)
{
    JsonObject *args;

    if (!ctl->checkpoint_delay || !ctl->p.vmm || !vmm_driver_pid(ctl->p.vmm)) {
        return;
    }
    args = json_object_new();
    json_object_set_int_member(args, "x-checkpoint-delay", (gint64)ctl->checkpoint_delay);
    vmm_driver_execute(ctl->p.vmm, "migrate-set-parameters", args);
}

static bool set_checkpoint_delay(ColodControl *ctl, const char *value, GError **error)
{
    guint64 ms;

    if (!g_ascii_string_to_unsigned(value, 10, 1, 3600000, &ms, NULL)) {
        g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                    "checkpoint-delay: '%s' is not a number of milliseconds from 1 to 3600000", value);
        return false;
    }
    ctl->checkpoint_delay = ms;
    apply_checkpoint_delay(ctl);
    return true;
}

static bool set_log_level(ColodControl *ctl, const char *value, GError **error)
{
    for (size_t i = 0; i < G_N_ELEMENTS(log_levels); i++) {
        if (!strcmp(value, log_levels[i].name)) {
            ctl->p.log_level = log_levels[i].level;
            colo_log_set_threshold(ctl->p.log_level);
            return true;
        }
    }
    g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                "log-level: '%s' is none of err, warning, notice, info, debug", value);
    return false;
}

/* How colod protects from now on (colo.conf(5) protect-mode). */
static bool set_protect_mode(ColodControl *ctl, const char *value, GError **error)
{
    bool snapshot;

    if (!colod_protect_mode_parse(value, &snapshot)) {
        g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC, "protect-mode: '%s' is not precopy or snapshot", value);
        return false;
    }
    if (ctl->p.vmm) {
        vmm_driver_set_snapshot_protect(ctl->p.vmm, snapshot);
    }
    return true;
}

static const struct {
    const char *key;
    bool (*set)(ColodControl *ctl, const char *value, GError **error);
} settings[] = {
    { "checkpoint-delay", set_checkpoint_delay }, /* ms between periodic checkpoints (x-checkpoint-delay) */
    { "log-level", set_log_level },
    { "protect-mode", set_protect_mode },
};

/* The settings as query-status shows them. */
static JsonObject *settings_json(ColodControl *ctl)
{
    JsonObject *o = json_object_new();

    if (ctl->checkpoint_delay) {
        json_object_set_int_member(o, "checkpoint-delay", (gint64)ctl->checkpoint_delay);
    } else {
        json_object_set_null_member(o, "checkpoint-delay");
    }
    json_object_set_string_member(o, "log-level", log_level_name(ctl->p.log_level));
    if (ctl->p.vmm) {
        json_object_set_string_member(o, "protect-mode", vmm_driver_snapshot_protect(ctl->p.vmm) ? "snapshot"
                                                                                                  : "precopy");
    }
    return o;
}

static JsonNode *ctl_set(ColodControl *ctl, const ControlCommand *cmd, JsonObject *args, GError **error)
{
    static const char *const allowed[] = { "key", "value", NULL };
    const char *key = NULL;
    JsonNode *v;
    g_autofree char *value = NULL;
    g_autoptr(GString) known = g_string_new(NULL);
    JsonObject *ret;

    if (!qmp_args_check(args, allowed, error) || !qmp_arg_string(args, "key", true, &key, error)) {
        return NULL;
    }
    v = json_object_get_member(args, "value");
    if (!v) {
        g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC, "Parameter 'value' is missing");
        return NULL;
    }
    /* A string, or a number for numeric settings. */
    if (JSON_NODE_HOLDS_VALUE(v) && json_node_get_value_type(v) == G_TYPE_STRING) {
        value = g_strdup(json_node_get_string(v));
    } else if (JSON_NODE_HOLDS_VALUE(v) && json_node_get_value_type(v) == G_TYPE_INT64) {
        value = g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(v));
    } else {
        g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC, "Invalid parameter type for 'value', expected: string");
        return NULL;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(settings); i++) {
        if (!strcmp(key, settings[i].key)) {
            if (!settings[i].set(ctl, value, error)) {
                return NULL;
            }
            qb_log(LOG_NOTICE, "control: %s set to %s", key, value);
            ret = json_object_new();
            json_object_set_string_member(ret, "key", key);
            json_object_set_string_member(ret, "value", value);
            return node_take_object(ret);
        }
        g_string_append_printf(known, "%s%s", i ? ", " : "", settings[i].key);
    }
    g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC, "unknown setting '%s' (settings: %s)", key, known->str);
    return NULL;
}

/* ---- commands -------------------------------------------------------------- */

static JsonNode *ctl_query_status(ColodControl *ctl, const ControlCommand *cmd, JsonObject *args, GError **error)
{
    if (!qmp_args_check(args, NULL, error)) {
        return NULL;
    }
    return node_take_object(colod_control_status(ctl));
}

/* The state machine's commands: refused with its reason, else its actions
 * are carried out before the reply (whose events go out first). */
static JsonNode *ctl_admin(ColodControl *ctl, const ControlCommand *cmd, JsonObject *args, GError **error)
{
    g_autoptr(GArray) acts = cluster_actions_new();
    g_autoptr(GError) refused = NULL;
    JsonObject *ret;

    if (!qmp_args_check(args, NULL, error)) {
        return NULL;
    }
    if (!cluster_fsm_admin(ctl->p.fsm, cmd->admin, acts, &refused)) {
        qb_log(LOG_NOTICE, "control: %s refused: %s", cmd->name, refused->message);
        g_set_error_literal(error, QMP_ERROR, QMP_ERROR_GENERIC, refused->message);
        return NULL;
    }
    qb_log(LOG_NOTICE, "control: %s accepted", cmd->name);
    ctl->p.execute(acts, ctl->p.opaque);
    ret = json_object_new();
    json_object_set_string_member(ret, "state", cluster_state_name(cluster_fsm_state(ctl->p.fsm)));
    json_object_set_string_member(ret, "reason", cluster_fsm_reason(ctl->p.fsm));
    return node_take_object(ret);
}

/* Extend here: a row per command (admin rows name the state machine's
 * command). */
static const ControlCommand commands[] = {
    { "query-status", ctl_query_status, ADMIN__MAX },
    { "failover", ctl_admin, ADMIN_FAILOVER },
    { "switchover", ctl_admin, ADMIN_SWITCHOVER },
    { "protect", ctl_admin, ADMIN_PROTECT },
    { "unprotect", ctl_admin, ADMIN_UNPROTECT },
    { "promote", ctl_admin, ADMIN_PROMOTE }, /* managed mode (pacemaker) */
    { "demote", ctl_admin, ADMIN_DEMOTE },
    { "set", ctl_set, ADMIN__MAX },
};

static JsonNode *ctl_dispatch(JsonObject *args, gpointer opaque, GError **error)
{
    Binding *b = opaque;

    return b->cmd->fn(b->ctl, b->cmd, args, error);
}

/* ---- the socket ------------------------------------------------------------ */

char *colod_control_default_path(const char *vm_name)
{
    return g_build_filename("/run/colo", vm_name, "colod.sock", NULL);
}

JsonObject *colod_control_status(ColodControl *ctl)
{
    return colod_control_status_build(ctl->vm_name, ctl->p.fsm, ctl->p.vmm, ctl->p.proxy,
                                      settings_json(ctl));
}

ColodControl *colod_control_new(const ColodControlParams *params, const char *path, GError **error)
{
    ColodControl *ctl = g_new0(ColodControl, 1);
    g_autofree char *dir = g_path_get_dirname(path);
    JsonObject *me = json_object_new();

    ctl->p = *params;
    ctl->vm_name = g_strdup(params->vm_name);
    ctl->p.vm_name = ctl->vm_name;
    ctl->socket_group = g_strdup(params->socket_group);
    ctl->p.socket_group = ctl->socket_group;
    ctl->bindings = g_ptr_array_new_with_free_func(g_free);
    cluster_fsm_query(ctl->p.fsm, &ctl->last);
    ctl->qmp = qmp_server_new(NULL, "colod " PACKAGE_VERSION, COLO_VERSION_MAJOR, COLO_VERSION_MINOR,
                              COLO_VERSION_MICRO);
    /* coloctl tells colod's socket from colo-vmm's by this member. */
    json_object_set_string_member(me, "vm", ctl->vm_name);
    qmp_server_set_greeting_member(ctl->qmp, "colod", json_node_init_object(json_node_alloc(), me));
    json_object_unref(me);
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
        Binding *b = g_new0(Binding, 1);

        b->ctl = ctl;
        b->cmd = &commands[i];
        g_ptr_array_add(ctl->bindings, b);
        qmp_server_register(ctl->qmp, commands[i].name, ctl_dispatch, b);
    }
    if (g_mkdir_with_parents(dir, 0700) < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "control socket: cannot create %s: %s",
                    dir, g_strerror(errno));
        colod_control_free(ctl);
        return NULL;
    }
    if (!qmp_server_listen_unix_group(ctl->qmp, path, ctl->socket_group, error)) {
        g_prefix_error(error, "control ");
        colod_control_free(ctl);
        return NULL;
    }
    qb_log(LOG_INFO, "control socket %s", path);
    return ctl;
}

void colod_control_free(ColodControl *ctl)
{
    if (!ctl) {
        return;
    }
    qmp_server_free(ctl->qmp);
    g_ptr_array_free(ctl->bindings, TRUE);
    g_free(ctl->vm_name);
    g_free(ctl->socket_group);
    g_free(ctl);
}

/* ---- events ---------------------------------------------------------------- */

void colod_control_update(ColodControl *ctl)
{
    ClusterFsmStatus now;
    JsonObject *data;

    if (!ctl) {
        return;
    }
    cluster_fsm_query(ctl->p.fsm, &now);
    if (now.quorate != ctl->last.quorate) {
        data = json_object_new();
        json_object_set_boolean_member(data, "quorate", now.quorate);
        qmp_server_emit_event(ctl->qmp, "COLOD_QUORUM", data);
    }
    if (now.peer.present != ctl->last.peer.present) {
        data = json_object_new();
        json_object_set_int_member(data, "node-id", now.peer.node_id);
        json_object_set_boolean_member(data, "present", now.peer.present);
        qmp_server_emit_event(ctl->qmp, "COLOD_PEER", data);
    }
    if (now.state != ctl->last.state || now.role != ctl->last.role || now.generation != ctl->last.generation ||
        now.paused != ctl->last.paused) {
        data = json_object_new();
        json_object_set_string_member(data, "old", cluster_state_name(ctl->last.state));
        json_object_set_string_member(data, "new", cluster_state_name(now.state));
        json_object_set_string_member(data, "role", colod_role_name(now.role));
        json_object_set_int_member(data, "generation", (gint64)now.generation);
        json_object_set_boolean_member(data, "running", cluster_fsm_status_running(&now));
        if (now.wait != WAIT_NONE) {
            json_object_set_string_member(data, "waiting", wait_reason_name(now.wait));
        } else {
            json_object_set_null_member(data, "waiting");
        }
        json_object_set_string_member(data, "reason", now.reason);
        qmp_server_emit_event(ctl->qmp, "COLOD_STATE", data);
    }
    ctl->last = now;
}

void colod_control_vmm_ready(ColodControl *ctl)
{
    if (ctl) {
        apply_checkpoint_delay(ctl);
    }
}
