/* The migration stream format; docs/migration-stream.md is its reference.
 * All integers big-endian. */
#ifndef COLO_VMM_MIGRATION_FORMAT_H
#define COLO_VMM_MIGRATION_FORMAT_H

#include <stdint.h>

#define MIG_MAGIC           0x434f4c4fU    /* "COLO" */
#define MIG_VERSION         1

/* Every connection opens with a hello: u32 magic, u32 version, u8 channel
 * kind, u8 index. One main channel carries the stream below; postcopy adds
 * one channel for demanded pages, multifd adds channels for bulk pages. */
enum {
    MIG_CHANNEL_MAIN = 0,
    MIG_CHANNEL_POSTCOPY = 1,   /* demanded pages: RAM records only */
    MIG_CHANNEL_MULTIFD = 2,    /* page packets, index 0..multifd-channels-1 */
};
#define MIG_MAX_MULTIFD     255

/* Top-level records: one byte of kind, then the record. */
enum {
    MIG_REC_RAM = 0x01,         /* page entries until one with MIG_PAGE_EOS */
    MIG_REC_DEVICE = 0x02,      /* u8 idlen, id, u32 instance, u32 version, u32 len, bytes */
    MIG_REC_COMMAND = 0x03,     /* u16 command, u16 len, bytes */
    MIG_REC_EOF = 0x04,         /* the stream ends; the destination may run */
    MIG_REC_RAM_BLOCKS = 0x05,  /* u32 count, then per block: u8 idlen, id, u64 size */
    MIG_REC_MEMORY_DEVICE = 0x06,   /* RAM added at run time (a pc-dimm): u8 idlen, id,
                                     * u8 memdev idlen, memdev id (= RAM block id),
                                     * u32 slot, u64 addr, u64 size */
    MIG_REC_DISK = 0x07,        /* COLO: u8 disk, u64 offset, u32 len (<= MIG_MAX_DISK_RECORD), bytes */
};
#define MIG_MAX_DISK_RECORD (1u << 20)

/* A page entry: u64 (page offset in its block | flags), then if not
 * MIG_PAGE_CONTINUE: u8 idlen, id; then for ZERO one fill byte, for PAGE
 * the page's bytes, for RUN a u16 count and that many pages' bytes (which
 * the destination reads straight into guest memory). */
enum {
    MIG_PAGE_ZERO = 0x02,       /* every byte equals the fill byte */
    MIG_PAGE_PAGE = 0x08,       /* full page follows */
    MIG_PAGE_EOS = 0x10,        /* end of this RAM record (offset unused) */
    MIG_PAGE_CONTINUE = 0x20,   /* same block as the previous entry */
    MIG_PAGE_RUN = 0x40,        /* u16 n (2..MIG_MAX_RUN), then n consecutive full pages */
};
#define MIG_MAX_RUN         64
#define MIG_PAGE_FLAGS_MASK 0xfffULL

/* Commands, source to destination. */
enum {
    MIG_CMD_OPEN_RETURN_PATH = 1,   /* no payload */
    MIG_CMD_PING = 2,               /* u32 value, answered by PONG */
    MIG_CMD_POSTCOPY_ADVISE = 3,    /* u64 page size, u64 target page size */
    MIG_CMD_POSTCOPY_LISTEN = 4,
    MIG_CMD_POSTCOPY_RUN = 5,
    MIG_CMD_POSTCOPY_END = 6,
    MIG_CMD_PACKAGED = 7,           /* u32 n; then n bytes of records ending with their own
                                     * end record, loaded once all have arrived */
    MIG_CMD_RUN_STATE = 8,          /* u8 1 = source was running */
    MIG_CMD_POSTCOPY_DISCARD = 9,   /* u8 idlen, id, u32 n, n x (u64 first page, u64 pages) */
    MIG_CMD_MULTIFD_SYNC = 10,      /* u32 channels, u64 sequence: wait for every channel's SYNC */
    MIG_CMD_ENABLE_COLO = 11,       /* no payload: after the end record, COLO follows */
    MIG_CMD_COLO = 12,              /* u32 COLO message, u64 value (docs/colo.md) */
    MIG_CMD_MAX
};

/* Return path messages, destination to source: u16 type, u16 len, bytes. */
enum {
    MIG_RP_SHUT = 1,            /* u32 status: 0 ok, else an errno */
    MIG_RP_PONG = 2,            /* u32 value from PING */
    MIG_RP_REQ_PAGES = 3,       /* u8 idlen, id, u64 offset, u32 length */
    MIG_RP_COLO = 4,            /* u32 COLO message, u64 value */
    MIG_RP_MAX
};

/* COLO messages (seed 003, QEMU's numbering), in MIG_CMD_COLO from the
 * primary and MIG_RP_COLO from the secondary. */
enum {
    COLO_MSG_CHECKPOINT_READY = 0,      /* secondary: in COLO, ready for checkpoints */
    COLO_MSG_CHECKPOINT_REQUEST = 1,    /* primary: a checkpoint begins */
    COLO_MSG_CHECKPOINT_REPLY = 2,      /* secondary: its guest is paused */
    COLO_MSG_VMSTATE_SEND = 3,          /* primary: RAM records follow */
    COLO_MSG_VMSTATE_SIZE = 4,          /* primary: value = bytes of device state that follow */
    COLO_MSG_VMSTATE_RECEIVED = 5,      /* secondary: all of it arrived */
    COLO_MSG_VMSTATE_LOADED = 6,        /* secondary: loaded; both run on */
    COLO_MSG_MAX
};
#define COLO_MSG_LEN        12          /* u32 message, u64 value */

#define MIG_MAX_ID_LEN      255
#define MIG_MAX_DEVICE_LEN  (16u << 20)    /* one device section */
#define MIG_MAX_COMMAND_LEN (1u << 20)
#define MIG_MAX_PACKAGE     (64u << 20)    /* one packaged chunk */

#endif
