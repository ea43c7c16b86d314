#include "config.h"

#include "carry.h"

#include <arpa/inet.h>
#include <gio/gio.h>
#include <netinet/in.h>
#include <string.h>

static void carry_addr(JsonBuilder *b, const char *name, const struct flow_key *k, const uint8_t *addr)
{
    char s[INET6_ADDRSTRLEN];

    inet_ntop(k->family == 6 ? AF_INET6 : AF_INET, addr, s, sizeof(s));
    json_builder_set_member_name(b, name);
    json_builder_add_string_value(b, s);
}

static void carry_int(JsonBuilder *b, const char *name, int64_t v)
{
    json_builder_set_member_name(b, name);
    json_builder_add_int_value(b, v);
}

JsonNode *carry_to_json(const GArray *flows)
{
    g_autoptr(JsonBuilder) b = json_builder_new();

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "flows");
    json_builder_begin_array(b);
    for (guint i = 0; i < flows->len; i++) {
        const struct rw_carried *c = &g_array_index(flows, struct rw_carried, i);

        json_builder_begin_object(b);
        carry_addr(b, "src", &c->key, c->key.src);
        carry_int(b, "sport", c->key.sport);
        carry_addr(b, "dst", &c->key, c->key.dst);
        carry_int(b, "dport", c->key.dport);
        carry_int(b, "offset", c->offset);
        if (c->ts_valid) {
            carry_int(b, "ts-offset", c->ts_offset);
        }
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

static bool carry_fail(GError **error, guint i, const char *what)
{
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "flow %u: %s", i, what);
    return false;
}

/* An integer member in [@min, @max]. */
static bool carry_get_int(JsonObject *o, const char *name, int64_t min, int64_t max, int64_t *out)
{
    JsonNode *n = json_object_get_member(o, name);

    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64) {
        return false;
    }
    *out = json_node_get_int(n);
    return *out >= min && *out <= max;
}

/* An address member; its family must match @family if that is set. */
static bool carry_get_addr(JsonObject *o, const char *name, uint8_t *family, uint8_t *addr)
{
    JsonNode *n = json_object_get_member(o, name);
    const char *s;

    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
        return false;
    }
    s = json_node_get_string(n);
    if (*family != 6 && inet_pton(AF_INET, s, addr) == 1) {
        *family = 4;
        return true;
    }
    if (*family != 4 && inet_pton(AF_INET6, s, addr) == 1) {
        *family = 6;
        return true;
    }
    return false;
}

static bool carry_parse_flow(JsonNode *n, guint i, struct rw_carried *c, GError **error)
{
    static const char *const known[] = { "src", "sport", "dst", "dport", "offset", "ts-offset", NULL };
    JsonObject *o = JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
    g_autoptr(GList) members = NULL;
    int64_t v;

    if (!o) {
        return carry_fail(error, i, "not an object");
    }
    members = json_object_get_members(o);
    for (GList *l = members; l; l = l->next) {
        if (!g_strv_contains(known, l->data)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "flow %u: unknown member \"%s\"", i,
                        (const char *)l->data);
            return false;
        }
    }
    memset(c, 0, sizeof(*c));
    c->key.proto = IPPROTO_TCP;
    if (!carry_get_addr(o, "src", &c->key.family, c->key.src)) {
        return carry_fail(error, i, "src must be an IPv4 or IPv6 address");
    }
    if (!carry_get_addr(o, "dst", &c->key.family, c->key.dst)) {
        return carry_fail(error, i, "dst must be an address of src's family");
    }
    if (!carry_get_int(o, "sport", 1, 65535, &v)) {
        return carry_fail(error, i, "sport must be a port (1-65535)");
    }
    c->key.sport = (uint16_t)v;
    if (!carry_get_int(o, "dport", 1, 65535, &v)) {
        return carry_fail(error, i, "dport must be a port (1-65535)");
    }
    c->key.dport = (uint16_t)v;
    if (!carry_get_int(o, "offset", 0, UINT32_MAX, &v)) {
        return carry_fail(error, i, "offset must be an integer in 0..2^32-1");
    }
    c->offset = (uint32_t)v;
    if (json_object_has_member(o, "ts-offset")) {
        if (!carry_get_int(o, "ts-offset", 0, UINT32_MAX, &v)) {
            return carry_fail(error, i, "ts-offset must be an integer in 0..2^32-1");
        }
        c->ts_valid = true;
        c->ts_offset = (uint32_t)v;
    }
    return true;
}

