/* The reference consumer for bench/proxy-bench.py: a trivial NFQUEUE
 * consumer that accepts every packet, nothing else. It is what colo-proxy's
 * primary would cost with the compare path taken away, on the same
 * namespaces and CPUs, so the benchmark can print the full path as a
 * fraction of this ceiling.
 *
 *   proxy-bench-accept [--queue N] [--batch N] [--per-packet] [--copy BYTES]
 *
 * Same queue set-up as colo-proxy's primary: NFQA_CFG_F_GSO, whole packets
 * copied to user space (--copy 0 copies metadata only), a 16 MiB socket
 * buffer, recvmmsg() of up to --batch messages (default 32) and one batch
 * verdict per read (or one verdict per packet with --per-packet). Blocks in
 * recvmmsg (no busy polling). Turns on the kernel's receive timestamps (as
 * colo-proxy --kernel-timestamps does) and measures each packet's time from
 * the kernel's receipt to its verdict. Prints "ready" once bound and, on
 * SIGTERM or SIGINT, "PACKETS BYTES RECV_CALLS VERDICTS P50_US P99_US
 * MAX_US". The iptables rule is the caller's. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <libnfnetlink/libnfnetlink.h>
#include <linux/netfilter.h>
#include <linux/netlink.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BUFSIZE (128 * 1024)
#define MAX_BATCH 256
#define LAT_BUCKETS 4096   /* 1 us each, the last one everything longer */

static volatile sig_atomic_t stop;
static uint64_t packets, bytes, recv_calls, verdicts, max_us;
static uint32_t last_id;
static uint64_t lat[LAT_BUCKETS];
static int64_t arrival[MAX_BATCH];   /* CLOCK_REALTIME ns of this read's packets, 0 if unknown */
static unsigned int nread;

