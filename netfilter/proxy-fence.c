/* The primary's fence after a freeze (docs/colo-proxy.md, "A frozen
 * primary"). A primary colo-proxy that was not scheduled for a while (its
 * host's processes stopped, the host paused) may have been replaced
 * meanwhile: the secondary's colod fails over once this host has been
 * silent for corosync's token and consensus. Waking up, the proxy must not
 * release output before it knows: what it matches with the secondary's
 * copies still unread on the link would reach the client beside the new
 * primary's output. So a gap in its own ticks longer than --fence-after-ms
 * fences it: every release waits until the secondary answers a ping on the
 * link that it is still this primary's secondary (everything it sent
 * before the answer has been read by then), or until colod fails this
 * proxy over alone. A secondary that took over answers so, and colod,
 * learning of the takeover, stops this side. */
#include "config.h"

#include "proxy.h"

#include <string.h>

#include <qb/qblog.h>

#define FENCE_TICK_MS 100
/* A secondary that answered no ping this long after the link came up is
 * an older colo-proxy, which cannot: no fence against it. */
#define FENCE_PEER_SILENT_MS 2000

/* PONG's last byte. */
enum { PONG_SECONDARY = 0, PONG_TOOK_OVER = 1 };

static bool fence_applies(const Proxy *p)
{
    /* Only a comparing primary releases what a secondary could also send. */
    return p->engine && !p->failed_over && cmp_engine_armed(p->engine);
}

static void put_be32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

static void fence_send_ping(Proxy *p, uint32_t seq)
{
    uint8_t b[4];

    put_be32(b, seq);
    if (p->link && link_is_up(p->link) && link_send(p->link, FRAME_PING, cmp_engine_epoch(p->engine), b, 4)) {
        link_push(p->link);
    }
}

static gboolean fence_tick(gpointer data)
{
    Proxy *p = data;
    int64_t now = g_get_monotonic_time();
    int64_t gap_ms = (now - p->fence_last_tick) / 1000;

    p->fence_last_tick = now;
    if (!p->fenced && gap_ms > (int64_t)p->cfg.fence_after_ms && fence_applies(p) && p->peer_pongs) {
        p->fenced = true;
        if (++p->fence_seq == 0) {
            p->fence_seq = 1;   /* 0 is the link-up probe's */
        }
        p->fences++;
        qb_log(LOG_WARNING, "not scheduled for %" G_GINT64_FORMAT " ms (over --fence-after-ms %u): the secondary "
               "may have taken over meanwhile; output is held until it answers on the link", gap_ms,
               p->cfg.fence_after_ms);
        fence_send_ping(p, p->fence_seq);
    } else if (p->fenced && !p->fence_hold && !p->peer_pongs && p->link && link_is_up(p->link) &&
               now - p->link_up_at > FENCE_PEER_SILENT_MS * 1000) {
        proxy_fence_lift(p, "the secondary's colo-proxy answers no ping: an older version");
        proxy_flush_released(p);
    }
    return G_SOURCE_CONTINUE;
}

void proxy_fence_start(Proxy *p)
{
    if (p->cfg.role != PROXY_PRIMARY || !p->cfg.fence_after_ms || p->fence_timer) {
        return;
    }
    p->fence_deferred = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    p->fence_last_tick = g_get_monotonic_time();
    p->fence_timer = g_timeout_add(FENCE_TICK_MS, fence_tick, p);
}

void proxy_fence_free(Proxy *p)
{
    if (p->fence_timer) {
        g_source_remove(p->fence_timer);
        p->fence_timer = 0;
    }
    /* Deferred packets stay in the kernel's queue: dropped with it. */
    g_clear_pointer(&p->fence_deferred, g_array_unref);
}

bool proxy_fence_defer(Proxy *p, uint64_t handle)
{
    if (!p->fenced) {
        return false;
    }
    g_array_append_val(p->fence_deferred, handle);
    return true;
}

void proxy_fence_lift(Proxy *p, const char *why)
{
    guint n;

    if (!p->fenced) {
        return;
    }
    p->fenced = false;
    p->fence_hold = false;
    n = p->fence_deferred->len;
    for (guint i = 0; i < n; i++) {
        proxy_release(p, g_array_index(p->fence_deferred, uint64_t, i));
    }
    g_array_set_size(p->fence_deferred, 0);
    if (p->fence_commit) {
        p->fence_commit = false;
        proxy_release_all(p);
    }
    p->fence_released += n;
    qb_log(LOG_NOTICE, "fence lifted (%s): %u packets held meanwhile released", why, n);
}

bool proxy_fence_hold(Proxy *p, GError **error)
{
    if (!p->engine) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "a secondary's colo-proxy holds nothing");
        return false;
    }
    if (p->failed_over || p->fence_hold) {
        return true;    /* colod decided already; or asked twice */
    }
    if (!p->fence_deferred) {
        p->fence_deferred = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    }
    p->fence_hold = true;
    p->fenced = true;
    p->fences++;
    qb_log(LOG_WARNING, "COLO broke: nothing leaves until colod fails this primary over (or stops it)");
    return true;
}

/* A new link: is its secondary one that answers pings (sequence 0)? */
void proxy_fence_link_up(Proxy *p)
{
    if (p->cfg.role != PROXY_PRIMARY || !p->engine) {
        return;
    }
    p->peer_pongs = false;
    p->link_up_at = g_get_monotonic_time();
    fence_send_ping(p, 0);
    if (p->fenced) {
        fence_send_ping(p, p->fence_seq);
    }
}

void proxy_fence_pong(Proxy *p, const struct frame *f)
{
    uint32_t seq;

    if (f->len != 5) {
        return;
    }
    p->peer_pongs = true;
    seq = (uint32_t)f->payload[0] << 24 | (uint32_t)f->payload[1] << 16 | (uint32_t)f->payload[2] << 8 |
          f->payload[3];
    if (!p->fenced || p->fence_hold || seq != p->fence_seq) {
        return;
    }
    if (f->payload[4] == PONG_TOOK_OVER) {
        if (!p->peer_took_over) {
            p->peer_took_over = true;
            qb_log(LOG_WARNING, "the secondary took over while this primary was not scheduled: its output stays "
                   "held until colod stops this side");
        }
        return;
    }
    proxy_fence_lift(p, "the secondary answered on the link");
    proxy_flush_released(p);
}

void proxy_fence_answer_ping(Proxy *p, const struct frame *f)
{
    uint8_t b[5];

    if (f->len != 4) {
        return;
    }
    memcpy(b, f->payload, 4);
    /* Having taken over, this side serves: the old primary stays fenced. */
    b[4] = p->failed_over ? PONG_TOOK_OVER : PONG_SECONDARY;
    p->pings_refused += p->failed_over;
    if (link_send(p->link, FRAME_PONG, p->epoch, b, sizeof(b))) {
        link_push(p->link);
    }
}
