/* colod's copy of a colo-proxy's NFQUEUE socket (docs/colod.md,
 * "colo-proxy"). The kernel drops what a queue holds when the last copy
 * of its socket closes; a copy in colod keeps the queue, and what it
 * held, alive after the proxy is killed, so colod can let a dead primary
 * proxy's held packets out (the primary runs on alone afterwards, as the
 * restarted proxy's `failover` says) instead of the guest's TCP waiting
 * for its retransmission timer. */
#ifndef COLOD_PROXY_QUEUE_H
#define COLOD_PROXY_QUEUE_H

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

/* A copy of process @pid's descriptor @remote_fd (pidfd_getfd), checked
 * to be a netfilter netlink socket; -1 and @error if not. */
int proxy_queue_grab(pid_t pid, int remote_fd, GError **error);

/* How many packets queue @num holds now (the kernel's
 * /proc/net/netfilter/nfnetlink_queue, of this network namespace), or -1
 * if it is not bound. */
int proxy_queue_held(guint16 num);

/* An accept verdict for every packet queue @num holds, sent through @fd
 * (the socket bound to it: the kernel takes verdicts only from there). */
bool proxy_queue_release_all(int fd, guint16 num, GError **error);

#endif
