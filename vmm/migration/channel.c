#include "config.h"

#include "migration/channel.h"
#include "common/tls.h"

#include <errno.h>
#include <linux/sockios.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHANNEL_BUF_SIZE  (256 * 1024)
#define CHANNEL_MAX_IOV   64
#define RATE_SLICE_US     (100 * 1000)      /* rate limit accounting window */

struct MigChannel {
    int fd;
    ColoTlsSession *tls;        /* NULL: plain bytes on fd */
    gint error;                 /* -errno, atomic: set from other threads on shutdown */

    /* writer: small data is copied into wbuf; iov lists wbuf spans and
     * referenced spans in order */
    uint8_t *wbuf;
    size_t wlen;
    size_t wspan_start;         /* start of the wbuf span not yet in iov */
    struct iovec iov[CHANNEL_MAX_IOV];
    unsigned niov;
    size_t queued;              /* bytes in iov plus the open span */
    uint64_t written;
    uint64_t rate_limit;
    int64_t slice_start;
    uint64_t slice_bytes;

    /* reader */
    uint8_t *rbuf;
    size_t rpos, rlen;
    uint64_t read;
};

MigChannel *mig_channel_new(int fd)
{
    MigChannel *c = g_new0(MigChannel, 1);

    c->fd = fd;
    c->wbuf = g_malloc(CHANNEL_BUF_SIZE);
    c->rbuf = g_malloc(CHANNEL_BUF_SIZE);
    return c;
}

void mig_channel_free(MigChannel *c)
{
    if (!c) {
        return;
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    colo_tls_session_unref(c->tls);
    g_free(c->wbuf);
    g_free(c->rbuf);
    g_free(c);
}

int mig_channel_fd(const MigChannel *c)
{
    return c->fd;
}

bool mig_channel_start_tls(MigChannel *c, ColoTlsCreds *creds, const char *hostname, GError **error)
{
    ColoTlsSession *s = colo_tls_session_new(creds, c->fd, hostname, error);

    if (!s || !colo_tls_handshake(s, error)) {
        colo_tls_session_unref(s);
        return false;
    }
    c->tls = s;
    return true;
}

MigChannel *mig_channel_dup(MigChannel *c, GError **error)
{
    int fd = dup(c->fd);

    if (fd < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "dup: %s", g_strerror(errno));
        return NULL;
    }
    MigChannel *d = mig_channel_new(fd);
    d->tls = c->tls ? colo_tls_session_ref(c->tls) : NULL;
    return d;
}

const char *mig_channel_tls_peer(const MigChannel *c)
{
    return c->tls ? colo_tls_peer_name(c->tls) : NULL;
}

const char *mig_channel_tls_desc(const MigChannel *c)
{
    return c->tls ? colo_tls_desc(c->tls) : NULL;
}

/* The socket or the TLS session under it: bytes or -errno. */
static ssize_t channel_read(MigChannel *c, void *buf, size_t len)
{
    if (c->tls) {
        return colo_tls_recv(c->tls, buf, len);
    }
    ssize_t n = read(c->fd, buf, len);
    return n < 0 ? -errno : n;
}

/* TLS: every span into corked records, sent at once (a page header
 * and its page then share a record rather than take one each). */
static ssize_t channel_writev_tls(MigChannel *c, const struct iovec *iov, unsigned niov)
{
    ssize_t total = 0;

    colo_tls_cork(c->tls);
    for (unsigned i = 0; i < niov; i++) {
        size_t off = 0;
        while (off < iov[i].iov_len) {
            ssize_t n = colo_tls_send(c->tls, (const uint8_t *)iov[i].iov_base + off, iov[i].iov_len - off);
            if (n < 0) {
                colo_tls_uncork(c->tls);
                return n;
            }
            off += (size_t)n;
        }
        total += (ssize_t)iov[i].iov_len;
    }
    int rc = colo_tls_uncork(c->tls);
    return rc < 0 ? rc : total;
}

static ssize_t channel_writev(MigChannel *c, const struct iovec *iov, unsigned niov)
{
    if (c->tls) {
        return channel_writev_tls(c, iov, niov);
    }
    ssize_t n = writev(c->fd, iov, (int)niov);
    return n < 0 ? -errno : n;
}

int mig_channel_error(const MigChannel *c)
{
    return g_atomic_int_get(&c->error);
}

void mig_channel_set_error(MigChannel *c, int err)
{
    g_atomic_int_compare_and_exchange(&c->error, 0, err < 0 ? err : -err);
}

void mig_channel_shutdown(MigChannel *c, int err)
{
    mig_channel_set_error(c, err);
    shutdown(c->fd, SHUT_RDWR);
}

/* ---- writing ----------------------------------------------------------- */

static void channel_close_span(MigChannel *c)
{
    if (c->wlen > c->wspan_start) {
        c->iov[c->niov].iov_base = c->wbuf + c->wspan_start;
        c->iov[c->niov].iov_len = c->wlen - c->wspan_start;
        c->niov++;
        c->wspan_start = c->wlen;
    }
}

static void channel_rate_wait(MigChannel *c, size_t bytes)
{
    if (!c->rate_limit) {
        return;
    }
    int64_t now = g_get_monotonic_time();
    if (now - c->slice_start >= RATE_SLICE_US) {
        c->slice_start = now;
        c->slice_bytes = 0;
    }
    c->slice_bytes += bytes;
    uint64_t allowed = c->rate_limit * RATE_SLICE_US / G_USEC_PER_SEC;
    if (c->slice_bytes > allowed) {
        /* Over budget: sleep for the time the excess takes at the limit. */
        uint64_t excess_us = (c->slice_bytes - allowed) * G_USEC_PER_SEC / c->rate_limit;
        g_usleep(MIN(excess_us + (uint64_t)(c->slice_start + RATE_SLICE_US - now), G_USEC_PER_SEC));
        c->slice_start = g_get_monotonic_time();
        c->slice_bytes = 0;
    }
}