GArray *carry_parse(const char *data, size_t len, GError **error)
{
    g_autoptr(JsonParser) parser = json_parser_new_immutable();
    g_autoptr(GArray) out = g_array_new(FALSE, TRUE, sizeof(struct rw_carried));
    g_autoptr(GHashTable) seen = NULL;
    JsonNode *root;
    JsonNode *fl;
    JsonArray *a;
    char b[128];

    if (len > G_MAXSSIZE || !json_parser_load_from_data(parser, data, (gssize)len, error)) {
        g_prefix_error(error, "carried flows: ");
        return NULL;
    }
    root = json_parser_get_root(parser);
    fl = root && JSON_NODE_HOLDS_OBJECT(root) ? json_object_get_member(json_node_get_object(root), "flows") : NULL;
    if (!fl || !JSON_NODE_HOLDS_ARRAY(fl) || json_object_get_size(json_node_get_object(root)) != 1) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "carried flows: need an object with only a \"flows\" array");
        return NULL;
    }
    a = json_node_get_array(fl);
    if (json_array_get_length(a) > CARRY_MAX_FLOWS) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "carried flows: %u flows, at most %d",
                    json_array_get_length(a), CARRY_MAX_FLOWS);
        return NULL;
    }
    g_array_set_size(out, json_array_get_length(a));
    seen = g_hash_table_new(flow_key_hash, flow_key_equal);
    for (guint i = 0; i < out->len; i++) {
        struct rw_carried *c = &g_array_index(out, struct rw_carried, i);

        if (!carry_parse_flow(json_array_get_element(a, i), i, c, error)) {
            g_prefix_error(error, "carried flows: ");
            return NULL;
        }
        if (!g_hash_table_add(seen, &c->key)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "carried flows: flow %u (%s) given twice", i,
                        flow_key_format(&c->key, b, sizeof(b)));
            return NULL;
        }
    }
    return g_steal_pointer(&out);
}

char **carry_match_words(const struct rw_carried *c, bool output)
{
    int af = c->key.family == 6 ? AF_INET6 : AF_INET;
    char g[INET6_ADDRSTRLEN], p[INET6_ADDRSTRLEN];
    GPtrArray *w = g_ptr_array_new();

    inet_ntop(af, c->key.src, g, sizeof(g));
    inet_ntop(af, c->key.dst, p, sizeof(p));
    g_ptr_array_add(w, g_strdup(c->key.family == 6 ? "-6" : "-4"));
    g_ptr_array_add(w, g_strdup("-p"));
    g_ptr_array_add(w, g_strdup("tcp"));
    g_ptr_array_add(w, g_strdup("-s"));
    g_ptr_array_add(w, g_strdup(output ? g : p));
    g_ptr_array_add(w, g_strdup("-d"));
    g_ptr_array_add(w, g_strdup(output ? p : g));
    g_ptr_array_add(w, g_strdup("--sport"));
    g_ptr_array_add(w, g_strdup_printf("%u", output ? c->key.sport : c->key.dport));
    g_ptr_array_add(w, g_strdup("--dport"));
    g_ptr_array_add(w, g_strdup_printf("%u", output ? c->key.dport : c->key.sport));
    g_ptr_array_add(w, NULL);
    return (char **)g_ptr_array_free(w, FALSE);
}
