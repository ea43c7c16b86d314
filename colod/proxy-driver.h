/* colod's hands on colo-proxy (docs/colod.md, "colo-proxy"): starts it in
 * the role colod gives (primary: --listen for the peer's proxy; secondary:
 * --connect), with its control socket and pid file in the VM's run dir,
 * waits until its QMP answers (common/qmp's asynchronous client, every
 * command with the configured timeout; a proxy that does not answer is
 * killed), polls its status and counters, and watches its exit. After any
 * exit colod did not ask for, `colo-proxy --cleanup` removes the rules the
 * dead proxy left, so a crashed proxy never leaves the guest cut off, and
 * the proxy is started again in the same role while colo-vmm runs: a
 * restarted primary proxy, and a secondary one whose predecessor had
 * failed over, are put into pass-through (`failover`) at once, since COLO
 * cannot resume on a fresh proxy and a holding proxy with nobody to
 * commit would keep the guest's output forever. */
#ifndef COLOD_PROXY_DRIVER_H
#define COLOD_PROXY_DRIVER_H

#include "colod-types.h"

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>

typedef struct ProxyDriver ProxyDriver;

typedef struct {
    const char *proxy_path;  /* the colo-proxy binary */
    const char *run_dir;     /* control socket proxy.sock, pid file proxy.pid */
    const char *guest_iface; /* [proxy] guest-interface */
    const char *uplink;      /* [proxy] uplink, NULL: the NFQUEUE path */
    guint16 queue_num;       /* [proxy] queue-num: the NFQUEUE path's queue, one per VM on a node */
    const char *listen;      /* primary: ADDR:PORT for the peer's proxy */
    const char *connect;     /* secondary: PEER:PORT */
    const char *peer;        /* primary: the only source its link accepts (--peer), NULL: any */
    const char *socket_group; /* the control socket's group (0660), NULL: 0600 */
    const char *tls_dir;     /* --tls-creds ([tls] dir), or NULL */
    guint qmp_ms;            /* each QMP command's timeout */
    guint link_wait_ms;      /* a protect's proxy waits this long for its peer link (0: not at all) */
    guint poll_ms;           /* status and counters (also the hang check) */
    bool die_with_colod;     /* tests: SIGKILL to the proxy when colod ends */
} ProxyDriverParams;

/* Whether colo-vmm still runs (a crashed proxy is restarted only then). */
typedef bool (*ProxyDriverVmmAliveFunc)(void *opaque);
/* A started proxy answers (@ok), or it could not be started or did not
 * answer (@detail says why). */
typedef void (*ProxyDriverReadyFunc)(bool ok, const char *detail, void *opaque);

/* @params is copied. */
ProxyDriver *proxy_driver_new(const ProxyDriverParams *params, ProxyDriverVmmAliveFunc alive, void *opaque);
/* Stops the proxy (cleanly) unless proxy_driver_detach() let it go. */
void proxy_driver_free(ProxyDriver *d);

/* Replaces the running proxy (stopped cleanly first) by one in @role;
 * @ready (may be NULL) runs once. */
void proxy_driver_start(ProxyDriver *d, VmmKind role, ProxyDriverReadyFunc ready, void *opaque);
/* SIGTERM (it removes its rules), SIGKILL and --cleanup if it does not end
 * within the QMP timeout. Nothing is restarted afterwards. */
void proxy_driver_stop(ProxyDriver *d);
/* colo-vmm was told x-colo-lost-heartbeat; it tells its proxy itself
 * (docs/colo.md). If the proxy has not failed over a little after colo-vmm's
 * own deadline for that call, colod tells it. */
void proxy_driver_failover(ProxyDriver *d);
/* A protect was given up: the primary's proxy stops, unless it rewrites
 * connections carried from a takeover. Then it is told to fail over at
 * once (it passes everything and rewrites those on) and stays until the
 * next protect replaces it: without it they would stall until then. */
void proxy_driver_protect_cancelled(ProxyDriver *d);
/* A secondary's proxy that takes over sends its guest's last output once
 * more (colo-proxy's replay-output), once the clients reach this node;
 * nothing for a primary's. */
void proxy_driver_replay_output(ProxyDriver *d);

/* The lingering proxy of a primary whose colo-vmm died went away. */
typedef void (*ProxyDriverLingerDoneFunc)(void *opaque);
/* This node's colo-vmm died while it was the protected primary: its proxy
 * stays (told `vmm-lost`: it mirrors the clients' input to the secondary
 * and releases what a checkpoint the secondary committed covers) until the
 * secondary says it serves the clients (PEER_SERVING), it dies, or
 * @bound_ms passed; then it is stopped and @done runs. False, and nothing
 * done, without a primary proxy that answers. proxy_driver_start() and
 * proxy_driver_stop() end it without @done. */
bool proxy_driver_linger(ProxyDriver *d, guint bound_ms, ProxyDriverLingerDoneFunc done, void *opaque);

/* Takes over a colo-proxy an earlier colod left running (its pid file
 * names a live colo-proxy whose control socket answers); its role in
 * @role. Returns false if there is none or it is not healthy (then it was
 * killed and its rules removed). Blocks for at most a QMP timeout. */
bool proxy_driver_adopt(ProxyDriver *d, VmmKind *role);
/* Kills a colo-proxy an earlier colod left (and removes its rules). */
void proxy_driver_kill_leftover(ProxyDriver *d);
/* Forgets the proxy without stopping it (colod restarts, the VM runs on). */
void proxy_driver_detach(ProxyDriver *d);

/* The running proxy: {"pid", "role", "ready", "failed-over", "restarts",
 * "status": query-status, "stats": query-stats (the last poll's)}, or NULL
 * without one. Unref it. */
JsonObject *proxy_driver_query(ProxyDriver *d);
GPid proxy_driver_pid(ProxyDriver *d);
/* The running proxy's role, VMM_NONE without one. */
VmmKind proxy_driver_role(ProxyDriver *d);
/* How many times a proxy that ended unasked for was started again. */
guint proxy_driver_restarts(ProxyDriver *d);

#endif
