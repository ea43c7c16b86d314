/* The primary's user-space L2 path (--uplink). NFQUEUE sees only IP
 * packets the host forwards, so a guest's ARP (and anything it says to its
 * own host) would go out uncompared. Here the proxy is the only thing
 * between the guest's interface and the uplink: every frame the guest
 * sends is held and compared, and released onto the uplink; every frame
 * for the guest is mirrored and passed on. The kernel must ignore both
 * interfaces (ports of a bridge that is down): packet sockets see a frame
 * before the bridge drops it. */
#include "config.h"

#include "proxy.h"

#include <gio/gio.h>
#include <qb/qblog.h>

/* A frame from the guest: hold it until the engine releases it. */
static void l2_guest_frame(void *opaque, uint8_t *buf, size_t len, bool outgoing)
{
    Proxy *p = opaque;
    uint64_t handle;

    if (p->failed_over) {
        capture_queue(p->uplink_cap, buf, len);
        return;
    }
    handle = ++p->l2_next;
    /* Stored first: the release may come from inside cmp_primary_add. */
    g_hash_table_insert(p->l2_held, g_memdup2(&handle, sizeof(handle)), g_bytes_new(buf, len));
    cmp_primary_add(p->engine, handle, buf + CAPTURE_VNET_LEN, len - CAPTURE_VNET_LEN, true, proxy_now_ns());
}

void proxy_l2_release(Proxy *p, uint64_t handle)
{
    GBytes *b = g_hash_table_lookup(p->l2_held, &handle);
    gsize n;
    const uint8_t *data;

    if (!b) {
        return;
    }
    data = g_bytes_get_data(b, &n);
    /* Sent in one sendmmsg by proxy_l2_flush() at the end of the burst. */
    capture_queue(p->uplink_cap, data, n);
    g_hash_table_remove(p->l2_held, &handle);
}

void proxy_l2_flush(Proxy *p)
{
    if (p->uplink_cap) {
        capture_flush(p->uplink_cap);
    }
}

static void l2_guest_done(void *opaque)
{
    proxy_l2_flush(opaque);
}

/* A frame for the guest (from the host's side of the uplink). */
static void l2_uplink_frame(void *opaque, uint8_t *buf, size_t len, bool outgoing)
{
    Proxy *p = opaque;

    if (!p->failed_over && cmp_engine_armed(p->engine)) {
        link_queue(p->link, FRAME_MIRROR, proxy_mirror_epoch(p), buf, len);
        cmp_input_add(p->engine, buf + CAPTURE_VNET_LEN, len - CAPTURE_VNET_LEN, true);
    } else if (!p->failed_over) {
        proxy_sync_input_keep(p, buf, len);
    }
    capture_queue(p->cap, buf, len);
}

static void l2_uplink_done(void *opaque)
{
    Proxy *p = opaque;

    link_push(p->link);
    capture_flush(p->cap);
}

bool proxy_l2_start(Proxy *p, GError **error)
{
    struct capture_callbacks gcb = { .frame = l2_guest_frame, .burst_done = l2_guest_done, .opaque = p };
    struct capture_callbacks ucb = { .frame = l2_uplink_frame, .burst_done = l2_uplink_done, .opaque = p };

    p->l2_held = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, (GDestroyNotify)g_bytes_unref);
    /* Both sockets ignore what they send themselves. */
    p->cap = capture_open(p->cfg.guest_iface, false, &gcb, error);
    if (!p->cap) {
        return false;
    }
    p->uplink_cap = capture_open(p->cfg.uplink, false, &ucb, error);
    if (!p->uplink_cap) {
        return false;
    }
    qb_log(LOG_INFO, "L2 path: %s <-> %s, every guest frame compared", p->cfg.guest_iface, p->cfg.uplink);
    return true;
}

void proxy_l2_free(Proxy *p)
{
    /* Frames still held are dropped, never sent uncompared. */
    capture_close(p->uplink_cap);
    p->uplink_cap = NULL;
    if (p->l2_held) {
        g_hash_table_destroy(p->l2_held);
        p->l2_held = NULL;
    }
}