int mig_flush(MigChannel *c)
{
    channel_close_span(c);
    struct iovec *iov = c->iov;
    unsigned niov = c->niov;
    size_t total = c->queued;

    while (niov && !mig_channel_error(c)) {
        ssize_t n = channel_writev(c, iov, niov);
        if (n < 0) {
            if (n == -EINTR) {
                continue;
            }
            mig_channel_set_error(c, (int)n);
            break;
        }
        c->written += (uint64_t)n;
        while (n > 0 && niov) {
            if ((size_t)n >= iov->iov_len) {
                n -= (ssize_t)iov->iov_len;
                iov++;
                niov--;
            } else {
                iov->iov_base = (uint8_t *)iov->iov_base + n;
                iov->iov_len -= (size_t)n;
                n = 0;
            }
        }
    }
    channel_rate_wait(c, total);
    c->niov = 0;
    c->wlen = c->wspan_start = 0;
    c->queued = 0;
    return mig_channel_error(c);
}

int mig_drain(MigChannel *c)
{
    int queued = 0;

    while (!mig_flush(c) && ioctl(c->fd, SIOCOUTQ, &queued) == 0 && queued > 0) {
        g_usleep(500);
    }
    return mig_channel_error(c);
}

void mig_put_bytes(MigChannel *c, const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len) {
        if (c->wlen == CHANNEL_BUF_SIZE || c->niov >= CHANNEL_MAX_IOV - 1) {
            mig_flush(c);
        }
        size_t chunk = MIN(len, CHANNEL_BUF_SIZE - c->wlen);
        memcpy(c->wbuf + c->wlen, p, chunk);
        c->wlen += chunk;
        c->queued += chunk;
        p += chunk;
        len -= chunk;
    }
}

void mig_put_bytes_ref(MigChannel *c, const void *data, size_t len)
{
    if (c->niov >= CHANNEL_MAX_IOV - 2) {
        mig_flush(c);
    }
    channel_close_span(c);
    c->iov[c->niov].iov_base = (void *)data;
    c->iov[c->niov].iov_len = len;
    c->niov++;
    c->queued += len;
    if (c->queued >= CHANNEL_BUF_SIZE) {
        mig_flush(c);
    }
}

void mig_put_u8(MigChannel *c, uint8_t v)
{
    mig_put_bytes(c, &v, 1);
}

void mig_put_be16(MigChannel *c, uint16_t v)
{
    v = GUINT16_TO_BE(v);
    mig_put_bytes(c, &v, 2);
}

void mig_put_be32(MigChannel *c, uint32_t v)
{
    v = GUINT32_TO_BE(v);
    mig_put_bytes(c, &v, 4);
}

void mig_put_be64(MigChannel *c, uint64_t v)
{
    v = GUINT64_TO_BE(v);
    mig_put_bytes(c, &v, 8);
}

void mig_set_rate_limit(MigChannel *c, uint64_t bytes_per_second)
{
    c->rate_limit = bytes_per_second;
    c->slice_start = g_get_monotonic_time();
    c->slice_bytes = 0;
}

uint64_t mig_bytes_written(const MigChannel *c)
{
    return c->written + c->queued;
}

/* ---- reading ----------------------------------------------------------- */

/* Reads at least one byte into rbuf; false on EOF or error. */
static bool channel_fill(MigChannel *c)
{
    c->rpos = c->rlen = 0;
    while (!mig_channel_error(c)) {
        ssize_t n = channel_read(c, c->rbuf, CHANNEL_BUF_SIZE);
        if (n > 0) {
            c->rlen = (size_t)n;
            return true;
        }
        if (n == 0) {
            mig_channel_set_error(c, EIO);      /* stream ended early */
        } else if (n != -EINTR) {
            mig_channel_set_error(c, (int)n);
        }
    }
    return false;
}

void mig_get_bytes(MigChannel *c, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len && !mig_channel_error(c)) {
        if (c->rpos < c->rlen) {
            size_t chunk = MIN(len, c->rlen - c->rpos);
            memcpy(p, c->rbuf + c->rpos, chunk);
            c->rpos += chunk;
            c->read += chunk;
            p += chunk;
            len -= chunk;
        } else if (len >= CHANNEL_BUF_SIZE / 4) {
            /* Large reads (pages) go straight to their destination. */
            ssize_t n = channel_read(c, p, len);
            if (n > 0) {
                c->read += (uint64_t)n;
                p += n;
                len -= (size_t)n;
            } else if (n == 0) {
                mig_channel_set_error(c, EIO);
            } else if (n != -EINTR) {
                mig_channel_set_error(c, (int)n);
            }
        } else {
            channel_fill(c);
        }
    }
    if (len) {
        memset(p, 0, len);
    }
}

uint8_t mig_get_u8(MigChannel *c)
{
    uint8_t v;

    mig_get_bytes(c, &v, 1);
    return v;
}

uint16_t mig_get_be16(MigChannel *c)
{
    uint16_t v;

    mig_get_bytes(c, &v, 2);
    return GUINT16_FROM_BE(v);
}

uint32_t mig_get_be32(MigChannel *c)
{
    uint32_t v;

    mig_get_bytes(c, &v, 4);
    return GUINT32_FROM_BE(v);
}

uint64_t mig_get_be64(MigChannel *c)
{
    uint64_t v;

    mig_get_bytes(c, &v, 8);
    return GUINT64_FROM_BE(v);
}

uint64_t mig_bytes_read(const MigChannel *c)
{
    return c->read;
}
