/* Unit tests of the guest's network stack and disk service (host build):
 * frames in through net_input(), frames out through a fake netdev, the
 * disk through a fake diskdev whose completions the test triggers. */
#include <glib.h>
#include <string.h>

#include "disksvc.h"
#include "net.h"
#include "netdev.h"

#define GUEST_IP  0x0a000002u   /* 10.0.0.2 */
#define CLIENT_IP 0x0a000001u   /* 10.0.0.1 */

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t client_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };

/* Fake NIC: every sent frame, in order. */
static uint8_t tx_buf[NETDEV_FRAME_MAX];
static GPtrArray *sent;
static bool tx_full;

uint8_t *netdev_tx_buf(void)
{
    return tx_full ? NULL : tx_buf;
}

void netdev_tx_send(uint8_t *buf, size_t len, uint16_t csum_start, uint16_t csum_off)
{
    g_assert_true(buf == tx_buf);
    g_assert_cmpuint(len, <=, NETDEV_FRAME_MAX);
    g_assert_cmpuint(csum_start, ==, 0);    /* the tests run without offload */
    (void)csum_off;
    g_ptr_array_add(sent, g_bytes_new(buf, len));
}

/* Fake disk: 64 blocks in memory; one request at a time. */
static uint8_t disk[64][DISK_BLOCK];
static int pending_op = -1;
static uint64_t pending_block;
static uint8_t *pending_buf;
static unsigned flushes;

uint64_t diskdev_blocks(void)
{
    return 64;
}

bool diskdev_submit(enum diskdev_op op, uint64_t block, uint8_t *buf)
{
    g_assert_cmpint(pending_op, ==, -1);
    pending_op = (int)op;
    pending_block = block;
    pending_buf = buf;
    return true;
}

static void disk_complete(void)
{
    int op = pending_op;

    g_assert_cmpint(op, !=, -1);
    pending_op = -1;
    if (op == DISKDEV_WRITE) {
        memcpy(disk[pending_block], pending_buf, DISK_BLOCK);
    } else if (op == DISKDEV_READ) {
        memcpy(pending_buf, disk[pending_block], DISK_BLOCK);
    } else {
        flushes++;
    }
    disksvc_done(true);
}

/* Independent checksum, 16 bits at a time. */
static uint16_t csum(uint32_t sum, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i + 1 < len; i += 2) {
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    }
    if (len & 1) {
        sum += (uint32_t)p[len - 1] << 8;
    }
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return (uint16_t)~sum;
}

static uint32_t pseudo(uint32_t src, uint32_t dst, uint8_t proto, size_t len)
{
    return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + (uint32_t)len;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)get16(p) << 16 | get16(p + 2);
}

/* An IPv4 frame from the client with @payload as protocol @proto; the
 * TCP/UDP checksum is filled in at @csum_off (-1: none). */
static size_t ip_frame(uint8_t *f, uint8_t proto, const uint8_t *payload, size_t len, int csum_off)
{
    memcpy(f, guest_mac, 6);
    memcpy(f + 6, client_mac, 6);
    put16(f + 12, 0x0800);
    uint8_t *ip = f + 14;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(20 + len));
    ip[8] = 64;
    ip[9] = proto;
    put32(ip + 12, CLIENT_IP);
    put32(ip + 16, GUEST_IP);
    put16(ip + 10, csum(0, ip, 20));
    memcpy(ip + 20, payload, len);
    if (csum_off >= 0) {
        put16(ip + 20 + csum_off, 0);
        put16(ip + 20 + csum_off, csum(pseudo(CLIENT_IP, GUEST_IP, proto, len), ip + 20, len));
    }
    return 14 + 20 + len;
}

/* Checks the frame the guest sent (Ethernet to the client, IP header and
 * checksums valid) and returns its IP payload. */
