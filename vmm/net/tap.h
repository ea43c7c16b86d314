/* A tap interface with the virtio-net header in front of every frame
 * (IFF_VNET_HDR, 12 bytes: the virtio 1.x header), non-blocking. */
#ifndef COLO_VMM_NET_TAP_H
#define COLO_VMM_NET_TAP_H

#include <stdbool.h>
#include <glib.h>

#define TAP_VNET_HDR_LEN 12

/* Open (creating it when it does not exist) tap @ifname; returns the fd or
 * -1. The interface is not configured or brought up (script=no). */
int tap_open(const char *ifname, GError **error);

/* Offloads the kernel may hand us (TUN_F_CSUM, TUN_F_TSO4, ...): only
 * what the guest driver accepted. */
bool tap_set_offload(int fd, unsigned flags, GError **error);

#endif
