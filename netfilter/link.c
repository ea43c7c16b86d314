#include "config.h"

#include "link.h"

#include "common/peer-filter.h"
#include "common/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <qb/qblog.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINK_OUT_MAX (16u << 20)
/* Frames queued by reference between two link_push() calls (a capture
 * burst is 32); past it they are copied. */
#define LINK_REFS_MAX 64
/* Reconnects start fast and back off: the peer's proxy is often a few ms
 * from listening (both are started for a protect; until the link is up
 * the primary holds the guest's output), or gone for a while. */
#define LINK_RECONNECT_FIRST_MS 10
#define LINK_RECONNECT_MS 500
#define LINK_READ_SIZE (256 * 1024)
/* A connect is not waited for in the main loop (a peer host that vanished
 * drops the SYN, and a blocking connect would freeze the proxy for two
 * minutes of retries); one not done after this is given up and retried. */
#define LINK_CONNECT_MS 1000
#define LINK_TLS_HANDSHAKE_MS 5000
#define LINK_TLS_PENDING_MAX 4      /* handshakes at once; the oldest goes */
#define LINK_TLS_LOG_US (10 * G_USEC_PER_SEC)   /* the same refusal logged again after */

/* A connection still shaking hands: not the link yet. */
typedef struct link_pending {
    struct proxy_link *l;
    int fd;
    ColoTlsSession *tls;
    guint watch, timer;
    char peer[INET6_ADDRSTRLEN + 8];
} LinkPending;

struct proxy_link {
    struct link_callbacks cb;
    char *host, *port;
    bool listening;
    ColoPeerFilter *peer;      /* the only source accepted, or NULL */
    int lfd;                   /* listening socket, or -1 */
    int fd;                    /* the peer, or -1 */
    ColoTlsCreds *tls_creds;   /* NULL: plain TCP */
    ColoTlsSession *tls;       /* the link's session, with tls_creds */
    GList *pending;            /* LinkPending, newest first */
    char *last_refusal;        /* rate limit of the refusal log */
    int64_t last_refusal_us;
    guint lwatch, rwatch, wwatch, retry;
    guint retry_ms;            /* the next reconnect's delay */
    int cfd;                   /* a connect under way, or -1 */
    guint cwatch, ctimer;
    uint16_t bound_port;
    FrameDecoder *dec;
    GByteArray *out;
    size_t out_off;
    /* Frames queued by link_queue_ref(): written from the caller's memory
     * at link_push(). Never behind bytes still in @out. */
    struct link_ref {
        uint8_t hdr[FRAME_HDR_LEN];
        const uint8_t *data;
        size_t len;
    } refs[LINK_REFS_MAX];
    unsigned int n_refs;
    size_t ref_bytes;
    struct link_stats stats;
};

bool link_parse_hostport(const char *s, char **host, char **port, GError **error)
{
    const char *colon = strrchr(s, ':');

    if (!colon || colon == s || !colon[1]) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "expected HOST:PORT, got '%s'", s);
        return false;
    }
    if (s[0] == '[' && colon[-1] == ']') {
        *host = g_strndup(s + 1, (gsize)(colon - s - 2));
    } else {
        *host = g_strndup(s, (gsize)(colon - s));
    }
    *port = g_strdup(colon + 1);
    return true;
}

static void link_set_nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void link_down(ProxyLink *l, const char *why);
static void link_schedule_connect(ProxyLink *l);

/* Bytes or -errno, through TLS if the link has it. */
static ssize_t link_io_read(ProxyLink *l, void *buf, size_t len)
{
    if (l->tls) {
        return colo_tls_recv(l->tls, buf, len);
    }
    ssize_t n = read(l->fd, buf, len);
    return n < 0 ? -errno : n;
}

static ssize_t link_io_write(ProxyLink *l, const void *buf, size_t len)
{
    if (l->tls) {
        return colo_tls_send(l->tls, buf, len);
    }
    /* A peer gone must not end us with SIGPIPE: the caller sees EPIPE. */
    ssize_t n = send(l->fd, buf, len, MSG_NOSIGNAL);
    return n < 0 ? -errno : n;
}

static const char *link_io_error(ProxyLink *l, ssize_t n)
{
    if (n == -EPROTO && l->tls && colo_tls_last_error(l->tls)) {
        return colo_tls_last_error(l->tls);
    }
    return g_strerror((int)-n);
}

