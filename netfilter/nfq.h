/* The NFQUEUE side of colo-proxy: receives the guest's packets from the
 * kernel (with NFQA_CFG_F_GSO, so super-packets arrive whole) and gives
 * verdicts in batches.
 *
 * Hold mode (primary): every packet is held until nfq_release(); released
 * packets at the head of the queue are accepted with one batch verdict,
 * others one by one. Packets the kernel queued but never delivered (netlink
 * overrun) leave a gap in the ids: no batch verdict ever covers a gap
 * except nfq_release_all() at a checkpoint commit.
 *
 * Immediate mode (secondary after takeover): the callback may rewrite the
 * packet in place and it is accepted at once with the new bytes. Here the
 * kernel segments GSO packets and completes checksums before queueing:
 * it marks a rewritten packet's checksum complete on reinjection.
 *
 * Segmented hold mode (the primary's queue for carried flows): held as in
 * hold mode but, as in immediate mode, single segments with complete
 * checksums, so that a packet may be released with new bytes
 * (nfq_release_with).
 *
 * Never FAIL_OPEN: a full queue would let packets out that were never
 * compared. The rules' --queue-bypass acts only while nobody is bound to
 * the queue, when colo-proxy was killed (docs/colo-proxy.md). */
#ifndef COLO_NETFILTER_NFQ_H
#define COLO_NETFILTER_NFQ_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct proxy_nfq ProxyNfq;

struct nfq_callbacks {
    /* A packet (IP, L3) that came in on interface @indev (0 if none). In
     * immediate mode @pkt may be changed in place. */
    void (*packet)(void *opaque, uint32_t id, uint8_t *pkt, size_t len, bool csum_partial, uint32_t indev);
    /* Packets the kernel queued but could not deliver (ids skipped). */
    void (*lost)(void *opaque, unsigned int count);
    /* Called once after a burst of packets was handled. */
    void (*burst_done)(void *opaque);
    void *opaque;
};

/* Verdict latency: from the packet's arrival (the kernel's receive
 * timestamp with nfq_use_kernel_timestamps(), else our recvmmsg) to its
 * accept verdict; 1 us buckets, the last one everything longer. */
#define NFQ_LAT_BUCKETS 4096

struct nfq_latency {
    uint64_t count;
    uint64_t max_us;
    uint64_t us[NFQ_LAT_BUCKETS];
};

struct nfq_stats {
    uint64_t packets;
    uint64_t bytes;
    uint64_t lost;
    uint64_t recv_calls;       /* packets per call = packets / recv_calls */
    uint64_t batch_verdicts;
    uint64_t single_verdicts;
    uint64_t verdict_errors;
    uint32_t outstanding;
};

enum nfq_mode { NFQ_HOLD, NFQ_IMMEDIATE, NFQ_HOLD_SEGMENTED };

ProxyNfq *nfq_open_queue(uint16_t num, uint32_t maxlen, enum nfq_mode mode, const struct nfq_callbacks *cb,
                         GError **error);
void nfq_close_queue(ProxyNfq *q);

/* Mark @id for release; verdicts go out in nfq_flush(). */
void nfq_release(ProxyNfq *q, uint32_t id);

/* Mark @id for release with @len bytes of @pkt (copied) in place of its
 * own: its verdict goes out alone, before any batch could cover it.
 * Segmented hold mode only. */
void nfq_release_with(ProxyNfq *q, uint32_t id, const uint8_t *pkt, size_t len);

/* Send the verdicts for everything released so far. */
void nfq_flush(ProxyNfq *q);

/* Read and handle every packet waiting in the socket now (checkpoint
 * begin). Returns how many were read. */
unsigned int nfq_drain(ProxyNfq *q);

/* Accept everything queued up to the newest id seen, gaps included, with
 * one batch verdict (checkpoint commit, failover). */
void nfq_release_all(ProxyNfq *q);

void nfq_get_stats(const ProxyNfq *q, struct nfq_stats *out);

/* The queue's netlink socket (query-status: colod keeps a copy, so that
 * the queue outlives a crashed proxy; docs/colod.md). */
int nfq_socket(const ProxyNfq *q);

/* Ask the kernel to timestamp received packets (system-wide, as any
 * SO_TIMESTAMP socket does), so verdict latency counts the time a packet
 * waited in the kernel queue too. */
bool nfq_use_kernel_timestamps(ProxyNfq *q, GError **error);

enum nfq_latency_kind {
    NFQ_LAT_ALL,             /* every accepted packet */
    /* Only those released the moment they arrived (their secondary copy
     * was already there): what the proxy adds to an already-matched
     * packet, kernel queue included with kernel timestamps. */
    NFQ_LAT_MATCHED,
    NFQ_LAT_MATCHED_READ,    /* the same from our read: the proxy's own share */
};

const struct nfq_latency *nfq_get_latency(const ProxyNfq *q, enum nfq_latency_kind kind);

#endif
