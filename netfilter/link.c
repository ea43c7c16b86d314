#include "config.h"

#include "link.h"

#include "common/peer-filter.h"

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
#define LINK_RECONNECT_MS 500
#define LINK_READ_SIZE (256 * 1024)

struct proxy_link {
    struct link_callbacks cb;
    char *host, *port;
    bool listening;
    ColoPeerFilter *peer;      /* the only source accepted, or NULL */
    int lfd;                   /* listening socket, or -1 */
    int fd;                    /* the peer, or -1 */
    guint lwatch, rwatch, wwatch, retry;
    uint16_t bound_port;
    FrameDecoder *dec;
    GByteArray *out;
    size_t out_off;
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

static gboolean link_on_read(gint fd, GIOCondition cond, gpointer data)
{
    ProxyLink *l = data;
    GError *err = NULL;
    struct frame f;
    ssize_t n;
    int r;

    /* A few reads per wakeup keep the other sources served. */
    for (int i = 0; i < 8; i++) {
        /* Straight into the decoder's buffer: frames are handed out from
         * there, never copied in user space. */
        n = read(fd, frame_decoder_reserve(l->dec, LINK_READ_SIZE), LINK_READ_SIZE);
        frame_decoder_commit(l->dec, n > 0 ? (size_t)n : 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            break;
        }
        if (n <= 0) {
            if (!frame_decoder_eof(l->dec, &err)) {
                qb_log(LOG_WARNING, "link: %s", err->message);
                g_clear_error(&err);
            }
            l->rwatch = 0;
            link_down(l, n == 0 ? "peer closed the connection" : strerror(errno));
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
        if ((size_t)n < LINK_READ_SIZE) {
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
        ssize_t n = write(l->fd, l->out->data + l->out_off, l->out->len - l->out_off);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            if (!l->wwatch) {
                l->wwatch = g_unix_fd_add(l->fd, G_IO_OUT, link_on_write, l);
            }
            break;
        }
        if (n < 0) {
            link_down(l, strerror(errno));
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

static void link_up(ProxyLink *l, int fd)
{
    int one = 1;
    uint8_t hello[FRAME_HDR_LEN + 1];

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    link_set_nonblock(fd);
    l->fd = fd;
    l->stats.connects++;
    l->rwatch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, link_on_read, l);
    qb_log(LOG_NOTICE, "link up");
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
    g_byte_array_set_size(l->out, 0);
    l->out_off = 0;
    frame_decoder_eof(l->dec, NULL);
    if (!l->listening) {
        link_schedule_connect(l);
    }
    l->cb.state(l->cb.opaque, false);
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
    /* A new peer replaces the old one (it reconnected). */
    link_down(l, "peer reconnected");
    link_up(l, c);
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
            rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
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

static gboolean link_on_retry(gpointer data)
{
    ProxyLink *l = data;
    GError *err = NULL;
    int fd = link_socket(l->host, l->port, false, &err);

    if (fd < 0) {
        qb_log(LOG_DEBUG, "link: %s", err->message);
        g_error_free(err);
        return G_SOURCE_CONTINUE;
    }
    l->retry = 0;
    link_up(l, fd);
    return G_SOURCE_REMOVE;
}

static void link_schedule_connect(ProxyLink *l)
{
    if (!l->retry) {
        l->retry = g_timeout_add(LINK_RECONNECT_MS, link_on_retry, l);
    }
}

ProxyLink *link_new(const char *listen_on, const char *connect_to, const char *peer, const struct link_callbacks *cb,
                    GError **error)
{
    ProxyLink *l = g_new0(ProxyLink, 1);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    l->cb = *cb;
    l->fd = -1;
    l->lfd = -1;
    l->dec = frame_decoder_new();
    l->out = g_byte_array_new();
    l->listening = listen_on != NULL;
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
        if (link_on_retry(l) == G_SOURCE_CONTINUE) {
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

bool link_queue(ProxyLink *l, enum frame_type type, uint32_t epoch, const uint8_t *data, size_t len)
{
    uint8_t hdr[FRAME_HDR_LEN];

    if (l->fd < 0) {
        l->stats.dropped_down++;
        return false;
    }
    if (len > FRAME_MAX_PAYLOAD || l->out->len - l->out_off + len > LINK_OUT_MAX) {
        l->stats.dropped_full++;
        return false;
    }
    frame_header_write(hdr, type, epoch, (uint32_t)len);
    g_byte_array_append(l->out, hdr, sizeof(hdr));
    g_byte_array_append(l->out, data, (guint)len);
    l->stats.sent++;
    return true;
}

void link_push(ProxyLink *l)
{
    /* A pending write watch flushes when the socket has room again. */
    if (l->fd >= 0 && !l->wwatch && l->out_off < l->out->len) {
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