static gboolean link_on_read(gint fd, GIOCondition cond, gpointer data)
{
    ProxyLink *l = data;
    GError *err = NULL;
    struct frame f;
    ssize_t n;
    int r;

    /* A few reads per wakeup keep the other sources served. A TLS read
     * gives one record (16 KiB at most): more of them, and whatever the
     * session holds already decrypted, as the socket will not wake us for it. */
    for (int i = 0; i < (l->tls ? 64 : 8) || (l->tls && colo_tls_pending(l->tls)); i++) {
        /* Straight into the decoder's buffer: frames are handed out from
         * there, never copied in user space. */
        n = link_io_read(l, frame_decoder_reserve(l->dec, LINK_READ_SIZE), LINK_READ_SIZE);
        frame_decoder_commit(l->dec, n > 0 ? (size_t)n : 0);
        if (n == -EAGAIN || n == -EINTR) {
            break;
        }
        if (n <= 0) {
            if (!frame_decoder_eof(l->dec, &err)) {
                qb_log(LOG_WARNING, "link: %s", err->message);
                g_clear_error(&err);
            }
            l->rwatch = 0;
            link_down(l, n == 0 || n == -EIO ? "peer closed the connection" : link_io_error(l, n));
            return G_SOURCE_REMOVE;
        }
        while ((r = frame_decoder_next(l->dec, &f, &err)) == 1) {
            l->cb.frame(l->cb.opaque, &f);
            if (l->fd < 0) {
                return G_SOURCE_REMOVE;   /* the callback closed us */
            }
        }
        if (l->cb.burst_done) {
            l->cb.burst_done(l->cb.opaque);
        }
        if (r < 0) {
            qb_log(LOG_ERR, "link: %s; closing", err->message);
            g_clear_error(&err);
            frame_decoder_eof(l->dec, NULL);
            l->rwatch = 0;
            link_down(l, "bad frame");
            return G_SOURCE_REMOVE;
        }
        if ((size_t)n < LINK_READ_SIZE && !l->tls) {
            break;
        }
    }
    return G_SOURCE_CONTINUE;
}

static bool link_flush(ProxyLink *l);

static gboolean link_on_write(gint fd, GIOCondition cond, gpointer data)
{
    ProxyLink *l = data;

    if (!link_flush(l)) {
        return G_SOURCE_REMOVE;
    }
    if (l->out_off == l->out->len) {
        l->wwatch = 0;
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

/* Write what we can; false if the link went down. */
static bool link_flush(ProxyLink *l)
{
    while (l->out_off < l->out->len) {
        ssize_t n = link_io_write(l, l->out->data + l->out_off, l->out->len - l->out_off);

        if (n == -EINTR) {
            continue;
        }
        if (n == -EAGAIN) {
            if (!l->wwatch) {
                l->wwatch = g_unix_fd_add(l->fd, G_IO_OUT, link_on_write, l);
            }
            break;
        }
        if (n < 0) {
            link_down(l, link_io_error(l, n));
            return false;
        }
        l->out_off += (size_t)n;
    }
    if (l->out_off == l->out->len) {
        g_byte_array_set_size(l->out, 0);
        l->out_off = 0;
    }
    return true;
}

/* A link whose peer went away without a word (its end closed while the
 * replication network was cut: the RST never arrived) must not look up:
 * the secondary would not reconnect, and the primary, on whose side it is
 * already down, holds all output until checkpoints release it (12 s seen
 * at run-matrix's reject-repl). The kernel's keepalive probes, answered by
 * the peer's kernel whatever its load, find such a link within about 4 s
 * of the network's return; unacknowledged data gives up after 4 s. */
static void link_set_liveness(int fd)
{
    int one = 1, idle = 1, intvl = 1, cnt = 3;
    unsigned int user_timeout_ms = 4000;

    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof(user_timeout_ms));
}

/* @tls: the connection's session, taken over (NULL without TLS). */
static void link_up(ProxyLink *l, int fd, ColoTlsSession *tls)
{
    int one = 1;
    uint8_t hello[FRAME_HDR_LEN + 1];

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    link_set_liveness(fd);
    link_set_nonblock(fd);
    l->fd = fd;
    l->tls = tls;
    l->retry_ms = LINK_RECONNECT_FIRST_MS;
    l->stats.connects++;
    l->rwatch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, link_on_read, l);
    if (tls) {
        qb_log(LOG_NOTICE, "link up (TLS, peer %s) %s", colo_tls_peer_name(tls), colo_tls_desc(tls));
    } else {
        qb_log(LOG_NOTICE, "link up");
    }
    frame_header_write(hello, FRAME_HELLO, 0, 1);
    hello[FRAME_HDR_LEN] = l->listening ? 1 : 0;
    g_byte_array_append(l->out, hello, sizeof(hello));
    if (link_flush(l)) {
        l->cb.state(l->cb.opaque, true);
    }
}

