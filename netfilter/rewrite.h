/* The TCP rewriter of the secondary host. The secondary guest picks its
 * own initial sequence numbers (and TCP timestamp clock); the client only
 * knows the primary's. The rewriter learns the difference from the
 * handshake and shifts sequence numbers, acknowledgements, SACK blocks and
 * timestamps so that the secondary's connections line up with the
 * primary's, for connections the client opens and those the guest opens:
 *
 *   output (secondary guest -> primary's proxy): seq += offset, TSval += ts
 *   input  (mirrored client frames -> guest):     ack -= offset, SACK -= offset,
 *                                                 TSecr -= ts
 *
 * Only flows that began with a handshake in the current epoch have an
 * entry; after a checkpoint the secondary runs on the primary's numbers,
 * so everything else passes unchanged. */
#ifndef COLO_NETFILTER_REWRITE_H
#define COLO_NETFILTER_REWRITE_H

#include "packet.h"

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rw_table RwTable;

struct rw_stats {
    uint64_t output_rewritten;
    uint64_t input_rewritten;
    uint64_t offsets_learned;
    uint64_t table_full;
    uint64_t unparseable;
    uint32_t flows;
};

RwTable *rw_table_new(unsigned int max_flows);
void rw_table_free(RwTable *t);

/* A frame the secondary guest sent, rewritten in place. @eth: starts with
 * an Ethernet header. @csum_partial: the TCP checksum is still to be
 * completed by the NIC (it covers only the pseudo-header, which the
 * rewrite does not touch). Returns PKT_OK, or a pkt_err for a frame it
 * could not parse (left untouched). */
int rw_output(RwTable *t, uint8_t *buf, size_t len, bool eth, bool csum_partial);

/* A client frame on its way into the secondary guest, rewritten in place. */
int rw_input(RwTable *t, uint8_t *buf, size_t len, bool eth, bool csum_partial);

/* Checkpoint commit: the secondary now has the primary's state, so every
 * offset is zero. */
void rw_table_reset(RwTable *t);

/* Secondary takeover: keep only flows whose offset is not zero (they still
 * need rewriting for as long as they live). */
void rw_table_takeover(RwTable *t);

void rw_table_stats(const RwTable *t, struct rw_stats *out);

/* A flow handed from a taken-over secondary's rewriter to the primary
 * colo-proxy that replaces it at re-protection (docs/colo-proxy.md). */
struct rw_carried {
    struct flow_key key;       /* output direction: the guest is the source */
    uint32_t offset;
    bool ts_valid;
    uint32_t ts_offset;
};

/* The flows that still need rewriting (those rw_table_takeover keeps), as
 * struct rw_carried, sorted by key so the output is stable. */
GArray *rw_table_export(const RwTable *t);

/* Load @n flows into an empty table, which from then on only rewrites
 * them: it learns no new flow. Fails (table unchanged) on a non-TCP key, a
 * duplicate, or more flows than the table holds. */
bool rw_table_import(RwTable *t, const struct rw_carried *c, size_t n, GError **error);

/* Secondary takeover: the primary's carried flows (its FRAME_CARRY) join
 * the table, which goes on learning. A COLO replica numbers as the
 * primary's guest does, so the primary's carried offsets are ours too; a
 * flow the table already has, or one past its size, is left out. Returns
 * how many joined. */
unsigned int rw_table_add_carried(RwTable *t, const struct rw_carried *c, size_t n);

/* The offset learned for the flow whose guest side sent @key-direction
 * packets; false if none (tests). */
bool rw_table_offset(const RwTable *t, const struct flow_key *key, uint32_t *offset);

/* RFC 1624 incremental checksum update for a 32-bit field change. */
void rw_csum_replace32(uint8_t *csum, uint32_t from, uint32_t to);

#endif
