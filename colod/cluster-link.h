/* colod's link to corosync: the CPG group "colo-VM" (members and ordered
 * messages) and the quorum service (the verdict with its ring), dispatched
 * from the GLib main loop; votequorum for its settings. Membership is
 * reported only once the group, CPG's ring and quorum's verdict describe
 * the same ring, so a peer that vanished and the loss of quorum that came
 * with it are reported together (cluster-fsm.h); messages CPG delivers
 * meanwhile are held and passed on after it. */
#ifndef COLOD_CLUSTER_LINK_H
#define COLOD_CLUSTER_LINK_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ClusterLink ClusterLink;

typedef struct {
    /* The node ids with a colod in the group, and the quorum verdict of
     * the same ring. */
    void (*membership)(const uint32_t *members, size_t n_members, bool quorate, void *opaque);
    /* A message delivered by CPG (also our own), from node @from. */
    void (*message)(const uint8_t *buf, size_t len, uint32_t from, void *opaque);
    /* corosync went away: no membership, no quorum from now on. */
    void (*lost)(const char *why, void *opaque);
} ClusterLinkOps;

/* Connects to corosync and joins "colo-" @vm_name. Fails with a message
 * that says what to check if corosync does not answer. */
ClusterLink *cluster_link_new(const char *vm_name, const ClusterLinkOps *ops, void *opaque, GError **error);
void cluster_link_free(ClusterLink *link);

uint32_t cluster_link_local_id(ClusterLink *link);

/* votequorum's settings that matter against split brain. */
bool cluster_link_quorum_setup(ClusterLink *link, bool *two_node, bool *qdevice, GError **error);

/* Sends @buf to the group in agreed (total) order. */
bool cluster_link_send(ClusterLink *link, const uint8_t *buf, size_t len, GError **error);

#endif
