#include "config.h"

#include "proxy.h"
#include "carry.h"
#include "packet.h"
#include "common/tls.h"

#include <gio/gio.h>
#include <qb/qblog.h>
#include <string.h>

uint64_t proxy_now_ns(void)
{
    return (uint64_t)g_get_monotonic_time() * 1000u;
}

static void proxy_emit_checkpoint(Proxy *p, const char *reason)
{
    JsonNode *data = json_node_new(JSON_NODE_OBJECT);
    JsonObject *o = json_object_new();

    json_object_set_string_member(o, "reason", reason);
    json_object_set_int_member(o, "epoch", p->engine ? cmp_engine_epoch(p->engine) : p->epoch);
    json_node_take_object(data, o);
    if (p->ctl) {
        ctl_server_emit(p->ctl, "CHECKPOINT_REQUEST", data);
    } else {
        json_node_unref(data);
    }
}

/* --- primary --------------------------------------------------------- */

void proxy_release(Proxy *p, uint64_t handle)
{
    if (handle & PROXY_CARRY_HANDLE) {
        proxy_carry_release(p, (uint32_t)handle);
    } else if (p->l2_held) {
        proxy_l2_release(p, handle);
    } else {
        nfq_release(p->nfq, (uint32_t)handle);
    }
}

static void primary_release(void *opaque, uint64_t handle)
{
    Proxy *p = opaque;

    /* The secondary keeps its answers for its takeover from now on: a
     * packet released on its copy would reach the client twice. It stays
     * in the queue: a commit or failover lets it out, a stop drops it. */
    if (p->peer_lost_primary && !p->releasing_all && !p->failed_over) {
        return;
    }
    if (!proxy_fence_defer(p, handle)) {
        proxy_release(p, handle);
    }
}

static void primary_checkpoint(void *opaque, enum cmp_reason reason)
{
    proxy_emit_checkpoint(opaque, cmp_reason_name(reason));
}

static void primary_packet(void *opaque, uint32_t id, uint8_t *pkt, size_t len, bool partial, uint32_t indev)
{
    Proxy *p = opaque;

    cmp_primary_add(p->engine, id, pkt, len, false, proxy_now_ns());
}

void proxy_primary_lost(void *opaque, unsigned int count)
{
    Proxy *p = opaque;

    /* Only a checkpoint commit may release what we never saw. */
    p->lost_requests++;
    proxy_emit_checkpoint(p, "queue-full");
}

/* After a burst of either queue: releases the engine made meanwhile may
 * be the other queue's (nothing to do when there are none; the queue's own
 * flush follows). */
void proxy_primary_burst_done(void *opaque)
{
    Proxy *p = opaque;

    if (p->carry_nfq) {
        nfq_flush(p->carry_nfq);
        nfq_flush(p->nfq);
    }
}

uint32_t proxy_mirror_epoch(const Proxy *p)
{
    /* Input that arrives after a checkpoint's copy is not in it: the
     * secondary delivers it also once it committed that checkpoint (it
     * may, before this side commits: the state and the mirror come over
     * different connections), and also when the checkpoint never gets
     * there whole (its guest goes on from its own state, which lacks the
     * input as much). */
    return cmp_engine_epoch(p->engine) + (p->checkpointing ? 1 : 0);
}

/* A frame on its way into the primary guest: mirror it. */
static void primary_input(void *opaque, uint8_t *buf, size_t len, bool outgoing)
{
    Proxy *p = opaque;

    if (p->failed_over) {
        return;
    }
    /* Before COLO began the secondary's guest is not running: what it
     * needs is in the initial sync, or comes at its checkpoint-begin. */
    if (!cmp_engine_armed(p->engine)) {
        proxy_sync_input_keep(p, buf, len);
        return;
    }
    link_queue_ref(p->link, FRAME_MIRROR, proxy_mirror_epoch(p), buf, len);
    cmp_input_add(p->engine, buf + CAPTURE_VNET_LEN, len - CAPTURE_VNET_LEN, true);
}

