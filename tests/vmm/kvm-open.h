/* /dev/kvm for a test: a skip only when the machine lacks it or denies
 * it (the reasons of tests/lib/skip-reasons); any other error fails. */
#ifndef COLO_TESTS_VMM_KVM_OPEN_H
#define COLO_TESTS_VMM_KVM_OPEN_H

#include <errno.h>
#include <fcntl.h>
#include <glib.h>

/* An fd on /dev/kvm, or -1 after g_test_skip(). */
static inline int test_open_kvm(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

    if (fd >= 0) {
        return fd;
    }
    if (errno == ENOENT || errno == ENXIO || errno == ENODEV) {
        g_test_skip("no /dev/kvm on this machine");
    } else if (errno == EACCES || errno == EPERM) {
        g_test_skip("no access to /dev/kvm (run as root or in the kvm group)");
    } else {
        g_error("cannot open /dev/kvm: %s", g_strerror(errno));
    }
    return -1;
}

#endif
