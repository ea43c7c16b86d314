#include "config.h"

#include "packet.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#define IPV6_MAX_EXT_HEADERS 8

const char *pkt_strerror(int err)
{
    switch (err) {
    case PKT_OK: return "ok";
    case PKT_ERR_TRUNCATED: return "truncated packet";
    case PKT_ERR_MALFORMED: return "malformed packet";
    case PKT_ERR_UNSUPPORTED: return "unsupported packet type";
    default: return "unknown error";
    }
}

/* Transport layer, shared by v4 and v6; @end bounds the L3 packet. */
static int pkt_parse_l4(const uint8_t *buf, struct pkt_info *pi)
{
    size_t l4len = pi->end - pi->l4_off;
    const uint8_t *l4 = buf + pi->l4_off;

    pi->payload_off = pi->l4_off;
    pi->payload_len = l4len;
    if (pi->fragment) {
        return PKT_OK;
    }
    switch (pi->key.proto) {
    case IPPROTO_TCP: {
        size_t doff;

        if (l4len < 20) {
            return PKT_ERR_TRUNCATED;
        }
        doff = (size_t)(l4[12] >> 4) * 4;
        if (doff < 20) {
            return PKT_ERR_MALFORMED;
        }
        if (doff > l4len) {
            return PKT_ERR_TRUNCATED;
        }
        pi->key.sport = pkt_get16(l4);
        pi->key.dport = pkt_get16(l4 + 2);
        pi->seq = pkt_get32(l4 + 4);
        pi->ack = pkt_get32(l4 + 8);
        pi->tcp_flags = l4[13];
        pi->tcp_opt_off = pi->l4_off + 20;
        pi->tcp_opt_len = doff - 20;
        pi->payload_off = pi->l4_off + doff;
        pi->payload_len = l4len - doff;
        return PKT_OK;
    }
    case IPPROTO_UDP: {
        size_t ulen;

        if (l4len < 8) {
            return PKT_ERR_TRUNCATED;
        }
        ulen = pkt_get16(l4 + 4);
        /* A GSO super-packet may carry 0 or a per-segment length; only a
         * length that claims more than we have is an error. */
        if (ulen > l4len) {
            return PKT_ERR_TRUNCATED;
        }
        if (ulen != 0 && ulen < 8) {
            return PKT_ERR_MALFORMED;
        }
        pi->key.sport = pkt_get16(l4);
        pi->key.dport = pkt_get16(l4 + 2);
        pi->payload_off = pi->l4_off + 8;
        pi->payload_len = (ulen ? ulen : l4len) - 8;
        return PKT_OK;
    }
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
        if (l4len < 4) {
            return PKT_ERR_TRUNCATED;
        }
        /* Type and code go into the key; the checksum is skipped (it can
         * only differ if the rest does) and the message body compared. */
        pi->key.sport = pkt_get16(l4);
        pi->payload_off = pi->l4_off + 4;
        pi->payload_len = l4len - 4;
        return PKT_OK;
    default:
        /* Other protocols: the whole L4 payload is compared. */
        return PKT_OK;
    }
}

static int pkt_parse_ipv4(const uint8_t *buf, size_t off, size_t len, struct pkt_info *pi)
{
    const uint8_t *ip = buf + off;
    size_t avail = len - off, ihl, tot;
    uint16_t frag;

    if (avail < 20) {
        return PKT_ERR_TRUNCATED;
    }
    if ((ip[0] >> 4) != 4) {
        return PKT_ERR_MALFORMED;
    }
    ihl = (size_t)(ip[0] & 0x0f) * 4;
    if (ihl < 20) {
        return PKT_ERR_MALFORMED;
    }
    tot = pkt_get16(ip + 2);
    /* GSO super-packets above 64 KiB carry a total length of 0. */
    if (tot == 0 && avail > 65535) {
        tot = avail;
    }
    if (tot > avail) {
        return PKT_ERR_TRUNCATED;
    }
    if (tot < ihl) {
        return PKT_ERR_MALFORMED;
    }
    pi->ethertype = PKT_ETHERTYPE_IPV4;
    pi->l3_off = off;
    pi->l4_off = off + ihl;
    pi->end = off + tot;
    pi->key.family = 4;
    pi->key.proto = ip[9];
    memcpy(pi->key.src, ip + 12, 4);
    memcpy(pi->key.dst, ip + 16, 4);
    frag = pkt_get16(ip + 6);
    pi->fragment = (frag & 0x3fff) != 0;
    return pkt_parse_l4(buf, pi);
}