static void primary_frame(void *opaque, const struct frame *f)
{
    Proxy *p = opaque;

    if (f->type == FRAME_PONG) {
        proxy_fence_pong(p, f);
        return;
    }
    if (f->type == FRAME_EPOCH) {
        proxy_peer_committed(p, f->epoch);
        return;
    }
    if (f->type == FRAME_SERVING) {
        proxy_peer_serving(p);
        return;
    }
    if (f->type == FRAME_PRIMARY_LOST) {
        proxy_peer_lost_primary(p);
        return;
    }
    /* After the mark the secondary keeps its output for its takeover:
     * nothing here may go out on it (proxy-vmm-lost.c). */
    if (f->type != FRAME_OUTPUT || f->len < CAPTURE_VNET_LEN || p->peer_lost_primary) {
        return;
    }
    cmp_secondary_add(p->engine, f->epoch, f->payload + CAPTURE_VNET_LEN, f->len - CAPTURE_VNET_LEN, true,
                      proxy_now_ns());
}

void proxy_flush_released(Proxy *p)
{
    if (p->nfq) {
        nfq_flush(p->nfq);
    }
    if (p->carry_nfq) {
        nfq_flush(p->carry_nfq);
    }
    proxy_l2_flush(p);
}

/* One verdict batch per burst of the secondary's output, not per frame. */
static void primary_frames_done(void *opaque)
{
    proxy_flush_released(opaque);
}

/* A burst of mirrored frames goes to the secondary in one write. */
static void proxy_capture_done(void *opaque)
{
    Proxy *p = opaque;

    link_push(p->link);
}

static gboolean primary_scan(gpointer data)
{
    Proxy *p = data;

    cmp_expire(p->engine, proxy_now_ns());
    return G_SOURCE_CONTINUE;
}

/* --- secondary ------------------------------------------------------- */

/* Only unicast IP goes to the primary: its NFQUEUE sees forwarded traffic
 * only, so ARP and multicast from our guest would never find a partner. */
static bool secondary_should_forward(const uint8_t *frame, size_t len)
{
    uint16_t type;

    if (len < PKT_ETH_HLEN || (frame[0] & 1)) {
        return false;
    }
    type = pkt_get16(frame + 12);
    return type == PKT_ETHERTYPE_IPV4 || type == PKT_ETHERTYPE_IPV6 || type == PKT_ETHERTYPE_VLAN;
}

/* A frame the secondary guest sent: rewrite and send to the primary. */
static void secondary_output(void *opaque, uint8_t *buf, size_t len, bool outgoing)
{
    Proxy *p = opaque;
    uint8_t *frame = buf + CAPTURE_VNET_LEN;
    size_t flen = len - CAPTURE_VNET_LEN;

    if (p->failed_over) {
        return;   /* after takeover the NFQUEUE path carries our output */
    }
    if (!p->cfg.forward_all && !secondary_should_forward(frame, flen)) {
        p->not_forwarded++;
        return;
    }
    rw_output(p->rw, frame, flen, true, capture_csum_partial(buf));
    link_queue_ref(p->link, FRAME_OUTPUT, p->epoch, buf, len);
    if (p->replay && p->primary_lost) {
        replay_keep_datagram(p->replay, buf, len);
    }
    if (p->replay) {
        if (p->n_replay_burst == G_N_ELEMENTS(p->replay_burst)) {
            replay_keep(p->replay, buf, len);
        } else {
            p->replay_burst[p->n_replay_burst].buf = buf;
            p->replay_burst[p->n_replay_burst++].len = len;
        }
    }
}

static uint8_t *secondary_take_buffer(void *opaque, uint8_t *buf)
{
    Proxy *p = opaque;

    return capture_take(p->cap, buf);
}

/* A burst of our guest's output goes to the primary in one write, from
 * the capture's buffers; then the replay keeps it, taking the buffers of
 * the large frames rather than copying them. */
