/* Copies of another process's descriptors (pidfd_getfd): colod keeps a
 * second reference to what a child holds, so that it outlives the child
 * (proxy-queue.h, guest-tap.h). Needs ptrace access to the process, which
 * colod, root and the parent, has. */
#ifndef COLOD_PROCESS_FD_H
#define COLOD_PROCESS_FD_H

#include <glib.h>
#include <sys/types.h>

/* A close-on-exec copy of process @pid's descriptor @remote_fd; -1 and
 * @error if it cannot be had. */
int process_fd_copy(pid_t pid, int remote_fd, GError **error);

#endif