static const uint8_t *sent_ip(unsigned i, uint8_t proto, size_t *len)
{
    gsize flen;
    const uint8_t *f;

    g_assert_cmpuint(i, <, sent->len);
    f = g_bytes_get_data(sent->pdata[i], &flen);
    g_assert_cmpuint(flen, >=, 34);
    g_assert_cmpmem(f, 6, client_mac, 6);
    g_assert_cmpmem(f + 6, 6, guest_mac, 6);
    g_assert_cmpuint(get16(f + 12), ==, 0x0800);
    const uint8_t *ip = f + 14;
    g_assert_cmpuint(csum(0, ip, 20), ==, 0);
    g_assert_cmpuint(ip[9], ==, proto);
    g_assert_cmpuint(get32(ip + 12), ==, GUEST_IP);
    g_assert_cmpuint(get32(ip + 16), ==, CLIENT_IP);
    *len = get16(ip + 2) - 20u;
    g_assert_cmpuint(*len + 34, <=, flen);
    if (proto != 1) {
        g_assert_cmpuint(csum(pseudo(GUEST_IP, CLIENT_IP, proto, *len), ip + 20, *len), ==, 0);
    }
    return ip + 20;
}

static void setup(void)
{
    struct net_config cfg = { .ip = GUEST_IP, .mask = 0xffffff00u, .gw = 0, .tx_csum = false };
    uint8_t arp[42];

    memcpy(cfg.mac, guest_mac, 6);
    if (sent) {
        g_ptr_array_unref(sent);
    }
    sent = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    tx_full = false;
    net_init(&cfg, 12345);
    net_timer(1000);
    /* The client asks who has the guest's address: the guest learns it. */
    memset(arp, 0xff, 6);
    memcpy(arp + 6, client_mac, 6);
    put16(arp + 12, 0x0806);
    put16(arp + 14, 1);
    put16(arp + 16, 0x0800);
    arp[18] = 6;
    arp[19] = 4;
    put16(arp + 20, 1);
    memcpy(arp + 22, client_mac, 6);
    put32(arp + 28, CLIENT_IP);
    memset(arp + 32, 0, 6);
    put32(arp + 38, GUEST_IP);
    net_input(arp, sizeof(arp), false);
}

static void test_arp(void)
{
    gsize len;
    const uint8_t *r;
    uint8_t other[42];

    setup();
    g_assert_cmpuint(sent->len, ==, 1);
    r = g_bytes_get_data(sent->pdata[0], &len);
    g_assert_cmpuint(len, >=, 42);
    g_assert_cmpmem(r, 6, client_mac, 6);
    g_assert_cmpuint(get16(r + 12), ==, 0x0806);
    g_assert_cmpuint(get16(r + 20), ==, 2);                 /* reply */
    g_assert_cmpmem(r + 22, 6, guest_mac, 6);               /* sender: us */
    g_assert_cmpuint(get32(r + 28), ==, GUEST_IP);
    g_assert_cmpmem(r + 32, 6, client_mac, 6);
    g_assert_cmpuint(get32(r + 38), ==, CLIENT_IP);

    /* About another address: no answer. */
    memcpy(other, r, sizeof(other));
    memcpy(other, guest_mac, 6);
    put16(other + 20, 1);
    memcpy(other + 22, client_mac, 6);
    put32(other + 28, CLIENT_IP);
    put32(other + 38, GUEST_IP + 1);
    net_input(other, sizeof(other), false);
    g_assert_cmpuint(sent->len, ==, 1);

    /* Gratuitous ARP: a broadcast request for our own address. */
    net_announce();
    r = g_bytes_get_data(sent->pdata[1], &len);
    g_assert_cmpmem(r, 6, "\xff\xff\xff\xff\xff\xff", 6);
    g_assert_cmpuint(get16(r + 20), ==, 1);
    g_assert_cmpuint(get32(r + 28), ==, GUEST_IP);
    g_assert_cmpuint(get32(r + 38), ==, GUEST_IP);
}

static void test_icmp_echo(void)
{
    uint8_t ping[8 + 33], f[128];
    const uint8_t *r;
    size_t len;

    setup();
    ping[0] = 8;
    ping[1] = 0;
    put16(ping + 2, 0);
    put16(ping + 4, 0x1234);
    put16(ping + 6, 7);
    for (unsigned i = 8; i < sizeof(ping); i++) {
        ping[i] = (uint8_t)(i * 3);
    }
    put16(ping + 2, csum(0, ping, sizeof(ping)));
    net_input(f, ip_frame(f, 1, ping, sizeof(ping), -1), false);
    g_assert_cmpuint(sent->len, ==, 2);
    r = sent_ip(1, 1, &len);
    g_assert_cmpuint(len, ==, sizeof(ping));
    g_assert_cmpuint(r[0], ==, 0);
    g_assert_cmpuint(csum(0, r, len), ==, 0);
    g_assert_cmpmem(r + 4, len - 4, ping + 4, len - 4);

    /* A corrupted request is not answered. */
    ping[10] ^= 1;
    net_input(f, ip_frame(f, 1, ping, sizeof(ping), -1), false);
    g_assert_cmpuint(sent->len, ==, 2);
}

