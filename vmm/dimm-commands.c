#include "config.h"

#include "dimm-commands.h"

#include <errno.h>
#include <string.h>

#include <gio/gio.h>

#include "dimm.h"
#include "migration/migration.h"
#include "migration/mig-tls.h"
#include "common/qmp/qmp-args.h"

static const char *const backend_types[] = {
    "memory-backend-ram", "memory-backend-memfd", "memory-backend-file", NULL,
};

typedef struct BackendArgs {
    const char *type, *id, *mem_path;
    uint64_t size;
    bool share, prealloc;
} BackendArgs;

typedef struct DimmArgs {
    const char *id, *memdev;
    int slot;
    uint64_t addr;
} DimmArgs;

static bool backend_type_known(const char *type, GError **error)
{
    if (g_strv_contains(backend_types, type)) {
        return true;
    }
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                "object type '%s' is not supported (memory-backend-ram, memory-backend-memfd, "
                "memory-backend-file)", type);
    return false;
}

static bool backend_create(Vm *vm, const BackendArgs *a, GError **error)
{
    return dimms_add_backend(vm->dimms, a->type, a->id, a->size, a->mem_path, a->share, a->prealloc,
                             error);
}

static bool dimm_create(Vm *vm, const DimmArgs *a, bool notify, GError **error)
{
    return dimms_plug(vm->dimms, a->id, a->memdev, a->slot, a->addr, notify, error);
}

/* ---- QMP ----------------------------------------------------------------- */

static JsonNode *node_from_array(JsonArray *list)
{
    JsonNode *node = json_node_new(JSON_NODE_ARRAY);

    json_node_take_array(node, list);
    return node;
}

/* A size as QMP gives it: a number of bytes (QEMU also takes "64M" on the
 * command line; accept that here too). */
static bool arg_size(JsonObject *args, const char *name, bool required, uint64_t *out, GError **error)
{
    JsonNode *n = json_object_get_member(args, name);

    if (n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING) {
        if (!guest_memory_parse_size(json_node_get_string(n), out, error)) {
            g_prefix_error(error, "Parameter '%s': ", name);
            return false;
        }
        return true;
    }
    gint64 v = -1;
    if (!qmp_arg_int(args, name, required, &v, error)) {
        return false;
    }
    if (n && v < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "Parameter '%s' expects a size", name);
        return false;
    }
    if (n) {
        *out = (uint64_t)v;
    }
    return true;
}

/* object-add qom-type=tls-creds-x509: migration's TLS (migration/mig-tls.h). */
static JsonNode *object_add_tls(Vm *vm, JsonObject *args, GError **error)
{
    static const char *const allowed[] = { "qom-type", "id", "props", "dir", "endpoint", "verify-peer", "priority",
                                           NULL };
    const char *id, *dir, *endpoint = "client", *priority = NULL;
    bool verify_peer = true;
    JsonObject *props = args;

    if (!qmp_args_check(args, allowed, error) || !qmp_arg_string(args, "id", true, &id, error) ||
        !qmp_arg_object(args, "props", false, &props, error) || !qmp_arg_string(props, "dir", true, &dir, error) ||
        !qmp_arg_string(props, "endpoint", false, &endpoint, error) ||
        !qmp_arg_bool(props, "verify-peer", false, &verify_peer, error) ||
        !qmp_arg_string(props, "priority", false, &priority, error)) {
        return NULL;
    }
    if (strcmp(endpoint, "server") && strcmp(endpoint, "client")) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "endpoint must be server or client, not '%s'",
                    endpoint);
        return NULL;
    }
    mig_tls_object_create(vm->migration->tls, id, dir, !strcmp(endpoint, "server"), verify_peer, priority, error);
    return NULL;
}