static int pkt_parse_ipv6(const uint8_t *buf, size_t off, size_t len, struct pkt_info *pi)
{
    const uint8_t *ip = buf + off;
    size_t avail = len - off, plen, pos;
    uint8_t next;

    if (avail < 40) {
        return PKT_ERR_TRUNCATED;
    }
    if ((ip[0] >> 4) != 6) {
        return PKT_ERR_MALFORMED;
    }
    plen = pkt_get16(ip + 4);
    if (plen == 0 && avail > 65535 + 40) {
        plen = avail - 40;   /* BIG TCP / jumbogram super-packet */
    }
    if (plen + 40 > avail) {
        return PKT_ERR_TRUNCATED;
    }
    pi->ethertype = PKT_ETHERTYPE_IPV6;
    pi->l3_off = off;
    pi->end = off + 40 + plen;
    pi->key.family = 6;
    memcpy(pi->key.src, ip + 8, 16);
    memcpy(pi->key.dst, ip + 24, 16);
    next = ip[6];
    pos = off + 40;
    for (int i = 0; i < IPV6_MAX_EXT_HEADERS; i++) {
        size_t hlen;

        if (next != 0 && next != 43 && next != 60 && next != 44 && next != 51) {
            break;
        }
        if (pos + 8 > pi->end) {
            return PKT_ERR_TRUNCATED;
        }
        if (next == 44) {
            /* A fragment header: later fragments have no L4 header. */
            pi->fragment = true;
            hlen = 8;
        } else if (next == 51) {
            hlen = ((size_t)buf[pos + 1] + 2) * 4;
        } else {
            hlen = ((size_t)buf[pos + 1] + 1) * 8;
        }
        if (pos + hlen > pi->end) {
            return PKT_ERR_TRUNCATED;
        }
        next = buf[pos];
        pos += hlen;
        if (pi->fragment) {
            break;
        }
    }
    if (next == 0 || next == 43 || next == 60 || next == 51) {
        return PKT_ERR_UNSUPPORTED;   /* more extension headers than we walk */
    }
    pi->key.proto = next;
    pi->l4_off = pos;
    return pkt_parse_l4(buf, pi);
}

static int pkt_parse_arp(const uint8_t *buf, size_t off, size_t len, struct pkt_info *pi)
{
    const uint8_t *arp = buf + off;

    if (len - off < 28) {
        return PKT_ERR_TRUNCATED;
    }
    /* Only Ethernet/IPv4 ARP exists on the networks we protect. */
    if (pkt_get16(arp) != 1 || pkt_get16(arp + 2) != PKT_ETHERTYPE_IPV4 || arp[4] != 6 || arp[5] != 4) {
        return PKT_ERR_UNSUPPORTED;
    }
    pi->ethertype = PKT_ETHERTYPE_ARP;
    pi->l3_off = off;
    pi->l4_off = off;
    pi->end = off + 28;
    pi->key.family = 0;
    pi->key.proto = 0;
    memcpy(pi->key.src, arp + 14, 4);
    memcpy(pi->key.dst, arp + 24, 4);
    pi->key.sport = pkt_get16(arp + 6);   /* opcode: request and reply differ */
    pi->payload_off = off;
    pi->payload_len = 28;
    return PKT_OK;
}

static void pkt_info_clear(struct pkt_info *pi)
{
    memset(pi, 0, sizeof(*pi));
}

int pkt_parse_ip(const uint8_t *buf, size_t len, struct pkt_info *pi)
{
    pkt_info_clear(pi);
    if (len < 1) {
        return PKT_ERR_TRUNCATED;
    }
    switch (buf[0] >> 4) {
    case 4: return pkt_parse_ipv4(buf, 0, len, pi);
    case 6: return pkt_parse_ipv6(buf, 0, len, pi);
    default: return PKT_ERR_MALFORMED;
    }
}

int pkt_parse_eth(const uint8_t *buf, size_t len, struct pkt_info *pi)
{
    size_t off = PKT_ETH_HLEN;
    uint16_t type;

    pkt_info_clear(pi);
    if (len < PKT_ETH_HLEN) {
        return PKT_ERR_TRUNCATED;
    }
    type = pkt_get16(buf + 12);
    if (type == PKT_ETHERTYPE_VLAN) {
        if (len < PKT_ETH_HLEN + 4) {
            return PKT_ERR_TRUNCATED;
        }
        type = pkt_get16(buf + 16);
        off += 4;
    }
    switch (type) {
    case PKT_ETHERTYPE_IPV4: return pkt_parse_ipv4(buf, off, len, pi);
    case PKT_ETHERTYPE_IPV6: return pkt_parse_ipv6(buf, off, len, pi);
    case PKT_ETHERTYPE_ARP: return pkt_parse_arp(buf, off, len, pi);
    default: return PKT_ERR_UNSUPPORTED;
    }
}

bool flow_key_is_datagram(const struct flow_key *k)
{
    return k->proto == IPPROTO_UDP || k->proto == IPPROTO_ICMP || k->proto == IPPROTO_ICMPV6;
}

void flow_key_reverse(const struct flow_key *in, struct flow_key *out)
{
    struct flow_key tmp = *in;

    memcpy(tmp.src, in->dst, sizeof(tmp.src));
    memcpy(tmp.dst, in->src, sizeof(tmp.dst));
    tmp.sport = in->dport;
    tmp.dport = in->sport;
    *out = tmp;
}

unsigned int flow_key_hash(const void *key)
{
    const uint8_t *p = key;
    uint32_t h = 2166136261u;   /* FNV-1a */

    for (size_t i = 0; i < sizeof(struct flow_key); i++) {
        h = (h ^ p[i]) * 16777619u;
    }
    return h;
}

int flow_key_equal(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(struct flow_key)) == 0;
}

const char *flow_key_format(const struct flow_key *key, char *buf, size_t size)
{
    char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
    const char *proto;
    int af = key->family == 6 ? AF_INET6 : AF_INET;

    inet_ntop(af, key->src, s, sizeof(s));
    inet_ntop(af, key->dst, d, sizeof(d));
    switch (key->proto) {
    case IPPROTO_TCP: proto = "tcp"; break;
    case IPPROTO_UDP: proto = "udp"; break;
    case IPPROTO_ICMP: proto = "icmp"; break;
    case IPPROTO_ICMPV6: proto = "icmp6"; break;
    default: proto = key->family ? "ip" : "arp"; break;
    }
    snprintf(buf, size, "%s %s:%u > %s:%u", proto, s, key->sport, d, key->dport);
    return buf;
}