static void test_udp_echo(void)
{
    uint8_t u[8 + 5] = { 0x9c, 0x40, 0, 7, 0, 13, 0, 0, 'h', 'e', 'l', 'l', 'o' };
    uint8_t f[128];
    const uint8_t *r;
    size_t len;

    setup();
    net_input(f, ip_frame(f, 17, u, sizeof(u), 6), false);
    r = sent_ip(1, 17, &len);
    g_assert_cmpuint(len, ==, sizeof(u));
    g_assert_cmpuint(get16(r), ==, 7);
    g_assert_cmpuint(get16(r + 2), ==, 40000);
    g_assert_cmpmem(r + 8, 5, "hello", 5);

    /* Bad checksum: dropped, unless the device vouches for it. */
    u[8] = 'j';
    size_t n = ip_frame(f, 17, u, sizeof(u), 6);
    f[14 + 20 + 8] = 'x';
    net_input(f, n, false);
    g_assert_cmpuint(sent->len, ==, 2);
    net_input(f, n, true);
    g_assert_cmpuint(sent->len, ==, 3);
}

/* A TCP segment from the client's port @sport. */
static void tcp_send(uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags, const void *data,
                     size_t len)
{
    uint8_t seg[20 + 1460], f[1600];

    memset(seg, 0, 20);
    put16(seg, sport);
    put16(seg + 2, dport);
    put32(seg + 4, seq);
    put32(seg + 8, ack);
    seg[12] = 5 << 4;
    seg[13] = flags;
    put16(seg + 14, 65535);
    if (len) {
        memcpy(seg + 20, data, len);
    }
    net_input(f, ip_frame(f, 6, seg, 20 + len, 16), false);
}

struct seg {
    uint32_t seq, ack;
    uint8_t flags;
    uint16_t wnd;
    const uint8_t *data;
    size_t len;
};

static struct seg tcp_sent(unsigned i)
{
    size_t len;
    const uint8_t *t = sent_ip(i, 6, &len);
    unsigned hlen = (t[12] >> 4) * 4u;

    return (struct seg){ get32(t + 4), get32(t + 8), t[13], get16(t + 14), t + hlen, len - hlen };
}

/* Handshake on @port; returns the guest's ISS. */
static uint32_t tcp_open(uint16_t sport, uint16_t port, uint32_t cseq)
{
    unsigned before = sent->len;
    struct seg s;

    tcp_send(sport, port, cseq, 0, 0x02, NULL, 0);
    g_assert_cmpuint(sent->len, ==, before + 1);
    s = tcp_sent(before);
    g_assert_cmpuint(s.flags, ==, 0x12);        /* SYN|ACK */
    g_assert_cmpuint(s.ack, ==, cseq + 1);
    tcp_send(sport, port, cseq + 1, s.seq + 1, 0x10, NULL, 0);
    return s.seq;
}

static void test_tcp_echo_and_close(void)
{
    struct seg s;
    uint32_t iss, c = 1000;

    setup();
    iss = tcp_open(40001, 7, c);
    unsigned n = sent->len;
    tcp_send(40001, 7, c + 1, iss + 1, 0x18, "hello", 5);
    g_assert_cmpuint(sent->len, ==, n + 1);
    s = tcp_sent(n);
    g_assert_cmpuint(s.seq, ==, iss + 1);
    g_assert_cmpuint(s.ack, ==, c + 6);
    g_assert_cmpuint(s.len, ==, 5);
    g_assert_cmpmem(s.data, 5, "hello", 5);

    /* No ACK for the echo: it is sent again after the retransmission timeout. */
    net_timer(1300);
    g_assert_cmpuint(sent->len, ==, n + 1);
    net_timer(1500);
    g_assert_cmpuint(sent->len, ==, n + 2);
    s = tcp_sent(n + 1);
    g_assert_cmpuint(s.seq, ==, iss + 1);
    g_assert_cmpmem(s.data, 5, "hello", 5);

    /* ACK plus FIN from the client: the guest acknowledges and closes too. */
    tcp_send(40001, 7, c + 6, iss + 6, 0x11, NULL, 0);
    s = tcp_sent(sent->len - 1);
    g_assert_cmpuint(s.flags & 0x01, ==, 0x01);
    g_assert_cmpuint(s.seq, ==, iss + 6);
    g_assert_cmpuint(s.ack, ==, c + 7);
    tcp_send(40001, 7, c + 7, iss + 7, 0x10, NULL, 0);

    /* Gone: a segment for it now gets a RST. */
    n = sent->len;
    tcp_send(40001, 7, c + 7, iss + 7, 0x10, NULL, 0);
    g_assert_cmpuint(sent->len, ==, n + 1);
    g_assert_cmpuint(tcp_sent(n).flags & 0x04, ==, 0x04);
}