static void link_down(ProxyLink *l, const char *why)
{
    if (l->fd < 0) {
        return;
    }
    qb_log(LOG_WARNING, "link down: %s", why);
    if (l->rwatch) {
        g_source_remove(l->rwatch);
        l->rwatch = 0;
    }
    if (l->wwatch) {
        g_source_remove(l->wwatch);
        l->wwatch = 0;
    }
    close(l->fd);
    l->fd = -1;
    g_clear_pointer(&l->tls, colo_tls_session_unref);
    g_byte_array_set_size(l->out, 0);
    l->out_off = 0;
    l->n_refs = 0;
    l->ref_bytes = 0;
    frame_decoder_eof(l->dec, NULL);
    if (!l->listening) {
        link_schedule_connect(l);
    }
    l->cb.state(l->cb.opaque, false);
}

/* ---- TLS handshakes ---------------------------------------------------- */

static void link_pending_free(LinkPending *p)
{
    if (p->watch) {
        g_source_remove(p->watch);
    }
    if (p->timer) {
        g_source_remove(p->timer);
    }
    if (p->fd >= 0) {
        close(p->fd);
    }
    colo_tls_session_unref(p->tls);
    g_free(p);
}

/* Logged at once, the same words again only after a while: a peer with
 * the wrong certificate retries every half second. */
static void link_log_refusal(ProxyLink *l, const char *peer, const char *why)
{
    g_autofree char *msg = g_strdup_printf("link: TLS refused %s: %s", peer, why);
    int64_t now = g_get_monotonic_time();

    if (g_strcmp0(msg, l->last_refusal) || now - l->last_refusal_us >= LINK_TLS_LOG_US) {
        qb_log(LOG_WARNING, "%s", msg);
        g_free(l->last_refusal);
        l->last_refusal = g_steal_pointer(&msg);
        l->last_refusal_us = now;
    } else {
        qb_log(LOG_DEBUG, "%s", msg);
    }
}

static void link_pending_fail(LinkPending *p, const char *why)
{
    ProxyLink *l = p->l;

    l->pending = g_list_remove(l->pending, p);
    l->stats.tls_refused++;
    link_log_refusal(l, p->peer, why);
    link_pending_free(p);
    if (!l->listening && l->fd < 0) {
        link_schedule_connect(l);
    }
}

static gboolean link_pending_timeout(gpointer data)
{
    LinkPending *p = data;

    p->timer = 0;
    link_pending_fail(p, "the handshake took too long");
    return G_SOURCE_REMOVE;
}

static gboolean link_pending_on_io(gint fd, GIOCondition cond, gpointer data);

/* One step; then wait for the socket, fail, or become the link. */
static void link_pending_step(LinkPending *p)
{
    ProxyLink *l = p->l;
    g_autoptr(GError) err = NULL;
    int rc = colo_tls_handshake_step(p->tls, &err);

    if (rc == 0) {
        p->watch = g_unix_fd_add(p->fd, colo_tls_wants_write(p->tls) ? G_IO_OUT : G_IO_IN, link_pending_on_io, p);
        return;
    }
    if (rc < 0) {
        link_pending_fail(p, err->message);
        return;
    }
    int fd = p->fd;
    ColoTlsSession *tls = g_steal_pointer(&p->tls);
    p->fd = -1;
    l->pending = g_list_remove(l->pending, p);
    link_pending_free(p);
    /* A new peer replaces the old one (it reconnected). */
    link_down(l, "peer reconnected");
    link_up(l, fd, tls);
}

static gboolean link_pending_on_io(gint fd, GIOCondition cond, gpointer data)
{
    LinkPending *p = data;

    p->watch = 0;
    link_pending_step(p);
    return G_SOURCE_REMOVE;
}

