#include "config.h"

#include "frame.h"
#include "packet.h"

#include <qb/qblog.h>
#include <string.h>

G_DEFINE_QUARK(colo-frame-error-quark, frame_error)

struct frame_decoder {
    GByteArray *buf;
    size_t consumed;          /* bytes of buf already handed out */
    size_t reserved_at;       /* where frame_decoder_reserve's room starts */
    bool broken;              /* a bad header was seen: the rest is noise */
    struct frame_stats stats;
};

FrameDecoder *frame_decoder_new(void)
{
    FrameDecoder *d = g_new0(FrameDecoder, 1);

    d->buf = g_byte_array_new();
    return d;
}

void frame_decoder_free(FrameDecoder *d)
{
    if (d) {
        g_byte_array_unref(d->buf);
        g_free(d);
    }
}

uint8_t *frame_decoder_reserve(FrameDecoder *d, size_t len)
{
    /* Drop what was handed out before growing: keeps the buffer at about
     * one frame plus one read. */
    if (d->consumed) {
        g_byte_array_remove_range(d->buf, 0, (guint)d->consumed);
        d->consumed = 0;
    }
    d->reserved_at = d->buf->len;
    g_byte_array_set_size(d->buf, (guint)(d->reserved_at + len));
    return d->buf->data + d->reserved_at;
}

void frame_decoder_commit(FrameDecoder *d, size_t n)
{
    g_byte_array_set_size(d->buf, (guint)(d->reserved_at + n));
}

void frame_decoder_feed(FrameDecoder *d, const uint8_t *data, size_t len)
{
    memcpy(frame_decoder_reserve(d, len), data, len);
    frame_decoder_commit(d, len);
}

static bool frame_type_known(uint8_t type)
{
    return type >= FRAME_HELLO && type <= FRAME_PRIMARY_LOST;
}

int frame_decoder_next(FrameDecoder *d, struct frame *out, GError **error)
{
    for (;;) {
        const uint8_t *p = d->buf->data + d->consumed;
        size_t avail = d->buf->len - d->consumed;
        uint32_t len;

        if (avail < FRAME_HDR_LEN) {
            return 0;
        }
        if (d->broken) {
            g_set_error(error, FRAME_ERROR, FRAME_ERROR_MAGIC, "stream already broken");
            return -1;
        }
        if (pkt_get16(p) != FRAME_MAGIC) {
            d->stats.bad_header++;
            d->broken = true;
            g_set_error(error, FRAME_ERROR, FRAME_ERROR_MAGIC, "bad frame magic 0x%04x", pkt_get16(p));
            return -1;
        }
        if (p[2] != FRAME_VERSION) {
            d->stats.bad_header++;
            d->broken = true;
            g_set_error(error, FRAME_ERROR, FRAME_ERROR_VERSION, "frame version %u, expected %u", p[2],
                        FRAME_VERSION);
            return -1;
        }
        len = pkt_get32(p + 8);
        if (len > FRAME_MAX_PAYLOAD) {
            d->stats.bad_header++;
            d->broken = true;
            g_set_error(error, FRAME_ERROR, FRAME_ERROR_LENGTH, "frame length %u above the limit of %u", len,
                        FRAME_MAX_PAYLOAD);
            return -1;
        }
        if (avail < FRAME_HDR_LEN + (size_t)len) {
            return 0;
        }
        d->consumed += FRAME_HDR_LEN + len;
        if (!frame_type_known(p[3])) {
            d->stats.unknown_type++;
            qb_log(LOG_WARNING, "skipping frame of unknown type %u (%u bytes)", p[3], len);
            continue;
        }
        d->stats.frames++;
        d->stats.bytes += len;
        out->type = p[3];
        out->epoch = pkt_get32(p + 4);
        out->len = len;
        out->payload = p + FRAME_HDR_LEN;
        return 1;
    }
}

bool frame_decoder_eof(FrameDecoder *d, GError **error)
{
    size_t left = d->buf->len - d->consumed;
    bool broken = d->broken;

    g_byte_array_set_size(d->buf, 0);
    d->consumed = 0;
    d->broken = false;
    if (left == 0 || broken) {
        return true;
    }
    d->stats.truncated++;
    g_set_error(error, FRAME_ERROR, FRAME_ERROR_TRUNCATED, "peer closed the link mid-frame (%zu bytes left)",
                left);
    return false;
}

void frame_decoder_stats(const FrameDecoder *d, struct frame_stats *out)
{
    *out = d->stats;
}

void frame_header_write(uint8_t hdr[FRAME_HDR_LEN], enum frame_type type, uint32_t epoch, uint32_t len)
{
    pkt_put16(hdr, FRAME_MAGIC);
    hdr[2] = FRAME_VERSION;
    hdr[3] = (uint8_t)type;
    pkt_put32(hdr + 4, epoch);
    pkt_put32(hdr + 8, len);
}
