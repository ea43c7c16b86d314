#include "config.h"

#include "common/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gio/gio.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

struct ColoTlsCreds {
    gint refs;
    char *dir;
    bool server;
    bool verify_peer;
    gnutls_certificate_credentials_t cred;
    gnutls_priority_t priority;
};

struct ColoTlsSession {
    gint refs;
    ColoTlsCreds *creds;
    gnutls_session_t session;
    int fd;                     /* our own duplicate */
    int io_errno;               /* errno of the last failed socket call */
    bool send_again;            /* the last send said EAGAIN: repeat it */
    bool shaken;                /* GnuTLS's handshake is done; the ack is next */
    char *peer_name;
    char *desc;                 /* protocol, key exchange, cipher */
    char *last_error;
};

static bool tls_file_exists(const char *dir, const char *name, char **path)
{
    *path = g_build_filename(dir, name, NULL);
    return g_file_test(*path, G_FILE_TEST_EXISTS);
}

static bool tls_fail(GError **error, const char *path, int rc)
{
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "TLS credentials: cannot load %s: %s", path,
                gnutls_strerror(rc));
    return false;
}

static bool tls_creds_load(ColoTlsCreds *c, GError **error)
{
    g_autofree char *ca = NULL, *crl = NULL, *cert = NULL, *key = NULL;
    const char *role = c->server ? "server" : "client";
    g_autofree char *cert_name = g_strdup_printf("%s-cert.pem", role);
    g_autofree char *key_name = g_strdup_printf("%s-key.pem", role);
    int rc;

    if (!g_file_test(c->dir, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "TLS credentials: no directory %s", c->dir);
        return false;
    }
    if (tls_file_exists(c->dir, "ca-cert.pem", &ca)) {
        rc = gnutls_certificate_set_x509_trust_file(c->cred, ca, GNUTLS_X509_FMT_PEM);
        if (rc <= 0) {
            return tls_fail(error, ca, rc ? rc : GNUTLS_E_NO_CERTIFICATE_FOUND);
        }
    } else if (c->verify_peer) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "TLS credentials: %s is missing (needed to verify the peer)", ca);
        return false;
    }
    if (tls_file_exists(c->dir, "ca-crl.pem", &crl)) {
        rc = gnutls_certificate_set_x509_crl_file(c->cred, crl, GNUTLS_X509_FMT_PEM);
        if (rc < 0) {
            return tls_fail(error, crl, rc);
        }
    }
    bool have_cert = tls_file_exists(c->dir, cert_name, &cert);
    bool have_key = tls_file_exists(c->dir, key_name, &key);
    /* A client may go without a certificate when the server does not ask
     * for one; a server never. */
    if (have_cert != have_key || (c->server && !have_cert)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "TLS credentials: %s is missing",
                    have_cert ? key : cert);
        return false;
    }
    if (have_cert) {
        rc = gnutls_certificate_set_x509_key_file(c->cred, cert, key, GNUTLS_X509_FMT_PEM);
        if (rc < 0) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "TLS credentials: cannot load %s with %s: %s",
                        cert, key, gnutls_strerror(rc));
            return false;
        }
    }
    return true;
}

ColoTlsCreds *colo_tls_creds_new(const char *dir, bool server, bool verify_peer, const char *priority,
                                 GError **error)
{
    ColoTlsCreds *c = g_new0(ColoTlsCreds, 1);
    const char *err_pos = NULL;
    int rc;

    c->refs = 1;
    c->dir = g_strdup(dir);
    c->server = server;
    c->verify_peer = verify_peer;
    rc = gnutls_certificate_allocate_credentials(&c->cred);
    if (rc < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "TLS: %s", gnutls_strerror(rc));
        colo_tls_creds_unref(c);
        return NULL;
    }
    rc = gnutls_priority_init(&c->priority, priority ? priority : "NORMAL", &err_pos);
    if (rc < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "TLS priority '%s': %s at '%s'",
                    priority, gnutls_strerror(rc), err_pos ? err_pos : "");
        colo_tls_creds_unref(c);
        return NULL;
    }
    if (!tls_creds_load(c, error)) {
        colo_tls_creds_unref(c);
        return NULL;
    }
    return c;
}