static void link_pending_start(ProxyLink *l, int fd, const struct sockaddr *sa, socklen_t sl)
{
    g_autoptr(GError) err = NULL;
    LinkPending *p = g_new0(LinkPending, 1);

    p->l = l;
    p->fd = fd;
    if (!sa || getnameinfo(sa, sl, p->peer, sizeof(p->peer), NULL, 0, NI_NUMERICHOST)) {
        g_snprintf(p->peer, sizeof(p->peer), "%s:%s", l->host, l->port);
    }
    link_set_nonblock(fd);
    /* A client checks the server's certificate against --connect's host. */
    p->tls = colo_tls_session_new(l->tls_creds, fd, l->listening ? NULL : l->host, &err);
    if (!p->tls) {
        qb_log(LOG_ERR, "link: %s", err->message);
        link_pending_free(p);
        if (!l->listening) {
            link_schedule_connect(l);
        }
        return;
    }
    if (g_list_length(l->pending) >= LINK_TLS_PENDING_MAX) {
        link_pending_fail(g_list_last(l->pending)->data, "too many handshakes at once");
    }
    l->pending = g_list_prepend(l->pending, p);
    p->timer = g_timeout_add(LINK_TLS_HANDSHAKE_MS, link_pending_timeout, p);
    link_pending_step(p);
}

static gboolean link_on_accept(gint fd, GIOCondition cond, gpointer data)
{
    ProxyLink *l = data;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int c = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);

    if (c < 0) {
        return G_SOURCE_CONTINUE;
    }
    /* A stranger must neither reach the frame decoder (a forged OUTPUT
     * frame would release a held packet) nor drop the real peer. */
    if (!colo_peer_filter_accept(l->peer, (struct sockaddr *)&ss)) {
        close(c);
        return G_SOURCE_CONTINUE;
    }
    if (l->tls_creds) {
        link_pending_start(l, c, (struct sockaddr *)&ss, sl);
        return G_SOURCE_CONTINUE;
    }
    /* A new peer replaces the old one (it reconnected). */
    link_down(l, "peer reconnected");
    link_up(l, c, NULL);
    return G_SOURCE_CONTINUE;
}

static int link_socket(const char *host, const char *port, bool passive, GError **error)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0 };
    struct addrinfo *res, *ai;
    int fd = -1, rc, one = 1, saved = 0;

    rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "%s:%s: %s", host, port, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        if (passive) {
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            rc = bind(fd, ai->ai_addr, ai->ai_addrlen);
            if (rc == 0) {
                rc = listen(fd, 4);
            }
        } else {
            /* Non-blocking: EINPROGRESS is a start (link_try_connect). */
            int fl = fcntl(fd, F_GETFL);

            fcntl(fd, F_SETFL, fl | O_NONBLOCK);
            rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
            if (rc < 0 && errno == EINPROGRESS) {
                rc = 0;
            }
        }
        if (rc == 0) {
            break;
        }
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "%s %s:%s: %s",
                    passive ? "listen on" : "connect to", host, port, strerror(saved));
    }
    return fd;
}

static void link_connect_end(ProxyLink *l)
{
    g_clear_handle_id(&l->cwatch, g_source_remove);
    g_clear_handle_id(&l->ctimer, g_source_remove);
    l->cfd = -1;
}

static gboolean link_on_connected(gint fd, GIOCondition cond, gpointer data)
{
    ProxyLink *l = data;
    int err = 0;
    socklen_t len = sizeof(err);

    (void)cond;
    l->cwatch = 0;
    link_connect_end(l);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
        qb_log(LOG_DEBUG, "link: connect to %s:%s: %s", l->host, l->port, g_strerror(err ? err : errno));
        close(fd);
        link_schedule_connect(l);
        return G_SOURCE_REMOVE;
    }
    if (l->tls_creds) {
        link_pending_start(l, fd, NULL, 0);
    } else {
        link_up(l, fd, NULL);
    }
    return G_SOURCE_REMOVE;
}

static gboolean link_on_connect_timeout(gpointer data)
{
    ProxyLink *l = data;
    int fd = l->cfd;

    l->ctimer = 0;
    qb_log(LOG_DEBUG, "link: connect to %s:%s: no answer in %d ms", l->host, l->port, LINK_CONNECT_MS);
    link_connect_end(l);
    close(fd);
    link_schedule_connect(l);
    return G_SOURCE_REMOVE;
}

