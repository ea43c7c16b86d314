/* colod's key file: parse, then check every group and key against one
 * table, so that a misspelt key is an error rather than a silent default. */
#include "config.h"

#include "colod-config.h"

#include <errno.h>
#include <gio/gio.h>
#include <string.h>

G_DEFINE_QUARK(colod-config-error-quark, colod_config_error)

typedef enum {
    KEY_STRING, KEY_ARGV, KEY_BOOL, KEY_PORT, KEY_NODE_ID, KEY_MS, KEY_ADDRESS, KEY_IFACE, KEY_QUEUE,
    KEY_PROTECT_MODE, /* precopy | snapshot, into a bool (snapshot) */
} KeyType;

typedef struct {
    const char *group;
    const char *key;
    KeyType type;
    bool required;
    size_t offset;         /* into ColodConfig */
    uint32_t def;          /* default of numbers and booleans */
} KeySpec;

#define F(field) offsetof(ColodConfig, field)
static const KeySpec keys[] = {
    { "vm", "name", KEY_STRING, true, F(vm_name), 0 },
    { "vm", "vmm-args", KEY_ARGV, true, F(vmm_argv), 0 },
    { "vm", "vmm-binary", KEY_STRING, false, F(vmm_binary), 0 },
    { "vm", "state-dir", KEY_STRING, false, F(state_dir), 0 },
    { "vm", "socket-group", KEY_STRING, false, F(socket_group), 0 },
    { "cluster", "peer-name", KEY_STRING, true, F(peer_name), 0 },
    { "cluster", "peer-node-id", KEY_NODE_ID, true, F(peer_node_id), 0 },
    { "cluster", "allow-split-brain", KEY_BOOL, false, F(allow_split_brain), false },
    { "cluster", "managed", KEY_BOOL, false, F(managed), false },
    { "replication", "address", KEY_ADDRESS, true, F(address), 0 },
    { "replication", "peer-address", KEY_ADDRESS, true, F(peer_address), 0 },
    { "replication", "migration-port", KEY_PORT, false, F(migration_port), 8810 },
    { "replication", "proxy-port", KEY_PORT, false, F(proxy_port), 7700 },
    { "replication", "protect-mode", KEY_PROTECT_MODE, false, F(protect_snapshot), false },
    { "proxy", "guest-interface", KEY_IFACE, true, F(guest_iface), 0 },
    { "proxy", "uplink", KEY_IFACE, false, F(uplink), 0 },
    { "proxy", "proxy-binary", KEY_STRING, false, F(proxy_binary), 0 },
    { "proxy", "queue-num", KEY_QUEUE, false, F(queue_num), 0 },
    { "tls", "dir", KEY_STRING, false, F(tls_dir), 0 },
    { "timeouts", "qmp-ms", KEY_MS, false, F(timeouts.qmp_ms), 5000 },
    { "timeouts", "peer-wait-ms", KEY_MS, false, F(timeouts.peer_wait_ms), 30000 },
    { "timeouts", "protect-ack-ms", KEY_MS, false, F(timeouts.protect_ack_ms), 30000 },
    { "timeouts", "protect-retry-ms", KEY_MS, false, F(timeouts.protect_retry_ms), 10000 },
    { "timeouts", "claim-ms", KEY_MS, false, F(timeouts.claim_ms), 5000 },
    { "timeouts", "restart-grace-ms", KEY_MS, false, F(timeouts.restart_grace_ms), 30000 },
    { "timeouts", "linger-ms", KEY_MS, false, F(timeouts.linger_ms), 1000 },
    { "timeouts", "proxy-link-ms", KEY_MS, false, F(timeouts.proxy_link_ms), 3000 },
    { "hooks", "role-change", KEY_STRING, false, F(role_change_hook), 0 },
    { "hooks", "role-change-timeout-ms", KEY_MS, false, F(role_change_timeout_ms), 10000 },
    { "hooks", "state-change", KEY_STRING, false, F(state_change_hook), 0 },
    { "hooks", "state-change-timeout-ms", KEY_MS, false, F(state_change_timeout_ms), 10000 },
};
#undef F

/* A timeout under 10 ms or over a day is a typo, not a setting. */
#define MS_MIN 10
#define MS_MAX (24u * 3600u * 1000u)

bool colod_vm_name_valid(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > COLOD_VM_NAME_MAX || !g_ascii_isalnum(name[0])) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!g_ascii_isalnum(name[i]) && name[i] != '-' && name[i] != '_' && name[i] != '.') {
            return false;
        }
    }
    return true;
}

static bool fail(GError **error, const char *origin, const KeySpec *k, const char *fmt, ...) G_GNUC_PRINTF(4, 5);
static bool fail(GError **error, const char *origin, const KeySpec *k, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, COLOD_CONFIG_ERROR, 0, "%s: [%s] %s: %s", origin, k->group, k->key, msg);
    return false;
}

static bool parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    guint64 v;

    if (!g_ascii_string_to_unsigned(s, 10, min, max, &v, NULL)) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