static void secondary_output_done(void *opaque)
{
    Proxy *p = opaque;

    link_push(p->link);
    for (unsigned int i = 0; i < p->n_replay_burst; i++) {
        replay_keep_take(p->replay, p->replay_burst[i].buf, p->replay_burst[i].len, secondary_take_buffer, p);
    }
    p->n_replay_burst = 0;
}

/* The primary's carried flows: not ours to rewrite while we are its
 * secondary (compare and mirror use raw guest numbers), but the client
 * knows those flows by them, so a takeover must go on shifting them. */
static void secondary_carry(Proxy *p, const struct frame *f)
{
    g_autoptr(GError) err = NULL;
    GArray *flows = carry_parse((const char *)f->payload, f->len, &err);

    if (!flows) {
        p->carry_refused++;
        qb_log(LOG_ERR, "the primary's carried flows refused: %s (a takeover would stall those connections)",
               err->message);
        return;
    }
    g_clear_pointer(&p->carried_in, g_array_unref);
    p->carried_in = flows;
    qb_log(LOG_NOTICE, "the primary carries %u rewritten flow%s: kept for a takeover", flows->len,
           flows->len == 1 ? "" : "s");
}

static void secondary_frame(void *opaque, const struct frame *f)
{
    Proxy *p = opaque;
    uint8_t *copy;

    if (f->type == FRAME_CARRY && !p->failed_over) {
        secondary_carry(p, f);
        return;
    }
    if (f->type == FRAME_PING) {
        proxy_fence_answer_ping(p, f);
        return;
    }
    /* Also after our takeover: what the client sent to the old primary
     * before the address moved here, mirrored by its colo-proxy, which
     * colod keeps running a moment for that (docs/colo-proxy.md, "A
     * primary whose colo-vmm died"). */
    if (f->type != FRAME_MIRROR || f->len < CAPTURE_VNET_LEN) {
        return;
    }
    /* Input from before our last checkpoint is already in the state we
     * loaded: delivering it again would be a duplicate. */
    if ((int32_t)(f->epoch - p->epoch) < 0) {
        p->mirror_stale++;
        return;
    }
    p->mirror_after_takeover += p->failed_over;
    if (p->replay) {
        replay_note_input(p->replay, f->payload + CAPTURE_VNET_LEN, f->len - CAPTURE_VNET_LEN);
    }
    copy = capture_queue(p->cap, f->payload, f->len);
    if (copy) {
        rw_input(p->rw, copy + CAPTURE_VNET_LEN, f->len - CAPTURE_VNET_LEN, true, capture_csum_partial(copy));
    }
}

/* The mirrored frames of one read burst go to the guest in one sendmmsg. */
static void secondary_frames_done(void *opaque)
{
    Proxy *p = opaque;

    capture_flush(p->cap);
}

/* After takeover: our guest's traffic passes through NFQUEUE both ways
 * and flows that began with an offset keep being rewritten. */
static void takeover_packet(void *opaque, uint32_t id, uint8_t *pkt, size_t len, bool partial, uint32_t indev)
{
    Proxy *p = opaque;

    if (indev == capture_ifindex(p->cap)) {
        rw_output(p->rw, pkt, len, false, partial);
    } else {
        rw_input(p->rw, pkt, len, false, partial);
    }
}

static void nothing_lost(void *opaque, unsigned int count)
{
}

/* --- common ---------------------------------------------------------- */

/* A primary with carried flows tells each secondary that connects. */
static void primary_send_carried(Proxy *p)
{
    g_autoptr(JsonNode) json = NULL;
    g_autofree char *text = NULL;
    g_autoptr(GArray) flows = NULL;

    if (!p->engine || !p->link || !p->rw) {
        return; /* (a link up within link_new: proxy_start_primary sends) */
    }
    /* The rewriter's flows as they are now: those that ended since the
     * start are not handed on. */
    flows = rw_table_export(p->rw);
    if (!flows->len) {
        return;
    }
    json = carry_to_json(flows);
    text = json_to_string(json, FALSE);
    if (!link_send(p->link, FRAME_CARRY, cmp_engine_epoch(p->engine), (const uint8_t *)text, strlen(text))) {
        qb_log(LOG_ERR, "the carried flows could not be sent to the secondary (a takeover would stall them)");
    }
}

