#include "config.h"

#include "pktgen.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static uint32_t pktgen_sum(const uint8_t *p, size_t len, uint32_t sum)
{
    for (size_t i = 0; i + 1 < len; i += 2) {
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    }
    if (len & 1) {
        sum += (uint32_t)(p[len - 1] << 8);
    }
    return sum;
}

static uint16_t pktgen_fold(uint32_t sum)
{
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return (uint16_t)~sum;
}

static bool pktgen_is_v6(const char *addr)
{
    return strchr(addr, ':') != NULL;
}

/* Writes the IP header for @l4len bytes of @proto; returns its length. */
static size_t pktgen_ip(uint8_t *buf, const char *src, const char *dst, uint8_t proto, size_t l4len)
{
    if (pktgen_is_v6(src)) {
        memset(buf, 0, 40);
        buf[0] = 0x60;
        buf[4] = (uint8_t)(l4len >> 8);
        buf[5] = (uint8_t)l4len;
        buf[6] = proto;
        buf[7] = 64;
        inet_pton(AF_INET6, src, buf + 8);
        inet_pton(AF_INET6, dst, buf + 24);
        return 40;
    }
    memset(buf, 0, 20);
    buf[0] = 0x45;
    buf[2] = (uint8_t)((l4len + 20) >> 8);
    buf[3] = (uint8_t)(l4len + 20);
    buf[6] = 0x40;   /* DF */
    buf[8] = 64;
    buf[9] = proto;
    inet_pton(AF_INET, src, buf + 12);
    inet_pton(AF_INET, dst, buf + 16);
    {
        uint16_t c = pktgen_fold(pktgen_sum(buf, 20, 0));

        buf[10] = (uint8_t)(c >> 8);
        buf[11] = (uint8_t)c;
    }
    return 20;
}

static uint16_t pktgen_l4_csum(const uint8_t *ip, size_t hlen, const uint8_t *l4, size_t l4len)
{
    uint32_t sum = 0;

    if ((ip[0] >> 4) == 6) {
        sum = pktgen_sum(ip + 8, 32, sum);
        sum += (uint32_t)(l4len >> 16) + (uint32_t)(l4len & 0xffff);
        sum += ip[6];
    } else {
        sum = pktgen_sum(ip + 12, 8, sum);
        sum += (uint32_t)l4len;
        sum += ip[9];
    }
    (void)hlen;
    return pktgen_fold(pktgen_sum(l4, l4len, sum));
}

size_t pktgen_tcp(uint8_t *buf, const struct pktgen_tcp *t)
{
    size_t thl = 20 + t->optlen, l4len = thl + t->plen;
    size_t hlen = pktgen_ip(buf, t->src, t->dst, IPPROTO_TCP, l4len);
    uint8_t *tcp = buf + hlen;
    uint16_t c;

    memset(tcp, 0, 20);
    tcp[0] = (uint8_t)(t->sport >> 8); tcp[1] = (uint8_t)t->sport;
    tcp[2] = (uint8_t)(t->dport >> 8); tcp[3] = (uint8_t)t->dport;
    tcp[4] = (uint8_t)(t->seq >> 24); tcp[5] = (uint8_t)(t->seq >> 16);
    tcp[6] = (uint8_t)(t->seq >> 8); tcp[7] = (uint8_t)t->seq;
    tcp[8] = (uint8_t)(t->ack >> 24); tcp[9] = (uint8_t)(t->ack >> 16);
    tcp[10] = (uint8_t)(t->ack >> 8); tcp[11] = (uint8_t)t->ack;
    tcp[12] = (uint8_t)((thl / 4) << 4);
    tcp[13] = t->flags;
    tcp[14] = (uint8_t)((t->window ? t->window : 65535) >> 8);
    tcp[15] = (uint8_t)(t->window ? t->window : 65535);
    if (t->optlen) {
        memcpy(tcp + 20, t->opts, t->optlen);
    }
    if (t->plen) {
        memcpy(tcp + thl, t->payload, t->plen);
    }
    c = pktgen_l4_csum(buf, hlen, tcp, l4len);
    tcp[16] = (uint8_t)(c >> 8);
    tcp[17] = (uint8_t)c;
    return hlen + l4len;
}

