/* Frames to and from a guest's interface through an AF_PACKET socket with
 * virtio-net headers, so GSO super-packets and checksum-offload state
 * survive the trip to the other host and back into a guest. Every frame
 * handed out or sent starts with a struct virtio_net_hdr. */
#ifndef COLO_NETFILTER_CAPTURE_H
#define COLO_NETFILTER_CAPTURE_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAPTURE_VNET_LEN 10
/* Frames per receive burst at most. */
#define CAPTURE_BURST_MAX 32

typedef struct proxy_capture ProxyCapture;

struct capture_callbacks {
    /* @buf: virtio_net_hdr then the Ethernet frame; may be changed in
     * place, and stays valid until burst_done returns. @outgoing: sent by
     * this host towards the guest. */
    void (*frame)(void *opaque, uint8_t *buf, size_t len, bool outgoing);
    /* After the frames of one receive burst (may be NULL). */
    void (*burst_done)(void *opaque);
    void *opaque;
};

/* @want_outgoing: deliver frames this host sends to the guest (primary:
 * the client's input); else frames the guest sends (secondary). */
ProxyCapture *capture_open(const char *ifname, bool want_outgoing, const struct capture_callbacks *cb,
                           GError **error);
void capture_close(ProxyCapture *c);

/* Send @buf (virtio_net_hdr + frame) to the guest. */
bool capture_send(ProxyCapture *c, const uint8_t *buf, size_t len);

/* Copy @buf (virtio_net_hdr + frame) into the send batch and return the
 * copy, which the caller may change in place until capture_flush(); NULL
 * (counted as a send error) for a frame larger than the batch. One
 * sendmmsg() sends the batch. */
uint8_t *capture_queue(ProxyCapture *c, const uint8_t *buf, size_t len);
void capture_flush(ProxyCapture *c);

/* Hands the caller @buf, a receive buffer of the burst under way (from
 * the frame callback, until burst_done returns): a block of at least the
 * frame's length to g_free() or g_realloc(); a new one takes its place.
 * Keeping a large frame then costs no copy. NULL if @buf is not one. */
uint8_t *capture_take(ProxyCapture *c, uint8_t *buf);

unsigned int capture_ifindex(const ProxyCapture *c);

/* Deliver every frame the socket holds now (the callbacks run before it
 * returns), e.g. what a guest sent before it was paused. */
void capture_drain(ProxyCapture *c);

struct capture_stats {
    uint64_t frames;
    uint64_t sent;
    uint64_t send_errors;
    uint64_t recv_calls;       /* frames per call = frames / recv_calls */
    uint64_t send_calls;
    uint64_t drops;            /* frames the kernel dropped: socket buffer full */
};
/* Also collects the kernel's drop count (PACKET_STATISTICS, which resets
 * on each read), so a frame lost before we read it is counted. */
void capture_get_stats(ProxyCapture *c, struct capture_stats *out);

/* True if the virtio_net_hdr says the L4 checksum is still partial. */
bool capture_csum_partial(const uint8_t *vnet);

#endif
