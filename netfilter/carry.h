/* The rewriter's flows as JSON, carried from a taken-over secondary
 * colo-proxy (query-rewriter) to the primary colo-proxy that replaces it
 * at re-protection (--carry-flows). The same object both ways:
 *
 *   {"flows": [{"src": "10.0.0.2", "sport": 80, "dst": "10.0.0.9",
 *               "dport": 40000, "offset": 1234, "ts-offset": 56}]}
 *
 * src/sport: the guest's end; "ts-offset" is absent when no timestamp
 * offset was learned. The parser takes untrusted bytes and says exactly
 * what it refuses. */
#ifndef COLO_NETFILTER_CARRY_H
#define COLO_NETFILTER_CARRY_H

#include "rewrite.h"

#include <json-glib/json-glib.h>

/* At most this many flows are carried: each becomes two firewall rules per
 * family. */
#define CARRY_MAX_FLOWS 1024

/* @flows: of struct rw_carried (rw_table_export). */
JsonNode *carry_to_json(const GArray *flows);

/* Parse @len bytes into struct rw_carried; NULL with @error set on
 * anything but a well-formed object as above with at most
 * CARRY_MAX_FLOWS distinct flows. */
GArray *carry_parse(const char *data, size_t len, GError **error);

/* The "-s G -d C --sport g --dport c" words that match @c's guest
 * output (@output) or the client's input to the guest, with "-4"/"-6" so
 * that the other family's iptables-restore ignores the rule. NULL
 * terminated; g_strfreev. */
char **carry_match_words(const struct rw_carried *c, bool output);

#endif
