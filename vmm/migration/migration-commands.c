#include "config.h"

#include "migration/migration-commands.h"

#include <string.h>

#include <gio/gio.h>

#include "migration/migration-priv.h"
#include "migration/multifd.h"
#include "migration/mig-tls.h"

static JsonNode *node_object(JsonObject *obj)
{
    JsonNode *node = json_node_new(JSON_NODE_OBJECT);

    json_node_take_object(node, obj);
    return node;
}

static bool migration_active(Migration *m)
{
    switch (m->src.status) {
    case MIG_STATUS_SETUP:
    case MIG_STATUS_ACTIVE:
    case MIG_STATUS_DEVICE:
    case MIG_STATUS_CANCELLING:
    case MIG_STATUS_POSTCOPY_ACTIVE:
    case MIG_STATUS_POSTCOPY_PAUSED:
    case MIG_STATUS_COLO:
        return true;
    default:
        return false;
    }
}

static JsonNode *cmd_migrate(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { "uri", "detach", "blk", "inc", "resume", "x-sole-copy-file", NULL };
    const char *uri, *sole_copy_file = NULL;
    bool detach = true, blk = false, inc = false, resume = false;

    if (!qmp_args_check(args, allowed, error) || !qmp_arg_string(args, "uri", true, &uri, error) ||
        !qmp_arg_bool(args, "detach", false, &detach, error) ||
        !qmp_arg_bool(args, "blk", false, &blk, error) || !qmp_arg_bool(args, "inc", false, &inc, error) ||
        !qmp_arg_bool(args, "resume", false, &resume, error) ||
        !qmp_arg_string(args, "x-sole-copy-file", false, &sole_copy_file, error)) {
        return NULL;
    }
    if (blk || inc || resume) {
        g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                    "colo-vmm supports neither block migration nor resuming a migration");
        return NULL;
    }
    migration_start(opaque, uri, sole_copy_file, error);
    return NULL;
}

static JsonNode *cmd_migrate_cancel(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { NULL };

    if (qmp_args_check(args, allowed, error)) {
        migration_cancel(opaque);
    }
    return NULL;
}

static JsonNode *cmd_query_migrate(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { NULL };

    if (!qmp_args_check(args, allowed, error)) {
        return NULL;
    }
    return node_object(migration_query(opaque));
}

static JsonNode *cmd_migrate_incoming(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { "uri", NULL };
    const char *uri;

    if (qmp_args_check(args, allowed, error) && qmp_arg_string(args, "uri", true, &uri, error)) {
        migration_incoming_listen(opaque, uri, error);
    }
    return NULL;
}

static JsonNode *cmd_migrate_start_postcopy(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { NULL };
    Migration *m = opaque;

    if (!qmp_args_check(args, allowed, error)) {
        return NULL;
    }
    if (!m->caps.postcopy_ram) {
        g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                    "Enable postcopy with migrate_set_capability before the start of migration");
        return NULL;
    }
    if (m->caps.x_colo) {
        g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                    "With x-colo, postcopy-ram selects snapshot protect, which needs no migrate-start-postcopy");
        return NULL;
    }
    if (m->src.status != MIG_STATUS_SETUP && m->src.status != MIG_STATUS_ACTIVE) {
        g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC, "Postcopy must be started after migration has been started");
        return NULL;
    }
    g_atomic_int_set(&m->src.postcopy_requested, 1);
    return NULL;
}

/* ---- capabilities ---- */

typedef struct {
    const char *name;
    size_t offset;
} CapField;

static const CapField cap_fields[] = {
    { "postcopy-ram", offsetof(MigCaps, postcopy_ram) },
    { "multifd", offsetof(MigCaps, multifd) },
    { "events", offsetof(MigCaps, events) },
    { "x-colo", offsetof(MigCaps, x_colo) },
};