static JsonNode *cmd_object_add(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = {
        "qom-type", "id", "props", "size", "mem-path", "share", "prealloc", "merge", "dump",
        "policy", "host-nodes", "x-use-canonical-path-for-ramblock-id", NULL,
    };
    Vm *vm = opaque;
    BackendArgs a = { 0 };
    JsonObject *props = args;
    const char *type = NULL;

    if (qmp_arg_string(args, "qom-type", false, &type, NULL) && type && !strcmp(type, "tls-creds-x509")) {
        return object_add_tls(vm, args, error);
    }
    if (!qmp_args_check(args, allowed, error) || !qmp_arg_string(args, "qom-type", true, &a.type, error) ||
        !qmp_arg_string(args, "id", true, &a.id, error) || !backend_type_known(a.type, error) ||
        !qmp_arg_object(args, "props", false, &props, error)) {
        return NULL;
    }
    /* QEMU before 6.0 put the properties under "props". */
    bool merge = false, dump = true;
    const char *policy = "default";
    if (!arg_size(props, "size", true, &a.size, error) ||
        !qmp_arg_string(props, "mem-path", false, &a.mem_path, error) ||
        !qmp_arg_bool(props, "share", false, &a.share, error) ||
        !qmp_arg_bool(props, "prealloc", false, &a.prealloc, error) ||
        !qmp_arg_bool(props, "merge", false, &merge, error) ||
        !qmp_arg_bool(props, "dump", false, &dump, error) ||
        !qmp_arg_string(props, "policy", false, &policy, error)) {
        return NULL;
    }
    if (strcmp(policy, "default") != 0 || json_object_has_member(props, "host-nodes")) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "NUMA policies are not supported (policy must be 'default', no host-nodes)");
        return NULL;
    }
    backend_create(vm, &a, error);
    return NULL;
}

static JsonNode *cmd_object_del(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { "id", NULL };
    Vm *vm = opaque;
    const char *id;
    g_autoptr(GError) tls_error = NULL;

    if (!qmp_args_check(args, allowed, error) || !qmp_arg_string(args, "id", true, &id, error) ||
        mig_tls_object_del(vm->migration->tls, id, &tls_error)) {
        return NULL;
    }
    if (tls_error) {
        g_propagate_error(error, g_steal_pointer(&tls_error));
    } else {
        dimms_del_backend(vm->dimms, id, error);
    }
    return NULL;
}

static JsonNode *cmd_device_add(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { "driver", "id", "memdev", "slot", "addr", "node", NULL };
    Vm *vm = opaque;
    DimmArgs a = { .slot = -1, .addr = UINT64_MAX };
    const char *driver;
    gint64 slot = -1, node = 0;

    if (!qmp_arg_string(args, "driver", true, &driver, error)) {
        return NULL;
    }
    if (strcmp(driver, "pc-dimm") != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "device_add: only pc-dimm can be hot-plugged, not '%s'", driver);
        return NULL;
    }
    if (!qmp_args_check(args, allowed, error) || !qmp_arg_string(args, "id", true, &a.id, error) ||
        !qmp_arg_string(args, "memdev", true, &a.memdev, error) ||
        !qmp_arg_int(args, "slot", false, &slot, error) || !arg_size(args, "addr", false, &a.addr, error) ||
        !qmp_arg_int(args, "node", false, &node, error)) {
        return NULL;
    }
    if (node != 0 || slot < -1 || slot > G_MAXINT) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    node ? "there is only NUMA node 0" : "invalid slot number %" G_GINT64_FORMAT, slot);
        return NULL;
    }
    a.slot = (int)slot;
    if (!migration_allows_memory_hotplug(vm->migration, error)) {
        return NULL;
    }
    /* A guest that has not started finds the DIMM when it boots. */
    dimm_create(vm, &a, vm->state != RUN_STATE_PRELAUNCH, error);
    return NULL;
}

static JsonNode *cmd_device_del(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { "id", NULL };
    Vm *vm = opaque;
    const char *id;

    if (!qmp_args_check(args, allowed, error) || !qmp_arg_string(args, "id", true, &id, error)) {
        return NULL;
    }
    bool is_dimm = false;
    g_mutex_lock(&vm->dimms->lock);
    for (guint i = 0; i < vm->dimms->dimms->len; i++) {
        is_dimm |= !strcmp(((Dimm *)vm->dimms->dimms->pdata[i])->id, id);
    }
    g_mutex_unlock(&vm->dimms->lock);
    if (is_dimm) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "pc-dimm %s: memory hot-unplug is not supported", id);
    } else {
        g_set_error(error, QMP_ERROR, QMP_ERROR_DEVICE_NOT_FOUND, "Device '%s' not found", id);
    }
    return NULL;
}

