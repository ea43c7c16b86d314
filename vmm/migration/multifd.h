/* Multifd: bulk RAM over several connections at once, one thread per
 * channel on each side. The main channel carries everything else and a
 * sync marker at each dirty-bitmap sync, so that a page sent twice (two
 * passes, two channels) always lands in order. */
#ifndef COLO_VMM_MIGRATION_MULTIFD_H
#define COLO_VMM_MIGRATION_MULTIFD_H

#include "migration/migration.h"

typedef struct MultifdSend MultifdSend;
typedef struct MultifdRecv MultifdRecv;

/* Source: connect @n channels to @uri and start their threads. */
/* migrate-set-parameters max-bandwidth during the migration: shared out
 * over the channels, as at the start. */
void multifd_send_set_rate_limit(MultifdSend *ms, uint64_t max_bandwidth);

/* @tls, @tls_hostname: as mig_tls_connect() (NULL: no TLS). */
struct ColoTlsCreds;
MultifdSend *multifd_send_new(const char *uri, struct ColoTlsCreds *tls, const char *tls_hostname, unsigned n,
                              uint64_t max_bandwidth, RamStats *stats, GError **error);
/* Stops the threads (after what they hold is sent, unless the channels
 * broke) and closes the channels. */
void multifd_send_free(MultifdSend *ms);
/* Hand every waiting page of @rs to the channels (up to @max_pages; 0 =
 * all); returns pages queued. Blocks while the channels are full. */
uint64_t multifd_send_pass(MultifdSend *ms, RamSave *rs, uint64_t max_pages, const gint *stop);
/* Hand a COLO checkpoint's captured pages to the channels (they read the
 * copies, which must stay until the next multifd_send_sync). False if the
 * channels broke. */
bool multifd_send_capture(MultifdSend *ms, const RamCapture *cap);
/* A sync point: every channel sends a marker after what it holds, the main
 * channel @c says to wait for them; returns once all channels flushed.
 * False if a channel broke. */
bool multifd_send_sync(MultifdSend *ms, MigChannel *c);
uint64_t multifd_send_bytes(MultifdSend *ms);
void multifd_send_shutdown(MultifdSend *ms, int err);

/* Destination */
MultifdRecv *multifd_recv_new(Migration *m);
void multifd_recv_free(MultifdRecv *mr);
/* A connection whose hello said multifd channel @index: runs its loader
 * (on the calling thread) until the channel ends. */
void multifd_recv_channel(MultifdRecv *mr, MigChannel *c, unsigned index);
/* MIG_CMD_MULTIFD_SYNC: wait until @channels channels all reached @seq,
 * then let them go on. */
bool multifd_recv_sync(MultifdRecv *mr, const uint8_t *payload, uint16_t len, GError **error);
void multifd_recv_shutdown(MultifdRecv *mr);
/* Shut the channels and wait until none of them places a page any more. */
void multifd_recv_drain(MultifdRecv *mr);
/* Pages go to @place(@opaque, ...) instead of guest RAM from now on (COLO's
 * RAM cache); NULL: back to guest RAM. */
void multifd_recv_set_place(MultifdRecv *mr, RamPlaceFunc place, void *opaque);

#endif