static JsonNode *cmd_migrate_set_capabilities(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { "capabilities", NULL };
    Migration *m = opaque;
    JsonArray *list;

    if (!qmp_args_check(args, allowed, error) || !qmp_arg_array(args, "capabilities", true, &list, error)) {
        return NULL;
    }
    if (migration_active(m)) {
        g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC, "There's a migration process in progress");
        return NULL;
    }
    /* Validate everything first: a bad entry changes nothing. */
    MigCaps caps = m->caps;
    for (guint i = 0; i < json_array_get_length(list); i++) {
        JsonNode *n = json_array_get_element(list, i);
        JsonObject *o = JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
        static const char *const cap_allowed[] = { "capability", "state", NULL };
        const char *name;
        bool state;
        if (!o) {
            g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                        "Invalid parameter type for 'capabilities[%u]', expected: object", i);
            return NULL;
        }
        if (!qmp_args_check(o, cap_allowed, error) || !qmp_arg_string(o, "capability", true, &name, error) ||
            !qmp_arg_bool(o, "state", true, &state, error)) {
            return NULL;
        }
        const CapField *f = NULL;
        for (unsigned j = 0; j < G_N_ELEMENTS(cap_fields); j++) {
            if (!strcmp(cap_fields[j].name, name)) {
                f = &cap_fields[j];
            }
        }
        if (!f) {
            g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                        "Parameter 'capability' does not accept value '%s'", name);
            return NULL;
        }
        *(bool *)((char *)&caps + f->offset) = state;
    }
    m->caps = caps;
    return NULL;
}

static JsonNode *cmd_query_migrate_capabilities(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { NULL };
    Migration *m = opaque;

    if (!qmp_args_check(args, allowed, error)) {
        return NULL;
    }
    JsonArray *list = json_array_new();
    for (unsigned i = 0; i < G_N_ELEMENTS(cap_fields); i++) {
        JsonObject *o = json_object_new();
        json_object_set_string_member(o, "capability", cap_fields[i].name);
        json_object_set_boolean_member(o, "state", *(bool *)((char *)&m->caps + cap_fields[i].offset));
        json_array_add_object_element(list, o);
    }
    JsonNode *node = json_node_new(JSON_NODE_ARRAY);
    json_node_take_array(node, list);
    return node;
}

/* ---- parameters ---- */

typedef struct {
    const char *name;
    size_t offset;
    bool is_u32;
    uint64_t min, max;
} ParamField;

static const ParamField param_fields[] = {
    { "max-bandwidth", offsetof(MigParams, max_bandwidth), false, 0, SIZE_MAX },
    { "downtime-limit", offsetof(MigParams, downtime_limit), false, 0, 2000000 },
    { "multifd-channels", offsetof(MigParams, multifd_channels), true, 1, 255 },
    { "max-postcopy-bandwidth", offsetof(MigParams, max_postcopy_bandwidth), false, 0, SIZE_MAX },
    { "x-checkpoint-delay", offsetof(MigParams, x_checkpoint_delay), false, 1, 3600000 },
    { "x-snapshot-copy-limit", offsetof(MigParams, x_snapshot_copy_limit), false, 0, SIZE_MAX },
};

