/* The disk service: UDP commands to write a sequence number to a block
 * (replied to only after a flush completed) and to read it back. The
 * protocol is in docs/test-guest.md; guestnet.py is its client. Pure code:
 * the block driver (or a test harness) implements the diskdev_* hooks. */
#ifndef TESTGUEST_DISKSVC_H
#define TESTGUEST_DISKSVC_H

#include <stdbool.h>
#include <stdint.h>

#define DISK_MAGIC      0x44475443u     /* "CTGD": requests and replies */
#define DISK_REC_MAGIC  0x42475443u     /* "CTGB": a block written by the service */
#define DISK_BLOCK      512

enum disk_op { DISK_OP_WRITE = 1, DISK_OP_READ = 2, DISK_OP_INFO = 3 };
enum disk_status {
    DISK_OK = 0,
    DISK_EMPTY = 1,         /* read: the block holds no record of ours */
    DISK_IOERR = 2,         /* the device failed the request */
    DISK_BADREQ = 3,        /* unknown op, block out of range */
    DISK_BUSY = 4,          /* queue full: retry */
    DISK_NODISK = 5,        /* no disk */
};

enum diskdev_op { DISKDEV_READ, DISKDEV_WRITE, DISKDEV_FLUSH };

/* Hooks. diskdev_submit starts one request (one block at @block, data in
 * @buf) and returns false if it cannot; its completion is reported by
 * calling disksvc_done(). */
uint64_t diskdev_blocks(void);          /* 0: no disk */
bool diskdev_submit(enum diskdev_op op, uint64_t block, uint8_t *buf);

/* The request in flight finished; @ok: the device said so. */
void disksvc_done(bool ok);

/* The check value of a record: splitmix64 of seq ^ block << 32. */
uint64_t disksvc_check(uint32_t block, uint64_t seq);

#endif