static void test_tcp_rto_adapts(void)
{
    uint32_t iss, c = 7000;
    unsigned n;

    setup();                                    /* now = 1000 ms */
    iss = tcp_open(40004, 7, c);
    tcp_send(40004, 7, c + 1, iss + 1, 0x18, "a", 1);
    net_timer(1300);
    n = sent->len;
    /* Acknowledged after 300 ms: RTO = 300 + 4 * 150 = 900 ms. */
    tcp_send(40004, 7, c + 2, iss + 2, 0x18, "b", 1);
    g_assert_cmpuint(sent->len, ==, n + 1);     /* the echo of "b", timed from 1300 */
    net_timer(1800);
    g_assert_cmpuint(sent->len, ==, n + 1);     /* the initial 400 ms would have fired */
    net_timer(2300);
    g_assert_cmpuint(sent->len, ==, n + 2);
    struct seg s = tcp_sent(n + 1);
    g_assert_cmpuint(s.seq, ==, iss + 2);
    g_assert_cmpmem(s.data, 1, "b", 1);
}

static void test_tcp_stream(void)
{
    const uint8_t *table = net_stream_table();
    /* The documented sequence (docs/test-guest.md; guestnet.stream_bytes). */
    static const uint8_t head[8] = { 0x3a, 0xb6, 0x24, 0xe1, 0xab, 0x74, 0x9a, 0x8b };
    static const uint8_t tail[5] = { 0x6b, 0xc3, 0x43, 0x2c, 0xfc };

    g_assert_cmpmem(table, 8, head, 8);
    g_assert_cmpmem(table + NET_STREAM_PERIOD - 5, 5, tail, 5);
    g_assert_cmpmem(table + NET_STREAM_PERIOD, NET_STREAM_SPAN, table, NET_STREAM_SPAN);
    uint32_t iss, c = 5000;
    uint64_t got = 0;
    bool fin = false;

    setup();
    iss = tcp_open(40002, 19, c);
    tcp_send(40002, 19, c + 1, iss + 1, 0x18, "70000\n", 6);
    /* Acknowledge everything sent, until the FIN. */
    for (unsigned i = 1; i < sent->len && !fin; i++) {   /* 0 is the ARP reply */
        struct seg s = tcp_sent(i);
        if ((s.flags & 0x02) || !(s.flags & 0x10)) {
            continue;   /* ARP reply, SYN-ACK */
        }
        if (s.len) {
            g_assert_cmpuint(s.seq, ==, iss + 1 + got);
            for (size_t k = 0; k < s.len; k++) {
                g_assert_cmpuint(s.data[k], ==, table[(got + k) % NET_STREAM_PERIOD]);
            }
            got += s.len;
        }
        fin = s.flags & 0x01;
        tcp_send(40002, 19, c + 7, iss + 1 + (uint32_t)got + (fin ? 1 : 0), 0x10, NULL, 0);
    }
    g_assert_cmpuint(got, ==, 70000);
    g_assert_true(fin);
}

