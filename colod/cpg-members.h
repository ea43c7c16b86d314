/* The CPG group as colod follows it (colod/cluster-link.c), apart from
 * corosync so that it can be tested: who is a member, who left with its
 * node and is not reported yet, and who came back as a new colod. */
#ifndef COLOD_CPG_MEMBERS_H
#define COLOD_CPG_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CPG_MEMBERS_MAX 64 /* CPG allows more; two are used */

typedef struct {
    uint32_t nodeid;
    uint32_t pid;       /* its colod */
    bool node_down;     /* left: with its node (CPG_REASON_NODEDOWN) */
} CpgMember;

typedef struct {
    uint32_t members[CPG_MEMBERS_MAX];
    uint32_t member_pids[CPG_MEMBERS_MAX];
    size_t n_members;
    uint32_t down[CPG_MEMBERS_MAX]; /* left with their node, not yet reported */
    uint32_t down_pids[CPG_MEMBERS_MAX];
    size_t n_down;
    /* Members whose node went down and whose colod is a new one already
     * (the host restarted within corosync's token and consensus): to be
     * reported as gone, then as members again. */
    uint32_t rejoined[CPG_MEMBERS_MAX];
    size_t n_rejoined;
} CpgMembers;

bool cpg_members_has(const uint32_t *list, size_t n, uint32_t id);

/* A CPG configuration change: the group is @members now, @left left it. */
void cpg_members_change(CpgMembers *g, const CpgMember *members, size_t n_members, const CpgMember *left,
                        size_t n_left);

/* The members but the rejoined ones, into @out (CPG_MEMBERS_MAX); their
 * count. */
size_t cpg_members_without_rejoined(const CpgMembers *g, uint32_t *out);

#endif