static void proxy_link_state(void *opaque, bool up)
{
    Proxy *p = opaque;
    JsonNode *data = json_node_new(JSON_NODE_OBJECT);

    if (up) {
        primary_send_carried(p);
        proxy_fence_link_up(p);
    }

    json_node_take_object(data, json_object_new());
    json_object_set_boolean_member(json_node_get_object(data), "up", up);
    if (p->ctl) {
        ctl_server_emit(p->ctl, "PEER_LINK", data);
    } else {
        json_node_unref(data);
    }
}

void proxy_set_scan_cycle(Proxy *p, uint32_t ms)
{
    if (p->scan_timer) {
        g_source_remove(p->scan_timer);
        p->scan_timer = 0;
    }
    if (p->engine && ms) {
        p->scan_timer = g_timeout_add(ms, primary_scan, p);
    }
}

static bool proxy_start_primary(Proxy *p, GError **error)
{
    struct cmp_callbacks ccb = { primary_release, primary_checkpoint, p };
    struct nfq_callbacks ncb = { primary_packet, proxy_primary_lost, proxy_primary_burst_done, p };
    struct capture_callbacks kcb = { .frame = primary_input, .burst_done = proxy_capture_done, .opaque = p };
    struct link_callbacks lcb = { .frame = primary_frame, .state = proxy_link_state,
                                  .burst_done = primary_frames_done, .opaque = p };
    g_autofree char *qnum = g_strdup_printf("%u", p->cfg.queue_num);

    p->engine = cmp_engine_new(&p->cfg.params, &ccb);
    proxy_fence_start(p);
    if (p->cfg.uplink && p->cfg.carried && p->cfg.carried->len) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "carried flows need the NFQUEUE path, not --uplink");
        return false;
    }
    if (p->cfg.uplink) {
        p->link = link_new(p->cfg.listen, p->cfg.connect, p->cfg.peer, p->tls, &lcb, error);
        if (!p->link || !proxy_l2_start(p, error)) {
            return false;
        }
        if (link_is_up(p->link)) {
            proxy_fence_link_up(p);
        }
        proxy_set_scan_cycle(p, p->cfg.params.expired_scan_cycle_ms);
        return true;
    }
    p->nfq = nfq_open_queue(p->cfg.queue_num, p->cfg.queue_maxlen, NFQ_HOLD, &ncb, error);
    if (!p->nfq || (p->cfg.kernel_timestamps && !nfq_use_kernel_timestamps(p->nfq, error)) ||
        !proxy_carry_start(p, error)) {
        return false;
    }
    p->cap = capture_open(p->cfg.guest_iface, true, &kcb, error);
    if (!p->cap) {
        return false;
    }
    p->link = link_new(p->cfg.listen, p->cfg.connect, p->cfg.peer, p->tls, &lcb, error);
    if (!p->link) {
        return false;
    }
    if (link_is_up(p->link)) {
        primary_send_carried(p);
        proxy_fence_link_up(p);
    }
    if (p->cfg.install_rules) {
        /* --queue-bypass: with no colo-proxy bound to the queue (it was
         * killed) the guest's output passes instead of being dropped until
         * someone removes the rule (docs/colo-proxy.md, "Rules"). */
        const char *spec[] = { "-i", p->cfg.guest_iface, "-j", "NFQUEUE", "--queue-num", qnum, "--queue-bypass", NULL };

        if (!proxy_carry_set_rules(p, spec, error)) {
            return false;
        }
    }
    proxy_set_scan_cycle(p, p->cfg.params.expired_scan_cycle_ms);
    return true;
}

