/* colod's corosync link (cluster-link.h): libcpg and libvotequorum. */
#include "config.h"

#include "cluster-link.h"
#include "cpg-members.h"

#include <corosync/cpg.h>
#include <corosync/quorum.h>
#include <corosync/votequorum.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <string.h>

#define MAX_NODES CPG_MEMBERS_MAX

typedef struct {
    uint32_t from;
    GBytes *bytes;
} Held;

struct ClusterLink {
    const ClusterLinkOps *ops;
    void *opaque;
    cpg_handle_t cpg;
    quorum_handle_t q;
    votequorum_handle_t vq;
    bool cpg_open, q_open, vq_open;
    guint cpg_watch, q_watch;
    uint32_t local_id;

    /* The group (CPG confchg), the ring (CPG totem confchg) and quorum's
     * verdict with its ring (libquorum): reported together only once they
     * describe the same ring, see link_consistent(). */
    CpgMembers group;
    uint32_t totem[MAX_NODES];
    size_t n_totem;
    bool have_members, have_totem, have_quorum;
    uint64_t totem_ring, quorum_ring;
    bool quorate;
    bool pending;  /* a membership change not reported yet */
    GQueue held;   /* messages delivered meanwhile (Held *) */
    bool lost;
};

static void link_error(GError **error, const char *what, cs_error_t err)
{
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                "%s: corosync error %d%s", what, err,
                err == CS_ERR_LIBRARY ? " (is corosync running? systemctl status corosync)" : "");
}

/* Whether group, ring and verdict agree. CPG may tell that a member left
 * with its node before or after it tells the new ring, and quorum's verdict
 * comes on its own connection: a node that vanished must be gone from the
 * ring CPG reports, and the verdict must be for that ring, or a partitioned
 * node could act on "peer gone" with the old ring's quorum. */
static bool link_consistent(const ClusterLink *link)
{
    if (!link->have_members || !link->have_totem || !link->have_quorum || link->totem_ring != link->quorum_ring) {
        return false;
    }
    const CpgMembers *g = &link->group;

    for (size_t i = 0; i < g->n_members; i++) {
        if (!cpg_members_has(link->totem, link->n_totem, g->members[i])) {
            return false;
        }
    }
    for (size_t i = 0; i < g->n_down; i++) {
        if (cpg_members_has(link->totem, link->n_totem, g->down[i])) {
            return false;
        }
    }
    return true;
}

static void link_try_report(ClusterLink *link)
{
    Held *h;

    if (link->lost || !link->pending || !link_consistent(link)) {
        return;
    }
    link->pending = false;
    link->group.n_down = 0;
    if (link->group.n_rejoined) {
        uint32_t without[MAX_NODES];
        size_t n = cpg_members_without_rejoined(&link->group, without);

        link->group.n_rejoined = 0;
        link->ops->membership(without, n, link->quorate, link->opaque);
    }
    link->ops->membership(link->group.members, link->group.n_members, link->quorate, link->opaque);
    /* What CPG delivered while the change was held back, in order. */
    while (!link->pending && (h = g_queue_pop_head(&link->held))) {
        gsize len;
        const uint8_t *data = g_bytes_get_data(h->bytes, &len);

        link->ops->message(data, len, h->from, link->opaque);
        g_bytes_unref(h->bytes);
        g_free(h);
    }
}

static ClusterLink *cpg_link(cpg_handle_t h)
{
    void *ctx = NULL;

    cpg_context_get(h, &ctx);
    return ctx;
}

static void on_deliver(cpg_handle_t h, const struct cpg_name *group, uint32_t nodeid, uint32_t pid, void *msg,
                       size_t len)
{
    ClusterLink *link = cpg_link(h);

    if (link->pending) {
        Held *held = g_new0(Held, 1);

        held->from = nodeid;
        held->bytes = g_bytes_new(msg, len);
        g_queue_push_tail(&link->held, held);
        return;
    }
    link->ops->message(msg, len, nodeid, link->opaque);
}

