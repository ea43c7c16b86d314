/* Packet parsing for colo-proxy: Ethernet, ARP, IPv4, IPv6, TCP, UDP,
 * ICMP. Every parser here reads untrusted bytes (guest output, frames from
 * the peer host): each length is checked before it is used, and a packet
 * that cannot be judged is reported, never guessed at. */
#ifndef COLO_NETFILTER_PACKET_H
#define COLO_NETFILTER_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PKT_ETH_HLEN 14
#define PKT_ETHERTYPE_IPV4 0x0800
#define PKT_ETHERTYPE_ARP 0x0806
#define PKT_ETHERTYPE_IPV6 0x86dd
#define PKT_ETHERTYPE_VLAN 0x8100

#define PKT_TCP_FIN 0x01
#define PKT_TCP_SYN 0x02
#define PKT_TCP_RST 0x04
#define PKT_TCP_PSH 0x08
#define PKT_TCP_ACK 0x10

/* The identity of a flow in one direction. Zero-filled before use so it
 * can be hashed and compared as bytes. */
struct flow_key {
    uint8_t src[16];
    uint8_t dst[16];
    uint16_t sport;
    uint16_t dport;
    uint8_t proto;   /* IPPROTO_*; 0 for ARP */
    uint8_t family;  /* 4, 6, or 0 for ARP */
    uint8_t pad[2];
};

enum pkt_err {
    PKT_OK = 0,
    PKT_ERR_TRUNCATED,
    PKT_ERR_MALFORMED,
    PKT_ERR_UNSUPPORTED,
};

struct pkt_info {
    struct flow_key key;
    uint16_t ethertype;
    size_t l3_off;       /* start of the IP or ARP header */
    size_t l4_off;       /* start of the transport header */
    size_t payload_off;  /* bytes that are compared */
    size_t payload_len;
    size_t end;          /* end of the L3 packet (trailing padding excluded) */
    bool fragment;       /* an IP fragment: no transport header to read */
    /* TCP only. */
    uint32_t seq;
    uint32_t ack;
    uint8_t tcp_flags;
    size_t tcp_opt_off;
    size_t tcp_opt_len;
};

/* Parse an IP packet (as NFQUEUE delivers it); the version nibble says v4
 * or v6. Returns PKT_OK or a pkt_err. */
int pkt_parse_ip(const uint8_t *buf, size_t len, struct pkt_info *pi);

/* Parse an Ethernet frame (as a tap or packet socket delivers it), with at
 * most one VLAN tag. */
int pkt_parse_eth(const uint8_t *buf, size_t len, struct pkt_info *pi);

/* Human-readable name of a pkt_err. */
const char *pkt_strerror(int err);

/* The key of the opposite direction of the same flow. */
void flow_key_reverse(const struct flow_key *in, struct flow_key *out);

/* UDP, ICMP or ICMPv6: an answer that must not reach a client twice, which
 * a dead primary's proxy or a secondary's takeover sends whole. */
bool flow_key_is_datagram(const struct flow_key *k);

/* GHashTable callbacks for struct flow_key. */
unsigned int flow_key_hash(const void *key);
int flow_key_equal(const void *a, const void *b);

/* Format a key as "tcp 10.0.0.1:80 > 10.0.0.2:4242" into @buf. */
const char *flow_key_format(const struct flow_key *key, char *buf, size_t size);

/* TCP sequence arithmetic, correct across the 2^32 wrap. */
static inline bool seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline bool seq_leq(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }
static inline bool seq_gt(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }
static inline bool seq_geq(uint32_t a, uint32_t b) { return (int32_t)(a - b) >= 0; }

static inline uint16_t pkt_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t pkt_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void pkt_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void pkt_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

#endif