ColoTlsCreds *colo_tls_creds_ref(ColoTlsCreds *c)
{
    g_atomic_int_inc(&c->refs);
    return c;
}

void colo_tls_creds_unref(ColoTlsCreds *c)
{
    if (!c || !g_atomic_int_dec_and_test(&c->refs)) {
        return;
    }
    if (c->priority) {
        gnutls_priority_deinit(c->priority);
    }
    if (c->cred) {
        gnutls_certificate_free_credentials(c->cred);
    }
    g_free(c->dir);
    g_free(c);
}

bool colo_tls_creds_is_server(const ColoTlsCreds *c)
{
    return c->server;
}

const char *colo_tls_creds_dir(const ColoTlsCreds *c)
{
    return c->dir;
}

/* ---- the socket under the session --------------------------------------- */

static ssize_t tls_push(gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt)
{
    ColoTlsSession *s = ptr;
    struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
    /* No SIGPIPE for a peer gone: the caller sees EPIPE. */
    ssize_t n = sendmsg(s->fd, &msg, MSG_NOSIGNAL);

    if (n < 0) {
        s->io_errno = errno;
        gnutls_transport_set_errno(s->session, errno);
    }
    return n;
}

static ssize_t tls_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
    ColoTlsSession *s = ptr;
    ssize_t n = recv(s->fd, buf, len, 0);

    if (n < 0) {
        s->io_errno = errno;
        gnutls_transport_set_errno(s->session, errno);
    }
    return n;
}

static int tls_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
    ColoTlsSession *s = ptr;
    struct pollfd p = { .fd = s->fd, .events = POLLIN };
    int rc = poll(&p, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);

    if (rc < 0) {
        gnutls_transport_set_errno(s->session, errno);
    }
    return rc;
}

ColoTlsSession *colo_tls_session_new(ColoTlsCreds *creds, int fd, const char *hostname, GError **error)
{
    ColoTlsSession *s = g_new0(ColoTlsSession, 1);
    int rc;

    s->refs = 1;
    s->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (s->fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "TLS: %s", g_strerror(errno));
        g_free(s);
        return NULL;
    }
    s->creds = colo_tls_creds_ref(creds);
    rc = gnutls_init(&s->session, creds->server ? GNUTLS_SERVER : GNUTLS_CLIENT);
    if (rc == 0) {
        rc = gnutls_priority_set(s->session, creds->priority);
    }
    if (rc == 0) {
        rc = gnutls_credentials_set(s->session, GNUTLS_CRD_CERTIFICATE, creds->cred);
    }
    if (rc < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "TLS: %s", gnutls_strerror(rc));
        colo_tls_session_unref(s);
        return NULL;
    }
    if (creds->verify_peer) {
        if (creds->server) {
            gnutls_certificate_server_set_request(s->session, GNUTLS_CERT_REQUIRE);
        }
        /* Verified inside the handshake, which then fails with the reason. */
        gnutls_session_set_verify_cert(s->session, creds->server ? NULL : hostname, 0);
    }
    gnutls_transport_set_ptr(s->session, s);
    gnutls_transport_set_vec_push_function(s->session, tls_push);
    gnutls_transport_set_pull_function(s->session, tls_pull);
    gnutls_transport_set_pull_timeout_function(s->session, tls_pull_timeout);
    return s;
}

ColoTlsSession *colo_tls_session_ref(ColoTlsSession *s)
{
    g_atomic_int_inc(&s->refs);
    return s;
}

void colo_tls_session_unref(ColoTlsSession *s)
{
    if (!s || !g_atomic_int_dec_and_test(&s->refs)) {
        return;
    }
    if (s->session) {
        gnutls_deinit(s->session);
    }
    close(s->fd);
    colo_tls_creds_unref(s->creds);
    g_free(s->peer_name);
    g_free(s->desc);
    g_free(s->last_error);
    g_free(s);
}