static JsonNode *cmd_query_memory_devices(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { NULL };
    Vm *vm = opaque;

    if (!qmp_args_check(args, allowed, error)) {
        return NULL;
    }
    JsonArray *list = json_array_new();
    g_mutex_lock(&vm->dimms->lock);
    for (guint i = 0; i < vm->dimms->dimms->len; i++) {
        const Dimm *dimm = vm->dimms->dimms->pdata[i];
        JsonObject *data = json_object_new();
        g_autofree char *path = g_strdup_printf("/objects/%s", dimm->backend->id);
        json_object_set_string_member(data, "id", dimm->id);
        json_object_set_int_member(data, "addr", (gint64)dimm->addr);
        json_object_set_int_member(data, "size", (gint64)dimm->backend->size);
        json_object_set_int_member(data, "slot", dimm->slot);
        json_object_set_int_member(data, "node", 0);
        json_object_set_string_member(data, "memdev", path);
        json_object_set_boolean_member(data, "hotplugged", dimm->hotplugged);
        json_object_set_boolean_member(data, "hotpluggable", TRUE);
        JsonObject *dev = json_object_new();
        json_object_set_string_member(dev, "type", "dimm");
        json_object_set_object_member(dev, "data", data);
        json_array_add_object_element(list, dev);
    }
    g_mutex_unlock(&vm->dimms->lock);
    return node_from_array(list);
}

static JsonNode *cmd_query_memory_size_summary(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { NULL };
    Vm *vm = opaque;

    if (!qmp_args_check(args, allowed, error)) {
        return NULL;
    }
    JsonObject *ret = json_object_new();
    json_object_set_int_member(ret, "base-memory", (gint64)vm->mem->ram_size);
    json_object_set_int_member(ret, "plugged-memory", (gint64)dimms_plugged_size(vm->dimms));
    JsonNode *node = json_node_new(JSON_NODE_OBJECT);
    json_node_take_object(node, ret);
    return node;
}

static JsonNode *cmd_query_memdev(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { NULL };
    Vm *vm = opaque;

    if (!qmp_args_check(args, allowed, error)) {
        return NULL;
    }
    JsonArray *list = json_array_new();
    g_mutex_lock(&vm->dimms->lock);
    for (guint i = 0; i < vm->dimms->backends->len; i++) {
        const MemoryBackend *b = vm->dimms->backends->pdata[i];
        JsonObject *o = json_object_new();
        json_object_set_string_member(o, "id", b->id);
        json_object_set_int_member(o, "size", (gint64)b->size);
        json_object_set_boolean_member(o, "merge", FALSE);
        json_object_set_boolean_member(o, "dump", FALSE);
        json_object_set_boolean_member(o, "prealloc", b->prealloc);
        /* memfd and files are mapped shared; memory-backend-ram is
         * anonymous private memory unless share=on (then a memfd). */
        json_object_set_boolean_member(o, "share", strcmp(b->type, "memory-backend-ram") || b->share);
        json_object_set_array_member(o, "host-nodes", json_array_new());
        json_object_set_string_member(o, "policy", "default");
        json_array_add_object_element(list, o);
    }
    g_mutex_unlock(&vm->dimms->lock);
    return node_from_array(list);
}

void dimm_commands_register(QmpServer *qmp, Vm *vm)
{
    static const struct {
        const char *name;
        QmpCommandFunc fn;
    } commands[] = {
        { "object-add", cmd_object_add },
        { "object-del", cmd_object_del },
        { "device_add", cmd_device_add },
        { "device_del", cmd_device_del },
        { "query-memory-devices", cmd_query_memory_devices },
        { "query-memory-size-summary", cmd_query_memory_size_summary },
        { "query-memdev", cmd_query_memdev },
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(commands); i++) {
        qmp_server_register(qmp, commands[i].name, commands[i].fn, vm);
    }
}

