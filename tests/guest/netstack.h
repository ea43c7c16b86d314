/* What the parts of the network stack (net.c, tcp.c, disksvc.c) share;
 * not for its users. */
#ifndef TESTGUEST_NETSTACK_H
#define TESTGUEST_NETSTACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"

#define ETH_HLEN    14
#define IP_HLEN     20
#define IP_PROTO_ICMP 1
#define IP_PROTO_TCP  6
#define IP_PROTO_UDP  17

extern struct net_config net_cfg;
extern uint64_t net_now_ms;

static inline uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* One's complement sum of @len bytes added to @sum (not folded). */
uint64_t net_csum_add(uint64_t sum, const uint8_t *p, size_t len);
/* Folds and complements: the checksum field's value (host order). */
uint16_t net_csum_fold(uint64_t sum);
/* Sum of the TCP/UDP pseudo-header. */
uint64_t net_csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto, size_t len);

/* Starts an IPv4 packet to @dst: returns where its payload goes (room for
 * 1480 bytes), or NULL if no transmit buffer or the next hop's MAC is not
 * known yet (an ARP request went out instead). */
uint8_t *net_ip_begin(uint32_t dst);
/* Finishes and sends the packet net_ip_begin() started. @csum_off: where
 * in the payload the TCP/UDP checksum goes (its pseudo-header included),
 * or -1 for a payload that carries its own. */
void net_ip_send(uint8_t *payload, uint8_t proto, uint32_t dst, size_t len, int csum_off);

/* UDP datagram from us (port @sport) to @dst:@dport. */
void net_udp_send(uint32_t dst, uint16_t sport, uint16_t dport, const uint8_t *data, size_t len);

/* TCP, in tcp.c. */
void tcp_init(uint64_t seed);
void tcp_input(uint32_t src, const uint8_t *seg, size_t len);
void tcp_timer(void);

/* The disk service, in disksvc.c. */
void disksvc_input(uint32_t src, uint16_t sport, const uint8_t *data, size_t len);

#endif
