/* colo-proxy as a whole: wires the compare engine (primary) or the
 * rewriter (secondary) to NFQUEUE, the guest's interface, the peer link,
 * the control socket and the firewall rules. One GLib main loop thread. */
#ifndef COLO_NETFILTER_PROXY_H
#define COLO_NETFILTER_PROXY_H

#include "capture.h"
#include "compare.h"
#include "control.h"
#include "link.h"
#include "nfq.h"
#include "replay.h"
#include "rewrite.h"
#include "rules.h"

#include <glib.h>
#include <stdbool.h>

enum proxy_role { PROXY_PRIMARY, PROXY_SECONDARY };

struct proxy_config {
    enum proxy_role role;
    const char *guest_iface;   /* host side of the guest's tap/veth */
    uint16_t queue_num;
    uint32_t queue_maxlen;
    const char *listen;        /* peer link, one of the two */
    const char *connect;
    const char *peer;          /* with listen: the only source address accepted */
    const char *tls_dir;       /* TLS on the link with these certificates (common/tls.h), or NULL */
    const char *control;       /* unix socket path (0600) */
    const char *control_group; /* its members may use it too (0660) */
    bool install_rules;
    /* Primary: the user-space L2 path. Every frame the guest sends is held
     * and compared (ARP and IPv6 ND too) and released onto @uplink; frames
     * arriving on @uplink are mirrored and passed to the guest. The
     * operator keeps the kernel off both interfaces (see colo-proxy.md). */
    const char *uplink;
    bool forward_all;          /* secondary: forward ARP and multicast too */
    bool kernel_timestamps;    /* primary: verdict latency from the kernel's receipt */
    uint32_t fence_after_ms;   /* primary: a freeze this long fences the output (proxy-fence.c); 0: never */
    size_t replay_max_bytes;   /* secondary: guest output kept for a takeover (replay.h); 0: none */
    /* Primary: flows to keep rewriting (struct rw_carried), carried from
     * a taken-over secondary (proxy-carry.c), or NULL. */
    const GArray *carried;
    struct cmp_params params;
};

typedef struct proxy {
    struct proxy_config cfg;
    uint32_t epoch;            /* the secondary's own; the primary's is the engine's */
    bool failed_over;
    CmpEngine *engine;         /* primary */
    RwTable *rw;               /* secondary; primary: the carried flows */
    GArray *carried_in;        /* secondary: the primary's carried flows (FRAME_CARRY), for a takeover */
    OutputReplay *replay;      /* secondary: its guest's output since the last checkpoint */
    /* The frames of the capture burst under way, kept for the replay once
     * the link has written them (their buffers may then be taken). */
    struct { uint8_t *buf; size_t len; } replay_burst[CAPTURE_BURST_MAX];
    unsigned int n_replay_burst;
    ReplayRaw *replay_raw;
    bool replay_at_failover;   /* replay-output came first */
    ProxyNfq *nfq;
    ProxyNfq *carry_nfq;       /* primary with carried flows */
    GHashTable *carry_held;    /* its held output: id -> GBytes (raw) */
    ProxyCapture *cap;
    ProxyLink *link;
    struct ColoTlsCreds *tls;  /* the link's, or NULL */
    QmpServer *ctl;
    ProxyRules *rules;
    ProxyCapture *uplink_cap;  /* L2 path */
    GHashTable *l2_held;       /* L2 path: handle -> GBytes (vnet header + frame) */
    uint64_t l2_next;
    guint scan_timer;
    uint64_t lost_requests;    /* checkpoints asked for because the kernel queue overran */
    uint64_t mirror_stale;     /* mirrored frames from an older epoch, dropped */
    uint64_t carry_refused;    /* secondary: FRAME_CARRY payloads that did not parse */
    uint64_t not_forwarded;    /* secondary frames kept local (multicast, ARP) */
    /* The primary's fence after a freeze (proxy-fence.c). */
    bool fenced;
    bool fence_commit;         /* a checkpoint committed while fenced */
    uint32_t fence_seq;        /* of the last ping */
    int64_t fence_last_tick;
    guint fence_timer;
    GArray *fence_deferred;    /* handles released while fenced */
    uint64_t fences, fence_released;
    bool peer_pongs;           /* this link's secondary answers pings (an older one does not) */
    bool peer_took_over;       /* its answer while fenced: it took over */
    bool fence_hold;           /* fenced by `hold`: only failover lifts it */
    int64_t link_up_at;
    uint64_t pings_refused;    /* secondary: pings answered "took over" */
    /* A primary whose colo-vmm died (proxy-vmm-lost.c). */
    bool vmm_lost;             /* colod said so (`vmm-lost`) */
    bool peer_epoch_known;
    uint32_t peer_epoch;       /* the secondary's, from its last FRAME_EPOCH */
    uint64_t vmm_lost_released; /* packets its checkpoint covered, released after */
    uint64_t vmm_lost_datagrams_sent; /* the secondary's, that nothing of ours matched */
    bool orphans_sent;         /* those were sent (once) */
    uint64_t mirror_after_takeover; /* secondary: mirrored frames delivered after our takeover */
    bool checkpointing;        /* primary: between checkpoint-begin and its commit */
    bool releasing_all;        /* primary: inside a commit's or failover's release of everything */
    bool primary_lost;         /* secondary: told `primary-lost` (its datagrams kept since) */
    bool peer_lost_primary;    /* primary: FRAME_PRIMARY_LOST received (no release on its copies) */
    bool serving_told;         /* secondary: FRAME_SERVING sent */
    bool peer_serving;         /* primary: FRAME_SERVING received */
    /* Input before COLO began, for the sync's checkpoint-begin
     * (proxy-sync-input.c). */
    GQueue sync_input;
    size_t sync_input_bytes;
    uint64_t sync_input_mirrored;
} Proxy;

