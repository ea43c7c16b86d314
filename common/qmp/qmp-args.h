/* Argument helpers for QMP command handlers. They check a command's
 * "arguments" object and report problems in QEMU's words, so that
 * command code stays short and clients see the errors they know:
 *   Parameter 'x' is unexpected
 *   Parameter 'x' is missing
 *   Invalid parameter type for 'x', expected: integer
 * Every helper returns true on success and false with @error set (class
 * GenericError). For an optional argument that is absent, *out is left
 * untouched, so initialise it with the default first. Strings, objects and
 * arrays are borrowed from @args. */
#ifndef COLO_COMMON_QMP_ARGS_H
#define COLO_COMMON_QMP_ARGS_H

#include <stdbool.h>
#include <glib.h>
#include <json-glib/json-glib.h>

/* Fail on the first member of @args not listed in the NULL-terminated
 * @allowed (NULL: no argument is allowed). */
bool qmp_args_check(JsonObject *args, const char *const allowed[], GError **error);

bool qmp_arg_int(JsonObject *args, const char *name, bool required, gint64 *out, GError **error);
bool qmp_arg_string(JsonObject *args, const char *name, bool required, const char **out,
                    GError **error);
bool qmp_arg_bool(JsonObject *args, const char *name, bool required, bool *out, GError **error);
/* A number: integer or floating point. */
bool qmp_arg_number(JsonObject *args, const char *name, bool required, double *out,
                    GError **error);
bool qmp_arg_object(JsonObject *args, const char *name, bool required, JsonObject **out,
                    GError **error);
bool qmp_arg_array(JsonObject *args, const char *name, bool required, JsonArray **out,
                   GError **error);

#endif
