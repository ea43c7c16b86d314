/* colo-proxy compare engine micro-benchmark: small packets through
 * compare-and-release on one core, no kernel in the way.
 *
 *   proxy-bench-engine [PACKETS]
 *
 * Phase 1 (throughput): 64-byte TCP segments of 64 connections, secondary
 * copy first, then the primary's, so each primary packet is compared and
 * released at once. Phase 2 (latency): the time cmp_primary_add takes to
 * release an already-matched packet, p50/p99. Phase 3: 64-byte UDP
 * datagrams the same way, each different, a commit every 8192 (a
 * checkpoint); a released datagram is also remembered, for a primary whose
 * guest dies (cmp_take_datagrams). Last line: "N kpps" (phase 1). */
#include "config.h"

#include "compare.h"
#include "packet.h"
#include "pktgen.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FLOWS 64
#define PAYLOAD 64

static uint64_t released;

static void on_release(void *opaque, uint64_t handle)
{
    released++;
}

static void on_checkpoint(void *opaque, enum cmp_reason reason)
{
    fprintf(stderr, "unexpected checkpoint request: %s\n", cmp_reason_name(reason));
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    uint64_t packets = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
    struct cmp_params params;
    struct cmp_callbacks cb = { on_release, on_checkpoint, NULL };
    CmpEngine *e;
    uint8_t pkt[FLOWS][256], payload[PAYLOAD];
    size_t len[FLOWS];
    uint32_t seq[FLOWS];
    uint64_t t0, t1, *lat;
    unsigned int nlat = 100000;
    double kpps;

    memset(payload, 0x5a, sizeof(payload));
    cmp_params_init(&params);
    e = cmp_engine_new(&params, &cb);
    cmp_engine_arm(e);
    for (int f = 0; f < FLOWS; f++) {
        seq[f] = (uint32_t)f * 0x10000000u;
    }
    t0 = now_ns();
    for (uint64_t i = 0; i < packets; i++) {
        int f = (int)(i % FLOWS);
        struct pktgen_tcp t = { .src = "10.0.0.2", .dst = "10.0.0.9", .sport = 80, .dport = (uint16_t)(1000 + f),
                                .seq = seq[f], .ack = 1, .flags = PKT_TCP_ACK | PKT_TCP_PSH,
                                .payload = payload, .plen = PAYLOAD };

        /* Building packets is not the engine's cost: build each once per
         * sequence number and reuse the bytes for both copies. */
        len[f] = pktgen_tcp(pkt[f], &t);
        cmp_secondary_add(e, 0, pkt[f], len[f], false, i);
        cmp_primary_add(e, i, pkt[f], len[f], false, i);
        seq[f] += PAYLOAD;
    }
    t1 = now_ns();
    if (released != packets) {
        fprintf(stderr, "released %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT "\n", released, packets);
        return 1;
    }
    kpps = (double)packets / ((double)(t1 - t0) / 1e9) / 1000.0;

    /* Latency of releasing an already-matched packet, including the
     * callback that would mark the NFQUEUE verdict. */
    lat = g_new(uint64_t, nlat);
    for (unsigned int i = 0; i < nlat; i++) {
        int f = (int)(i % FLOWS);
        struct pktgen_tcp t = { .src = "10.0.0.2", .dst = "10.0.0.9", .sport = 80, .dport = (uint16_t)(1000 + f),
                                .seq = seq[f], .ack = 1, .flags = PKT_TCP_ACK | PKT_TCP_PSH,
                                .payload = payload, .plen = PAYLOAD };
        uint64_t a, b;

        len[f] = pktgen_tcp(pkt[f], &t);
        cmp_secondary_add(e, 0, pkt[f], len[f], false, 0);
        a = now_ns();
        cmp_primary_add(e, packets + i, pkt[f], len[f], false, a);
        b = now_ns();
        lat[i] = b - a;
        seq[f] += PAYLOAD;
    }
    qsort(lat, nlat, sizeof(*lat), cmp_u64);

    uint64_t udp_packets = packets / 2, released_before = released;
    uint64_t u0 = now_ns();
    for (uint64_t i = 0; i < udp_packets; i++) {
        int f = (int)(i % FLOWS);

        memcpy(payload, &i, sizeof(i));
        len[f] = pktgen_udp(pkt[f], "10.0.0.2", "10.0.0.9", 53, (uint16_t)(1000 + f), payload, PAYLOAD);
        cmp_secondary_add(e, cmp_engine_epoch(e), pkt[f], len[f], false, i);
        cmp_primary_add(e, 2 * packets + i, pkt[f], len[f], false, i);
        if (i % 8192 == 8191) {
            cmp_checkpoint_commit(e, i);
        }
    }
    uint64_t u1 = now_ns();
    if (released - released_before != udp_packets) {
        fprintf(stderr, "UDP: released %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT "\n", released - released_before,
                udp_packets);
        return 1;
    }
    printf("engine: %" G_GUINT64_FORMAT " small TCP packets (%d bytes payload, %d flows), %.3f s "
           "(packet construction included)\n",
           packets, PAYLOAD, FLOWS, (double)(t1 - t0) / 1e9);
    printf("engine: release latency of an already-matched packet: p50 %.2f us, p99 %.2f us\n",
           (double)lat[nlat / 2] / 1000.0, (double)lat[nlat * 99 / 100] / 1000.0);
    printf("engine: %" G_GUINT64_FORMAT " small UDP datagrams (%d bytes payload, %d flows), %.3f s, %.0f kpps "
           "(packet construction and a commit every 8192 included)\n",
           udp_packets, PAYLOAD, FLOWS, (double)(u1 - u0) / 1e9,
           (double)udp_packets / ((double)(u1 - u0) / 1e9) / 1000.0);
    printf("%.0f kpps\n", kpps);
    g_free(lat);
    cmp_engine_free(e);
    return 0;
}
