#include "config.h"

#include "migration/mig-tls.h"

#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <gio/gio.h>

#include "common/tls.h"
#include "migration/transport.h"

#define TLS_OBJECT_TYPE "tls-creds-x509"
#define MIG_TLS_HANDSHAKE_S 10

struct MigTls {
    GHashTable *objects;        /* id -> ColoTlsCreds */
    char *creds;                /* tls-creds: an id, or "" */
    char *hostname;             /* tls-hostname, or "" */
};

MigTls *mig_tls_new(void)
{
    MigTls *t = g_new0(MigTls, 1);

    t->objects = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify)colo_tls_creds_unref);
    t->creds = g_strdup("");
    t->hostname = g_strdup("");
    return t;
}

void mig_tls_free(MigTls *t)
{
    if (!t) {
        return;
    }
    g_hash_table_unref(t->objects);
    g_free(t->creds);
    g_free(t->hostname);
    g_free(t);
}

bool mig_tls_object_spec(const char *spec)
{
    size_t n = strlen(TLS_OBJECT_TYPE);

    return !strncmp(spec, TLS_OBJECT_TYPE, n) && (spec[n] == ',' || !spec[n]);
}

static bool tls_bool(const char *key, const char *v, bool *out, GError **error)
{
    if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true")) {
        *out = true;
    } else if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false")) {
        *out = false;
    } else {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "-object " TLS_OBJECT_TYPE ": %s must be on or off, not '%s'", key, v);
        return false;
    }
    return true;
}

bool mig_tls_object_add(MigTls *t, const char *spec, GError **error)
{
    g_auto(GStrv) parts = g_strsplit(spec, ",", -1);
    const char *id = NULL, *dir = NULL, *priority = NULL;
    bool server = false, verify_peer = true;

    for (unsigned i = 1; parts[i]; i++) {
        char *v = strchr(parts[i], '=');
        if (!v) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "-object " TLS_OBJECT_TYPE ": '%s' is not key=value", parts[i]);
            return false;
        }
        *v++ = '\0';
        if (!strcmp(parts[i], "id")) {
            id = v;
        } else if (!strcmp(parts[i], "dir")) {
            dir = v;
        } else if (!strcmp(parts[i], "priority")) {
            priority = v;
        } else if (!strcmp(parts[i], "endpoint")) {
            if (strcmp(v, "server") && strcmp(v, "client")) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            "-object " TLS_OBJECT_TYPE ": endpoint must be server or client, not '%s'", v);
                return false;
            }
            server = !strcmp(v, "server");
        } else if (!strcmp(parts[i], "verify-peer")) {
            if (!tls_bool(parts[i], v, &verify_peer, error)) {
                return false;
            }
        } else {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "-object " TLS_OBJECT_TYPE ": property '%s' is not supported", parts[i]);
            return false;
        }
    }
    if (!mig_tls_object_create(t, id, dir, server, verify_peer, priority, error)) {
        g_prefix_error(error, "-object " TLS_OBJECT_TYPE ": ");
        return false;
    }
    return true;
}

bool mig_tls_object_create(MigTls *t, const char *id, const char *dir, bool server, bool verify_peer,
                           const char *priority, GError **error)
{
    if (!id || !*id || !dir || !*dir) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "needs an id and a dir");
        return false;
    }
    if (g_hash_table_contains(t->objects, id)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS, "duplicate id '%s'", id);
        return false;
    }
    ColoTlsCreds *c = colo_tls_creds_new(dir, server, verify_peer, priority, error);
    if (!c) {
        g_prefix_error(error, "id=%s: ", id);
        return false;
    }
    g_hash_table_insert(t->objects, g_strdup(id), c);
    return true;
}

bool mig_tls_object_del(MigTls *t, const char *id, GError **error)
{
    /* As QEMU, an object the parameter names stays. Sessions hold their
     * own reference: one in use is not cut off. */
    if (!strcmp(t->creds, id)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY, "object '%s' is in use by tls-creds", id);
        return false;
    }
    return g_hash_table_remove(t->objects, id);
}

bool mig_tls_set_params(MigTls *t, const char *creds, const char *hostname, GError **error)
{
    /* As QEMU, the object must exist when the parameter is set. */
    if (creds && *creds && !g_hash_table_contains(t->objects, creds)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "No TLS credentials with id '%s'", creds);
        return false;
    }
    if (creds) {
        g_free(t->creds);
        t->creds = g_strdup(creds);
    }
    if (hostname) {
        g_free(t->hostname);
        t->hostname = g_strdup(hostname);
    }
    return true;
}

const char *mig_tls_creds_id(MigTls *t)
{
    return t->creds;
}

const char *mig_tls_hostname(MigTls *t)
{
    return t->hostname;
}

ColoTlsCreds *mig_tls_creds(MigTls *t, bool server, GError **error)
{
    if (!*t->creds) {
        return NULL;
    }
    ColoTlsCreds *c = g_hash_table_lookup(t->objects, t->creds);
    if (!c) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "No TLS credentials with id '%s'", t->creds);
        return NULL;
    }
    if (colo_tls_creds_is_server(c) != server) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "Expecting TLS credentials with a %s endpoint ('%s' has endpoint=%s)",
                    server ? "server" : "client", t->creds, server ? "client" : "server");
        return NULL;
    }
    return colo_tls_creds_ref(c);
}

MigChannel *mig_tls_connect(const char *uri, ColoTlsCreds *creds, const char *hostname, GError **error)
{
    int fd = transport_connect(uri, error);

    if (fd < 0) {
        return NULL;
    }
    MigChannel *c = mig_channel_new(fd);
    if (!creds) {
        return c;
    }
    g_autofree char *host = hostname && *hostname ? g_strdup(hostname) : transport_uri_host(uri);
    /* A listener that never answers must not hold the migration thread
     * (migrate_cancel cannot reach a channel still shaking hands), as the
     * destination bounds its side. The stream itself has no time limit. */
    struct timeval limit = { MIG_TLS_HANDSHAKE_S, 0 }, none = { 0, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    if (!mig_channel_start_tls(c, creds, host, error)) {
        g_prefix_error(error, "%s: ", uri);
        mig_channel_free(c);
        return NULL;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
    return c;
}