/* ---- command line -------------------------------------------------------- */

static bool cmdline_bool(const char *opt, const char *key, const char *v, bool *out, GError **error)
{
    if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true")) {
        *out = true;
    } else if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false")) {
        *out = false;
    } else {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "%s: %s=%s: expected 'on' or 'off'", opt, key, v);
        return false;
    }
    return true;
}

static bool cmdline_number(const char *opt, const char *key, const char *v, uint64_t *out, GError **error)
{
    char *end;

    errno = 0;
    *out = g_ascii_strtoull(v, &end, 0);
    if (errno || end == v || *end) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s: %s=%s is not a number", opt, key, v);
        return false;
    }
    return true;
}

bool dimm_cmdline_object(Vm *vm, const char *spec, GError **error)
{
    g_auto(GStrv) parts = g_strsplit(spec, ",", -1);
    BackendArgs a = { .type = parts[0] };
    bool have_size = false;

    if (!a.type || !backend_type_known(a.type, error)) {
        g_prefix_error(error, "-object: ");
        return false;
    }
    for (unsigned i = 1; parts[i]; i++) {
        char *v = strchr(parts[i], '=');
        if (!v) {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "-object: '%s' is not key=value", parts[i]);
            return false;
        }
        *v++ = '\0';
        const char *k = parts[i];
        bool ok = true;
        if (!strcmp(k, "id")) {
            a.id = v;
        } else if (!strcmp(k, "size")) {
            ok = guest_memory_parse_size(v, &a.size, error);
            have_size = ok;
        } else if (!strcmp(k, "mem-path")) {
            a.mem_path = v;
        } else if (!strcmp(k, "share")) {
            ok = cmdline_bool("-object", k, v, &a.share, error);
        } else if (!strcmp(k, "prealloc")) {
            ok = cmdline_bool("-object", k, v, &a.prealloc, error);
        } else {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "-object %s: property '%s' is not supported", a.type, k);
            return false;
        }
        if (!ok) {
            g_prefix_error(error, "-object: ");
            return false;
        }
    }
    if (!a.id || !have_size) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "-object %s: needs id= and size=", a.type);
        return false;
    }
    if (!backend_create(vm, &a, error)) {
        g_prefix_error(error, "-object: ");
        return false;
    }
    return true;
}

bool dimm_cmdline_device(Vm *vm, const char *spec, GError **error)
{
    g_auto(GStrv) parts = g_strsplit(spec, ",", -1);
    DimmArgs a = { .slot = -1, .addr = UINT64_MAX };

    for (unsigned i = 1; parts[i]; i++) {
        char *v = strchr(parts[i], '=');
        uint64_t n = 0;
        bool ok = true;
        if (!v) {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "-device: '%s' is not key=value", parts[i]);
            return false;
        }
        *v++ = '\0';
        if (!strcmp(parts[i], "id")) {
            a.id = v;
        } else if (!strcmp(parts[i], "memdev")) {
            a.memdev = v;
        } else if (!strcmp(parts[i], "slot")) {
            ok = cmdline_number("-device pc-dimm", "slot", v, &n, error) && n <= G_MAXINT;
            a.slot = (int)n;
        } else if (!strcmp(parts[i], "addr")) {
            ok = cmdline_number("-device pc-dimm", "addr", v, &a.addr, error);
        } else if (strcmp(parts[i], "node") != 0 || strcmp(v, "0") != 0) {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "-device pc-dimm: property '%s' is not supported", parts[i]);
            return false;
        }
        if (!ok) {
            if (error && !*error) {
                g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "-device pc-dimm: slot=%s is too large", v);
            }
            return false;
        }
    }
    if (!dimm_create(vm, &a, false, error)) {
        g_prefix_error(error, "-device pc-dimm: ");
        return false;
    }
    return true;
}
