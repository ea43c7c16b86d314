/* Network and disk bring-up and their event-loop hooks. */
#include "apic.h"
#include "console.h"
#include "io.h"
#include "net.h"
#include "netif.h"
#include "status.h"
#include "virtio-blk.h"
#include "virtio-net.h"

static bool net_up;
static uint64_t net_busy_tsc;

static void ip_str(char *buf, size_t len, uint32_t ip)
{
    ksnprintf(buf, len, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
}

void netif_init(const struct guest_config *cfg, uint32_t apic_id)
{
    struct net_config nc = { .ip = cfg->ip, .mask = cfg->netmask, .gw = cfg->gw };
    char ip[16], gw[16];
    unsigned prefix = 0;
    bool disk = vblk_init(apic_id);

    for (uint32_t m = cfg->netmask; m; m <<= 1) {
        prefix++;
    }
    if (cfg->ip && vnet_init(apic_id, nc.mac, &nc.tx_csum)) {
        net_init(&nc, rdtsc());
        net_up = true;
        STATUS->net_ip = cfg->ip;
        STATUS->net_flags |= STATUS_NET_UP;
    }
    if (disk) {
        STATUS->disk_blocks = vblk_blocks();
        STATUS->net_flags |= STATUS_NET_DISK;
    }
    ip_str(ip, sizeof(ip), cfg->ip);
    ip_str(gw, sizeof(gw), cfg->gw);
    if (net_up) {
        kprintf("colo-testguest: net: mac=%02x:%02x:%02x:%02x:%02x:%02x ip=%s/%u gw=%s tx_csum=%u disk_blocks=%lu\n",
                nc.mac[0], nc.mac[1], nc.mac[2], nc.mac[3], nc.mac[4], nc.mac[5], ip, prefix,
                cfg->gw ? gw : "none", nc.tx_csum, vblk_blocks());
        net_announce();
        vnet_flush();
    } else {
        kprintf("colo-testguest: net: %s, disk_blocks=%lu\n", cfg->ip ? "no usable virtio-net" : "off (no ip=)",
                vblk_blocks());
    }
}

void netif_net_irq(struct percpu *c)
{
    if (net_up) {
        vnet_poll();
        net_busy_tsc += rdtsc() - c->entry_tsc;
    }
}

void netif_blk_irq(struct percpu *c)
{
    (void)c;
    vblk_poll();
    if (net_up) {
        vnet_flush();
    }
}

void netif_tick(struct percpu *c, uint32_t hz)
{
    if (net_up) {
        net_timer(c->ticks * 1000 / hz);
        vnet_poll();
    }
}

void netif_status(void)
{
    STATUS->net_rx_frames = net_stats.rx_frames;
    STATUS->net_tx_frames = net_stats.tx_frames;
    STATUS->net_rx_dropped = net_stats.rx_dropped;
    STATUS->net_busy_tsc = net_busy_tsc;
    STATUS->tcp_accepted = net_stats.tcp_accepted;
    STATUS->tcp_retrans = net_stats.tcp_retrans;
    STATUS->net_tx_dropped = net_stats.tx_dropped;
}

void netif_status_line(void)
{
    if (net_up) {
        kprintf("colo-testguest: net rx=%lu tx=%lu rx_dropped=%lu tx_dropped=%lu tcp_accepted=%lu tcp_retrans=%lu "
                "rx_us=%lu\n", net_stats.rx_frames, net_stats.tx_frames, net_stats.rx_dropped, net_stats.tx_dropped,
                net_stats.tcp_accepted, net_stats.tcp_retrans,
                tsc_hz && net_stats.rx_frames ? net_busy_tsc * 1000000 / tsc_hz / net_stats.rx_frames : 0);
    }
}