static bool iface_valid(const char *s)
{
    size_t len = strlen(s);

    /* The kernel's IFNAMSIZ less the NUL; no '/', no whitespace. */
    if (len == 0 || len > 15 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '/' || s[i] == ':' || g_ascii_isspace(s[i]) || !g_ascii_isprint(s[i])) {
            return false;
        }
    }
    return true;
}

/* Sets one field from its (present) value. */
static bool set_key(ColodConfig *c, const KeySpec *k, const char *value, const char *origin, GError **error)
{
    void *field = (char *)c + k->offset;
    uint32_t n;

    switch (k->type) {
    case KEY_STRING:
        if (!*value) {
            return fail(error, origin, k, "empty");
        }
        *(char **)field = g_strdup(value);
        return true;
    case KEY_ARGV: {
        g_autoptr(GError) err = NULL;
        char **argv = NULL;

        if (!g_shell_parse_argv(value, NULL, &argv, &err)) {
            return fail(error, origin, k, "%s", err->message);
        }
        *(char ***)field = argv;
        return true;
    }
    case KEY_BOOL:
        if (strcmp(value, "true") == 0) {
            *(bool *)field = true;
        } else if (strcmp(value, "false") == 0) {
            *(bool *)field = false;
        } else {
            return fail(error, origin, k, "\"%s\" is not true or false", value);
        }
        return true;
    case KEY_PORT:
        if (!parse_u32(value, 1, 65535, &n)) {
            return fail(error, origin, k, "\"%s\" is not a port (1-65535)", value);
        }
        *(uint16_t *)field = (uint16_t)n;
        return true;
    case KEY_QUEUE:
        /* colo-proxy takes the queue 32768 above for carried flows. */
        if (!parse_u32(value, 0, 32767, &n)) {
            return fail(error, origin, k, "\"%s\" is not an NFQUEUE number (0-32767)", value);
        }
        *(uint16_t *)field = (uint16_t)n;
        return true;
    case KEY_NODE_ID:
        if (!parse_u32(value, 1, UINT32_MAX, &n)) {
            return fail(error, origin, k, "\"%s\" is not a corosync node id (1-%u)", value, UINT32_MAX);
        }
        *(uint32_t *)field = n;
        return true;
    case KEY_MS:
        if (!parse_u32(value, MS_MIN, MS_MAX, &n)) {
            return fail(error, origin, k, "\"%s\" is not a time in milliseconds (%u-%u)", value, MS_MIN, MS_MAX);
        }
        *(uint32_t *)field = n;
        return true;
    case KEY_ADDRESS: {
        g_autoptr(GInetAddress) a = g_inet_address_new_from_string(value);

        if (!a) {
            return fail(error, origin, k, "\"%s\" is not an IPv4 or IPv6 address", value);
        }
        *(char **)field = g_strdup(value);
        return true;
    }
    case KEY_PROTECT_MODE:
        if (!colod_protect_mode_parse(value, (bool *)field)) {
            return fail(error, origin, k, "\"%s\" is not precopy or snapshot", value);
        }
        return true;
    case KEY_IFACE:
        if (!iface_valid(value)) {
            return fail(error, origin, k, "\"%s\" is not a network interface name", value);
        }
        *(char **)field = g_strdup(value);
        return true;
    }
    g_assert_not_reached();
}

static void set_default(ColodConfig *c, const KeySpec *k)
{
    void *field = (char *)c + k->offset;

    switch (k->type) {
    case KEY_BOOL:
    case KEY_PROTECT_MODE:
        *(bool *)field = k->def != 0;
        break;
    case KEY_PORT:
    case KEY_QUEUE:
        *(uint16_t *)field = (uint16_t)k->def;
        break;
    case KEY_NODE_ID:
    case KEY_MS:
        *(uint32_t *)field = k->def;
        break;
    default:
        break; /* strings stay NULL */
    }
}

static const KeySpec *find_key(const char *group, const char *key)
{
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        if (strcmp(keys[i].group, group) == 0 && strcmp(keys[i].key, key) == 0) {
            return &keys[i];
        }
    }
    return NULL;
}

static bool group_known(const char *group)
{
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        if (strcmp(keys[i].group, group) == 0) {
            return true;
        }
    }
    return false;
}

/* Every group and key in the file must be one we know. */
static bool check_unknown(GKeyFile *kf, const char *origin, GError **error)
{
    g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);

    for (size_t g = 0; groups[g]; g++) {
        g_auto(GStrv) names = NULL;

        if (!group_known(groups[g])) {
            g_set_error(error, COLOD_CONFIG_ERROR, 0, "%s: unknown group [%s]", origin, groups[g]);
            return false;
        }
        names = g_key_file_get_keys(kf, groups[g], NULL, NULL);
        for (size_t i = 0; names && names[i]; i++) {
            if (!find_key(groups[g], names[i])) {
                g_set_error(error, COLOD_CONFIG_ERROR, 0, "%s: [%s] %s: unknown key", origin, groups[g],
                            names[i]);
                return false;
            }
        }
    }
    return true;
}