Proxy *proxy_new(const struct proxy_config *cfg, GError **error);

/* Remove the rules, close everything. Held packets are dropped by the
 * kernel when the queue goes away, never accepted uncompared. */
void proxy_free(Proxy *p);

/* The primary's user-space L2 path (proxy-l2.c). */
bool proxy_l2_start(Proxy *p, GError **error);
void proxy_l2_release(Proxy *p, uint64_t handle);
/* Send the frames released so far; after every call that may release. */
void proxy_l2_flush(Proxy *p);
void proxy_l2_free(Proxy *p);

/* Carried flows (proxy-carry.c). Their queue is the main one's plus
 * PROXY_CARRY_QUEUE_BASE (so two VMs' queues never collide), and their
 * packets' handles in the engine have PROXY_CARRY_HANDLE set. */
#define PROXY_CARRY_QUEUE_BASE 32768u
#define PROXY_CARRY_HANDLE (UINT64_C(1) << 32)
static inline uint16_t proxy_carry_queue(uint16_t queue_num)
{
    return (uint16_t)(queue_num + PROXY_CARRY_QUEUE_BASE);
}
bool proxy_carry_start(Proxy *p, GError **error);
/* This proxy's rules become the carried flows' (if any), then @main_spec
 * (NULL: none). */
bool proxy_carry_set_rules(Proxy *p, const char *const *main_spec, GError **error);
void proxy_carry_release(Proxy *p, uint32_t id);
void proxy_carry_free(Proxy *p);

/* The primary's fence after a freeze (proxy-fence.c). */
void proxy_fence_start(Proxy *p);
void proxy_fence_free(Proxy *p);
/* While fenced, keep @handle for later: true if kept. */
bool proxy_fence_defer(Proxy *p, uint64_t handle);
/* Release what was kept (colod failed this primary over, or the
 * secondary answered). */
void proxy_fence_lift(Proxy *p, const char *why);
/* `hold`: a primary whose COLO broke keeps every release until colod
 * decides (failover: it runs on alone; a stop drops them). */
bool proxy_fence_hold(Proxy *p, GError **error);
void proxy_fence_link_up(Proxy *p);
void proxy_fence_pong(Proxy *p, const struct frame *f);
void proxy_fence_answer_ping(Proxy *p, const struct frame *f);
/* A primary whose colo-vmm died (proxy-vmm-lost.c): `vmm-lost` from
 * colod, and each checkpoint the secondary says it committed. */
bool proxy_vmm_lost(Proxy *p, unsigned int *released, GError **error);
void proxy_peer_committed(Proxy *p, uint32_t epoch);
/* The secondary took over and serves the clients (FRAME_SERVING): the
 * PEER_SERVING event tells colod that a lingering proxy may go. */
void proxy_peer_serving(Proxy *p);
/* Secondary: its colo-vmm lost the primary (`primary-lost`): keep the
 * guest's datagrams for a takeover and tell the primary's proxy, which
 * then releases nothing on this side's copies (FRAME_PRIMARY_LOST). */
bool proxy_secondary_lost_primary(Proxy *p, GError **error);
void proxy_peer_lost_primary(Proxy *p);
/* The primary lets a compared (or passed) packet go; then
 * proxy_flush_released. */
void proxy_release(Proxy *p, uint64_t handle);
void proxy_flush_released(Proxy *p);
/* A checkpoint commit's release: all queued packets, gaps included. */
void proxy_release_all(Proxy *p);

/* Control commands (proxy-commands.c). */
extern const struct ctl_command proxy_commands[];

/* A primary's input during the initial sync (proxy-sync-input.c). Keep
 * a frame for the guest (vnet header first) read before COLO began. */
void proxy_sync_input_keep(Proxy *p, const uint8_t *buf, size_t len);
/* COLO begins: mirror the frames kept that were read at @since_ns or
 * later (proxy_now_ns's clock), forget all. Returns how many went. */
unsigned int proxy_sync_input_mirror(Proxy *p, uint64_t since_ns);
void proxy_sync_input_clear(Proxy *p);

/* Actions shared by the commands and the tests. The first checkpoint-begin
 * (the sync's) mirrors the input read since @input_since_ns, if
 * @input_since (proxy-sync-input.c). */
unsigned int proxy_checkpoint_begin(Proxy *p, bool input_since, uint64_t input_since_ns);
/* @keep_offsets (secondary only): advance the epoch but keep the
 * rewriter's offsets; for test set-ups whose "guests" are not really
 * synchronised by a checkpoint. */
unsigned int proxy_checkpoint_commit(Proxy *p, bool keep_offsets);
bool proxy_failover(Proxy *p, GError **error);
/* A taken-over secondary sends its guest's output since the last
 * checkpoint once more (replay.h): called once the clients reach this
 * host. A secondary not failed over yet does it at its failover (*pending
 * set). Returns the packets sent, or -1 with @error (a primary). */
int proxy_replay_output(Proxy *p, unsigned int *frames, bool *pending, GError **error);
void proxy_set_scan_cycle(Proxy *p, uint32_t ms);
/* The epoch a mirrored frame carries now (primary). */
uint32_t proxy_mirror_epoch(const Proxy *p);
/* NFQUEUE callbacks the primary's two queues share. */
void proxy_primary_lost(void *opaque, unsigned int count);
void proxy_primary_burst_done(void *opaque);
uint64_t proxy_now_ns(void);

#endif
