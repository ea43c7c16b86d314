/* Ethernet, ARP, IPv4, ICMP echo and UDP of the test guest's stack. */
#include "netdev.h"
#include "netstack.h"

#define ETH_P_IP    0x0800
#define ETH_P_ARP   0x0806
#define ARP_LEN     28
#define ARP_CACHE   16
#define UDP_HLEN    8

struct arp_entry {
    uint32_t ip;
    uint8_t mac[6];
};

struct net_config net_cfg;
struct net_stats net_stats;
uint64_t net_now_ms;

static struct arp_entry arp_cache[ARP_CACHE];
static unsigned arp_next;          /* round-robin replacement */
static uint16_t ip_id;
static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

uint64_t net_csum_add(uint64_t sum, const uint8_t *p, size_t len)
{
    /* Native-order 32-bit words (RFC 1071: byte order does not matter as
     * long as the result is swapped back), few instructions per byte. */
    uint64_t s = 0;
    size_t i = 0;

    for (; i + 4 <= len; i += 4) {
        uint32_t w;
        __builtin_memcpy(&w, p + i, 4);
        s += w;
    }
    for (; i + 2 <= len; i += 2) {
        uint16_t w;
        __builtin_memcpy(&w, p + i, 2);
        s += w;
    }
    if (i < len) {
        s += p[i];      /* little-endian: the odd byte is the high-order byte in network order */
    }
    s = (s & 0xffffffffu) + (s >> 32);
    s = (s & 0xffffffffu) + (s >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    /* Back to network order and added to the running (host-order) sum. */
    return sum + (uint16_t)((s >> 8) | (s << 8));
}

uint16_t net_csum_fold(uint64_t sum)
{
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return (uint16_t)~sum;
}

uint64_t net_csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto, size_t len)
{
    return (uint64_t)(src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + len;
}

static void arp_learn(uint32_t ip, const uint8_t *mac)
{
    struct arp_entry *e = 0;

    for (unsigned i = 0; i < ARP_CACHE; i++) {
        if (arp_cache[i].ip == ip) {
            e = &arp_cache[i];
            break;
        }
    }
    if (!e) {
        e = &arp_cache[arp_next++ % ARP_CACHE];
        e->ip = ip;
    }
    __builtin_memcpy(e->mac, mac, 6);
}

static const uint8_t *arp_lookup(uint32_t ip)
{
    for (unsigned i = 0; i < ARP_CACHE; i++) {
        if (arp_cache[i].ip == ip && ip) {
            return arp_cache[i].mac;
        }
    }
    return 0;
}

static void eth_header(uint8_t *f, const uint8_t *dst, uint16_t type)
{
    __builtin_memcpy(f, dst, 6);
    __builtin_memcpy(f + 6, net_cfg.mac, 6);
    put16(f + 12, type);
}

static void arp_send(uint16_t op, const uint8_t *eth_dst, const uint8_t *tha, uint32_t tpa)
{
    uint8_t *f = netdev_tx_buf();
    uint8_t *a;

    if (!f) {
        net_stats.tx_dropped++;
        return;
    }
    eth_header(f, eth_dst, ETH_P_ARP);
    a = f + ETH_HLEN;
    put16(a, 1);                /* Ethernet */
    put16(a + 2, ETH_P_IP);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, op);
    __builtin_memcpy(a + 8, net_cfg.mac, 6);
    put32(a + 14, net_cfg.ip);
    __builtin_memcpy(a + 18, tha, 6);
    put32(a + 24, tpa);
    /* Padded to the Ethernet minimum: some bridges drop runts. */
    for (unsigned i = ETH_HLEN + ARP_LEN; i < 60; i++) {
        f[i] = 0;
    }
    netdev_tx_send(f, 60, 0, 0);
}

void net_announce(void)
{
    static const uint8_t zero[6];

    arp_send(1, bcast, zero, net_cfg.ip);   /* gratuitous: who-has our own address */
}