static bool proxy_start_secondary(Proxy *p, GError **error)
{
    struct capture_callbacks kcb = { .frame = secondary_output, .burst_done = secondary_output_done, .opaque = p };
    struct link_callbacks lcb = { .frame = secondary_frame, .state = proxy_link_state,
                                  .burst_done = secondary_frames_done, .opaque = p };

    p->rw = rw_table_new(p->cfg.params.max_flows);
    if (p->cfg.replay_max_bytes) {
        g_autoptr(GError) err = NULL;

        /* Without it a takeover only waits longer for retransmissions. */
        p->replay_raw = replay_raw_open(&err);
        if (p->replay_raw) {
            p->replay = replay_new(p->cfg.replay_max_bytes);
        } else {
            qb_log(LOG_WARNING, "the guest's output will not be replayed at a takeover: %s", err->message);
        }
    }
    p->cap = capture_open(p->cfg.guest_iface, false, &kcb, error);
    if (!p->cap) {
        return false;
    }
    p->link = link_new(p->cfg.listen, p->cfg.connect, p->cfg.peer, p->tls, &lcb, error);
    if (!p->link) {
        return false;
    }
    if (p->cfg.install_rules) {
        /* The secondary guest's output must never reach the wire. */
        const char *spec[] = { "-i", p->cfg.guest_iface, "-j", "DROP", NULL };

        if (!rules_set_forward(p->rules, (const char *const *[]){ spec }, 1, error)) {
            return false;
        }
    }
    return true;
}

/* A proxy of the other role on this interface that died with SIGKILL left
 * its rules (its own role's go when this one installs its own): a stale
 * NFQUEUE rule held the new secondary's traffic, a stale DROP the new
 * primary's. One proxy serves an interface at a time, so they are stale. */
static bool proxy_remove_other_role_rules(const struct proxy_config *cfg, GError **error)
{
    g_autofree char *tag = rules_tag(cfg->role == PROXY_PRIMARY ? "secondary" : "primary", cfg->guest_iface);
    unsigned int removed;

    if (!rules_cleanup(tag, &removed, error)) {
        return false;
    }
    if (removed) {
        qb_log(LOG_NOTICE, "removed %u rule%s a %s proxy on %s left behind", removed, removed == 1 ? "" : "s",
               cfg->role == PROXY_PRIMARY ? "secondary" : "primary", cfg->guest_iface);
    }
    return true;
}

Proxy *proxy_new(const struct proxy_config *cfg, GError **error)
{
    Proxy *p = g_new0(Proxy, 1);
    g_autofree char *tag = rules_tag(cfg->role == PROXY_PRIMARY ? "primary" : "secondary", cfg->guest_iface);
    bool ok;

    p->cfg = *cfg;
    p->rules = rules_new(tag);
    if (!proxy_remove_other_role_rules(cfg, error)) {
        proxy_free(p);
        return NULL;
    }
    /* The link's TLS: the listening side is the server. */
    if (cfg->tls_dir && !(p->tls = colo_tls_creds_new(cfg->tls_dir, cfg->listen != NULL, true, NULL, error))) {
        g_prefix_error(error, "--tls-creds: ");
        proxy_free(p);
        return NULL;
    }
    ok = cfg->role == PROXY_PRIMARY ? proxy_start_primary(p, error) : proxy_start_secondary(p, error);
    if (ok && cfg->control) {
        p->ctl = ctl_server_new(cfg->control, cfg->control_group, proxy_commands, p,
                                cfg->role == PROXY_PRIMARY ? "primary" : "secondary", error);
        ok = p->ctl != NULL;
    }
    if (!ok) {
        proxy_free(p);
        return NULL;
    }
    qb_log(LOG_NOTICE, "%s proxy on %s ready", cfg->role == PROXY_PRIMARY ? "primary" : "secondary",
           cfg->guest_iface);
    return p;
}

