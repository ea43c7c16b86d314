/* The one-peer filter (see peer-filter.h). */
#include "config.h"

#include "common/peer-filter.h"

#include <arpa/inet.h>
#include <gio/gio.h>
#include <netinet/in.h>
#include <qb/qblog.h>
#include <string.h>

/* A refused source is logged again at most this often, and at most this
 * many sources are remembered (then the memory starts over). */
#define REFUSE_LOG_US (60 * G_USEC_PER_SEC)
#define REFUSE_SOURCES 1024

struct ColoPeerFilter {
    char *peer;
    char *what;
    GHashTable *sources;       /* source text -> RefusedSource */
    uint64_t refused;
};

typedef struct {
    gint64 logged_at;
    uint64_t since;            /* refusals not logged since then */
} RefusedSource;

bool colo_addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
    if (sa->sa_family == AF_INET) {
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len) != NULL;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

        /* A v6 socket bound to :: accepts IPv4 as ::ffff:a.b.c.d. */
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            return inet_ntop(AF_INET, &a->s6_addr[12], buf, (socklen_t)len) != NULL;
        }
        return inet_ntop(AF_INET6, a, buf, (socklen_t)len) != NULL;
    }
    return false;
}

ColoPeerFilter *colo_peer_filter_new(const char *peer, const char *what, GError **error)
{
    ColoPeerFilter *f;
    struct sockaddr_storage ss = { 0 };
    char buf[INET6_ADDRSTRLEN];

    if (peer && *peer) {
        if (inet_pton(AF_INET, peer, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
            ss.ss_family = AF_INET;
        } else if (inet_pton(AF_INET6, peer, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
            ss.ss_family = AF_INET6;
        }
        if (!colo_addr_text((struct sockaddr *)&ss, buf, sizeof(buf))) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "allowed peer '%s' is not an IPv4 or IPv6 address", peer);
            return NULL;
        }
    }
    f = g_new0(ColoPeerFilter, 1);
    f->peer = peer && *peer ? g_strdup(buf) : NULL;
    f->what = g_strdup(what);
    f->sources = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return f;
}

void colo_peer_filter_free(ColoPeerFilter *f)
{
    if (!f) {
        return;
    }
    g_hash_table_unref(f->sources);
    g_free(f->peer);
    g_free(f->what);
    g_free(f);
}

const char *colo_peer_filter_peer(const ColoPeerFilter *f)
{
    return f ? f->peer : NULL;
}

uint64_t colo_peer_filter_refused(const ColoPeerFilter *f)
{
    return f ? f->refused : 0;
}

/* The first refusal of a source is logged at once, then at most once a
 * minute with the count in between. */
static void refused_log(ColoPeerFilter *f, const char *source)
{
    gint64 now = g_get_monotonic_time();
    RefusedSource *r = g_hash_table_lookup(f->sources, source);

    f->refused++;
    if (!r) {
        if (g_hash_table_size(f->sources) >= REFUSE_SOURCES) {
            g_hash_table_remove_all(f->sources);
        }
        r = g_new0(RefusedSource, 1);
        g_hash_table_insert(f->sources, g_strdup(source), r);
    } else if (now - r->logged_at < REFUSE_LOG_US) {
        r->since++;
        return;
    }
    qb_log(LOG_WARNING, "%s: refused a connection from %s (only %s is accepted; %" G_GUINT64_FORMAT
                        " more from it not logged since)", f->what, source, f->peer, r->since);
    r->logged_at = now;
    r->since = 0;
}

bool colo_peer_filter_accept(ColoPeerFilter *f, const struct sockaddr *sa)
{
    char source[INET6_ADDRSTRLEN] = "?";

    if (!f || !f->peer) {
        return true;
    }
    if (colo_addr_text(sa, source, sizeof(source)) && strcmp(source, f->peer) == 0) {
        return true;
    }
    refused_log(f, source);
    return false;
}
