/* virtio-net on a real tap, inside a private network namespace (needs
 * root): frames the "guest" transmits come out of the tap; frames sent into
 * the tap land in the guest's receive buffers. The guest side is the test
 * driver over the I/O bus and guest memory. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/ethtool.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>

#include "iobus.h"
#include "memory.h"
#include "pci/pci.h"
#include "virtio-driver.h"
#include "virtio/virtio-net.h"

#define F_CSUM (1ULL << 0)
#define F_GUEST_CSUM (1ULL << 1)
#define F_MAC (1ULL << 5)
#define F_GUEST_TSO4 (1ULL << 7)
#define F_HOST_TSO4 (1ULL << 11)
#define F_VERSION_1 (1ULL << 32)
#define ETH_TEST 0x88b5         /* local experimental ethertype */
#define TAP_NAME "cvnet0"
#define RXBUF(i) (0x500000ULL + 0x1000ULL * (i))
#define TXBUF 0x600000ULL

static const char *skip_reason;
static char *setup_error;       /* root, yet no namespace: a failure */

static int packet_socket(unsigned ifindex)
{
    int s = socket(AF_PACKET, SOCK_RAW, htons(ETH_TEST));
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_TEST),
                               .sll_ifindex = (int)ifindex };

    g_assert_cmpint(s, >=, 0);
    g_assert_cmpint(bind(s, (struct sockaddr *)&sll, sizeof(sll)), ==, 0);
    return s;
}

static void link_up(const char *name)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr = { 0 };

    g_strlcpy(ifr.ifr_name, name, IFNAMSIZ);
    g_assert_cmpint(ioctl(s, SIOCGIFFLAGS, &ifr), ==, 0);
    ifr.ifr_flags |= IFF_UP;
    g_assert_cmpint(ioctl(s, SIOCSIFFLAGS, &ifr), ==, 0);
    close(s);
}

/* The tap's offloads as the kernel sees them (what it may hand the guest). */
static bool tap_offload(const char *name, uint32_t cmd)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ethtool_value ev = { .cmd = cmd };
    struct ifreq ifr = { 0 };

    g_strlcpy(ifr.ifr_name, name, IFNAMSIZ);
    ifr.ifr_data = (void *)&ev;
    g_assert_cmpint(ioctl(s, SIOCETHTOOL, &ifr), ==, 0);
    close(s);
    return ev.data != 0;
}

static size_t make_frame(uint8_t *f, const uint8_t *src, const char *text)
{
    memset(f, 0, 60);
    memset(f, 0xff, 6);
    memcpy(f + 6, src, 6);
    f[12] = ETH_TEST >> 8;
    f[13] = ETH_TEST & 0xff;
    memcpy(f + 14, text, strlen(text));
    return 60;
}

