/* Unit tests of the packet parser: every layer, and bad input. */
#include "config.h"

#include "packet.h"
#include "pktgen.h"

#include <glib.h>
#include <netinet/in.h>
#include <string.h>

static uint8_t buf[4096];

static void test_tcp4(void)
{
    struct pktgen_tcp t = { .src = "10.1.2.3", .dst = "10.9.9.9", .sport = 80, .dport = 1234,
                            .seq = 0xdeadbeef, .ack = 7, .flags = PKT_TCP_ACK | PKT_TCP_PSH,
                            .payload = "abc", .plen = 3 };
    size_t len = pktgen_tcp(buf, &t);
    struct pkt_info pi;
    char s[128];

    g_assert_cmpint(pkt_parse_ip(buf, len, &pi), ==, PKT_OK);
    g_assert_cmpuint(pi.key.proto, ==, IPPROTO_TCP);
    g_assert_cmpuint(pi.seq, ==, 0xdeadbeef);
    g_assert_cmpuint(pi.payload_len, ==, 3);
    g_assert_cmpmem(buf + pi.payload_off, 3, "abc", 3);
    g_assert_cmpstr(flow_key_format(&pi.key, s, sizeof(s)), ==, "tcp 10.1.2.3:80 > 10.9.9.9:1234");
    /* Ethernet padding after the IP packet is not payload. */
    memset(buf + len, 0xee, 10);
    g_assert_cmpint(pkt_parse_ip(buf, len + 10, &pi), ==, PKT_OK);
    g_assert_cmpuint(pi.payload_len, ==, 3);
    /* Every truncation is reported. */
    for (size_t l = 0; l < len; l++) {
        g_assert_cmpint(pkt_parse_ip(buf, l, &pi), !=, PKT_OK);
    }
    /* A data offset below 5 words. */
    buf[20 + 12] = 0x40;
    g_assert_cmpint(pkt_parse_ip(buf, len, &pi), ==, PKT_ERR_MALFORMED);
}

static void test_udp6_eth(void)
{
    size_t len = pktgen_eth_wrap(buf, pktgen_udp(buf, "fd00::1", "fd00::2", 53, 99, "dns", 3));
    struct pkt_info pi, rev;

    g_assert_cmpint(pkt_parse_eth(buf, len, &pi), ==, PKT_OK);
    g_assert_cmpuint(pi.key.family, ==, 6);
    g_assert_cmpuint(pi.key.proto, ==, IPPROTO_UDP);
    g_assert_cmpuint(pi.payload_len, ==, 3);
    flow_key_reverse(&pi.key, &rev.key);
    g_assert_cmpuint(rev.key.sport, ==, 99);
    g_assert_false(flow_key_equal(&pi.key, &rev.key));
    g_assert_cmpuint(flow_key_hash(&pi.key), ==, flow_key_hash(&pi.key));
    /* A UDP length beyond the packet. */
    buf[14 + 40 + 5] = 200;
    g_assert_cmpint(pkt_parse_eth(buf, len, &pi), ==, PKT_ERR_TRUNCATED);
    for (size_t l = 0; l < len - 3; l++) {
        g_assert_cmpint(pkt_parse_eth(buf, l, &pi), !=, PKT_OK);
    }
}

static void test_arp_icmp(void)
{
    size_t len = pktgen_arp(buf, 1, "10.0.0.1", "10.0.0.2");
    struct pkt_info pi;

    g_assert_cmpint(pkt_parse_eth(buf, len, &pi), ==, PKT_OK);
    g_assert_cmpuint(pi.ethertype, ==, PKT_ETHERTYPE_ARP);
    g_assert_cmpuint(pi.payload_len, ==, 28);
    g_assert_cmpint(pkt_parse_eth(buf, len - 1, &pi), ==, PKT_ERR_TRUNCATED);
    buf[14 + 1] = 6;   /* not Ethernet hardware */
    g_assert_cmpint(pkt_parse_eth(buf, len, &pi), ==, PKT_ERR_UNSUPPORTED);

    len = pktgen_icmp_echo(buf, "10.0.0.1", "10.0.0.2", 1, 2, "xy", 2);
    g_assert_cmpint(pkt_parse_ip(buf, len, &pi), ==, PKT_OK);
    g_assert_cmpuint(pi.key.proto, ==, IPPROTO_ICMP);
    g_assert_cmpuint(pi.payload_len, ==, 6);
    /* Not IP at all. */
    buf[0] = 0x55;
    g_assert_cmpint(pkt_parse_ip(buf, len, &pi), ==, PKT_ERR_MALFORMED);
}

static void test_fragments_and_ext(void)
{
    size_t len = pktgen_udp(buf, "10.0.0.1", "10.0.0.2", 1, 2, "frag", 4);
    struct pkt_info pi;

    buf[6] = 0x20;   /* more fragments */
    g_assert_cmpint(pkt_parse_ip(buf, len, &pi), ==, PKT_OK);
    g_assert_true(pi.fragment);
    g_assert_cmpuint(pi.payload_len, ==, 12);

    /* IPv6 with a hop-by-hop header whose length runs past the end. */
    len = pktgen_udp(buf, "fd00::1", "fd00::2", 1, 2, "xxxxxxxxxxxx", 12);
    buf[6] = 0;      /* next: hop-by-hop */
    buf[40] = 17;
    buf[41] = 5;     /* 48 bytes */
    g_assert_cmpint(pkt_parse_ip(buf, len, &pi), ==, PKT_ERR_TRUNCATED);
    buf[41] = 0;     /* 8 bytes; a UDP header of 12 bytes at 48 */
    buf[52] = 0;
    buf[53] = 12;
    g_assert_cmpint(pkt_parse_ip(buf, len, &pi), ==, PKT_OK);
    g_assert_cmpuint(pi.l4_off, ==, 48);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/packet/tcp4", test_tcp4);
    g_test_add_func("/packet/udp6-eth", test_udp6_eth);
    g_test_add_func("/packet/arp-icmp", test_arp_icmp);
    g_test_add_func("/packet/fragments-ext", test_fragments_and_ext);
    return g_test_run();
}