void proxy_free(Proxy *p)
{
    if (!p) {
        return;
    }
    if (p->scan_timer) {
        g_source_remove(p->scan_timer);
    }
    /* Rules first, so no new packet enters a queue about to vanish. */
    rules_free(p->rules);
    /* What entered it while they went: a proxy that passes everything (a
     * takeover's, replaced by a primary's at the re-protect) lets it out
     * rather than have the kernel drop it with the queue, which costs the
     * client a retransmission. One that compares drops what it holds. */
    if (p->failed_over) {
        if (p->nfq) {
            nfq_drain(p->nfq);
        }
        if (p->carry_nfq) {
            nfq_drain(p->carry_nfq);
        }
        proxy_flush_released(p);
    }
    proxy_fence_free(p);
    qmp_server_free(p->ctl);
    link_free(p->link);
    proxy_l2_free(p);
    capture_close(p->cap);
    nfq_close_queue(p->nfq);
    proxy_carry_free(p);
    cmp_engine_free(p->engine);
    rw_table_free(p->rw);
    replay_free(p->replay);
    replay_raw_close(p->replay_raw);
    if (p->carried_in) {
        g_array_unref(p->carried_in);
    }
    colo_tls_creds_unref(p->tls);
    proxy_sync_input_clear(p);
    g_free(p);
}

unsigned int proxy_checkpoint_begin(Proxy *p, bool input_since, uint64_t input_since_ns)
{
    bool arming;
    unsigned int held;

    if (!p->engine || p->failed_over) {
        return 0;
    }
    /* The VM is paused: whatever it sent is in the socket or the engine. */
    if (p->nfq) {
        nfq_drain(p->nfq);
    }
    if (p->carry_nfq) {
        nfq_drain(p->carry_nfq);
    }
    p->checkpointing = true;
    arming = !cmp_engine_armed(p->engine);
    held = cmp_checkpoint_begin(p->engine);
    if (arming && input_since) {
        proxy_sync_input_mirror(p, input_since_ns);
    }
    proxy_sync_input_clear(p);
    return held;
}

/* Everything in the queues up to now goes, gaps included (packets the
 * engine never saw): a checkpoint commit's release. */
void proxy_release_all(Proxy *p)
{
    if (p->nfq) {
        nfq_release_all(p->nfq);
    }
    /* Those released with new bytes get their own verdicts first. */
    if (p->carry_nfq) {
        nfq_release_all(p->carry_nfq);
    }
    proxy_l2_flush(p);
}

unsigned int proxy_checkpoint_commit(Proxy *p, bool keep_offsets)
{
    unsigned int n = 0;

    if (p->engine) {
        if (!p->failed_over) {
            p->checkpointing = false;
            p->releasing_all = true;
            n = cmp_checkpoint_commit(p->engine, proxy_now_ns());
            p->releasing_all = false;
            if (p->fenced) {
                /* Perhaps a commit from before the freeze: its release
                 * waits for the fence too (proxy_fence_lift). */
                p->fence_commit = true;
                return n;
            }
            proxy_release_all(p);
        }
    } else {
        /* The guest is paused: what it sent before goes out under the
         * epoch it was sent in, and is not replayed after this. */
        if (p->cap) {
            capture_drain(p->cap);
        }
        if (p->replay) {
            replay_clear(p->replay);
        }
        if (!keep_offsets) {
            rw_table_reset(p->rw);
        }
        p->epoch++;
        /* The primary's colo-proxy outlives a dead colo-vmm for a moment
         * and must know whether this checkpoint got here whole. */
        if (link_is_up(p->link)) {
            link_send(p->link, FRAME_EPOCH, p->epoch, NULL, 0);
        }
    }
    return n;
}

int proxy_replay_output(Proxy *p, unsigned int *frames, bool *pending, GError **error)
{
    struct replay_stats before, after;
    unsigned int packets;

    *frames = 0;
    *pending = false;
    if (p->engine) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "a primary has no output to replay (only a secondary "
                    "that takes over)");
        return -1;
    }
    if (!p->failed_over) {
        p->replay_at_failover = true;
        *pending = true;
        return 0;
    }
    /* colod asks once the clients reach this host: the old primary's
     * colo-proxy, if its colo-vmm died, mirrors no more for us after this. */
    if (!p->serving_told && link_is_up(p->link)) {
        p->serving_told = true;
        link_send(p->link, FRAME_SERVING, p->epoch, NULL, 0);
    }
    if (!p->replay) {
        return 0; /* --replay-kib 0, or no raw socket (logged at the start) */
    }
    replay_get_stats(p->replay, &before);
    packets = replay_flush(p->replay, replay_raw_send, p->replay_raw);
    replay_get_stats(p->replay, &after);
    *frames = (unsigned int)(after.frames_sent - before.frames_sent);
    qb_log(LOG_NOTICE, "takeover: the guest's last output sent again: %u frame%s, %u packet%s%s", *frames,
           *frames == 1 ? "" : "s", packets, packets == 1 ? "" : "s",
           after.send_failed > before.send_failed ? " (some could not be sent)" : "");
    return (int)packets;
}

