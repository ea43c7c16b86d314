/* The two-node test cluster (cluster-sim.h). */
#include "config.h"

#include "cluster-sim.h"

#include <string.h>

typedef struct {
    uint8_t buf[CPG_MSG_MAX];
    size_t len;
    uint32_t from;
    int side;
} Wire;

static int64_t sim_now(void *opaque)
{
    return ((Sim *)opaque)->now;
}

static void trace(SimNode *n, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void trace(SimNode *n, const char *fmt, ...)
{
    va_list ap;

    if (n->trace->len) {
        g_string_append(n->trace, ", ");
    }
    va_start(ap, fmt);
    g_string_append_vprintf(n->trace, fmt, ap);
    va_end(ap);
}

bool sim_serves(Sim *s, int i)
{
    SimNode *n = &s->node[i], *o = &s->node[!i];

    /* A primary in COLO releases output only with its secondary's
     * checkpoints; once that secondary left COLO, nothing. */
    return n->vmm == VMM_PRIMARY && !n->paused && !n->broken &&
           (!n->in_colo || (o->vmm == VMM_SECONDARY && o->in_colo));
}

static void check_promise(Sim *s)
{
    if (!s->allow_both && sim_serves(s, 0) && sim_serves(s, 1)) {
        g_error("both nodes serve the VM (states %s and %s)", cluster_state_name(sim_state(s, 0)),
                cluster_state_name(sim_state(s, 1)));
    }
}

static void exec(Sim *s, int i, ClusterActions *acts);

static void exec_one(Sim *s, int i, ClusterAction *a, const ClusterAction **failed)
{
    SimNode *n = &s->node[i];
    Wire *w;

    switch (a->type) {
    case ACT_LOG:
        if (g_getenv("SIM_VERBOSE")) {
            g_printerr("  [t=%" G_GINT64_FORMAT " node %u] %s\n", s->now, n->id, a->text);
        }
        break;
    case ACT_ARM_TIMER:
        g_assert_cmpint(cluster_fsm_next_deadline(n->fsm), >=, 0);
        break;
    case ACT_SEND:
        w = g_new0(Wire, 1);
        w->len = cpg_msg_encode(&a->msg, SIM_VM, w->buf);
        w->from = n->id;
        w->side = n->side;
        g_queue_push_tail(&s->queue, w);
        if (a->msg.type != CPG_MSG_HELLO) {
            trace(n, "send %s", cpg_msg_type_name(a->msg.type));
        }
        break;
    case ACT_PERSIST:
        if (n->fail_persist) {
            n->fail_persist = false;
            trace(n, "persist failed");
            *failed = a;
            return;
        }
        n->disk.role = a->role;
        n->disk.generation = a->generation;
        trace(n, "persist %s %" G_GUINT64_FORMAT, colod_role_name(a->role), a->generation);
        break;
    case ACT_START_VMM:
        g_assert_cmpint(n->vmm, ==, VMM_NONE);
        n->vmm = a->vmm;
        n->paused = false;
        n->in_colo = false;
        n->broken = false;
        n->starts++;
        trace(n, "start %s", a->relocation ? "target" : vmm_kind_name(a->vmm));
        break;
    case ACT_STOP_VMM:
        g_assert_cmpint(n->vmm, !=, VMM_NONE);
        n->vmm = VMM_NONE;
        n->in_colo = false;
        n->broken = false;
        n->paused = false;
        trace(n, "stop");
        break;
    case ACT_START_PROTECT:
        g_assert_cmpint(n->vmm, ==, VMM_PRIMARY);
        trace(n, "migrate");
        break;
    case ACT_CANCEL_PROTECT:
        trace(n, "cancel");
        break;
    case ACT_FAILOVER:
        g_assert_cmpint(n->vmm, !=, VMM_NONE);
        n->vmm = VMM_PRIMARY;
        n->in_colo = false;
        n->broken = false;
        trace(n, "failover");
        break;
    case ACT_PAUSE:
        n->paused = true;
        trace(n, "pause");
        break;
    case ACT_RESUME:
        n->paused = false;
        trace(n, "resume");
        break;
    case ACT_RELOCATE:
        g_assert_cmpint(n->vmm, ==, VMM_PRIMARY);
        trace(n, "relocate");
        break;
    }
    check_promise(s);
}

static void exec(Sim *s, int i, ClusterActions *acts)
{
    const ClusterAction *failed = NULL;
    ClusterAction copy;
    guint k;

    for (k = 0; k < acts->len && !failed; k++) {
        exec_one(s, i, cluster_action_at(acts, k), &failed);
    }
    if (failed) {
        copy = *failed;
        copy.text = NULL;
        cluster_actions_clear(acts);
        cluster_fsm_persist_failed(s->node[i].fsm, &copy, "disk full", acts);
        exec(s, i, acts);
        return;
    }
    cluster_actions_clear(acts);
    /* What the state machine believes of its colo-vmm is what it made
     * happen. */
    if (s->node[i].fsm) {
        g_assert_cmpint(cluster_fsm_vmm(s->node[i].fsm), ==, s->node[i].vmm);
        g_assert_cmpint(cluster_fsm_paused(s->node[i].fsm), ==, s->node[i].paused);
    }
}

Sim *sim_new(ColodRole r0, uint64_t g0, ColodRole r1, uint64_t g1)
{
    Sim *s = g_new0(Sim, 1);

    s->now = 1000;
    s->timeouts = (ColodTimeouts){ .qmp_ms = 5000, .peer_wait_ms = 30000, .protect_ack_ms = 30000,
                                   .protect_retry_ms = 10000, .claim_ms = 5000, .restart_grace_ms = 30000 };
    s->quorate[0] = s->quorate[1] = true;
    g_queue_init(&s->queue);
    for (int i = 0; i < 2; i++) {
        s->node[i].id = (uint32_t)i + 1;
        s->node[i].trace = g_string_new("");
    }
    s->node[0].disk = (ColodStateRecord){ r0, g0 };
    s->node[1].disk = (ColodStateRecord){ r1, g1 };
    return s;
}

void sim_free(Sim *s)
{
    for (int i = 0; i < 2; i++) {
        cluster_fsm_free(s->node[i].fsm);
        g_string_free(s->node[i].trace, TRUE);
    }
    g_queue_clear_full(&s->queue, g_free);
    g_free(s);
}

static bool connected(Sim *s, int a, int b)
{
    return !s->partitioned || s->node[a].side == s->node[b].side;
}

/* A side that loses quorum hears of it before the other side hears that
 * it gained it (a quorum device votes for one side only after the other
 * lost it); each side within its own token timeout. */
void sim_membership(Sim *s)
{
    int order[2] = { 0, 1 };

    if (s->quorate[s->partitioned ? s->node[1].side : 0] == false) {
        order[0] = 1;
        order[1] = 0;
    }
    for (int k = 0; k < 2; k++) {
        int i = order[k];
        g_autoptr(GArray) acts = cluster_actions_new();
        uint32_t members[2];
        size_t n = 0;

        if (!s->node[i].fsm) {
            continue;
        }
        for (int j = 0; j < 2; j++) {
            if (s->node[j].fsm && connected(s, i, j)) {
                members[n++] = s->node[j].id;
            }
        }
        cluster_fsm_membership(s->node[i].fsm, members, n, s->quorate[s->partitioned ? s->node[i].side : 0], acts);
        exec(s, i, acts);
    }
    sim_run(s);
}

void sim_run(Sim *s)
{
    Wire *w;

    while (!s->hold && (w = g_queue_pop_head(&s->queue))) {
        for (int i = 0; i < 2; i++) {
            SimNode *n = &s->node[i];
            g_autoptr(GArray) acts = cluster_actions_new();
            g_autoptr(GError) err = NULL;
            CpgMsg m;

            /* A partition drops what crosses it; a dead colod gets nothing. */
            if (!n->fsm || n->deaf || (s->partitioned && n->side != w->side)) {
                continue;
            }
            g_assert_true(cpg_msg_decode(w->buf, w->len, w->from, SIM_VM, &m, &err));
            cluster_fsm_message(n->fsm, &m, acts);
            exec(s, i, acts);
        }
        s->delivered++;
        g_free(w);
    }
}

void sim_advance(Sim *s, int64_t ms)
{
    int64_t end = s->now + ms;

    for (;;) {
        int64_t next = -1;

        for (int i = 0; i < 2; i++) {
            int64_t d = s->node[i].fsm ? cluster_fsm_next_deadline(s->node[i].fsm) : -1;

            if (d >= 0 && (next < 0 || d < next)) {
                next = d;
            }
        }
        if (next < 0 || next > end) {
            break;
        }
        s->now = MAX(s->now, next);
        for (int i = 0; i < 2; i++) {
            g_autoptr(GArray) acts = cluster_actions_new();

            if (s->node[i].fsm) {
                cluster_fsm_tick(s->node[i].fsm, acts);
                exec(s, i, acts);
            }
        }
        sim_run(s);
    }
    s->now = end;
}

void sim_create(Sim *s, int i)
{
    SimNode *n = &s->node[i];
    ClusterFsmParams p = { .local_id = n->id, .peer_id = s->node[!i].id, .timeouts = s->timeouts,
                           .managed = s->managed, .has_disks = s->has_disks };
    ClusterClock clock = { sim_now, s };

    g_assert_null(n->fsm);
    n->fsm = cluster_fsm_new(&p, &n->disk, &clock);
    if (n->unprotected) {
        cluster_fsm_keep_unprotected(n->fsm);
    }
}

void sim_start(Sim *s, int i)
{
    sim_create(s, i);
    sim_membership(s);
}

void sim_kill(Sim *s, int i, bool vmm_too)
{
    SimNode *n = &s->node[i];
    ClusterState was = sim_state(s, i);
    bool moving = was == CLUSTER_RELOCATING || was == CLUSTER_RELOCATE_TARGET;

    /* As colod keeps it after each decision (colod/main.c). */
    n->unprotected = !cluster_fsm_protect_enabled(n->fsm);
    cluster_fsm_free(n->fsm);
    n->fsm = NULL;
    if (vmm_too) {
        n->vmm = VMM_NONE;
        n->paused = false;
        n->in_colo = false;
    }
    sim_membership(s);
    /* As the real colo-vmms: a relocation's stream breaks with its other
     * end (a target that never ran exits, anything else fails). */
    if (vmm_too && moving && s->node[!i].fsm && s->node[!i].vmm != VMM_NONE) {
        ClusterState other = sim_state(s, !i);

        if (other == CLUSTER_RELOCATE_TARGET && s->node[!i].vmm == VMM_SECONDARY) {
            sim_vmm(s, !i, VMM_EV_EXITED);
        } else if (other == CLUSTER_RELOCATE_TARGET || other == CLUSTER_RELOCATING) {
            sim_vmm(s, !i, VMM_EV_PROTECT_FAILED);
        }
    }
}

void sim_start_adopt(Sim *s, int i)
{
    g_autoptr(GArray) acts = cluster_actions_new();
    SimNode *n = &s->node[i];

    sim_create(s, i);
    cluster_fsm_adopt(n->fsm, n->vmm, n->in_colo, n->paused, acts);
    exec(s, i, acts);
    sim_membership(s);
}

void sim_partition(Sim *s, bool partitioned, bool q0, bool q1)
{
    s->partitioned = partitioned;
    s->node[0].side = 0;
    s->node[1].side = partitioned ? 1 : 0;
    s->quorate[0] = q0;
    s->quorate[1] = q1;
    sim_membership(s);
}

void sim_vmm(Sim *s, int i, VmmEvent ev)
{
    g_autoptr(GArray) acts = cluster_actions_new();
    SimNode *n = &s->node[i];
    bool reloc_source = ev == VMM_EV_MIGRATED && sim_state(s, i) == CLUSTER_RELOCATING;

    /* As the real colo-vmms: a relocation target reaches postcopy (or the
     * end) only after its source stopped its guest for it. */
    if ((ev == VMM_EV_POSTCOPY || ev == VMM_EV_MIGRATED) && sim_state(s, i) == CLUSTER_RELOCATE_TARGET &&
        sim_state(s, !i) == CLUSTER_RELOCATING && !s->node[!i].paused) {
        sim_vmm(s, !i, VMM_EV_POSTCOPY);
    }

    if (ev == VMM_EV_EXITED) {
        n->vmm = VMM_NONE;
        n->paused = false;
        n->in_colo = false;
    } else if (ev == VMM_EV_PROTECT_DONE) {
        n->in_colo = true;
    } else if (ev == VMM_EV_PEER_LOST && n->in_colo) {
        n->broken = true;
    } else if (ev == VMM_EV_POSTCOPY && sim_state(s, i) == CLUSTER_RELOCATING) {
        n->paused = true; /* a relocation's source stops for good */
    } else if ((ev == VMM_EV_POSTCOPY || ev == VMM_EV_MIGRATED) && sim_state(s, i) == CLUSTER_RELOCATE_TARGET &&
               cluster_fsm_state(s->node[i].fsm) == CLUSTER_RELOCATE_TARGET &&
               (s->node[!i].vmm != VMM_PRIMARY || s->node[!i].paused)) {
        n->vmm = VMM_PRIMARY; /* its target runs the guest (its source stopped for it) */
    }
    cluster_fsm_vmm_event(n->fsm, ev, acts);
    exec(s, i, acts);
    sim_run(s);
    /* ... and the source completes only once its target holds it all. */
    if (reloc_source && sim_state(s, !i) == CLUSTER_RELOCATE_TARGET) {
        sim_vmm(s, !i, VMM_EV_MIGRATED);
    }
}

bool sim_admin(Sim *s, int i, AdminCommand cmd, GError **error)
{
    g_autoptr(GArray) acts = cluster_actions_new();
    bool ok = cluster_fsm_admin(s->node[i].fsm, cmd, acts, error);

    if (!ok) {
        g_assert_cmpuint(acts->len, ==, 0);
    }
    exec(s, i, acts);
    sim_run(s);
    return ok;
}

void sim_inject(Sim *s, int i, const CpgMsg *m)
{
    Wire *w = g_new0(Wire, 1);
    CpgMsg copy = *m;

    copy.sender = s->node[i].id;
    w->len = cpg_msg_encode(&copy, SIM_VM, w->buf);
    w->from = s->node[i].id;
    w->side = s->node[i].side;
    g_queue_push_tail(&s->queue, w);
    sim_run(s);
}

void sim_deliver_to(Sim *s, int to, const CpgMsg *m)
{
    g_autoptr(GArray) acts = cluster_actions_new();

    cluster_fsm_message(s->node[to].fsm, m, acts);
    exec(s, to, acts);
    sim_run(s);
}

char *sim_take(Sim *s, int i)
{
    char *t = g_strdup(s->node[i].trace->str);

    g_string_truncate(s->node[i].trace, 0);
    return t;
}

void sim_assert_disk(Sim *s, int i, ColodRole role, uint64_t gen)
{
    g_assert_cmpstr(colod_role_name(s->node[i].disk.role), ==, colod_role_name(role));
    g_assert_cmpuint(s->node[i].disk.generation, ==, gen);
}

void sim_assert_reason(Sim *s, int i, const char *piece)
{
    const char *r = cluster_fsm_reason(s->node[i].fsm);

    if (!strstr(r, piece)) {
        g_error("node %d's reason \"%s\" lacks \"%s\"", i, r, piece);
    }
}

ClusterState sim_state(Sim *s, int i)
{
    return s->node[i].fsm ? cluster_fsm_state(s->node[i].fsm) : CLUSTER__MAX;
}

void sim_start_protecting(Sim *s)
{
    sim_start(s, 0);
    sim_start(s, 1);
    sim_vmm(s, 0, VMM_EV_READY);
    sim_vmm(s, 1, VMM_EV_READY);
    g_assert_cmpint(sim_state(s, 0), ==, CLUSTER_PROTECTING);
    g_assert_cmpint(sim_state(s, 1), ==, CLUSTER_SECONDARY_SYNCING);
    g_free(sim_take(s, 0));
    g_free(sim_take(s, 1));
}

void sim_protect_pair(Sim *s, int primary)
{
    int sec = !primary;

    sim_start(s, 0);
    sim_start(s, 1);
    g_assert_true(sim_admin(s, primary, ADMIN_FAILOVER, NULL));
    g_assert_cmpint(sim_state(s, primary), ==, CLUSTER_PRIMARY_STARTING);
    sim_vmm(s, primary, VMM_EV_READY);
    g_assert_cmpint(sim_state(s, primary), ==, CLUSTER_PROTECT_REQUESTED);
    g_assert_cmpint(sim_state(s, sec), ==, CLUSTER_SECONDARY_STARTING);
    sim_vmm(s, sec, VMM_EV_READY);
    g_assert_cmpint(sim_state(s, primary), ==, CLUSTER_PROTECTING);
    g_assert_cmpint(sim_state(s, sec), ==, CLUSTER_SECONDARY_SYNCING);
    sim_vmm(s, sec, VMM_EV_PROTECT_DONE);
    sim_vmm(s, primary, VMM_EV_PROTECT_DONE);
    g_assert_cmpint(sim_state(s, primary), ==, CLUSTER_PRIMARY_PROTECTED);
    g_assert_cmpint(sim_state(s, sec), ==, CLUSTER_SECONDARY_PROTECTED);
    g_free(sim_take(s, 0));
    g_free(sim_take(s, 1));
}
