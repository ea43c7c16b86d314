/* colod's view of the CPG group (colod/cpg-members.c): a peer that left
 * with its node and is a member again was frozen (the same colod) or
 * restarted (a new one, which the state machine must see leave and
 * join). */
#include "config.h"

#include "cpg-members.h"

#include <glib.h>

#define PEER 1
#define US 2

static const CpgMember us = { US, 200, false };

/* The peer's node went down: reported only once CPG's ring agrees
 * (cluster-link.c), so it waits in the down list. */
static void test_node_down(void)
{
    CpgMembers g = { 0 };
    const CpgMember both[] = { { PEER, 100, false }, us };
    const CpgMember gone = { PEER, 100, true };

    cpg_members_change(&g, both, 2, NULL, 0);
    cpg_members_change(&g, &us, 1, &gone, 1);
    g_assert_cmpuint(g.n_members, ==, 1);
    g_assert_cmpuint(g.n_down, ==, 1);
    g_assert_cmpuint(g.down[0], ==, PEER);
    g_assert_cmpuint(g.n_rejoined, ==, 0);
}

/* A colod that leaves alone (its process ended) is no node down. */
static void test_process_down(void)
{
    CpgMembers g = { 0 };
    const CpgMember gone = { PEER, 100, false };

    cpg_members_change(&g, &us, 1, &gone, 1);
    g_assert_cmpuint(g.n_down, ==, 0);
}

/* Frozen: the same colod is a member again; it never left for us. */
static void test_thawed_peer(void)
{
    CpgMembers g = { 0 };
    const CpgMember both[] = { { PEER, 100, false }, us };
    const CpgMember gone = { PEER, 100, true };
    uint32_t out[CPG_MEMBERS_MAX];

    cpg_members_change(&g, &us, 1, &gone, 1);
    cpg_members_change(&g, both, 2, NULL, 0);
    g_assert_cmpuint(g.n_down, ==, 0);
    g_assert_cmpuint(g.n_rejoined, ==, 0);
    g_assert_cmpuint(cpg_members_without_rejoined(&g, out), ==, 2);
}

/* Its host restarted within the token and consensus: a new colod is a
 * member before the old one's leave was reported. It must be reported as
 * gone, then as a member (run-matrix kill-host:secondary at
 * snapshot-protect, seed 1501: taken for a thaw, nobody sent a hello). */
static void test_restarted_peer(void)
{
    CpgMembers g = { 0 };
    const CpgMember both[] = { { PEER, 101, false }, us };
    const CpgMember gone = { PEER, 100, true };
    uint32_t out[CPG_MEMBERS_MAX];

    cpg_members_change(&g, &us, 1, &gone, 1);
    cpg_members_change(&g, both, 2, NULL, 0);
    g_assert_cmpuint(g.n_down, ==, 0);
    g_assert_cmpuint(g.n_rejoined, ==, 1);
    g_assert_cmpuint(g.rejoined[0], ==, PEER);
    g_assert_cmpuint(cpg_members_without_rejoined(&g, out), ==, 1);
    g_assert_cmpuint(out[0], ==, US);
}

/* CPG may tell the old colod's leave and the new one's join at once. */
static void test_restarted_peer_one_change(void)
{
    CpgMembers g = { 0 };
    const CpgMember both[] = { { PEER, 101, false }, us };
    const CpgMember gone = { PEER, 100, true };

    cpg_members_change(&g, both, 2, &gone, 1);
    g_assert_cmpuint(g.n_down, ==, 0);
    g_assert_cmpuint(g.n_rejoined, ==, 1);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cpg-members/node-down", test_node_down);
    g_test_add_func("/cpg-members/process-down", test_process_down);
    g_test_add_func("/cpg-members/thawed-peer", test_thawed_peer);
    g_test_add_func("/cpg-members/restarted-peer", test_restarted_peer);
    g_test_add_func("/cpg-members/restarted-peer-one-change", test_restarted_peer_one_change);
    return g_test_run();
}
