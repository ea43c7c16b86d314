/* coloctl's output formats, apart from its main so the unit tests
 * (tests/colod/test-coloctl-format.c) run them: colod's status for people
 * (status-text.c), its events as lines (status-text.c), and Prometheus's
 * text exposition format (metrics.c). They take the objects colod sends
 * (docs/man/coloctl.8) and cope with members missing or null. */
#ifndef COLOCTL_COLOCTL_H
#define COLOCTL_COLOCTL_H

#include <stdbool.h>
#include <glib.h>
#include <json-glib/json-glib.h>

/* query-status's object as a few readable lines. */
char *coloctl_status_text(JsonObject *status);

/* One line (no newline) for event @name with @data and @timestamp (both
 * may be NULL). */
char *coloctl_event_text(const char *name, JsonObject *data, JsonObject *timestamp);

/* What an administrator can do about wait reason @why (a name colod
 * uses), or NULL for an unknown one. */
const char *coloctl_wait_hint(const char *why);

/* query-status's object in Prometheus's text format (version 0.0.4). */
char *coloctl_metrics_text(JsonObject *status);

/* Members read leniently: a missing or mistyped member gives @def / NULL. */
const char *coloctl_str(JsonObject *o, const char *name, const char *def);
gint64 coloctl_int(JsonObject *o, const char *name, gint64 def);
bool coloctl_has_int(JsonObject *o, const char *name);
bool coloctl_bool(JsonObject *o, const char *name, bool def);
JsonObject *coloctl_obj(JsonObject *o, const char *name);

#endif
