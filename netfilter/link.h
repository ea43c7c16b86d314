/* The TCP connection between the two colo-proxies, carrying frames (see
 * frame.h). One side listens, the other connects and reconnects every
 * half second while the link is down. Optionally TLS (common/tls.h): then
 * a connection becomes the link only once its handshake has succeeded, so
 * a peer without a certificate our CA signed never replaces the real one.
 * Runs in the GLib main loop. */
#ifndef COLO_NETFILTER_LINK_H
#define COLO_NETFILTER_LINK_H

#include "frame.h"

#include <glib.h>
#include <stdbool.h>

typedef struct proxy_link ProxyLink;

struct link_callbacks {
    void (*frame)(void *opaque, const struct frame *frame);
    void (*state)(void *opaque, bool up);
    /* After the frames of one read burst (may be NULL): the place to
     * flush work batched per frame. */
    void (*burst_done)(void *opaque);
    void *opaque;
};

struct link_stats {
    uint64_t sent;
    uint64_t dropped_down;     /* frames not sent: no peer */
    uint64_t dropped_full;     /* frames not sent: the peer reads too slowly */
    uint64_t connects;
    uint64_t writes;           /* link_push() calls that wrote: frames per write = sent / writes */
    uint64_t refused;          /* connections from an address other than the peer's */
    uint64_t tls_refused;      /* connections whose TLS handshake failed */
    struct frame_stats rx;
};

/* @listen: "ADDR:PORT" to accept the peer on; else @connect: "HOST:PORT".
 * With @listen, @peer (a numeric IPv4 or IPv6 address, or NULL for any)
 * is the only source accepted: a connection from elsewhere is closed at
 * once, counted and logged (rate-limited per source), and leaves the
 * established link alone. Without it any client replaces the link. */
struct ColoTlsCreds;
/* @tls: credentials of the server (@listen) or client (@connect) endpoint,
 * or NULL for plain TCP. A client checks the server's certificate against
 * @connect's host. */
ProxyLink *link_new(const char *listen, const char *connect, const char *peer, struct ColoTlsCreds *tls,
                    const struct link_callbacks *cb, GError **error);
void link_free(ProxyLink *l);

bool link_is_up(const ProxyLink *l);

/* Queue one frame and write it at once; false (and counted) if the link
 * is down or its buffer full. */
bool link_send(ProxyLink *l, enum frame_type type, uint32_t epoch, const uint8_t *data, size_t len);

/* Queue one frame without writing it: a burst of frames then goes out in
 * one write (one TCP segment, one wakeup of the peer) at link_push(). */
bool link_queue(ProxyLink *l, enum frame_type type, uint32_t epoch, const uint8_t *data, size_t len);
/* The same without copying @data, which must stay as it is until
 * link_push(): that writes it from there (a 64 KiB GSO frame is copied
 * once, into the kernel). */
bool link_queue_ref(ProxyLink *l, enum frame_type type, uint32_t epoch, const uint8_t *data, size_t len);
void link_push(ProxyLink *l);

/* The port actually bound (for "ADDR:0" in tests). */
uint16_t link_port(const ProxyLink *l);

void link_stats(const ProxyLink *l, struct link_stats *out);

/* Split "HOST:PORT" or "[V6]:PORT". */
bool link_parse_hostport(const char *s, char **host, char **port, GError **error);

#endif