/* ---- handshake -------------------------------------------------------- */

static void tls_note_peer(ColoTlsSession *s)
{
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(s->session, &n);
    gnutls_x509_crt_t crt;
    gnutls_datum_t dn = { NULL, 0 };

    char *desc = gnutls_session_get_desc(s->session);

    s->desc = g_strdup(desc ? desc : "");
    gnutls_free(desc);
    if (!certs || !n || gnutls_x509_crt_init(&crt) < 0) {
        s->peer_name = g_strdup("(no certificate)");
        return;
    }
    if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0 &&
        gnutls_x509_crt_get_dn3(crt, &dn, 0) == 0) {
        s->peer_name = g_strndup((const char *)dn.data, dn.size);
        gnutls_free(dn.data);
    } else {
        s->peer_name = g_strdup("(unreadable certificate)");
    }
    gnutls_x509_crt_deinit(crt);
}

/* Why a handshake failed, in words an operator can act on. */
static void tls_handshake_error(ColoTlsSession *s, int rc, GError **error)
{
    const char *side = s->creds->server ? "client" : "server";

    switch (rc) {
    case GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR: {
        gnutls_datum_t out = { NULL, 0 };
        unsigned status = gnutls_session_get_verify_cert_status(s->session);
        gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                    "TLS: the %s's certificate is refused (CA %s/ca-cert.pem): %s", side, s->creds->dir,
                    out.data ? (const char *)out.data : "not trusted");
        gnutls_free(out.data);
        break;
    }
    case GNUTLS_E_FATAL_ALERT_RECEIVED:
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                    "TLS: the %s refused the handshake: %s", side,
                    gnutls_alert_get_name(gnutls_alert_get(s->session)));
        break;
    case GNUTLS_E_NO_CERTIFICATE_FOUND:
    case GNUTLS_E_CERTIFICATE_REQUIRED:
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED, "TLS: the %s sent no certificate", side);
        break;
    case GNUTLS_E_PREMATURE_TERMINATION:
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                    "TLS: the %s closed the connection during the handshake (does it use TLS, with the same CA?)",
                    side);
        break;
    case GNUTLS_E_AGAIN:
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "TLS: the %s did not complete the handshake in time",
                    side);
        break;
    case GNUTLS_E_PUSH_ERROR:
    case GNUTLS_E_PULL_ERROR:
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(s->io_errno), "TLS handshake: %s",
                    g_strerror(s->io_errno));
        break;
    case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
    case GNUTLS_E_UNSUPPORTED_VERSION_PACKET:
    case GNUTLS_E_UNEXPECTED_PACKET:
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "TLS: the %s does not speak TLS (%s)", side,
                    gnutls_strerror(rc));
        break;
    default:
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "TLS handshake with the %s: %s", side,
                    gnutls_strerror(rc));
    }
}

/* With TLS 1.3 the client's handshake ends before the server has checked
 * the client's certificate: a refusal would only show as a broken stream
 * later. So the server confirms with one byte, and the client waits for
 * it (or for the alert that says why it was refused). */
#define TLS_ACK 0x06

static int tls_ack(ColoTlsSession *s, GError **error)
{
    uint8_t ack = TLS_ACK;
    ssize_t rc;

    if (s->creds->server) {
        do {
            rc = s->send_again ? gnutls_record_send(s->session, NULL, 0) : gnutls_record_send(s->session, &ack, 1);
            s->send_again = rc == GNUTLS_E_AGAIN;
        } while (rc == GNUTLS_E_INTERRUPTED);
    } else {
        do {
            rc = gnutls_record_recv(s->session, &ack, 1);
        } while (rc == GNUTLS_E_INTERRUPTED || rc == GNUTLS_E_WARNING_ALERT_RECEIVED);
    }
    if (rc == GNUTLS_E_AGAIN) {
        return 0;
    }
    if (rc == 1 && ack == TLS_ACK) {
        return 1;
    }
    if (rc >= 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "TLS: the server is not a colo peer (%s)",
                    rc == 0 ? "it closed the connection" : "wrong confirmation");
    } else {
        tls_handshake_error(s, (int)rc, error);
    }
    return -1;
}

