/* virtio-net driver: one receive and one transmit queue, frames handed to
 * the network stack. Runs on the boot CPU only. */
#ifndef TESTGUEST_VIRTIO_NET_H
#define TESTGUEST_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>

/* Finds and starts the NIC; receive interrupts come as VEC_NET to
 * @apic_id. @mac gets its address, @tx_csum whether the device finishes
 * transmit checksums. False if there is no usable NIC. */
bool vnet_init(uint32_t apic_id, uint8_t mac[6], bool *tx_csum);

/* Hands every received frame to net_input(), gives the buffers back,
 * reclaims sent ones and kicks the device for what the stack queued. */
void vnet_poll(void);

/* Kicks the transmit queue if frames were queued since the last kick. */
void vnet_flush(void);

#endif
