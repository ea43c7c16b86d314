/* A primary colo-proxy whose colo-vmm died (docs/colo-proxy.md, "A
 * primary whose colo-vmm died"). colod keeps such a proxy running until
 * the secondary says it serves the clients (FRAME_SERVING, passed on as
 * the PEER_SERVING event), and says `vmm-lost`:
 *
 *  - The guest's input goes on being mirrored: what a client sends to this
 *    host before the address moves reaches the secondary's guest, which
 *    answers once it serves, instead of waiting for the client's
 *    retransmission (200 ms and more).
 *  - The output held here is released only where the secondary committed
 *    the checkpoint that covers it. colo-vmm releases a checkpoint's output
 *    once the secondary has loaded it; if colo-vmm died after sending the
 *    state, the secondary may load and commit it alone, and its guest then
 *    runs on as if that output had gone out: it would never send it again
 *    before its retransmission timer. The secondary tells the primary's
 *    proxy each commit (FRAME_EPOCH), so this proxy commits it in colo-vmm's
 *    place. A checkpoint that did not get there whole keeps its output
 *    held: the secondary runs on from its own state and sends its own.
 *  - Everything else stays as it was: packets the secondary matched go
 *    out, a `hold` (colo-vmm's COLO had broken) holds everything.
 *
 * The secondary's side of the same loss is here too: its colo-vmm, seeing
 * the primary's stream break, says `primary-lost`; its proxy then keeps
 * its guest's datagrams for the takeover and tells the primary's
 * (FRAME_PRIMARY_LOST, "the mark"), which releases nothing more on its
 * copies and takes none after the mark into its engine.
 *
 * Its datagrams (UDP, ICMP) from before the mark that nothing of ours
 * matched are sent to the clients from here, once both the mark and
 * `vmm-lost` are in: its guest answered input that ours, dead, never
 * will, and those answers came only here, for comparison. Except one
 * that equals a datagram ours sent in this epoch or the last: a second
 * answer to input both guests took (cmp_take_datagrams). Not before the
 * mark: a checkpoint the secondary commits alone (its FRAME_EPOCH comes
 * before the mark, the link keeps order) supersedes them, and whatever
 * follows the mark it sends itself. TCP needs nothing of the kind: the
 * takeover sends its unacknowledged output again (replay.c). */
#include "config.h"

#include "proxy.h"

#include <gio/gio.h>
#include <qb/qblog.h>

static unsigned int vmm_lost_commit(Proxy *p)
{
    unsigned int n;

    if (!p->vmm_lost || p->failed_over || !p->peer_epoch_known ||
        p->peer_epoch != cmp_engine_epoch(p->engine) + 1) {
        return 0;
    }
    n = proxy_checkpoint_commit(p, false);
    p->vmm_lost_released += n;
    qb_log(LOG_NOTICE, "the secondary committed the checkpoint of epoch %u after this primary's colo-vmm died: "
           "its %u held packet%s released%s", p->peer_epoch - 1, n, n == 1 ? "" : "s",
           p->fenced ? " once the fence lifts" : "");
    return n;
}

struct orphans {
    Proxy *p;
    ReplayRaw *raw;
};

static void orphan_send(void *opaque, const uint8_t *ip, size_t len)
{
    struct orphans *o = opaque;

    if (replay_raw_send_datagram(o->raw, ip, len)) {
        o->p->vmm_lost_datagrams_sent++;
    }
}

static void vmm_lost_send_orphans(Proxy *p)
{
    g_autoptr(GError) err = NULL;
    struct orphans o = { p, NULL };

    if (!p->vmm_lost || !p->peer_lost_primary || p->orphans_sent || p->failed_over) {
        return;
    }
    p->orphans_sent = true;
    o.raw = replay_raw_open(&err);
    if (!o.raw) {
        qb_log(LOG_WARNING, "the secondary's answers to input this guest never answered are not sent: %s",
               err->message);
        return;
    }
    unsigned int withheld;
    unsigned int n = cmp_take_datagrams(p->engine, orphan_send, &o, &withheld);
    if (n) {
        qb_log(LOG_NOTICE, "%" G_GUINT64_FORMAT " of %u datagrams the secondary's guest sent that this dead "
               "guest never matched went to the clients from here", p->vmm_lost_datagrams_sent, n);
    }
    if (withheld) {
        qb_log(LOG_NOTICE, "%u datagrams of the secondary's guest not sent: this guest had sent the same "
               "already (a second answer to one input)", withheld);
    }
    replay_raw_close(o.raw);
}

bool proxy_vmm_lost(Proxy *p, unsigned int *released, GError **error)
{
    *released = 0;
    if (!p->engine) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "a secondary's colo-proxy has no primary "
                    "colo-vmm to lose");
        return false;
    }
    if (p->failed_over || p->vmm_lost) {
        return true;    /* nothing left to compare; or asked twice */
    }
    p->vmm_lost = true;
    qb_log(LOG_WARNING, "this primary's colo-vmm died: the guest's input is still mirrored to the secondary, and "
           "only a checkpoint the secondary committed releases what it covers");
    /* What the guest sent before it died is in the queue's socket: judged
     * first, so nothing of ours comes after a copy is sent as unmatched. */
    if (p->nfq) {
        nfq_drain(p->nfq);
    }
    *released = vmm_lost_commit(p);
    vmm_lost_send_orphans(p);
    return true;
}

void proxy_peer_committed(Proxy *p, uint32_t epoch)
{
    p->peer_epoch = epoch;
    p->peer_epoch_known = true;
    vmm_lost_commit(p);
}

void proxy_peer_serving(Proxy *p)
{
    if (p->peer_serving) {
        return;
    }
    p->peer_serving = true;
    qb_log(p->vmm_lost ? LOG_NOTICE : LOG_WARNING, "the secondary took over and serves the clients%s",
           p->vmm_lost ? ": nothing more to mirror" : "");
    if (p->ctl) {
        ctl_server_emit(p->ctl, "PEER_SERVING", NULL);
    }
}

bool proxy_secondary_lost_primary(Proxy *p, GError **error)
{
    if (p->engine) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "a primary's colo-proxy has no primary to lose");
        return false;
    }
    if (p->failed_over || p->primary_lost) {
        return true;
    }
    /* The mark goes before any output kept after it: the link keeps order,
     * so the primary's proxy has released nothing on what follows. */
    p->primary_lost = true;
    if (link_is_up(p->link)) {
        link_send(p->link, FRAME_PRIMARY_LOST, p->epoch, NULL, 0);
    }
    qb_log(LOG_WARNING, "colo-vmm lost the primary: the guest's datagrams are kept for a takeover from now on");
    return true;
}

void proxy_peer_lost_primary(Proxy *p)
{
    /* A primary failed over alone (or restarted so) passes everything:
     * the secondary's copies no longer matter to it. */
    if (p->peer_lost_primary || p->failed_over) {
        return;
    }
    p->peer_lost_primary = true;
    qb_log(LOG_WARNING, "the secondary lost this primary's checkpoints: nothing more is released on its copies "
           "(it keeps its guest's output for a takeover)");
    vmm_lost_send_orphans(p);
}