static void arp_input(const uint8_t *a, size_t len)
{
    uint16_t op;
    uint32_t spa, tpa;

    if (len < ARP_LEN || get16(a) != 1 || get16(a + 2) != ETH_P_IP || a[4] != 6 || a[5] != 4) {
        net_stats.rx_dropped++;
        return;
    }
    op = get16(a + 6);
    spa = get32(a + 14);
    tpa = get32(a + 24);
    if (tpa != net_cfg.ip || !spa || spa == net_cfg.ip) {
        return;                 /* not about us (or a probe/announcement) */
    }
    arp_learn(spa, a + 8);
    if (op == 1) {
        arp_send(2, a + 8, a + 8, spa);
    }
}

static bool on_link(uint32_t ip)
{
    return ((ip ^ net_cfg.ip) & net_cfg.mask) == 0;
}

uint8_t *net_ip_begin(uint32_t dst)
{
    uint32_t hop = on_link(dst) || !net_cfg.gw ? dst : net_cfg.gw;
    const uint8_t *mac = arp_lookup(hop);
    uint8_t *f;

    if (!mac) {
        static const uint8_t zero[6];
        arp_send(1, bcast, zero, hop);
        net_stats.tx_dropped++;
        return 0;
    }
    f = netdev_tx_buf();
    if (!f) {
        net_stats.tx_dropped++;
        return 0;
    }
    eth_header(f, mac, ETH_P_IP);
    return f + ETH_HLEN + IP_HLEN;
}

void net_ip_send(uint8_t *payload, uint8_t proto, uint32_t dst, size_t len, int csum_off)
{
    uint8_t *ip = payload - IP_HLEN;
    uint16_t start = 0;

    ip[0] = 0x45;
    ip[1] = 0;
    put16(ip + 2, (uint16_t)(IP_HLEN + len));
    put16(ip + 4, ip_id++);
    put16(ip + 6, 0x4000);      /* DF */
    ip[8] = 64;
    ip[9] = proto;
    put16(ip + 10, 0);
    put32(ip + 12, net_cfg.ip);
    put32(ip + 16, dst);
    put16(ip + 10, net_csum_fold(net_csum_add(0, ip, IP_HLEN)));
    if (csum_off >= 0) {
        uint64_t pseudo = net_csum_pseudo(net_cfg.ip, dst, proto, len);
        if (net_cfg.tx_csum) {
            /* The device sums the segment; we seed it with the pseudo-header. */
            put16(payload + csum_off, (uint16_t)~net_csum_fold(pseudo));
            start = ETH_HLEN + IP_HLEN;
        } else {
            put16(payload + csum_off, 0);
            uint16_t c = net_csum_fold(net_csum_add(pseudo, payload, len));
            put16(payload + csum_off, proto == IP_PROTO_UDP && c == 0 ? 0xffff : c);
        }
    }
    netdev_tx_send(ip - ETH_HLEN, ETH_HLEN + IP_HLEN + len, start, start ? (uint16_t)csum_off : 0);
}

void net_udp_send(uint32_t dst, uint16_t sport, uint16_t dport, const uint8_t *data, size_t len)
{
    uint8_t *u;

    if (len > 1472 || !(u = net_ip_begin(dst))) {
        return;
    }
    put16(u, sport);
    put16(u + 2, dport);
    put16(u + 4, (uint16_t)(UDP_HLEN + len));
    __builtin_memcpy(u + UDP_HLEN, data, len);
    net_ip_send(u, IP_PROTO_UDP, dst, UDP_HLEN + len, 6);
}

static void icmp_input(uint32_t src, const uint8_t *m, size_t len)
{
    uint8_t *r;
    uint32_t sum;

    if (len < 8 || m[0] != 8 || m[1] != 0) {
        return;                 /* only echo requests are answered */
    }
    if (net_csum_fold(net_csum_add(0, m, len)) != 0) {
        net_stats.rx_dropped++;
        return;
    }
    if (!(r = net_ip_begin(src))) {
        return;
    }
    __builtin_memcpy(r, m, len);
    r[0] = 0;
    /* Incremental update (RFC 1624) for the type change 8 -> 0. */
    sum = (uint16_t)~get16(m + 2) + (uint16_t)~0x0800u;
    put16(r + 2, net_csum_fold(sum));
    net_ip_send(r, IP_PROTO_ICMP, src, len, -1);
}