static int64_t now_real(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The packets of this read got their verdict now. */
static void verdict_done(unsigned int from, unsigned int to)
{
    int64_t now = now_real();

    for (unsigned int i = from; i < to; i++) {
        uint64_t us;

        if (!arrival[i]) {
            continue;
        }
        us = now > arrival[i] ? (uint64_t)(now - arrival[i]) / 1000u : 0;
        lat[us < LAT_BUCKETS ? us : LAT_BUCKETS - 1]++;
        if (us > max_us) {
            max_us = us;
        }
    }
}

static uint64_t percentile(double p)
{
    uint64_t total = 0, seen = 0;

    for (unsigned int i = 0; i < LAT_BUCKETS; i++) {
        total += lat[i];
    }
    for (unsigned int i = 0; i < LAT_BUCKETS; i++) {
        seen += lat[i];
        if (total && (double)seen >= (double)total * p) {
            return i + 1;   /* the bucket's upper bound */
        }
    }
    return 0;
}

static void on_signal(int sig)
{
    stop = 1;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfad, void *data)
{
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfad);
    unsigned char *payload;
    int len = nfq_get_payload(nfad, &payload);

    struct timeval tv;

    if (ph) {
        last_id = ntohl(ph->packet_id);
        packets++;
        bytes += len > 0 ? (uint64_t)len : 0;
        if (nread == MAX_BATCH) {
            return 0;   /* one packet per message: cannot happen */
        }
        arrival[nread] = nfq_get_timestamp(nfad, &tv) == 0 ? ((int64_t)tv.tv_sec * 1000000 + tv.tv_usec) * 1000 : 0;
        nread++;
        if (*(bool *)data) {
            nfq_set_verdict(qh, last_id, NF_ACCEPT, 0, NULL);
            verdict_done(nread - 1, nread);
            verdicts++;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "queue", required_argument, NULL, 'q' },    { "batch", required_argument, NULL, 'b' },
        { "per-packet", no_argument, NULL, 'p' },     { "copy", required_argument, NULL, 'c' },
        { NULL, 0, NULL, 0 },
    };
    unsigned int queue = 7, batch = 32, copy = 0xffff;
    bool per_packet = false;
    struct sigaction sa = { .sa_handler = on_signal };   /* no SA_RESTART: recvmmsg returns EINTR */
    static struct mmsghdr msg[MAX_BATCH];
    static struct iovec iov[MAX_BATCH];
    struct nfq_handle *h;
    struct nfq_q_handle *qh;
    uint8_t *buf;
    int fd, ts_fd, one = 1, c;

    while ((c = getopt_long(argc, argv, "q:b:pc:", opts, NULL)) != -1) {
        switch (c) {
        case 'q':
            queue = (unsigned int)strtoul(optarg, NULL, 10);
            break;
        case 'b':
            batch = (unsigned int)strtoul(optarg, NULL, 10);
            break;
        case 'p':
            per_packet = true;
            break;
        case 'c':
            copy = (unsigned int)strtoul(optarg, NULL, 10);
            break;
        default:
            fprintf(stderr, "usage: %s [--queue N] [--batch N] [--per-packet] [--copy BYTES]\n", argv[0]);
            return 1;
        }
    }
    if (batch < 1 || batch > MAX_BATCH) {
        fprintf(stderr, "--batch: 1 to %d\n", MAX_BATCH);
        return 1;
    }
    buf = malloc((size_t)batch * BUFSIZE);
    h = nfq_open();
    qh = h ? nfq_create_queue(h, (uint16_t)queue, on_packet, &per_packet) : NULL;
    if (!buf || !qh || nfq_set_mode(qh, copy ? NFQNL_COPY_PACKET : NFQNL_COPY_META, copy) < 0 ||
        nfq_set_queue_maxlen(qh, 16384) < 0 || nfq_set_queue_flags(qh, NFQA_CFG_F_GSO, NFQA_CFG_F_GSO) < 0) {
        fprintf(stderr, "NFQUEUE %u: %s\n", queue, strerror(errno));
        return 2;
    }
    /* The kernel stamps received packets while some socket asks for it. */
    ts_fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (ts_fd < 0 || setsockopt(ts_fd, SOL_SOCKET, SO_TIMESTAMP, &one, sizeof(one)) < 0) {
        perror("SO_TIMESTAMP");
        return 2;
    }
    fd = nfq_fd(h);
    nfnl_rcvbufsiz(nfq_nfnlh(h), 16u << 20);
    setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
    for (unsigned int i = 0; i < batch; i++) {
        iov[i] = (struct iovec){ buf + (size_t)i * BUFSIZE, BUFSIZE };
        msg[i].msg_hdr.msg_iov = &iov[i];
        msg[i].msg_hdr.msg_iovlen = 1;
    }
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    printf("ready\n");
    fflush(stdout);
    while (!stop) {
        /* Sleep until one message is there, then take what else is. */
        int n = recvmmsg(fd, msg, batch, MSG_WAITFORONE, NULL);

        if (n < 0) {
            if (errno == EINTR || errno == ENOBUFS) {
                continue;
            }
            perror("recvmmsg");
            return 2;
        }
        recv_calls++;
        nread = 0;
        for (int i = 0; i < n; i++) {
            nfq_handle_packet(h, iov[i].iov_base, (int)msg[i].msg_len);
        }
        if (!per_packet && nread > 0) {
            nfq_set_verdict_batch(qh, last_id, NF_ACCEPT);
            verdict_done(0, nread);
            verdicts++;
        }
    }
    printf("%llu %llu %llu %llu %llu %llu %llu\n", (unsigned long long)packets, (unsigned long long)bytes,
           (unsigned long long)recv_calls, (unsigned long long)verdicts, (unsigned long long)percentile(0.5),
           (unsigned long long)percentile(0.99), (unsigned long long)max_us);
    /* What is still queued is dropped with the queue; a benchmark only. */
    nfq_destroy_queue(qh);
    nfq_close(h);
    free(buf);
    return 0;
}
