/* libFuzzer target: the inter-host frame decoder, fed in pieces whose
 * sizes come from the input itself. */
#include "config.h"

#include "frame.h"

#include <glib.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FrameDecoder *d = frame_decoder_new();
    size_t off = 0;

    while (off < size) {
        size_t chunk = (size_t)data[off] % 64 + 1;
        struct frame f;
        GError *err = NULL;
        int r;

        off++;
        if (chunk > size - off) {
            chunk = size - off;
        }
        frame_decoder_feed(d, data + off, chunk);
        off += chunk;
        while ((r = frame_decoder_next(d, &f, &err)) == 1) {
            volatile uint8_t sink = f.len ? f.payload[f.len - 1] : 0;

            (void)sink;
        }
        if (r < 0) {
            g_error_free(err);
            break;
        }
    }
    frame_decoder_eof(d, NULL);
    frame_decoder_free(d);
    return 0;
}
