/* Disk service: a small queue of UDP commands, run one at a time against
 * the block device (write, then flush, then reply). */
#include "disksvc.h"
#include "netstack.h"

#define DISK_QUEUE  32
#define REQ_LEN     24      /* magic, op, pad[3], tag, block, seq */
#define REPLY_LEN   24      /* magic, op, status, pad[2], tag, block, value */

struct disk_req {
    uint32_t src;
    uint16_t sport;
    uint8_t op;
    uint32_t tag, block;
    uint64_t seq;
};

static struct disk_req queue[DISK_QUEUE];
static unsigned q_head, q_len;
static enum { IDLE, WRITING, FLUSHING, READING } phase;
static uint8_t block_buf[DISK_BLOCK] __attribute__((aligned(512)));

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t le64(const uint8_t *p)
{
    return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}

uint64_t disksvc_check(uint32_t block, uint64_t seq)
{
    uint64_t z = seq ^ (uint64_t)block << 32;

    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void disksvc_reply(const struct disk_req *r, uint8_t status, uint64_t value)
{
    uint8_t m[REPLY_LEN] = { 0 };

    put_le32(m, DISK_MAGIC);
    m[4] = r->op;
    m[5] = status;
    put_le32(m + 8, r->tag);
    put_le32(m + 12, r->block);
    put_le64(m + 16, value);
    net_udp_send(r->src, NET_PORT_DISK, r->sport, m, sizeof(m));
}

static void disksvc_finish(uint8_t status, uint64_t value)
{
    disksvc_reply(&queue[q_head], status, value);
    q_head = (q_head + 1) % DISK_QUEUE;
    q_len--;
    phase = IDLE;
}

/* Starts the request at the head of the queue, if any; requests that need
 * no I/O are answered at once. */
static void disksvc_next(void)
{
    while (phase == IDLE && q_len) {
        struct disk_req *r = &queue[q_head];
        if (r->op == DISK_OP_WRITE) {
            __builtin_memset(block_buf, 0, sizeof(block_buf));
            put_le32(block_buf, DISK_REC_MAGIC);
            put_le32(block_buf + 4, r->block);
            put_le64(block_buf + 8, r->seq);
            put_le64(block_buf + 16, disksvc_check(r->block, r->seq));
            phase = WRITING;
            if (!diskdev_submit(DISKDEV_WRITE, r->block, block_buf)) {
                disksvc_finish(DISK_IOERR, 0);
            }
        } else {
            phase = READING;
            if (!diskdev_submit(DISKDEV_READ, r->block, block_buf)) {
                disksvc_finish(DISK_IOERR, 0);
            }
        }
    }
}

void disksvc_done(bool ok)
{
    const struct disk_req *r = &queue[q_head];

    switch (phase) {
    case WRITING:
        phase = FLUSHING;
        if (!ok || !diskdev_submit(DISKDEV_FLUSH, 0, block_buf)) {
            disksvc_finish(DISK_IOERR, 0);
        }
        break;
    case FLUSHING:
        disksvc_finish(ok ? DISK_OK : DISK_IOERR, r->seq);
        break;
    case READING:
        if (!ok) {
            disksvc_finish(DISK_IOERR, 0);
        } else if (le32(block_buf) != DISK_REC_MAGIC || le32(block_buf + 4) != r->block ||
                   le64(block_buf + 16) != disksvc_check(r->block, le64(block_buf + 8))) {
            disksvc_finish(DISK_EMPTY, 0);
        } else {
            disksvc_finish(DISK_OK, le64(block_buf + 8));
        }
        break;
    case IDLE:
        return;     /* a completion nobody asked for */
    }
    disksvc_next();
}

void disksvc_input(uint32_t src, uint16_t sport, const uint8_t *d, size_t len)
{
    struct disk_req r;

    if (len < REQ_LEN || le32(d) != DISK_MAGIC) {
        net_stats.rx_dropped++;
        return;
    }
    r = (struct disk_req){ .src = src, .sport = sport, .op = d[4], .tag = le32(d + 8), .block = le32(d + 12),
                           .seq = le64(d + 16) };
    if (!diskdev_blocks()) {
        disksvc_reply(&r, DISK_NODISK, 0);
    } else if (r.op == DISK_OP_INFO) {
        disksvc_reply(&r, DISK_OK, diskdev_blocks());
    } else if ((r.op != DISK_OP_WRITE && r.op != DISK_OP_READ) || r.block >= diskdev_blocks()) {
        disksvc_reply(&r, DISK_BADREQ, 0);
    } else if (q_len == DISK_QUEUE) {
        disksvc_reply(&r, DISK_BUSY, 0);
    } else {
        queue[(q_head + q_len++) % DISK_QUEUE] = r;
        disksvc_next();
    }
}