static JsonNode *cmd_migrate_set_parameters(JsonObject *args, gpointer opaque, GError **error)
{
    Migration *m = opaque;
    MigParams params = m->params;
    g_autoptr(GList) members = json_object_get_members(args);
    const char *allowed_peer = NULL, *tls_creds = NULL, *tls_hostname = NULL, *tls_authz = NULL;

    for (GList *l = members; l; l = l->next) {
        const char *name = l->data;
        const ParamField *f = NULL;
        /* QEMU's TLS parameters, strings ("" for none). */
        if (!strcmp(name, "tls-creds") || !strcmp(name, "tls-hostname") || !strcmp(name, "tls-authz")) {
            const char **v = name[4] == 'c' ? &tls_creds : name[4] == 'h' ? &tls_hostname : &tls_authz;
            if (!qmp_arg_string(args, name, true, v, error)) {
                return NULL;
            }
            continue;
        }
        /* colo-vmm's own, a string: the only source of an incoming
         * migration ("" for any). */
        if (!strcmp(name, "x-allowed-peer")) {
            if (!qmp_arg_string(args, name, true, &allowed_peer, error)) {
                return NULL;
            }
            continue;
        }
        for (unsigned j = 0; j < G_N_ELEMENTS(param_fields); j++) {
            if (!strcmp(param_fields[j].name, name)) {
                f = &param_fields[j];
            }
        }
        if (!f) {
            g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC, "Parameter '%s' is unexpected", name);
            return NULL;
        }
        gint64 v;
        if (!qmp_arg_int(args, name, true, &v, error)) {
            return NULL;
        }
        if (v < 0 || (uint64_t)v < f->min || (uint64_t)v > f->max) {
            g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                        "Parameter '%s' expects a value between %" G_GUINT64_FORMAT " and %"
                        G_GUINT64_FORMAT, name, f->min, f->max);
            return NULL;
        }
        if (f->is_u32) {
            *(uint32_t *)((char *)&params + f->offset) = (uint32_t)v;
        } else {
            *(uint64_t *)((char *)&params + f->offset) = (uint64_t)v;
        }
    }
    if (tls_authz && *tls_authz) {
        g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                    "tls-authz is not supported by colo-vmm (any certificate the CA signed is accepted)");
        return NULL;
    }
    if (!mig_tls_set_params(m->tls, tls_creds, tls_hostname, error)) {
        return NULL;
    }
    if (allowed_peer && !migration_set_allowed_peer(m, allowed_peer, error)) {
        return NULL;
    }
    m->params = params;
    /* As QEMU, a running migration follows the new bandwidth at once: the
     * postcopy limit once the background stream is the postcopy one. */
    g_mutex_lock(&m->lock);
    if (m->src.out && migration_active(m) && m->src.status == MIG_STATUS_POSTCOPY_ACTIVE) {
        mig_set_rate_limit(m->src.out, params.max_postcopy_bandwidth);
    } else if (m->src.out && migration_active(m) && m->src.status != MIG_STATUS_COLO) {
        mig_set_rate_limit(m->src.out, params.max_bandwidth);
        multifd_send_set_rate_limit(m->src.multifd, params.max_bandwidth);
    }
    g_mutex_unlock(&m->lock);
    return NULL;
}

static JsonNode *cmd_query_migrate_parameters(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { NULL };
    Migration *m = opaque;

    if (!qmp_args_check(args, allowed, error)) {
        return NULL;
    }
    JsonObject *o = json_object_new();
    for (unsigned i = 0; i < G_N_ELEMENTS(param_fields); i++) {
        const ParamField *f = &param_fields[i];
        uint64_t v = f->is_u32 ? *(uint32_t *)((char *)&m->params + f->offset)
                               : *(uint64_t *)((char *)&m->params + f->offset);
        json_object_set_int_member(o, f->name, (gint64)v);
    }
    json_object_set_string_member(o, "x-allowed-peer", migration_allowed_peer(m));
    json_object_set_string_member(o, "tls-creds", mig_tls_creds_id(m->tls));
    json_object_set_string_member(o, "tls-hostname", mig_tls_hostname(m->tls));
    json_object_set_string_member(o, "tls-authz", "");
    return node_object(o);
}

void migration_commands_register(QmpServer *qmp, Migration *m)
{
    static const struct {
        const char *name;
        QmpCommandFunc fn;
        uint32_t states;
    } commands[] = {
        /* A guest still waiting for its state has nothing to send. */
        { "migrate", cmd_migrate, RUN_STATES_ALL & ~RUN_STATE_BIT(RUN_STATE_INMIGRATE) },
        { "migrate_cancel", cmd_migrate_cancel, QMP_STATES_ANY },
        { "query-migrate", cmd_query_migrate, QMP_STATES_ANY },
        { "migrate-incoming", cmd_migrate_incoming, QMP_STATES_ANY },
        { "migrate-start-postcopy", cmd_migrate_start_postcopy, QMP_STATES_ANY },
        { "migrate-set-capabilities", cmd_migrate_set_capabilities, QMP_STATES_ANY },
        { "query-migrate-capabilities", cmd_query_migrate_capabilities, QMP_STATES_ANY },
        { "migrate-set-parameters", cmd_migrate_set_parameters, QMP_STATES_ANY },
        { "query-migrate-parameters", cmd_query_migrate_parameters, QMP_STATES_ANY },
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(commands); i++) {
        qmp_server_register_in(qmp, commands[i].name, commands[i].states, commands[i].fn, m);
    }
}