/* Rules between keys. */
static bool check_together(ColodConfig *c, const char *origin, GError **error)
{
    if (!colod_vm_name_valid(c->vm_name)) {
        return fail(error, origin, &keys[0],
                    "\"%s\" is not a VM name (1-%d of A-Z a-z 0-9 . _ -, starting with a letter or digit)",
                    c->vm_name, COLOD_VM_NAME_MAX);
    }
    if (!c->vmm_binary) {
        c->vmm_binary = g_strdup("colo-vmm");
    }
    if (!c->proxy_binary) {
        c->proxy_binary = g_strdup("colo-proxy");
    }
    if (!c->state_dir) {
        c->state_dir = g_build_filename("/var/lib/colo", c->vm_name, NULL);
    } else if (!g_path_is_absolute(c->state_dir)) {
        return fail(error, origin, find_key("vm", "state-dir"), "\"%s\" is not an absolute path", c->state_dir);
    }
    /* colo-vmm and colo-proxy load the files themselves and name the one missing. */
    if (c->tls_dir && !g_path_is_absolute(c->tls_dir)) {
        return fail(error, origin, find_key("tls", "dir"), "\"%s\" is not an absolute path", c->tls_dir);
    }
    if (c->role_change_hook && !g_path_is_absolute(c->role_change_hook)) {
        return fail(error, origin, find_key("hooks", "role-change"), "\"%s\" is not an absolute path",
                    c->role_change_hook);
    }
    if (c->state_change_hook && !g_path_is_absolute(c->state_change_hook)) {
        return fail(error, origin, find_key("hooks", "state-change"), "\"%s\" is not an absolute path",
                    c->state_change_hook);
    }
    if (strcmp(c->address, c->peer_address) == 0) {
        return fail(error, origin, find_key("replication", "peer-address"), "the same as address (%s)",
                    c->address);
    }
    if (c->migration_port == c->proxy_port) {
        return fail(error, origin, find_key("replication", "proxy-port"), "the same as migration-port (%u)",
                    c->migration_port);
    }
    return true;
}

ColodConfig *colod_config_load_data(const char *data, gssize len, const char *origin, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) err = NULL;
    g_autoptr(ColodConfig) c = g_new0(ColodConfig, 1);

    c->path = g_strdup(origin);
    if (!g_key_file_load_from_data(kf, data, len < 0 ? (gsize)-1 : (gsize)len, G_KEY_FILE_NONE, &err)) {
        g_set_error(error, COLOD_CONFIG_ERROR, 0, "%s: %s", origin, err->message);
        return NULL;
    }
    if (!check_unknown(kf, origin, error)) {
        return NULL;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        const KeySpec *k = &keys[i];
        g_autofree char *value = NULL;

        if (!g_key_file_has_key(kf, k->group, k->key, NULL)) {
            if (k->required) {
                g_set_error(error, COLOD_CONFIG_ERROR, 0, "%s: [%s] %s: required, not set", origin, k->group,
                            k->key);
                return NULL;
            }
            set_default(c, k);
            continue;
        }
        value = g_key_file_get_string(kf, k->group, k->key, &err);
        if (!value) {
            g_set_error(error, COLOD_CONFIG_ERROR, 0, "%s: [%s] %s: %s", origin, k->group, k->key, err->message);
            return NULL;
        }
        g_strstrip(value);
        if (!set_key(c, k, value, origin, error)) {
            return NULL;
        }
    }
    if (!check_together(c, origin, error)) {
        return NULL;
    }
    return g_steal_pointer(&c);
}

ColodConfig *colod_config_load_file(const char *path, GError **error)
{
    g_autofree char *data = NULL;
    gsize len;
    g_autoptr(GError) err = NULL;

    if (!g_file_get_contents(path, &data, &len, &err)) {
        g_set_error(error, COLOD_CONFIG_ERROR, 0, "%s", err->message);
        return NULL;
    }
    return colod_config_load_data(data, (gssize)len, path, error);
}

void colod_config_free(ColodConfig *c)
{
    if (!c) {
        return;
    }
    g_free(c->path);
    g_free(c->vm_name);
    g_strfreev(c->vmm_argv);
    g_free(c->vmm_binary);
    g_free(c->proxy_binary);
    g_free(c->state_dir);
    g_free(c->socket_group);
    g_free(c->peer_name);
    g_free(c->address);
    g_free(c->peer_address);
    g_free(c->guest_iface);
    g_free(c->uplink);
    g_free(c->tls_dir);
    g_free(c->role_change_hook);
    g_free(c->state_change_hook);
    g_free(c);
}

bool colod_protect_mode_parse(const char *value, bool *snapshot)
{
    if (strcmp(value, "precopy") == 0 || strcmp(value, "snapshot") == 0) {
        *snapshot = value[0] == 's';
        return true;
    }
    return false;
}

bool colod_config_has_disks(const ColodConfig *c)
{
    for (char **a = c->vmm_argv; a && *a; a++) {
        if (strcmp(*a, "-drive") == 0 || strcmp(*a, "--drive") == 0 || g_str_has_prefix(*a, "-drive=")) {
            return true;
        }
    }
    return false;
}
