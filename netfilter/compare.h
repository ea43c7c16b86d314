/* The compare engine of the primary host: holds the primary guest's output
 * packets, matches them per connection against the secondary guest's
 * output and releases a packet only once it matched. Pure code on a
 * caller-supplied clock (nanoseconds), so tests drive it with a virtual
 * clock; the NFQUEUE and socket plumbing lives elsewhere.
 *
 * Packets are IP packets (L3) on the primary side and either IP packets or
 * Ethernet frames on the secondary side. TCP is compared as a byte stream
 * in sequence order (segmentation may differ); other protocols packet by
 * packet. Each primary packet carries an opaque handle (the NFQUEUE packet
 * id) that comes back through the release callback. */
#ifndef COLO_NETFILTER_COMPARE_H
#define COLO_NETFILTER_COMPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CMP_MAX_PASSTHROUGH 16
#define CMP_HIST_BUCKETS 24

/* Why a packet could not be released, or why a checkpoint is wanted. */
enum cmp_reason {
    CMP_REASON_PAYLOAD,      /* payload bytes differ */
    CMP_REASON_FLAGS,        /* SYN/FIN/RST or lengths differ */
    CMP_REASON_TIMEOUT,      /* held longer than compare_timeout */
    CMP_REASON_QUEUE_FULL,   /* max_queue_size packets held */
    CMP_REASON_TABLE_FULL,   /* connection table overflow */
    CMP_REASON_UNPARSEABLE,  /* malformed or truncated primary packet */
    CMP_REASON_HISTORY,      /* retransmission of bytes no longer kept */
    CMP_REASON_OVERFLOW,     /* the secondary ran too far ahead */
    CMP_REASON_COUNT
};

struct cmp_params {
    uint32_t compare_timeout_ms;     /* default 3000 */
    uint32_t expired_scan_cycle_ms;  /* default 1000; the caller's timer */
    uint32_t max_queue_size;         /* held primary packets, default 16384 */
    uint32_t max_flows;              /* default 65536 */
    uint32_t max_flow_bytes;         /* secondary bytes kept per flow, default 16 MiB */
    bool checkpoint_on_mismatch;     /* default true */
    uint16_t passthrough_ports[CMP_MAX_PASSTHROUGH];
    unsigned int n_passthrough;
};

struct cmp_stats {
    uint64_t held;                   /* primary packets ever held */
    uint64_t released;
    uint64_t compared;               /* released after a successful compare */
    uint64_t passthrough;            /* released without compare by policy */
    uint64_t unprotected;            /* released before COLO began (no checkpoint-begin yet) */
    uint64_t secondary;              /* secondary packets received */
    uint64_t secondary_stale;        /* dropped: older epoch */
    uint64_t secondary_unparseable;
    uint64_t secondary_dropped;      /* no room, or for a diverged flow */
    uint64_t input;                  /* client-to-guest packets seen */
    uint64_t mismatches[CMP_REASON_COUNT];
    uint64_t checkpoint_requests;
    uint64_t secondary_answered_already; /* datagrams cmp_take_datagrams kept back */
    uint64_t secondary_repeats;      /* unmatched at a commit, equal to one we sent lately */
    uint32_t queue_depth;            /* held now */
    uint32_t flows;
    uint32_t epoch;
    /* Hold time of released packets: bucket 0 is < 1 us, bucket i is
     * [2^(i-1), 2^i) us, the last bucket everything longer. */
    uint64_t hold_hist[CMP_HIST_BUCKETS];
};

struct cmp_callbacks {
    /* Release the primary packet @handle: it goes out on the wire. */
    void (*release)(void *opaque, uint64_t handle);
    /* Ask the coordinator for a checkpoint. */
    void (*checkpoint)(void *opaque, enum cmp_reason reason);
    void *opaque;
};

typedef struct cmp_engine CmpEngine;

/* Fill @p with the documented defaults. */
void cmp_params_init(struct cmp_params *p);

CmpEngine *cmp_engine_new(const struct cmp_params *params, const struct cmp_callbacks *cb);

/* Release nothing, forget everything (used at shutdown after the caller
 * released or dropped the packets itself). */
void cmp_engine_free(CmpEngine *e);

/* Change parameters at run time (compare_timeout, queue size, ...). */
void cmp_engine_set_params(CmpEngine *e, const struct cmp_params *params);
const struct cmp_params *cmp_engine_params(const CmpEngine *e);

/* A primary output packet under @handle; held until released. @eth: it
 * starts with an Ethernet header (ARP needs one); else it is an IP packet
 * as NFQUEUE delivers it. */
void cmp_primary_add(CmpEngine *e, uint64_t handle, const uint8_t *pkt, size_t len, bool eth,
                     uint64_t now_ns);

/* A secondary output packet, tagged with the epoch it was produced in.
 * @eth says whether it starts with an Ethernet header. */
void cmp_secondary_add(CmpEngine *e, uint32_t epoch, const uint8_t *pkt, size_t len, bool eth,
                       uint64_t now_ns);

/* A client-to-guest packet (the mirrored input): its TCP ack tells which
 * bytes the client has. A primary retransmission of those (already
 * released, so compared once) goes through unjudged, as the client drops
 * them, and their secondary copy is no longer kept. */
void cmp_input_add(CmpEngine *e, const uint8_t *pkt, size_t len, bool eth);

/* The secondary's UDP, ICMP and ICMPv6 packets that no primary packet has
 * matched yet, each as its whole IP packet (checksum as the guest left
 * it), oldest first within a flow; the engine forgets them. For a primary
 * whose guest died: its secondary's answers to input ours never answered
 * reach nobody else (docs/colo-proxy.md). Not one that equals a datagram
 * released in this epoch or the last (how many in *@withheld, and counted
 * secondary_answered_already): that is a second answer to the same input.
 * Returns how many were given. */
typedef void (*cmp_datagram_fn)(void *opaque, const uint8_t *ip, size_t len);
unsigned int cmp_take_datagrams(CmpEngine *e, cmp_datagram_fn fn, void *opaque, unsigned int *withheld);

/* Look for packets held longer than compare_timeout; call every
 * expired_scan_cycle. Returns true if a checkpoint was requested. */
bool cmp_expire(CmpEngine *e, uint64_t now_ns);

/* Until the first checkpoint-begin (COLO begins: the initial sync has
 * paused the VM) the engine holds nothing: the primary's packets are
 * released as they come, as from a VM not yet protected. A protect's
 * initial sync takes from a second to many (a snapshot protect of GiBs),
 * and holding the guest's output all that time stalled its clients. */
void cmp_engine_arm(CmpEngine *e);
bool cmp_engine_armed(const CmpEngine *e);

/* Checkpoint begin (VM paused): arms the engine; returns the number of
 * packets held. */
unsigned int cmp_checkpoint_begin(CmpEngine *e);

/* Checkpoint commit: release every held packet in arrival order, forget
 * all connection state (both guests are identical now), advance the epoch.
 * Returns the number released. */
unsigned int cmp_checkpoint_commit(CmpEngine *e, uint64_t now_ns);

/* Failover to primary alone: release everything, compare nothing more. */
unsigned int cmp_failover(CmpEngine *e, uint64_t now_ns);

bool cmp_engine_failed_over(const CmpEngine *e);
uint32_t cmp_engine_epoch(const CmpEngine *e);
void cmp_engine_stats(const CmpEngine *e, struct cmp_stats *out);

const char *cmp_reason_name(enum cmp_reason reason);

#endif