static void test_tcp_closed_port_and_garbage(void)
{
    uint8_t f[256];
    unsigned n;

    setup();
    n = sent->len;
    tcp_send(40003, 80, 1, 0, 0x02, NULL, 0);
    g_assert_cmpuint(sent->len, ==, n + 1);
    struct seg s = tcp_sent(n);
    g_assert_cmpuint(s.flags, ==, 0x14);        /* RST|ACK */
    g_assert_cmpuint(s.ack, ==, 2);

    /* Truncated and inconsistent frames: dropped, nothing sent. */
    n = sent->len;
    for (size_t len = 0; len < 80; len++) {
        memset(f, 0xa5, sizeof(f));
        size_t full = ip_frame(f, 6, (const uint8_t *)"\x9c\x41\x00\x07\x00\x00\x00\x01\x00\x00\x00\x00\xf0\x02"
                               "\xff\xff\x00\x00\x00\x00", 20, -1);
        net_input(f, len < full ? len : full, true);
        f[14 + 20 + 12] = 0xf0;                 /* header longer than the segment */
        net_input(f, full, true);
    }
    g_assert_cmpuint(sent->len, ==, n);
}

static void disk_cmd(uint8_t op, uint32_t tag, uint32_t block, uint64_t seq)
{
    uint8_t u[8 + 24] = { 0x9c, 0x50, 0x23, 0x28, 0, 32, 0, 0 };    /* 40016 -> 9000 */
    uint8_t f[128];

    u[8] = 0x43;                        /* DISK_MAGIC, little-endian */
    u[9] = 0x54;
    u[10] = 0x47;
    u[11] = 0x44;
    u[12] = op;
    memset(u + 13, 0, 3);
    for (int i = 0; i < 4; i++) {
        u[16 + i] = (uint8_t)(tag >> (8 * i));
        u[20 + i] = (uint8_t)(block >> (8 * i));
    }
    for (int i = 0; i < 8; i++) {
        u[24 + i] = (uint8_t)(seq >> (8 * i));
    }
    net_input(f, ip_frame(f, 17, u, sizeof(u), 6), false);
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

static void test_disk_write_flush_read(void)
{
    size_t len;
    const uint8_t *r;

    setup();
    memset(disk, 0, sizeof(disk));
    flushes = 0;
    unsigned n = sent->len;
    disk_cmd(DISK_OP_WRITE, 1, 5, 424242);
    g_assert_cmpint(pending_op, ==, DISKDEV_WRITE);
    disk_complete();
    /* Written but not flushed: no reply yet. */
    g_assert_cmpuint(sent->len, ==, n);
    g_assert_cmpint(pending_op, ==, DISKDEV_FLUSH);
    disk_complete();
    g_assert_cmpuint(flushes, ==, 1);
    g_assert_cmpuint(sent->len, ==, n + 1);
    r = sent_ip(n, 17, &len);
    g_assert_cmpuint(len, ==, 8 + 24);
    g_assert_cmpuint(r[8 + 4], ==, DISK_OP_WRITE);
    g_assert_cmpuint(r[8 + 5], ==, DISK_OK);
    g_assert_cmpuint(le64(r + 8 + 16), ==, 424242);

    disk_cmd(DISK_OP_READ, 2, 5, 0);
    disk_complete();
    r = sent_ip(n + 1, 17, &len);
    g_assert_cmpuint(r[8 + 5], ==, DISK_OK);
    g_assert_cmpuint(le64(r + 8 + 16), ==, 424242);

    disk_cmd(DISK_OP_READ, 3, 6, 0);            /* never written */
    disk_complete();
    r = sent_ip(n + 2, 17, &len);
    g_assert_cmpuint(r[8 + 5], ==, DISK_EMPTY);

    disk_cmd(DISK_OP_WRITE, 4, 64, 1);          /* beyond the disk */
    g_assert_cmpint(pending_op, ==, -1);
    r = sent_ip(n + 3, 17, &len);
    g_assert_cmpuint(r[8 + 5], ==, DISK_BADREQ);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/guest/net/arp", test_arp);
    g_test_add_func("/guest/net/icmp-echo", test_icmp_echo);
    g_test_add_func("/guest/net/udp-echo", test_udp_echo);
    g_test_add_func("/guest/net/tcp-echo-retransmit-close", test_tcp_echo_and_close);
    g_test_add_func("/guest/net/tcp-rto-adapts", test_tcp_rto_adapts);
    g_test_add_func("/guest/net/tcp-stream", test_tcp_stream);
    g_test_add_func("/guest/net/tcp-reset-and-garbage", test_tcp_closed_port_and_garbage);
    g_test_add_func("/guest/net/disk-write-flush-read", test_disk_write_flush_read);
    int rc = g_test_run();
    if (sent) {
        g_ptr_array_unref(sent);
    }
    return rc;
}
