/* Processes an earlier colod of the VM left running (colo-vmm and
 * colo-proxy outlive a colod that was killed or restarted): found through
 * their pid files, checked to really be that binary, killed, or watched
 * although they are not colod's children. */
#ifndef COLOD_LEFTOVER_H
#define COLOD_LEFTOVER_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>

/* The pid @pidfile names if that process is alive and runs a binary whose
 * path ends in @exe_suffix ("colo-vmm"); else 0. */
GPid leftover_pid(const char *pidfile, const char *exe_suffix);

/* SIGKILL @pid and wait (at most about a second) until it is gone. */
void leftover_kill(GPid pid);

/* Calls @fn(@data) once, from the main loop, when @pid (not our child)
 * ended. Returns a watch to pass to leftover_unwatch(), or NULL if the
 * process is already gone. */
typedef struct LeftoverWatch LeftoverWatch;
LeftoverWatch *leftover_watch(GPid pid, void (*fn)(gpointer data), gpointer data);
void leftover_unwatch(LeftoverWatch *w);

/* Connects to the QMP socket @path and runs @commands (NULL-terminated, no
 * arguments) in order, each within @timeout_ms, blocking on a main context
 * of its own: pick-up happens once, before colod's main loop runs. Returns
 * the greeting (unref it) with each command's reply in @replies (NULL for
 * one that failed; unref them), or NULL if the socket does not answer. */
JsonObject *leftover_qmp_probe(const char *path, guint timeout_ms, const char *const *commands, JsonNode **replies);

#endif