static void on_confchg(cpg_handle_t h, const struct cpg_name *group, const struct cpg_address *members,
                       size_t n_members, const struct cpg_address *left, size_t n_left,
                       const struct cpg_address *joined, size_t n_joined)
{
    ClusterLink *link = cpg_link(h);

    CpgMember now[MAX_NODES], gone[MAX_NODES];
    size_t n_now = MIN(n_members, MAX_NODES), n_gone = MIN(n_left, MAX_NODES);

    for (size_t i = 0; i < n_now; i++) {
        now[i] = (CpgMember){ members[i].nodeid, members[i].pid, false };
    }
    for (size_t i = 0; i < n_gone; i++) {
        gone[i] = (CpgMember){ left[i].nodeid, left[i].pid, left[i].reason == CPG_REASON_NODEDOWN };
    }
    cpg_members_change(&link->group, now, n_now, gone, n_gone);
    link->have_members = true;
    link->pending = true;
    link_try_report(link);
}

static void on_totem_confchg(cpg_handle_t h, struct cpg_ring_id ring, uint32_t n, const uint32_t *nodes)
{
    ClusterLink *link = cpg_link(h);

    link->totem_ring = ring.seq;
    link->n_totem = MIN(n, MAX_NODES);
    memcpy(link->totem, nodes, link->n_totem * sizeof(*nodes));
    link->have_totem = true;
    link->pending = true;
    link_try_report(link);
}

static void on_quorum(quorum_handle_t h, uint32_t quorate, struct quorum_ring_id ring, uint32_t n,
                      const uint32_t *nodes)
{
    const void *ctx = NULL;
    ClusterLink *link;

    quorum_context_get(h, &ctx);
    link = (ClusterLink *)ctx;
    link->quorate = quorate;
    link->quorum_ring = ring.seq;
    link->have_quorum = true;
    link->pending = true;
    link_try_report(link);
}