int colo_tls_handshake_step(ColoTlsSession *s, GError **error)
{
    int rc;

    if (!s->shaken) {
        do {
            rc = gnutls_handshake(s->session);
        } while (rc < 0 && rc != GNUTLS_E_AGAIN && !gnutls_error_is_fatal(rc));
        if (rc == GNUTLS_E_AGAIN) {
            return 0;
        }
        if (rc < 0) {
            /* GnuTLS sends no alert by itself: tell the peer why. */
            if (rc != GNUTLS_E_PUSH_ERROR && rc != GNUTLS_E_PULL_ERROR && rc != GNUTLS_E_FATAL_ALERT_RECEIVED &&
                rc != GNUTLS_E_PREMATURE_TERMINATION) {
                gnutls_alert_send_appropriate(s->session, rc);
            }
            tls_handshake_error(s, rc, error);
            return -1;
        }
        s->shaken = true;
        tls_note_peer(s);
    }
    return tls_ack(s, error);
}

bool colo_tls_handshake(ColoTlsSession *s, GError **error)
{
    int rc = colo_tls_handshake_step(s, error);

    if (rc == 0) {
        /* A blocking socket said EAGAIN: its receive timeout ran out. */
        tls_handshake_error(s, GNUTLS_E_AGAIN, error);
    }
    return rc == 1;
}

bool colo_tls_wants_write(const ColoTlsSession *s)
{
    return gnutls_record_get_direction(s->session) == 1;
}

const char *colo_tls_peer_name(const ColoTlsSession *s)
{
    return s->peer_name ? s->peer_name : "(none)";
}

const char *colo_tls_desc(const ColoTlsSession *s)
{
    return s->desc ? s->desc : "";
}

/* ---- records ---------------------------------------------------------- */

static ssize_t tls_errno(ColoTlsSession *s, ssize_t rc)
{
    switch (rc) {
    case GNUTLS_E_AGAIN:
        return -EAGAIN;
    case GNUTLS_E_PUSH_ERROR:
    case GNUTLS_E_PULL_ERROR:
        return s->io_errno ? -s->io_errno : -EIO;
    case GNUTLS_E_PREMATURE_TERMINATION:
        return -EIO;
    default:
        g_free(s->last_error);
        s->last_error = g_strdup(gnutls_strerror((int)rc));
        return -EPROTO;
    }
}

ssize_t colo_tls_send(ColoTlsSession *s, const void *buf, size_t len)
{
    ssize_t n;

    do {
        /* GnuTLS keeps the record it could not send; a repeat only pushes it. */
        n = s->send_again ? gnutls_record_send(s->session, NULL, 0) : gnutls_record_send(s->session, buf, len);
        s->send_again = n == GNUTLS_E_AGAIN;
    } while (n == GNUTLS_E_INTERRUPTED);
    return n < 0 ? tls_errno(s, n) : n;
}

void colo_tls_cork(ColoTlsSession *s)
{
    gnutls_record_cork(s->session);
}

int colo_tls_uncork(ColoTlsSession *s)
{
    int rc;

    do {
        rc = gnutls_record_uncork(s->session, GNUTLS_RECORD_WAIT);
    } while (rc == GNUTLS_E_INTERRUPTED || rc == GNUTLS_E_AGAIN);
    return rc < 0 ? (int)tls_errno(s, rc) : 0;
}

ssize_t colo_tls_recv(ColoTlsSession *s, void *buf, size_t len)
{
    ssize_t n;

    do {
        n = gnutls_record_recv(s->session, buf, len);
    } while (n == GNUTLS_E_INTERRUPTED || n == GNUTLS_E_WARNING_ALERT_RECEIVED);
    return n < 0 ? tls_errno(s, n) : n;
}

size_t colo_tls_pending(ColoTlsSession *s)
{
    return gnutls_record_check_pending(s->session);
}

const char *colo_tls_last_error(const ColoTlsSession *s)
{
    return s->last_error;
}
