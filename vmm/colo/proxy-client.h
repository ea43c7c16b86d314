/* A client of colo-proxy's control socket (docs/colo-proxy.md): QMP over
 * a unix stream socket, through the asynchronous client of common/qmp/ run
 * by a thread (and main context) of the client's own. Commands are
 * synchronous with a deadline and may be issued from any one thread at a
 * time; events are handed to a callback on the client's thread. A proxy that stops answering or whose socket
 * breaks makes calls fail (never hang past their deadline). */
#ifndef COLO_VMM_COLO_PROXY_CLIENT_H
#define COLO_VMM_COLO_PROXY_CLIENT_H

#include <stdbool.h>

#include <glib.h>
#include <json-glib/json-glib.h>

typedef struct ProxyClient ProxyClient;

/* An event: its name and "data" (may be NULL). Runs on the client's
 * thread; must not call back into the client. */
typedef void (*ProxyEventFn)(void *opaque, const char *event, JsonObject *data);

/* The proxy closed the connection or it broke, after the connect (why:
 * the error's text). Runs on the client's thread, once; must not call
 * back into the client. */
typedef void (*ProxyClosedFn)(void *opaque, const char *why);

/* Connect to @path, read the greeting and negotiate (qmp_capabilities),
 * each within @timeout_ms; the proxy's role (the greeting's "colo-proxy"
 * member) must be @role ("primary" or "secondary"). @closed may be NULL. */
ProxyClient *proxy_client_connect(const char *path, const char *role, int timeout_ms, ProxyEventFn fn,
                                  ProxyClosedFn closed, void *opaque, GError **error);

/* Run @command (arguments: none) and wait at most @timeout_ms for its
 * reply. Its "return" object (unref it), or NULL with @error (the proxy's
 * error, a timeout, or a broken socket). */
JsonObject *proxy_client_call(ProxyClient *pc, const char *command, int timeout_ms, GError **error);
/* The same with @args (taken; NULL: none). */
JsonObject *proxy_client_call_args(ProxyClient *pc, const char *command, JsonObject *args, int timeout_ms,
                                   GError **error);

/* The socket broke or the proxy closed it. */
bool proxy_client_broken(ProxyClient *pc);

/* Shut the socket down, join the reader, free. NULL is fine. */
void proxy_client_free(ProxyClient *pc);

#endif
