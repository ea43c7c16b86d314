/* A lean IPv4 stack for the test guest: ARP, IPv4, ICMP echo, UDP (echo on
 * port 7, the disk service) and TCP (echo on port 7, stream on port 19).
 * Pure code: built into the guest and into host tests and fuzz targets,
 * sending through netdev.h. Single-threaded: the boot CPU runs it with
 * interrupts off. Addresses are host-order uint32_t. */
#ifndef TESTGUEST_NET_H
#define TESTGUEST_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_PORT_ECHO   7       /* UDP and TCP */
#define NET_PORT_STREAM 19      /* TCP: "<length>\n" in, that many pattern bytes out */
#define NET_PORT_DISK   9000    /* UDP: disk commands (disksvc.h) */

struct net_config {
    uint8_t mac[6];
    uint32_t ip;
    uint32_t mask;
    uint32_t gw;            /* 0: none */
    bool tx_csum;           /* the device completes TCP/UDP checksums */
};

struct net_stats {
    uint64_t rx_frames;     /* handed to net_input */
    uint64_t tx_frames;     /* counted by the device side (netdev_tx_send) */
    uint64_t rx_dropped;    /* malformed, bad checksum, not for us, no room */
    uint64_t tx_dropped;    /* no transmit buffer, or no ARP entry yet */
    uint64_t tcp_accepted;  /* connections opened */
    uint64_t tcp_retrans;   /* retransmission timeouts */
    uint64_t tcp_resets;    /* RSTs sent */
};

extern struct net_stats net_stats;

/* @seed feeds the initial sequence numbers (the guest uses the TSC). */
void net_init(const struct net_config *cfg, uint64_t seed);

/* One received Ethernet frame. @csum_ok: the device vouches for the TCP/UDP
 * checksum (verified, or a partial one from the local host). */
void net_input(const uint8_t *frame, size_t len, bool csum_ok);

/* Time moves on: retransmissions, TIME_WAIT. Call every few ms. */
void net_timer(uint64_t now_ms);

/* Sends a gratuitous ARP (at boot, so switches and peers learn us). */
void net_announce(void);

/* The stream service's bytes: a pseudo-random sequence with period
 * NET_STREAM_PERIOD (a prime): xorshift32 (13, 17, 5) from seed
 * 0x2545f491, each step giving four bytes, least significant first.
 * Byte @off is table[off % NET_STREAM_PERIOD]; the table runs on for
 * NET_STREAM_SPAN more bytes so any segment is one copy. Mirrored in
 * guestnet.py. */
#define NET_STREAM_PERIOD 65521u
#define NET_STREAM_SPAN   2048u
const uint8_t *net_stream_table(void);

#endif
