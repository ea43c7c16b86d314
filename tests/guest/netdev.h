/* The link between the network stack and whatever carries its frames:
 * the virtio-net driver in the guest, a test harness on the host. */
#ifndef TESTGUEST_NETDEV_H
#define TESTGUEST_NETDEV_H

#include <stddef.h>
#include <stdint.h>

#define NETDEV_FRAME_MAX 1514     /* Ethernet header + 1500, no FCS */

/* A buffer of NETDEV_FRAME_MAX bytes to build one frame in, or NULL when
 * the transmit ring is full (the caller drops or retries later). */
uint8_t *netdev_tx_buf(void);

/* Sends the frame built in @buf. With @csum_start non-zero the device
 * completes the checksum: it sums from @csum_start to the end and stores
 * the result at @csum_start + @csum_off (the stack put the pseudo-header
 * sum there); only asked for when the stack was told the device can. */
void netdev_tx_send(uint8_t *buf, size_t len, uint16_t csum_start, uint16_t csum_off);

#endif
