/* A migration byte stream over one socket: buffered big-endian writes and
 * reads with a sticky error (write, flush, then check once), guest pages
 * sent straight from guest memory with writev, an optional rate limit, and
 * a shutdown that unblocks a thread stuck in I/O (cancel, link loss). */
#ifndef COLO_VMM_MIGRATION_CHANNEL_H
#define COLO_VMM_MIGRATION_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <glib.h>

typedef struct MigChannel MigChannel;
struct ColoTlsCreds;

/* Takes ownership of @fd (a connected socket or pipe). */
MigChannel *mig_channel_new(int fd);
/* TLS on a fresh channel: the handshake (blocking), then every byte goes
 * through the session. @hostname: see colo_tls_session_new(). */
bool mig_channel_start_tls(MigChannel *c, struct ColoTlsCreds *creds, const char *hostname, GError **error);
/* A second channel on the same connection (its own fd, the same TLS
 * session): one side reads the return path while the other writes. */
MigChannel *mig_channel_dup(MigChannel *c, GError **error);
/* The peer's certificate subject, or NULL without TLS. */
const char *mig_channel_tls_peer(const MigChannel *c);
/* The protocol and cipher chosen, or NULL without TLS. */
const char *mig_channel_tls_desc(const MigChannel *c);
void mig_channel_free(MigChannel *c);
int mig_channel_fd(const MigChannel *c);

/* Make every blocked or future operation fail with @err (ECANCELED for a
 * cancel); safe from any thread. */
void mig_channel_shutdown(MigChannel *c, int err);

/* 0 or the first -errno seen (EPIPE/ECONNRESET for a broken link, EIO for
 * a truncated stream, EINVAL for a malformed one set by the parser). */
int mig_channel_error(const MigChannel *c);
void mig_channel_set_error(MigChannel *c, int err);

/* ---- writing (one thread) ---- */
void mig_put_u8(MigChannel *c, uint8_t v);
void mig_put_be16(MigChannel *c, uint16_t v);
void mig_put_be32(MigChannel *c, uint32_t v);
void mig_put_be64(MigChannel *c, uint64_t v);
void mig_put_bytes(MigChannel *c, const void *data, size_t len);
/* Send @len bytes from @data without copying: @data must stay unchanged
 * until the next flush (guest pages while the source keeps running are
 * fine: a page written meanwhile is dirty and goes again). */
void mig_put_bytes_ref(MigChannel *c, const void *data, size_t len);
/* Send everything queued; returns mig_channel_error(). */
int mig_flush(MigChannel *c);
/* mig_flush, then wait until the peer's kernel has acknowledged every byte
 * (the socket's send queue is empty; at once for a pipe); returns
 * mig_channel_error(), which a shutdown sets to end the wait. */
int mig_drain(MigChannel *c);

/* Bytes per second, 0 = unlimited; applies to what is flushed from now on. */
void mig_set_rate_limit(MigChannel *c, uint64_t bytes_per_second);
uint64_t mig_bytes_written(const MigChannel *c);

/* ---- reading (one thread) ---- */
uint8_t mig_get_u8(MigChannel *c);
uint16_t mig_get_be16(MigChannel *c);
uint32_t mig_get_be32(MigChannel *c);
uint64_t mig_get_be64(MigChannel *c);
/* Exactly @len bytes into @buf, or the error is set (and @buf zeroed). */
void mig_get_bytes(MigChannel *c, void *buf, size_t len);
uint64_t mig_bytes_read(const MigChannel *c);

#endif
