/* TLS for migration, as QEMU spells it: -object tls-creds-x509 defines
 * credentials, the tls-creds and tls-hostname
 * migration parameters choose them. With tls-creds set every connection
 * of a migration (main stream and return path, multifd, postcopy's
 * demand channel, COLO's checkpoints) is TLS, in both directions, and a
 * peer that fails the handshake is refused; there is no plaintext
 * fallback. */
#ifndef COLO_VMM_MIGRATION_MIG_TLS_H
#define COLO_VMM_MIGRATION_MIG_TLS_H

#include <stdbool.h>
#include <glib.h>

#include "migration/channel.h"

struct Migration;
struct ColoTlsCreds;
typedef struct MigTls MigTls;

MigTls *mig_tls_new(void);
void mig_tls_free(MigTls *t);

/* Is @spec (an -object argument) a tls-creds-x509? */
bool mig_tls_object_spec(const char *spec);
/* "tls-creds-x509,id=ID,dir=DIR[,endpoint=server|client][,verify-peer=on|off][,priority=P]":
 * loads the files now, so a missing or bad one stops colo-vmm at start. */
bool mig_tls_object_add(MigTls *t, const char *spec, GError **error);
/* The same from QMP object-add (qom-type tls-creds-x509). */
bool mig_tls_object_create(MigTls *t, const char *id, const char *dir, bool server, bool verify_peer,
                           const char *priority, GError **error);
/* object-del: false without @error if @id is no TLS object. */
bool mig_tls_object_del(MigTls *t, const char *id, GError **error);

/* migrate-set-parameters: NULL leaves one unchanged, "" clears it. */
bool mig_tls_set_params(MigTls *t, const char *creds, const char *hostname, GError **error);
const char *mig_tls_creds_id(MigTls *t);
const char *mig_tls_hostname(MigTls *t);

/* The credentials tls-creds names, with a reference, or NULL: with
 * @error if it names none or one of the other endpoint, without if TLS
 * is off. */
struct ColoTlsCreds *mig_tls_creds(MigTls *t, bool server, GError **error);

/* Outgoing: connect to @uri and, with @creds, shake hands (checking
 * @hostname, else the URI's host). */
MigChannel *mig_tls_connect(const char *uri, struct ColoTlsCreds *creds, const char *hostname, GError **error);

#endif