/* One connect attempt, finished in the main loop; false if it failed at
 * once (the peer is not there yet). */
static bool link_try_connect(ProxyLink *l)
{
    GError *err = NULL;
    int fd = link_socket(l->host, l->port, false, &err);

    if (fd < 0) {
        qb_log(LOG_DEBUG, "link: %s", err->message);
        g_error_free(err);
        return false;
    }
    l->cfd = fd;
    l->cwatch = g_unix_fd_add(fd, G_IO_OUT | G_IO_ERR | G_IO_HUP, link_on_connected, l);
    l->ctimer = g_timeout_add(LINK_CONNECT_MS, link_on_connect_timeout, l);
    return true;
}

static gboolean link_on_retry(gpointer data)
{
    ProxyLink *l = data;

    l->retry = 0;
    if (!link_try_connect(l)) {
        link_schedule_connect(l);
    }
    return G_SOURCE_REMOVE;
}

static void link_schedule_connect(ProxyLink *l)
{
    if (!l->retry && l->cfd < 0) {
        l->retry = g_timeout_add(l->retry_ms, link_on_retry, l);
        l->retry_ms = MIN(l->retry_ms * 2, LINK_RECONNECT_MS);
    }
}

ProxyLink *link_new(const char *listen_on, const char *connect_to, const char *peer, ColoTlsCreds *tls,
                    const struct link_callbacks *cb, GError **error)
{
    ProxyLink *l = g_new0(ProxyLink, 1);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    l->cb = *cb;
    l->fd = -1;
    l->cfd = -1;
    l->retry_ms = LINK_RECONNECT_FIRST_MS;
    l->lfd = -1;
    l->dec = frame_decoder_new();
    l->out = g_byte_array_new();
    l->listening = listen_on != NULL;
    l->tls_creds = tls ? colo_tls_creds_ref(tls) : NULL;
    if ((peer && !(l->peer = colo_peer_filter_new(peer, "link", error))) ||
        !link_parse_hostport(listen_on ? listen_on : connect_to, &l->host, &l->port, error)) {
        link_free(l);
        return NULL;
    }
    if (l->listening) {
        l->lfd = link_socket(l->host, l->port, true, error);
        if (l->lfd < 0) {
            link_free(l);
            return NULL;
        }
        if (getsockname(l->lfd, (struct sockaddr *)&ss, &sl) == 0) {
            l->bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                           : ((struct sockaddr_in *)&ss)->sin_port);
        }
        l->lwatch = g_unix_fd_add(l->lfd, G_IO_IN, link_on_accept, l);
    } else {
        if (!link_try_connect(l)) {
            link_schedule_connect(l);
        }
    }
    return l;
}

void link_free(ProxyLink *l)
{
    if (!l) {
        return;
    }
    if (l->fd >= 0) {
        if (l->rwatch) {
            g_source_remove(l->rwatch);
        }
        if (l->wwatch) {
            g_source_remove(l->wwatch);
        }
        close(l->fd);
    }
    if (l->cfd >= 0) {
        int fd = l->cfd;

        link_connect_end(l);
        close(fd);
    }
    colo_tls_session_unref(l->tls);
    g_list_free_full(l->pending, (GDestroyNotify)link_pending_free);
    colo_tls_creds_unref(l->tls_creds);
    g_free(l->last_refusal);
    if (l->retry) {
        g_source_remove(l->retry);
    }
    if (l->lwatch) {
        g_source_remove(l->lwatch);
    }
    if (l->lfd >= 0) {
        close(l->lfd);
    }
    frame_decoder_free(l->dec);
    g_byte_array_unref(l->out);
    colo_peer_filter_free(l->peer);
    g_free(l->host);
    g_free(l->port);
    g_free(l);
}

bool link_is_up(const ProxyLink *l)
{
    return l->fd >= 0;
}

uint16_t link_port(const ProxyLink *l)
{
    return l->bound_port;
}

/* The frames queued by reference go into @out after what it holds. */
static void link_copy_refs(ProxyLink *l)
{
    for (unsigned int i = 0; i < l->n_refs; i++) {
        g_byte_array_append(l->out, l->refs[i].hdr, FRAME_HDR_LEN);
        g_byte_array_append(l->out, l->refs[i].data, (guint)l->refs[i].len);
    }
    l->n_refs = 0;
    l->ref_bytes = 0;
}

