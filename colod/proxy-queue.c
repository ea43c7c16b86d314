/* colod's copy of a colo-proxy's NFQUEUE socket (proxy-queue.h). */
#include "config.h"

#include "proxy-queue.h"

#include "process-fd.h"

#include <errno.h>
#include <gio/gio.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NFQ_PROC "/proc/net/netfilter/nfnetlink_queue"

int proxy_queue_grab(pid_t pid, int remote_fd, GError **error)
{
    int fd = process_fd_copy(pid, remote_fd, error);
    int domain = 0, proto = 0;
    socklen_t len = sizeof(int);

    if (fd < 0) {
        return -1;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_NETLINK ||
        getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0 || proto != NETLINK_NETFILTER) {
        close(fd);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "descriptor %d of process %d is not a netfilter "
                    "netlink socket", remote_fd, (int)pid);
        return -1;
    }
    return fd;
}

int proxy_queue_held(guint16 num)
{
    FILE *f = fopen(NFQ_PROC, "re");
    unsigned int q, portid, total;
    char line[256];
    int held = -1;

    if (!f) {
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        /* queue number, peer port id, packets queued, then counters */
        if (sscanf(line, "%u %u %u", &q, &portid, &total) == 3 && q == num) {
            held = total > G_MAXINT ? G_MAXINT : (int)total;
            break;
        }
    }
    fclose(f);
    return held;
}

static bool send_batch_verdict(int fd, guint16 num, uint32_t up_to, GError **error)
{
    uint64_t buf[32]; /* aligned for the netlink headers */
    struct nlmsghdr *nlh = nfq_nlmsg_put((char *)buf, NFQNL_MSG_VERDICT_BATCH, num);

    nfq_nlmsg_verdict_put(nlh, (int)up_to, NF_ACCEPT);
    if (send(fd, nlh, nlh->nlmsg_len, MSG_DONTWAIT) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "NFQUEUE %u verdict: %s", num, strerror(errno));
        return false;
    }
    return true;
}

/* A batch verdict accepts, in queue order, every packet whose id is not
 * "after" the one given in serial-number arithmetic, half the id space
 * back from it: a packet's id is unknown here (the dead proxy read
 * them), so the two halves go in turn, the first again for a queue whose
 * ids wrapped from the second into it. The kernel refuses a half with
 * nothing to accept (ENOENT, in an error message this socket never
 * reads). */
bool proxy_queue_release_all(int fd, guint16 num, GError **error)
{
    return send_batch_verdict(fd, num, 0x7fffffffu, error) && send_batch_verdict(fd, num, 0xffffffffu, error) &&
           send_batch_verdict(fd, num, 0x7fffffffu, error);
}
