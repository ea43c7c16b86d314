/* The CPG group as colod follows it (cpg-members.h). */
#include "config.h"

#include "cpg-members.h"

bool cpg_members_has(const uint32_t *list, size_t n, uint32_t id)
{
    for (size_t i = 0; i < n; i++) {
        if (list[i] == id) {
            return true;
        }
    }
    return false;
}

void cpg_members_change(CpgMembers *g, const CpgMember *members, size_t n_members, const CpgMember *left,
                        size_t n_left)
{
    g->n_members = 0;
    for (size_t i = 0; i < n_members && g->n_members < CPG_MEMBERS_MAX; i++) {
        g->member_pids[g->n_members] = members[i].pid;
        g->members[g->n_members++] = members[i].nodeid;
    }
    for (size_t i = 0; i < n_left && g->n_down < CPG_MEMBERS_MAX; i++) {
        if (left[i].node_down) {
            g->down_pids[g->n_down] = left[i].pid;
            g->down[g->n_down++] = left[i].nodeid;
        }
    }
    /* A node that left and is a member again is not down: kept in the
     * list it made the change inconsistent for good (cluster-link.c), and
     * every message after it was held. The same colod (this node or that
     * one was frozen, and CPG tells both at the thaw) never left for us; a
     * new one (its host restarted) did, and the state machine must see it
     * go and come, or it would wait on the old one's word for good. */
    for (size_t i = 0; i < g->n_down;) {
        size_t m = 0;

        while (m < g->n_members && g->members[m] != g->down[i]) {
            m++;
        }
        if (m == g->n_members) {
            i++;
            continue;
        }
        if (g->member_pids[m] != g->down_pids[i] && g->n_rejoined < CPG_MEMBERS_MAX &&
            !cpg_members_has(g->rejoined, g->n_rejoined, g->down[i])) {
            g->rejoined[g->n_rejoined++] = g->down[i];
        }
        g->down_pids[i] = g->down_pids[g->n_down - 1];
        g->down[i] = g->down[--g->n_down];
    }
}

size_t cpg_members_without_rejoined(const CpgMembers *g, uint32_t *out)
{
    size_t n = 0;

    for (size_t i = 0; i < g->n_members; i++) {
        if (!cpg_members_has(g->rejoined, g->n_rejoined, g->members[i])) {
            out[n++] = g->members[i];
        }
    }
    return n;
}
