/* A process colod drives over QMP (colo-vmm, colo-proxy): started by
 * colod (a child watch) or picked up from an earlier colod of the VM
 * (its pid file; a pidfd watch), its exit watched, its QMP connection made
 * (retried until a deadline, then the process is killed: one that does not
 * answer is not waited for) and polled. What to do with it stays with its
 * driver, which owns one ChildProcess per process it started or adopted. */
#ifndef COLOD_CHILD_PROCESS_H
#define COLOD_CHILD_PROCESS_H

#include "common/qmp/qmp-client.h"

#include <glib.h>
#include <stdbool.h>

typedef struct ChildProcess ChildProcess;

/* What a driver's processes are: static, shared by all of them. Every
 * callback gets the owner given to child_process_new(). */
typedef struct {
    const char *name;         /* "colo-vmm": the log's name for it */
    const char *qmp_silent;   /* why it is killed when its QMP never answers */
    const char *qmp_closed;   /* why it is killed when its QMP closes */
    const char *adopted_exit; /* the exit detail of a picked-up one */
    /* Each QMP command's timeout (also the connect's). */
    guint (*qmp_ms)(void *owner);
    /* Its QMP answers (after retries); the greeting is qmp_client_greeting(@qmp). */
    void (*ready)(void *owner, QmpClient *qmp);
    /* Every poll period while its QMP answers. */
    void (*poll)(void *owner, QmpClient *qmp);
    /* It ended (@detail: "exit status 1", "signal 9", or adopted_exit).
     * The last callback: the owner may free the ChildProcess in it. */
    void (*exited)(void *owner, const char *detail);
    /* Its QMP events (opaque: the owner), or NULL. */
    QmpClientEventFunc event;
} ChildProcessKind;

/* Nothing runs yet; @qmp_path (copied) is its QMP socket. */
ChildProcess *child_process_new(const ChildProcessKind *kind, void *owner, const char *qmp_path);
/* Forgets it (the process itself is left alone); no callback runs after this. */
void child_process_free(ChildProcess *c);

/* Starts @argv (searched in PATH) and watches its exit; @pid_file (NULL:
 * it writes its own) gets its pid. @die_with_colod: SIGKILL when colod
 * ends (tests). */
bool child_process_spawn(ChildProcess *c, char **argv, const char *pid_file, bool die_with_colod, GError **error);
/* Watches @pid, left running by an earlier colod. False (logged) if it
 * has ended already. */
bool child_process_adopt(ChildProcess *c, GPid pid);
/* Connects to its QMP socket, retrying for @within_ms, and polls it every
 * @poll_ms once it answers. */
void child_process_connect(ChildProcess *c, guint within_ms, guint poll_ms);

/* SIGKILL unless it has ended (its exit reports as usual). */
void child_process_kill(ChildProcess *c, const char *why);
/* SIGTERM and waits (blocking) up to @wait_ms for its end, SIGKILL after
 * that; its exit is not reported. Returns whether it ended by itself (one
 * colod started: with exit status 0). */
bool child_process_terminate(ChildProcess *c, guint wait_ms);

GPid child_process_pid(ChildProcess *c);
bool child_process_exited(ChildProcess *c);
/* Its QMP connection (connecting or ready), or NULL between retries. */
QmpClient *child_process_qmp(ChildProcess *c);

/* Kills the @name (a binary's name) whose pid @pid_file names, left by an
 * earlier colod of this VM. Returns whether there was one. */
bool child_process_kill_leftover(const char *name, const char *pid_file);

#endif