static void udp_input(uint32_t src, const uint8_t *u, size_t len, bool csum_ok)
{
    uint16_t ulen, sport, dport;

    if (len < UDP_HLEN || (ulen = get16(u + 4)) < UDP_HLEN || ulen > len) {
        net_stats.rx_dropped++;
        return;
    }
    if (!csum_ok && get16(u + 6) &&
        net_csum_fold(net_csum_add(net_csum_pseudo(src, net_cfg.ip, IP_PROTO_UDP, ulen), u, ulen)) != 0) {
        net_stats.rx_dropped++;
        return;
    }
    sport = get16(u);
    dport = get16(u + 2);
    if (dport == NET_PORT_ECHO) {
        net_udp_send(src, dport, sport, u + UDP_HLEN, ulen - UDP_HLEN);
    } else if (dport == NET_PORT_DISK) {
        disksvc_input(src, sport, u + UDP_HLEN, ulen - UDP_HLEN);
    }
}

static void ip_input(const uint8_t *ip, size_t len, bool csum_ok)
{
    size_t hlen, tlen;
    uint32_t src, dst;

    if (len < IP_HLEN || ip[0] >> 4 != 4 || (hlen = (size_t)(ip[0] & 0xf) * 4) < IP_HLEN || hlen > len ||
        (tlen = get16(ip + 2)) < hlen || tlen > len || net_csum_fold(net_csum_add(0, ip, hlen)) != 0) {
        net_stats.rx_dropped++;
        return;
    }
    if (get16(ip + 6) & 0x3fff) {
        net_stats.rx_dropped++;  /* fragments: not reassembled */
        return;
    }
    src = get32(ip + 12);
    dst = get32(ip + 16);
    if (dst != net_cfg.ip) {
        return;
    }
    switch (ip[9]) {
    case IP_PROTO_ICMP:
        icmp_input(src, ip + hlen, tlen - hlen);
        break;
    case IP_PROTO_UDP:
        udp_input(src, ip + hlen, tlen - hlen, csum_ok);
        break;
    case IP_PROTO_TCP:
        if (!csum_ok && net_csum_fold(net_csum_add(net_csum_pseudo(src, dst, IP_PROTO_TCP, tlen - hlen),
                                                   ip + hlen, tlen - hlen)) != 0) {
            net_stats.rx_dropped++;
            return;
        }
        tcp_input(src, ip + hlen, tlen - hlen);
        break;
    default:
        break;
    }
}

void net_input(const uint8_t *f, size_t len, bool csum_ok)
{
    net_stats.rx_frames++;
    if (len < ETH_HLEN) {
        net_stats.rx_dropped++;
        return;
    }
    if (get16(f + 12) == ETH_P_ARP) {
        arp_input(f + ETH_HLEN, len - ETH_HLEN);
    } else if (get16(f + 12) == ETH_P_IP && (!__builtin_memcmp(f, net_cfg.mac, 6) || !__builtin_memcmp(f, bcast, 6))) {
        ip_input(f + ETH_HLEN, len - ETH_HLEN, csum_ok);
    }
}

void net_timer(uint64_t now_ms)
{
    net_now_ms = now_ms;
    tcp_timer();
}

void net_init(const struct net_config *cfg, uint64_t seed)
{
    net_cfg = *cfg;
    tcp_init(seed);
}

const uint8_t *net_stream_table(void)
{
    /* Whole 32-bit words, so the build loop stores one word per step. */
    static uint32_t words[(NET_STREAM_PERIOD + NET_STREAM_SPAN + 3) / 4];
    static bool ready;
    uint8_t *table = (uint8_t *)words;

    if (!ready) {
        /* Built on first use: about 150,000 instructions, once. */
        uint32_t x = 0x2545f491u;
        for (unsigned i = 0; i < (NET_STREAM_PERIOD + 3) / 4; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            words[i] = x;       /* little-endian: least significant byte first */
        }
        __builtin_memcpy(table + NET_STREAM_PERIOD, table, NET_STREAM_SPAN);
        ready = true;
    }
    return table;
}