static void test_net(void)
{
    if (skip_reason) {
        g_test_skip(skip_reason);
        return;
    }
    if (setup_error) {
        g_test_fail_printf("%s", setup_error);
        return;
    }
    GuestMemoryConfig mc = { .size = 16 << 20 };
    VirtioNetConfig nc = { .id = (char *)"n0", .ifname = (char *)TAP_NAME,
                           .mac = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 } };
    IoBus *io = iobus_new();
    GuestMemory *mem = guest_memory_new(&mc, NULL);
    PciBus *bus = pci_bus_new(io, NULL, NULL);
    g_autoptr(GError) error = NULL;
    VirtioNet *net = virtio_net_new(bus, mem, &nc, 0, &error);
    TestDriver td;

    g_assert_no_error(error);
    g_assert_true(virtio_dev_start(virtio_net_dev(net), NULL));
    td_probe(&td, io, mem, virtio_net_dev(net));
    g_assert_cmphex(td_cfg_read(io, td.slot, PCI_DEVICE_ID, 2), ==, 0x1041);
    for (unsigned i = 0; i < 6; i++) {
        g_assert_cmphex(td_mmio_read(io, td.bar + td.device + i, 1), ==, nc.mac[i]);
    }
    /* Offload dependencies (5.1.3.1) are enforced. */
    g_assert_false(td_negotiate(&td, F_VERSION_1 | F_GUEST_TSO4));
    g_assert_false(td_negotiate(&td, F_VERSION_1 | F_HOST_TSO4));
    /* The tap offers the guest only what it accepted. */
    g_assert_true(td_negotiate(&td, F_VERSION_1 | F_GUEST_CSUM | F_GUEST_TSO4));
    g_assert_true(tap_offload(TAP_NAME, ETHTOOL_GTXCSUM));
    g_assert_true(tap_offload(TAP_NAME, ETHTOOL_GTSO));
    g_assert_true(td_negotiate(&td, F_VERSION_1 | F_GUEST_CSUM));
    g_assert_true(tap_offload(TAP_NAME, ETHTOOL_GTXCSUM));
    g_assert_false(tap_offload(TAP_NAME, ETHTOOL_GTSO));
    g_assert_true(td_negotiate(&td, F_VERSION_1 | F_MAC | F_CSUM));
    g_assert_false(tap_offload(TAP_NAME, ETHTOOL_GTXCSUM));
    g_assert_false(tap_offload(TAP_NAME, ETHTOOL_GTSO));
    td_setup_queue(&td, 0, 16);
    td_setup_queue(&td, 1, 16);
    td_driver_ok(&td);
    g_assert_cmphex(td_status(&td), ==, 0x0f);

    unsigned ifindex = if_nametoindex(TAP_NAME);
    g_assert_cmpuint(ifindex, !=, 0);
    link_up(TAP_NAME);
    int ps = packet_socket(ifindex);

    /* Transmit: header and frame in two descriptors. */
    uint8_t frame[60], hdr[12] = { 0 }, got[2048];
    size_t flen = make_frame(frame, nc.mac, "colo transmit test");
    g_assert_true(guest_memory_write(mem, TXBUF, hdr, sizeof(hdr)));
    g_assert_true(guest_memory_write(mem, TXBUF + 0x100, frame, flen));
    td_desc(&td, 1, 0, TXBUF, sizeof(hdr), VIRTQ_DESC_F_NEXT, 1);
    td_desc(&td, 1, 1, TXBUF + 0x100, (uint32_t)flen, 0, 0);
    td_submit(&td, 1, 0);
    g_assert_true(td_wait_irq(&td, 2, 5000));
    uint32_t id, len;
    g_assert_true(td_used(&td, 1, &id, &len));
    g_assert_cmpuint(id, ==, 0);
    struct pollfd p = { .fd = ps, .events = POLLIN };
    g_assert_cmpint(poll(&p, 1, 5000), ==, 1);
    ssize_t n = recv(ps, got, sizeof(got), 0);
    g_assert_cmpint(n, ==, (ssize_t)flen);
    g_assert_cmpmem(got, flen, frame, flen);

    /* Receive: frames sent into the tap fill the guest's buffers. */
    for (uint16_t i = 0; i < 4; i++) {
        td_desc(&td, 0, i, RXBUF(i), 2048, VIRTQ_DESC_F_WRITE, 0);
        td_submit(&td, 0, i);
    }
    uint8_t peer[6] = { 0x02, 0, 0, 0, 0, 9 };
    flen = make_frame(frame, peer, "colo receive test");
    struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_ifindex = (int)ifindex, .sll_halen = 6 };
    memset(to.sll_addr, 0xff, 6);
    g_assert_cmpint(sendto(ps, frame, flen, 0, (struct sockaddr *)&to, sizeof(to)), ==, (ssize_t)flen);
    bool found = false;
    for (int tries = 0; tries < 8 && !found && td_wait_irq(&td, 1, 5000); tries++) {
        while (!found && td_used(&td, 0, &id, &len)) {
            g_assert_cmpuint(id, <, 4);
            g_assert_true(guest_memory_read(mem, RXBUF(id), got, MIN(len, sizeof(got))));
            if (len == 12 + flen && memcmp(got + 12, frame, flen) == 0) {
                found = true;
                g_assert_cmpuint(got[10], ==, 1);   /* num_buffers */
            }
        }
    }
    g_assert_true(found);

    /* Frames that find the ring dry wait in the tap; buffers posted
     * without a kick are still found (the device looks again). */
    flen = make_frame(frame, peer, "colo receive test 2");
    for (unsigned i = 0; i < 6; i++) {
        g_assert_cmpint(sendto(ps, frame, flen, 0, (struct sockaddr *)&to, sizeof(to)), ==, (ssize_t)flen);
    }
    g_usleep(200 * 1000);
    unsigned second = 0;
    while (td_wait_irq(&td, 1, 0)) {
    }
    while (td_used(&td, 0, &id, &len)) {     /* what the first buffers took */
        g_assert_true(guest_memory_read(mem, RXBUF(id), got, MIN(len, sizeof(got))));
        second += len == 12 + flen && memcmp(got + 12, frame, flen) == 0;
    }
    g_assert_cmpuint(second, <, 6);
    for (uint16_t i = 4; i < 14; i++) {
        td_desc(&td, 0, i, RXBUF(i), 2048, VIRTQ_DESC_F_WRITE, 0);
        td_publish(&td, 0, i);
    }
    for (int tries = 0; tries < 20 && second < 6 && td_wait_irq(&td, 1, 3000); tries++) {
        while (td_used(&td, 0, &id, &len)) {
            g_assert_true(guest_memory_read(mem, RXBUF(id), got, MIN(len, sizeof(got))));
            second += len == 12 + flen && memcmp(got + 12, frame, flen) == 0;
        }
    }
    g_assert_cmpuint(second, ==, 6);
    g_assert_cmpuint(virtio_net_stats(net).tx_frames, ==, 1);
    g_assert_cmpuint(virtio_net_stats(net).rx_frames, >=, 1);
    g_assert_false(td_status(&td) & VIRTIO_STATUS_NEEDS_RESET);

    close(ps);
    virtio_net_free(net);
    pci_bus_free(bus);
    guest_memory_free(mem);
    iobus_free(io);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    if (geteuid() != 0) {
        skip_reason = "not root: needs a tap in a private network namespace";
    } else if (unshare(CLONE_NEWNET) < 0) {
        setup_error = g_strdup_printf("cannot create a network namespace as root: %s", g_strerror(errno));
    } else if (access("/dev/net/tun", R_OK | W_OK) < 0) {
        skip_reason = "no /dev/net/tun";
    }
    g_test_add_func("/virtio/net/tap", test_net);
    return g_test_run();
}
