/* Builds test packets (IPv4/IPv6, TCP/UDP/ICMP, ARP, Ethernet) with valid
 * checksums, for the colo-proxy unit tests and benchmark. */
#ifndef COLO_TESTS_PKTGEN_H
#define COLO_TESTS_PKTGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pktgen_tcp {
    const char *src, *dst;     /* IPv4 or IPv6 literals */
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;
    uint16_t window;
    const uint8_t *opts;       /* multiple of 4 bytes */
    size_t optlen;
    const void *payload;
    size_t plen;
};

/* Each returns the packet length written into @buf (>= 2048 bytes + plen). */
size_t pktgen_tcp(uint8_t *buf, const struct pktgen_tcp *t);
size_t pktgen_udp(uint8_t *buf, const char *src, const char *dst, uint16_t sport, uint16_t dport,
                  const void *payload, size_t plen);
size_t pktgen_icmp_echo(uint8_t *buf, const char *src, const char *dst, uint16_t id, uint16_t seq,
                        const void *payload, size_t plen);
/* An Ethernet ARP request or reply (opcode 1 or 2). */
size_t pktgen_arp(uint8_t *buf, uint16_t op, const char *sender, const char *target);
/* Prepend an Ethernet header (type from the IP version) in place. */
size_t pktgen_eth_wrap(uint8_t *buf, size_t len);

/* True if the IPv4 header and TCP/UDP checksum of the IP packet are right. */
bool pktgen_csum_ok(const uint8_t *ip, size_t len);

#endif
