/* libFuzzer target: the --carry-flows parser (untrusted bytes from a
 * file), then what colo-proxy does with what it accepts: import into a
 * rewriter table and write it back. */
#include "config.h"

#include "carry.h"

#include <glib.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GError *err = NULL;
    GArray *flows = carry_parse((const char *)data, size, &err);
    RwTable *t;

    if (!flows) {
        g_assert(err);
        g_error_free(err);
        return 0;
    }
    t = rw_table_new(CARRY_MAX_FLOWS);
    if (rw_table_import(t, (const struct rw_carried *)(const void *)flows->data, flows->len, &err)) {
        GArray *back = rw_table_export(t);
        JsonNode *n = carry_to_json(back);

        /* Flows with a zero offset are not exported: never more. */
        g_assert(back->len <= flows->len);
        json_node_unref(n);
        g_array_unref(back);
    } else {
        g_error_free(err);
    }
    for (guint i = 0; i < flows->len; i++) {
        char **w = carry_match_words(&g_array_index(flows, struct rw_carried, i), i & 1);

        g_strfreev(w);
    }
    rw_table_free(t);
    g_array_unref(flows);
    return 0;
}
