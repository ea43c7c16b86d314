/* virtio-net (5.1) on a tap: one receive and one transmit queue, the
 * 12-byte virtio 1.x header passed to and from the tap as is, checksum and
 * TSO offloads offered and enabled on the tap only as the driver accepts
 * them. Receive and transmit run on the device's I/O thread. */
#ifndef COLO_VMM_VIRTIO_VIRTIO_NET_H
#define COLO_VMM_VIRTIO_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "virtio/virtio-pci.h"

typedef struct VirtioNetConfig {
    char *id;                   /* -netdev id */
    char *ifname;               /* tap name */
    uint8_t mac[6];
} VirtioNetConfig;

typedef struct VirtioNetStats {
    uint64_t rx_frames, tx_frames;
    uint64_t rx_dropped;        /* no buffer big enough */
    uint64_t tx_errors;         /* tap refused the frame */
} VirtioNetStats;

typedef struct VirtioNet VirtioNet;

VirtioNet *virtio_net_new(PciBus *bus, GuestMemory *mem, const VirtioNetConfig *cfg,
                          unsigned index, GError **error);
void virtio_net_free(VirtioNet *net);
VirtioDev *virtio_net_dev(VirtioNet *net);
VirtioNetStats virtio_net_stats(VirtioNet *net);

/* Send a broadcast RARP from the NIC's MAC out of its tap, as QEMU's
 * announce-self does, so that switches and bridges learn where the guest
 * is now (after a migration). Any thread. */
bool virtio_net_announce(VirtioNet *net);

#endif
