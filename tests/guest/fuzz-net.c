/* libFuzzer target: the guest's network stack (Ethernet, ARP, IPv4, ICMP,
 * UDP, TCP state machine, disk service) fed frames a client controls. The
 * input is a sequence of records: a flags byte (bit 0: the device vouches
 * for the checksum, bit 1: time moves on 300 ms first, bit 2: the pending
 * disk request completes first, bit 3: the transmit ring is full), a
 * 16-bit little-endian length, then that many bytes of frame. Every frame
 * the stack sends must fit its buffer. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "disksvc.h"
#include "net.h"
#include "netdev.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t tx[NETDEV_FRAME_MAX];
static bool tx_full;
static bool disk_pending;
static uint8_t *disk_buf;

uint8_t *netdev_tx_buf(void)
{
    return tx_full ? NULL : tx;
}

void netdev_tx_send(uint8_t *buf, size_t len, uint16_t csum_start, uint16_t csum_off)
{
    if (buf != tx || len > NETDEV_FRAME_MAX || len < 14 || csum_start || csum_off) {
        abort();
    }
}

uint64_t diskdev_blocks(void)
{
    return 16;
}

bool diskdev_submit(enum diskdev_op op, uint64_t block, uint8_t *buf)
{
    if (disk_pending || block >= 16 || (op != DISKDEV_FLUSH && !buf)) {
        abort();
    }
    disk_pending = true;
    disk_buf = buf;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct net_config cfg = { .mac = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 }, .ip = 0x0a000002u,
                              .mask = 0xffffff00u, .gw = 0x0a0000feu, .tx_csum = false };
    uint64_t now = 1000;

    net_init(&cfg, 1);
    while (disk_pending) {          /* a request left over from the last input */
        disk_pending = false;
        disksvc_done(false);
    }
    net_timer(now);
    while (size >= 3) {
        uint8_t flags = data[0];
        size_t len = (size_t)(data[1] | data[2] << 8);
        data += 3;
        size -= 3;
        if (len > size) {
            len = size;
        }
        if (flags & 2) {
            now += 300;
            net_timer(now);
        }
        if ((flags & 4) && disk_pending) {
            disk_pending = false;
            memset(disk_buf, flags, DISK_BLOCK);
            disksvc_done(flags & 0x10);
        }
        tx_full = flags & 8;
        /* A copy of exactly len bytes, so ASan sees any read past the frame. */
        uint8_t *frame = malloc(len ? len : 1);
        memcpy(frame, data, len);
        net_input(frame, len, flags & 1);
        free(frame);
        data += len;
        size -= len;
    }
    tx_full = false;
    now += 60000;
    net_timer(now);         /* every timer path, every connection aborted */
    return 0;
}
