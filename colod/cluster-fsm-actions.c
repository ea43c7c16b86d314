/* colod's state machine, its plumbing: the action list, state changes
 * with their reasons and hellos, timers, set-up, queries and names. */
#include "config.h"

#include "cluster-fsm-private.h"

#include <stdarg.h>
#include <string.h>
#include <syslog.h>

G_DEFINE_QUARK(cluster-fsm-error-quark, cluster_fsm_error)

bool fsm_refuse(GError **error, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error_literal(error, CLUSTER_FSM_ERROR, 0, msg);
    return false;
}

/* ---- actions ---------------------------------------------------------- */

static void action_clear(gpointer p)
{
    g_clear_pointer(&((ClusterAction *)p)->text, g_free);
}

ClusterActions *cluster_actions_new(void)
{
    GArray *a = g_array_new(FALSE, TRUE, sizeof(ClusterAction));

    g_array_set_clear_func(a, action_clear);
    return a;
}

void cluster_actions_clear(ClusterActions *acts)
{
    g_array_set_size(acts, 0);
}

void cluster_actions_free(ClusterActions *acts)
{
    if (acts) {
        g_array_unref(acts);
    }
}

static ClusterAction *act(ClusterActions *out, ClusterActionType type)
{
    ClusterAction a = { .type = type };

    g_array_append_val(out, a);
    return cluster_action_at(out, out->len - 1);
}

void fsm_say(ClusterFsm *fsm, ClusterActions *out, int level, const char *fmt, ...)
{
    va_list ap;
    ClusterAction *a = act(out, ACT_LOG);

    va_start(ap, fmt);
    a->text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    a->level = level;
    g_strlcpy(fsm->reason, a->text, sizeof(fsm->reason));
}

void fsm_arm(ClusterFsm *fsm, ClusterActions *out, ClusterTimer t, uint32_t ms)
{
    ClusterAction *a = act(out, ACT_ARM_TIMER);

    a->timer = t;
    a->ms = ms;
    fsm->deadline[t] = fsm->clock.now_ms(fsm->clock.opaque) + ms;
}

void fsm_disarm(ClusterFsm *fsm, ClusterTimer t)
{
    fsm->deadline[t] = -1;
}

void fsm_persist(ClusterFsm *fsm, ClusterActions *out, ColodRole role, uint64_t gen)
{
    ClusterAction *a = act(out, ACT_PERSIST);

    a->before.vmm = fsm->vmm;
    a->before.paused = fsm->paused;
    a->before.role = fsm->role;
    a->before.generation = fsm->generation;
    a->role = role;
    a->generation = gen;
    fsm->role = role;
    fsm->generation = gen;
}

void fsm_vmm_act(ClusterFsm *fsm, ClusterActions *out, ClusterActionType type)
{
    act(out, type);
    switch (type) {
    case ACT_STOP_VMM:
        fsm->vmm = VMM_NONE;
        fsm->paused = false;
        break;
    case ACT_PAUSE:
        fsm->paused = true;
        break;
    case ACT_RESUME:
        fsm->paused = false;
        break;
    case ACT_FAILOVER:
        fsm->vmm = VMM_PRIMARY;
        fsm->colo_told_off = true;
        break;
    case ACT_START_PROTECT:
        fsm->colo_told_off = false;
        break;
    default:
        break;
    }
}

void fsm_start_vmm(ClusterFsm *fsm, ClusterActions *out, VmmKind kind)
{
    act(out, ACT_START_VMM)->vmm = kind;
    fsm->vmm = kind;
    fsm->paused = false;
}

void fsm_start_relocation_target(ClusterFsm *fsm, ClusterActions *out)
{
    fsm_start_vmm(fsm, out, VMM_SECONDARY);
    cluster_action_at(out, out->len - 1)->relocation = true;
}

CpgMsg *fsm_send(ClusterFsm *fsm, ClusterActions *out, CpgMsgType type, uint32_t target)
{
    ClusterAction *a = act(out, ACT_SEND);

    a->msg.type = type;
    a->msg.sender = fsm->p.local_id;
    a->msg.target = target;
    return &a->msg;
}

void fsm_send_hello(ClusterFsm *fsm, ClusterActions *out)
{
    CpgMsg *m = fsm_send(fsm, out, CPG_MSG_HELLO, 0);

    m->generation = fsm->generation;
    m->role = fsm->role;
    m->state = fsm->state;
    m->vmm = fsm->vmm;
    m->paused = fsm->paused;
    m->protect_enabled = fsm->protect_enabled;
}

/* Moves to @state, says why, and tells the peer (every state change is
 * announced in a hello, which is how each side learns the other's). */