bool proxy_failover(Proxy *p, GError **error)
{
    if (p->failed_over) {
        return true;
    }
    if (p->engine) {
        /* colod decided: this primary serves alone. */
        proxy_fence_lift(p, "failed over alone");
    } else if (p->cap) {
        /* What our guest sent before is in the capture's socket, and the
         * kernel dropped it (the DROP rule): the peer and the replay get
         * it as before the takeover. colo-vmm holds the guest's network
         * around this command, so nothing is sent while the rules change;
         * otherwise a frame read after the flag below is lost. */
        capture_drain(p->cap);
    }
    p->failed_over = true;
    proxy_sync_input_clear(p);
    if (p->engine) {
        /* Primary alone: release everything, then stop queueing (the L2
         * path keeps carrying frames, uncompared). */
        if (p->nfq) {
            nfq_drain(p->nfq);
        }
        if (p->carry_nfq) {
            nfq_drain(p->carry_nfq);
        }
        p->releasing_all = true;
        cmp_failover(p->engine, proxy_now_ns());
        p->releasing_all = false;
        if (p->nfq) {
            nfq_release_all(p->nfq);
        }
        if (p->carry_nfq) {
            nfq_release_all(p->carry_nfq);
        }
        proxy_l2_flush(p);
        /* Carried flows keep their rules and queue: they still need
         * rewriting for as long as they live. */
        if (p->cfg.install_rules) {
            g_autoptr(GError) err = NULL;

            if (!proxy_carry_set_rules(p, NULL, &err)) {
                qb_log(LOG_ERR, "failover: rules: %s", err->message);
            }
        }
        proxy_set_scan_cycle(p, 0);
        return true;
    }
    /* Secondary takeover: stop forwarding to the primary, let the guest's
     * traffic out, keep rewriting flows that have an offset. */
    {
        struct nfq_callbacks ncb = { takeover_packet, nothing_lost, proxy_primary_burst_done, p };
        g_autofree char *qnum = g_strdup_printf("%u", p->cfg.queue_num);
        const char *out[] = { "-i", p->cfg.guest_iface, "-j", "NFQUEUE", "--queue-num", qnum, "--queue-bypass", NULL };
        const char *in[] = { "-o", p->cfg.guest_iface, "-j", "NFQUEUE", "--queue-num", qnum, "--queue-bypass", NULL };

        rw_table_takeover(p->rw);
        if (p->carried_in) {
            unsigned int n = rw_table_add_carried(p->rw, (const struct rw_carried *)(const void *)p->carried_in->data,
                                                  p->carried_in->len);

            qb_log(LOG_NOTICE, "takeover: %u of the primary's %u carried flows rewritten on", n,
                   p->carried_in->len);
        }
        p->nfq = nfq_open_queue(p->cfg.queue_num, p->cfg.queue_maxlen, NFQ_IMMEDIATE, &ncb, error);
        if (!p->nfq) {
            return false;
        }
        /* DROP becomes NFQUEUE both ways in one step (rules_set_forward). */
        if (p->cfg.install_rules && !rules_set_forward(p->rules, (const char *const *[]){ out, in }, 2, error)) {
            return false;
        }
        if (p->replay_at_failover) {
            unsigned int frames;
            bool pending;

            p->replay_at_failover = false;
            proxy_replay_output(p, &frames, &pending, NULL);
        }
    }
    return true;
}
