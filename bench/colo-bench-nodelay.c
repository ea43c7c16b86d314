/* LD_PRELOAD shim for bench/colo-bench.py: TCP_NODELAY on every TCP socket
 * the process connects or accepts. QEMU 7.2 does not set it on its migration
 * socket, so each small COLO message waits for the peer's delayed ACK.
 * Built by the benchmark: cc -shared -fPIC -o nodelay.so colo-bench-nodelay.c -ldl
 * Says on stderr which sockets it set, so the benchmark can check it took. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>

static void set_nodelay(int fd, const char *how)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int saved = errno, one = 1;

    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
        (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) &&
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0) {
        fprintf(stderr, "colo-bench-nodelay: TCP_NODELAY on fd %d (%s)\n", fd, how);
    }
    errno = saved;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    static int (*real)(int, const struct sockaddr *, socklen_t);

    if (!real) {
        real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
    }
    int r = real(fd, addr, len);
    if (r == 0 || errno == EINPROGRESS) {
        set_nodelay(fd, "connect");
    }
    return r;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    static int (*real)(int, struct sockaddr *, socklen_t *);

    if (!real) {
        real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
    }
    int r = real(fd, addr, len);
    if (r >= 0) {
        set_nodelay(r, "accept");
    }
    return r;
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    static int (*real)(int, struct sockaddr *, socklen_t *, int);

    if (!real) {
        real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
    }
    int r = real(fd, addr, len, flags);
    if (r >= 0) {
        set_nodelay(r, "accept4");
    }
    return r;
}