size_t pktgen_udp(uint8_t *buf, const char *src, const char *dst, uint16_t sport, uint16_t dport,
                  const void *payload, size_t plen)
{
    size_t l4len = 8 + plen, hlen = pktgen_ip(buf, src, dst, IPPROTO_UDP, l4len);
    uint8_t *udp = buf + hlen;
    uint16_t c;

    udp[0] = (uint8_t)(sport >> 8); udp[1] = (uint8_t)sport;
    udp[2] = (uint8_t)(dport >> 8); udp[3] = (uint8_t)dport;
    udp[4] = (uint8_t)(l4len >> 8); udp[5] = (uint8_t)l4len;
    udp[6] = udp[7] = 0;
    memcpy(udp + 8, payload, plen);
    c = pktgen_l4_csum(buf, hlen, udp, l4len);
    udp[6] = (uint8_t)(c >> 8);
    udp[7] = (uint8_t)c;
    return hlen + l4len;
}

size_t pktgen_icmp_echo(uint8_t *buf, const char *src, const char *dst, uint16_t id, uint16_t seq,
                        const void *payload, size_t plen)
{
    bool v6 = pktgen_is_v6(src);
    size_t l4len = 8 + plen, hlen = pktgen_ip(buf, src, dst, v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP, l4len);
    uint8_t *icmp = buf + hlen;
    uint16_t c;

    icmp[0] = v6 ? 128 : 8;
    icmp[1] = 0;
    icmp[2] = icmp[3] = 0;
    icmp[4] = (uint8_t)(id >> 8); icmp[5] = (uint8_t)id;
    icmp[6] = (uint8_t)(seq >> 8); icmp[7] = (uint8_t)seq;
    memcpy(icmp + 8, payload, plen);
    c = v6 ? pktgen_l4_csum(buf, hlen, icmp, l4len) : pktgen_fold(pktgen_sum(icmp, l4len, 0));
    icmp[2] = (uint8_t)(c >> 8);
    icmp[3] = (uint8_t)c;
    return hlen + l4len;
}

size_t pktgen_arp(uint8_t *buf, uint16_t op, const char *sender, const char *target)
{
    static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
    uint8_t *arp = buf + 14;

    memset(buf, 0xff, 6);
    memcpy(buf + 6, mac, 6);
    buf[12] = 0x08; buf[13] = 0x06;
    arp[0] = 0; arp[1] = 1;
    arp[2] = 0x08; arp[3] = 0x00;
    arp[4] = 6; arp[5] = 4;
    arp[6] = (uint8_t)(op >> 8); arp[7] = (uint8_t)op;
    memcpy(arp + 8, mac, 6);
    inet_pton(AF_INET, sender, arp + 14);
    memset(arp + 18, 0, 6);
    inet_pton(AF_INET, target, arp + 24);
    return 14 + 28;
}

size_t pktgen_eth_wrap(uint8_t *buf, size_t len)
{
    bool v6 = (buf[0] >> 4) == 6;

    memmove(buf + 14, buf, len);
    memset(buf, 0, 12);
    buf[0] = 0x52; buf[5] = 1;
    buf[6] = 0x52; buf[11] = 2;
    buf[12] = v6 ? 0x86 : 0x08;
    buf[13] = v6 ? 0xdd : 0x00;
    return len + 14;
}

bool pktgen_csum_ok(const uint8_t *ip, size_t len)
{
    bool v6 = (ip[0] >> 4) == 6;
    size_t hlen = v6 ? 40 : (size_t)(ip[0] & 15) * 4;
    uint8_t proto = v6 ? ip[6] : ip[9];

    if (!v6 && pktgen_fold(pktgen_sum(ip, hlen, 0)) != 0) {
        return false;
    }
    if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) {
        return true;
    }
    return pktgen_l4_csum(ip, hlen, ip + hlen, len - hlen) == 0;
}
