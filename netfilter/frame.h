/* The link between the primary's and the secondary's colo-proxy: frames
 * over one TCP connection. Every frame carries the checkpoint epoch it
 * belongs to, so that output produced before a checkpoint is never compared
 * against the state after it.
 *
 *   0      2        3      4          8           12
 *   | magic | version | type | epoch   | length    | payload (length bytes)
 *   'C''P'     1                 (all big-endian)
 *
 * A bad magic, version or length cannot be resynchronised: the link is
 * closed and reconnected. An unknown type with a sane length is skipped. */
#ifndef COLO_NETFILTER_FRAME_H
#define COLO_NETFILTER_FRAME_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FRAME_MAGIC 0x4350u
#define FRAME_VERSION 1
#define FRAME_HDR_LEN 12
/* A GSO super-packet plus its Ethernet header fits. */
#define FRAME_MAX_PAYLOAD (256u * 1024u)

enum frame_type {
    FRAME_HELLO = 1,    /* payload: role byte, then nothing */
    FRAME_MIRROR = 2,   /* primary -> secondary: Ethernet frame for the guest */
    FRAME_OUTPUT = 3,   /* secondary -> primary: Ethernet frame the guest sent */
    FRAME_EPOCH = 4,    /* secondary -> primary: it committed a checkpoint and is now in this epoch (no payload) */
    FRAME_CARRY = 5,    /* primary -> secondary: its carried flows (carry.h's JSON), for a takeover */
    FRAME_PING = 6,     /* primary -> secondary: 4-byte sequence (0 at link up; proxy-fence.c) */
    FRAME_PONG = 7,     /* secondary -> primary: the same 4 bytes, then 0 (a secondary) or 1 (took over) */
    FRAME_SERVING = 8,  /* secondary -> primary: it took over and the clients reach it now (no payload) */
    FRAME_PRIMARY_LOST = 9, /* secondary -> primary: its colo-vmm lost the primary; release nothing more on its copies */
};

#define FRAME_ERROR frame_error_quark()
GQuark frame_error_quark(void);
enum frame_error_code {
    FRAME_ERROR_MAGIC,
    FRAME_ERROR_VERSION,
    FRAME_ERROR_LENGTH,
    FRAME_ERROR_TRUNCATED,
};

struct frame {
    uint8_t type;
    uint32_t epoch;
    uint32_t len;
    const uint8_t *payload;   /* valid until the next decoder call */
};

struct frame_stats {
    uint64_t frames;
    uint64_t bytes;
    uint64_t unknown_type;
    uint64_t bad_header;      /* magic, version or length */
    uint64_t truncated;       /* the peer went away mid-frame */
};

typedef struct frame_decoder FrameDecoder;

FrameDecoder *frame_decoder_new(void);
void frame_decoder_free(FrameDecoder *d);

/* Append bytes read from the link. */
void frame_decoder_feed(FrameDecoder *d, const uint8_t *data, size_t len);

/* Room for @len bytes at the end of the buffered stream, to read into
 * directly (no copy); then frame_decoder_commit() with the count read. */
uint8_t *frame_decoder_reserve(FrameDecoder *d, size_t len);
void frame_decoder_commit(FrameDecoder *d, size_t n);

/* Take the next complete frame. Returns 1 and fills @out, 0 if more bytes
 * are needed, -1 with @error set if the stream is broken (close it).
 * Unknown types are counted, logged and skipped. */
int frame_decoder_next(FrameDecoder *d, struct frame *out, GError **error);

/* The link closed: true if it ended cleanly between frames; else counts
 * and sets @error. Resets the decoder for a new connection. */
bool frame_decoder_eof(FrameDecoder *d, GError **error);

void frame_decoder_stats(const FrameDecoder *d, struct frame_stats *out);

/* Write the header for a frame into @hdr. */
void frame_header_write(uint8_t hdr[FRAME_HDR_LEN], enum frame_type type, uint32_t epoch, uint32_t len);

#endif
