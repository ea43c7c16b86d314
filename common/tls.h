/* TLS with X.509 certificates over a connected socket (GnuTLS), for the
 * replication stream (colo-vmm) and the proxy link (colo-proxy).
 *
 * Credentials come from a directory in QEMU's tls-creds-x509 layout:
 * ca-cert.pem (the CA that signs both peers), server-cert.pem and
 * server-key.pem for the listening side, client-cert.pem and
 * client-key.pem for the connecting side, ca-crl.pem if present.
 * A peer's certificate must chain to ca-cert.pem (both directions when
 * verify-peer is on); a client also checks the server's name or address
 * against the certificate when it knows it. There is no fallback to
 * plaintext: a failed handshake is a refused connection. */
#ifndef COLO_COMMON_TLS_H
#define COLO_COMMON_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <glib.h>

typedef struct ColoTlsCreds ColoTlsCreds;
typedef struct ColoTlsSession ColoTlsSession;

/* Loads the files of @dir for the @server (listening) or client endpoint.
 * @priority: a GnuTLS priority string, NULL for "NORMAL". Refcounted. */
ColoTlsCreds *colo_tls_creds_new(const char *dir, bool server, bool verify_peer, const char *priority,
                                 GError **error);
ColoTlsCreds *colo_tls_creds_ref(ColoTlsCreds *creds);
void colo_tls_creds_unref(ColoTlsCreds *creds);
bool colo_tls_creds_is_server(const ColoTlsCreds *creds);
const char *colo_tls_creds_dir(const ColoTlsCreds *creds);

/* A session on @fd (the session keeps its own duplicate of it, so it
 * outlives the caller's close). @hostname (client only, may be NULL): the
 * name or address the server's certificate must carry. Refcounted: one
 * session may serve a reading and a writing thread at once. */
ColoTlsSession *colo_tls_session_new(ColoTlsCreds *creds, int fd, const char *hostname, GError **error);
ColoTlsSession *colo_tls_session_ref(ColoTlsSession *s);
void colo_tls_session_unref(ColoTlsSession *s);

/* The whole handshake on a blocking socket (its SO_RCVTIMEO, if any,
 * bounds each wait). false with @error naming what the peer failed. */
bool colo_tls_handshake(ColoTlsSession *s, GError **error);

/* One step on a non-blocking socket: 1 done, 0 call again once the socket
 * is ready for colo_tls_wants_write() ? writing : reading, -1 failed. */
int colo_tls_handshake_step(ColoTlsSession *s, GError **error);
bool colo_tls_wants_write(const ColoTlsSession *s);

/* The peer's certificate subject (after the handshake), for logs. */
const char *colo_tls_peer_name(const ColoTlsSession *s);
/* What the handshake chose, e.g. "(TLS1.3)-(ECDHE-SECP256R1)-(ECDSA-SECP256R1-SHA256)-(AES-256-GCM)". */
const char *colo_tls_desc(const ColoTlsSession *s);

/* Hot path. Bytes sent, or -EAGAIN (non-blocking socket full: call again
 * with the same bytes), or -errno. Only part of @len may go. */
ssize_t colo_tls_send(ColoTlsSession *s, const void *buf, size_t len);
/* Batch several sends into full records until colo_tls_uncork(), which
 * sends them (blocking socket); returns 0 or -errno. */
void colo_tls_cork(ColoTlsSession *s);
int colo_tls_uncork(ColoTlsSession *s);
/* Bytes read, 0 at the peer's end of stream, -EAGAIN, or -errno (EPROTO
 * for a TLS error, EIO for a stream cut without TLS's close). */
ssize_t colo_tls_recv(ColoTlsSession *s, void *buf, size_t len);
/* Decrypted bytes held inside the session: readable without the socket
 * becoming readable again. */
size_t colo_tls_pending(ColoTlsSession *s);
/* The last TLS error in words (after -EPROTO), or NULL. */
const char *colo_tls_last_error(const ColoTlsSession *s);

#endif
