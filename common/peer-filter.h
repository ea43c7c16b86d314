/* Accept a TCP connection only from the one configured peer address
 * (colo-proxy's link, colo-vmm's migration incoming): a stranger's
 * connection is closed at once by the caller and logged, at most once a
 * minute per source address so a flood cannot fill the log. Main loop
 * only (not thread-safe). */
#ifndef COLO_COMMON_PEER_FILTER_H
#define COLO_COMMON_PEER_FILTER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <glib.h>

typedef struct ColoPeerFilter ColoPeerFilter;

/* @peer: a numeric IPv4 or IPv6 address (NULL or "": accept every
 * source). @what names the listener in the log ("link",
 * "incoming migration"). NULL with @error (G_IO_ERROR_INVALID_ARGUMENT) if
 * @peer is not an address. */
ColoPeerFilter *colo_peer_filter_new(const char *peer, const char *what, GError **error);
void colo_peer_filter_free(ColoPeerFilter *f);

/* The peer as normalized text (an IPv4-mapped IPv6 address as IPv4), or
 * NULL if every source is accepted. */
const char *colo_peer_filter_peer(const ColoPeerFilter *f);

/* Whether a connection from @sa may stay; if not it is counted and
 * logged (rate-limited). A NULL filter accepts everything. */
bool colo_peer_filter_accept(ColoPeerFilter *f, const struct sockaddr *sa);

uint64_t colo_peer_filter_refused(const ColoPeerFilter *f);

/* @sa's address as text, IPv4-mapped IPv6 as plain IPv4; false if it is
 * neither IPv4 nor IPv6. @len at least INET6_ADDRSTRLEN. */
bool colo_addr_text(const struct sockaddr *sa, char *buf, size_t len);

#endif