static bool link_may_queue(ProxyLink *l, size_t len)
{
    if (l->fd < 0) {
        l->stats.dropped_down++;
        return false;
    }
    if (len > FRAME_MAX_PAYLOAD || l->out->len - l->out_off + l->ref_bytes + len > LINK_OUT_MAX) {
        l->stats.dropped_full++;
        return false;
    }
    l->stats.sent++;
    return true;
}

bool link_queue(ProxyLink *l, enum frame_type type, uint32_t epoch, const uint8_t *data, size_t len)
{
    uint8_t hdr[FRAME_HDR_LEN];

    if (!link_may_queue(l, len)) {
        return false;
    }
    link_copy_refs(l);   /* frames keep their order */
    frame_header_write(hdr, type, epoch, (uint32_t)len);
    g_byte_array_append(l->out, hdr, sizeof(hdr));
    g_byte_array_append(l->out, data, (guint)len);
    return true;
}

bool link_queue_ref(ProxyLink *l, enum frame_type type, uint32_t epoch, const uint8_t *data, size_t len)
{
    struct link_ref *r;

    if (!link_may_queue(l, len)) {
        return false;
    }
    if (l->n_refs == LINK_REFS_MAX) {
        link_copy_refs(l);
    }
    r = &l->refs[l->n_refs++];
    frame_header_write(r->hdr, type, epoch, (uint32_t)len);
    r->data = data;
    r->len = len;
    l->ref_bytes += len;
    return true;
}

/* Write the frames queued by reference straight from their memory; what
 * the socket does not take is copied into @out for the write watch. */
static void link_write_refs(ProxyLink *l)
{
    struct iovec iov[2 * LINK_REFS_MAX];
    unsigned int n = 0, first = 0;

    for (unsigned int i = 0; i < l->n_refs; i++) {
        iov[n++] = (struct iovec){ l->refs[i].hdr, FRAME_HDR_LEN };
        iov[n++] = (struct iovec){ (void *)l->refs[i].data, l->refs[i].len };
    }
    l->n_refs = 0;
    l->ref_bytes = 0;
    for (;;) {
        struct msghdr msg = { 0 };
        ssize_t w;

        while (first < n && !iov[first].iov_len) {
            first++;
        }
        if (first == n) {
            return;
        }
        msg.msg_iov = iov + first;
        msg.msg_iovlen = n - first;
        w = sendmsg(l->fd, &msg, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0 && errno != EAGAIN) {
            link_down(l, g_strerror(errno));
            return;
        }
        for (size_t done = w > 0 ? (size_t)w : 0; done && first < n;) {
            size_t take = MIN(done, iov[first].iov_len);

            iov[first].iov_base = (uint8_t *)iov[first].iov_base + take;
            iov[first].iov_len -= take;
            done -= take;
            if (!iov[first].iov_len) {
                first++;
            }
        }
        if (w < 0) {
            for (; first < n; first++) {
                g_byte_array_append(l->out, iov[first].iov_base, (guint)iov[first].iov_len);
            }
            l->wwatch = g_unix_fd_add(l->fd, G_IO_OUT, link_on_write, l);
            return;
        }
    }
}

void link_push(ProxyLink *l)
{
    if (l->fd < 0) {
        l->n_refs = 0;
        l->ref_bytes = 0;
        return;
    }
    /* Behind bytes a write watch waits to send, or through TLS: copied. */
    if (l->n_refs && (l->wwatch || l->tls || l->out_off < l->out->len)) {
        link_copy_refs(l);
    }
    if (l->n_refs) {
        l->stats.writes++;
        link_write_refs(l);
        return;
    }
    /* A pending write watch flushes when the socket has room again. */
    if (!l->wwatch && l->out_off < l->out->len) {
        l->stats.writes++;
        link_flush(l);
    }
}

bool link_send(ProxyLink *l, enum frame_type type, uint32_t epoch, const uint8_t *data, size_t len)
{
    /* Write at once: latency matters more than syscalls here (every held
     * packet waits for this). Bursts use link_queue() and link_push(). */
    if (!link_queue(l, type, epoch, data, len)) {
        return false;
    }
    link_push(l);
    return l->fd >= 0;
}

void link_stats(const ProxyLink *l, struct link_stats *out)
{
    *out = l->stats;
    frame_decoder_stats(l->dec, &out->rx);
    out->refused = colo_peer_filter_refused(l->peer);
}