static gboolean on_cpg_fd(gint fd, GIOCondition cond, gpointer data)
{
    ClusterLink *link = data;
    cs_error_t err = cpg_dispatch(link->cpg, CS_DISPATCH_ALL);

    if (err != CS_OK && err != CS_ERR_TRY_AGAIN) {
        link->cpg_watch = 0;
        if (!link->lost) {
            link->lost = true;
            link->ops->lost("corosync's CPG connection closed", link->opaque);
        }
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static gboolean on_q_fd(gint fd, GIOCondition cond, gpointer data)
{
    ClusterLink *link = data;
    cs_error_t err = quorum_dispatch(link->q, CS_DISPATCH_ALL);

    if (err != CS_OK && err != CS_ERR_TRY_AGAIN) {
        link->q_watch = 0;
        if (!link->lost) {
            link->lost = true;
            link->ops->lost("corosync's quorum connection closed", link->opaque);
        }
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

ClusterLink *cluster_link_new(const char *vm_name, const ClusterLinkOps *ops, void *opaque, GError **error)
{
    ClusterLink *link = g_new0(ClusterLink, 1);
    cpg_model_v1_data_t model = {
        .model = CPG_MODEL_V1,
        .cpg_deliver_fn = on_deliver,
        .cpg_confchg_fn = on_confchg,
        .cpg_totem_confchg_fn = on_totem_confchg,
        .flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF,
    };
    quorum_model_v1_data_t qmodel = { .model = QUORUM_MODEL_V1, .quorum_notify_fn = on_quorum };
    struct cpg_name name;
    uint32_t qtype;
    int fd;
    cs_error_t err;

    link->ops = ops;
    link->opaque = opaque;
    g_queue_init(&link->held);
    name.length = (uint32_t)g_snprintf(name.value, sizeof(name.value), "colo-%s", vm_name);
    err = cpg_model_initialize(&link->cpg, CPG_MODEL_V1, (cpg_model_data_t *)&model, link);
    if (err != CS_OK) {
        link_error(error, "cannot connect to corosync's CPG", err);
        goto fail;
    }
    link->cpg_open = true;
    err = quorum_model_initialize(&link->q, QUORUM_MODEL_V1, (quorum_model_data_t *)&qmodel, &qtype, link);
    if (err != CS_OK) {
        link_error(error, "cannot connect to corosync's quorum service", err);
        goto fail;
    }
    link->q_open = true;
    if (qtype != QUORUM_SET) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "corosync has no quorum provider (quorum { provider: corosync_votequorum } in corosync.conf)");
        goto fail;
    }
    /* votequorum only for its settings (two_node, a quorum device). */
    err = votequorum_initialize(&link->vq, NULL);
    if (err != CS_OK) {
        link_error(error, "cannot connect to corosync's votequorum", err);
        goto fail;
    }
    link->vq_open = true;
    if ((err = cpg_local_get(link->cpg, &link->local_id)) != CS_OK) {
        link_error(error, "cannot read this node's id", err);
        goto fail;
    }
    if ((err = quorum_trackstart(link->q, CS_TRACK_CHANGES | CS_TRACK_CURRENT)) != CS_OK) {
        link_error(error, "cannot follow quorum", err);
        goto fail;
    }
    if ((err = cpg_join(link->cpg, &name)) != CS_OK) {
        link_error(error, "cannot join the CPG group", err);
        goto fail;
    }
    if ((err = cpg_fd_get(link->cpg, &fd)) != CS_OK) {
        link_error(error, "no CPG descriptor", err);
        goto fail;
    }
    link->cpg_watch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_cpg_fd, link);
    if ((err = quorum_fd_get(link->q, &fd)) != CS_OK) {
        link_error(error, "no quorum descriptor", err);
        goto fail;
    }
    link->q_watch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_q_fd, link);
    return link;
fail:
    cluster_link_free(link);
    return NULL;
}

static void held_free(gpointer p)
{
    Held *h = p;

    g_bytes_unref(h->bytes);
    g_free(h);
}

void cluster_link_free(ClusterLink *link)
{
    if (!link) {
        return;
    }
    g_clear_handle_id(&link->cpg_watch, g_source_remove);
    g_clear_handle_id(&link->q_watch, g_source_remove);
    if (link->vq_open) {
        votequorum_finalize(link->vq);
    }
    if (link->q_open) {
        quorum_finalize(link->q);
    }
    if (link->cpg_open) {
        cpg_finalize(link->cpg);
    }
    g_queue_clear_full(&link->held, held_free);
    g_free(link);
}

uint32_t cluster_link_local_id(ClusterLink *link)
{
    return link->local_id;
}

bool cluster_link_quorum_setup(ClusterLink *link, bool *two_node, bool *qdevice, GError **error)
{
    struct votequorum_info info;
    cs_error_t err = votequorum_getinfo(link->vq, 0, &info);

    if (err != CS_OK) {
        link_error(error, "cannot read votequorum's settings", err);
        return false;
    }
    *two_node = info.flags & VOTEQUORUM_INFO_TWONODE;
    *qdevice = info.flags & VOTEQUORUM_INFO_QDEVICE_REGISTERED;
    return true;
}

bool cluster_link_send(ClusterLink *link, const uint8_t *buf, size_t len, GError **error)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    cs_error_t err;

    /* TRY_AGAIN is corosync's flow control: a few short retries, never a
     * long wait (colod does not block). */
    for (int i = 0; i < 10; i++) {
        err = cpg_mcast_joined(link->cpg, CPG_TYPE_AGREED, &iov, 1);
        if (err != CS_ERR_TRY_AGAIN) {
            break;
        }
        g_usleep(1000);
    }
    if (err != CS_OK) {
        link_error(error, "cannot send to the CPG group", err);
        return false;
    }
    return true;
}
