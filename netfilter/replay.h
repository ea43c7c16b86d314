/* The secondary guest's recent TCP output, sent again when the secondary
 * takes over (docs/colo-proxy.md, "Takeover").
 *
 * A secondary colo-proxy copies its guest's output to the primary and
 * drops it. The primary releases its own guest's copy once the two agree;
 * what it still held when it died is lost, and the client gets those bytes
 * only when the guest retransmits them (its RTO: 200 ms or more, doubled
 * on each try) or when the client's own retransmission draws an answer.
 * The secondary's guest sent the same segments since the last checkpoint:
 * sending them once more at the takeover hands the client at once what the
 * guest would retransmit anyway.
 *
 * Kept: TCP segments carrying data, SYN or FIN, as rewritten into the
 * primary's numbers. Sent: those the client has not acknowledged (its
 * acknowledgements reach the secondary mirrored), each sequence range
 * once. A TCP receiver drops bytes it already has, so the odd one the
 * primary did release does no harm; but a burst of them would draw as many
 * duplicate ACKs, which a slow guest must all process. A UDP answer or a
 * RST sent twice would do harm, so they are not kept, except datagrams
 * after `primary-lost` (replay_keep_datagram), which cannot have gone out
 * before. */
#ifndef COLO_NETFILTER_REPLAY_H
#define COLO_NETFILTER_REPLAY_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct output_replay OutputReplay;

/* Keeps at most @max_bytes of frames, the newest: the oldest are the
 * likeliest to have been released by the primary already. */
OutputReplay *replay_new(size_t max_bytes);
void replay_free(OutputReplay *r);

/* @buf: virtio_net_hdr + Ethernet frame as the guest sent it (after the
 * rewriter). Copied if it is a segment worth sending again. */
void replay_keep(OutputReplay *r, const uint8_t *buf, size_t len);

/* Gives @buf up to the replay (capture_take(): a block of at least the
 * frame's length that g_realloc() and g_free() take), or returns NULL. */
typedef uint8_t *(*replay_take_fn)(void *opaque, uint8_t *buf);

/* replay_keep() for a frame whose buffer the caller can give up: a large
 * one kept is taken through @take instead of copied. */
void replay_keep_take(OutputReplay *r, uint8_t *buf, size_t len, replay_take_fn take, void *opaque);

/* @frame: an Ethernet frame from the client on its way into the guest,
 * before the rewriter (in the primary's numbers, as the kept ones are):
 * what it acknowledges is not sent again. */
void replay_note_input(OutputReplay *r, const uint8_t *frame, size_t len);

/* A datagram (UDP, ICMP, ICMPv6; @buf as for replay_keep) the guest sent
 * after its secondary lost the primary (`primary-lost`): from then on the
 * primary's proxy releases nothing on the secondary's copies, so nothing
 * of it reached the client, and the takeover sends it once. (Before that
 * point a datagram may have gone out as the primary's, and one sent twice
 * would do harm: never kept.) Copied; GSO frames and fragments are not. */
void replay_keep_datagram(OutputReplay *r, const uint8_t *buf, size_t len);

/* A checkpoint: the guest now runs from the primary's state, and what it
 * sent before is released or superseded. */
void replay_clear(OutputReplay *r);

/* Called with each IP packet (no link-layer header): one segment of at
 * most the frame's GSO size, IPv4 header and TCP checksums complete.
 * Returns false if it was not sent. */
typedef bool (*replay_send_fn)(void *opaque, const uint8_t *ip, size_t len);

/* Sends every kept frame, in the order the guest sent them, then forgets
 * them. Returns the packets sent. */
unsigned int replay_flush(OutputReplay *r, replay_send_fn send, void *opaque);

struct replay_stats {
    uint64_t kept;          /* frames kept */
    uint64_t evicted;       /* pushed out by newer ones (or larger than the whole budget) */
    uint64_t cleared;       /* forgotten at checkpoints */
    uint64_t frames_sent;   /* replayed */
    uint64_t packets_sent;  /* after segmentation */
    uint64_t skipped;       /* segments the client had acknowledged, or sent already in this replay */
    uint64_t send_failed;
    uint64_t datagrams_kept;
    uint64_t datagrams_sent;
    uint32_t held_frames;   /* kept now */
    uint64_t held_bytes;
};
void replay_get_stats(const OutputReplay *r, struct replay_stats *out);

/* A sender over raw IP sockets: this host routes the packets to the
 * client as it would forward the guest's own. Needs CAP_NET_RAW. */
typedef struct replay_raw ReplayRaw;
ReplayRaw *replay_raw_open(GError **error);
/* A replay_send_fn; @opaque is the ReplayRaw. */
bool replay_raw_send(void *opaque, const uint8_t *ip, size_t len);
/* A UDP, ICMP or ICMPv6 packet (@ip, @len bytes) sent with its checksum
 * completed; false for anything else (a fragment too) or a failed send. */
bool replay_raw_send_datagram(ReplayRaw *s, const uint8_t *ip, size_t len);
void replay_raw_close(ReplayRaw *s);

#endif