void fsm_enter(ClusterFsm *fsm, ClusterActions *out, ClusterState state, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *why = NULL;
    ClusterState old = fsm->state;

    va_start(ap, fmt);
    why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    fsm->state = state;
    if (state != CLUSTER_WAIT_ADMIN) {
        fsm->wait = WAIT_NONE;
    }
    /* Timers belong to the state that armed them (the restart grace is the
     * peer's, not ours). */
    fsm_disarm(fsm, TIMER_PEER_WAIT);
    fsm_disarm(fsm, TIMER_PROTECT_ACK);
    fsm_disarm(fsm, TIMER_CLAIM);
    fsm_disarm(fsm, TIMER_RELOCATE_ACK);
    fsm_disarm(fsm, TIMER_SYNC_OUTCOME);
    fsm->sync_orphaned = false;
    if (state != CLUSTER_PRIMARY_ALONE) {
        fsm_disarm(fsm, TIMER_PROTECT_RETRY);
        fsm->relocate_wanted = false; /* a switchover is for the VM as it ran then */
    }
    if (!fsm_in_relocation(fsm)) {
        fsm->reloc_postcopy = false;
    }
    if (state != CLUSTER_PRIMARY_ALONE && state != CLUSTER_PROTECT_REQUESTED && state != CLUSTER_PROTECTING &&
        state != CLUSTER_PRIMARY_PROTECTED) {
        fsm->switch_when_protected = false;
    }
    fsm_say(fsm, out, state == CLUSTER_WAIT_ADMIN || state == CLUSTER_PAUSED ? LOG_WARNING : LOG_INFO, "%s -> %s: %s",
        cluster_state_name(old), cluster_state_name(state), why);
    fsm_send_hello(fsm, out);
}

void fsm_wait_admin(ClusterFsm *fsm, ClusterActions *out, WaitReason why, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *text = NULL;

    va_start(ap, fmt);
    text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    fsm->wait = why;
    fsm_enter(fsm, out, CLUSTER_WAIT_ADMIN, "%s", text);
}

/* ---- set-up and queries ------------------------------------------------ */

ClusterFsm *cluster_fsm_new(const ClusterFsmParams *params, const ColodStateRecord *persisted,
                            const ClusterClock *clock)
{
    ClusterFsm *fsm = g_new0(ClusterFsm, 1);

    fsm->p = *params;
    fsm->clock = *clock;
    fsm->state = CLUSTER_STARTING;
    fsm->role = persisted->role;
    fsm->generation = persisted->generation;
    fsm->protect_enabled = true;
    for (int t = 0; t < TIMER__MAX; t++) {
        fsm->deadline[t] = -1;
    }
    g_strlcpy(fsm->reason, "waiting for corosync's membership", sizeof(fsm->reason));
    return fsm;
}

void cluster_fsm_free(ClusterFsm *fsm)
{
    g_free(fsm);
}

ClusterState cluster_fsm_state(const ClusterFsm *fsm) { return fsm->state; }
ColodRole cluster_fsm_role(const ClusterFsm *fsm) { return fsm->role; }
uint64_t cluster_fsm_generation(const ClusterFsm *fsm) { return fsm->generation; }
VmmKind cluster_fsm_vmm(const ClusterFsm *fsm) { return fsm->vmm; }
bool cluster_fsm_paused(const ClusterFsm *fsm) { return fsm->paused; }

ClusterSoleCopy cluster_fsm_sole_copy(const ClusterFsm *fsm)
{
    /* Not relocating: the peer already holds a replica. A paused VM waits
     * for quorum and the peer, which may have gone on. */
    if (fsm->p.managed || fsm->paused) {
        return CLUSTER_SOLE_COPY_NO;
    }
    switch (fsm->state) {
    case CLUSTER_PRIMARY_STARTING:
    case CLUSTER_PRIMARY_ALONE:
    case CLUSTER_PROTECT_REQUESTED:
        return CLUSTER_SOLE_COPY_YES;
    case CLUSTER_PROTECTING:
        return CLUSTER_SOLE_COPY_UNTIL_COMMIT;
    default:
        return CLUSTER_SOLE_COPY_NO;
    }
}
bool cluster_fsm_quorate(const ClusterFsm *fsm) { return fsm->quorate; }
bool cluster_fsm_protect_enabled(const ClusterFsm *fsm) { return fsm->protect_enabled; }
bool cluster_fsm_managed(const ClusterFsm *fsm) { return fsm->p.managed; }
WaitReason cluster_fsm_wait_reason(const ClusterFsm *fsm) { return fsm->wait; }
const char *cluster_fsm_reason(const ClusterFsm *fsm) { return fsm->reason; }

#define NAME(table, i) ((unsigned)(i) < G_N_ELEMENTS(table) && (table)[i] ? (table)[i] : "invalid")

const char *cluster_timer_name(ClusterTimer t)
{
    static const char *const names[] = { "peer-wait", "protect-ack", "protect-retry", "claim", "restart-grace",
                                         "relocate-ack", "sync-outcome" };

    return NAME(names, t);
}

const char *vmm_event_name(VmmEvent ev)
{
    static const char *const names[] = { "ready", "exited", "peer-lost", "protect-done", "protect-failed",
                                         "postcopy", "migrated" };

    return NAME(names, ev);
}

const char *admin_command_name(AdminCommand cmd)
{
    static const char *const names[] = { "failover", "switchover", "protect", "unprotect", "promote", "demote" };

    return NAME(names, cmd);
}

const char *wait_reason_name(WaitReason why)
{
    static const char *const names[] = { "none", "unknown-generation", "tie", "stale-peer", "split-brain",
                                         "peer-missing", "vmm-exited", "persist-failed",
                                         "relocation-lost" };

    return NAME(names, why);
}
