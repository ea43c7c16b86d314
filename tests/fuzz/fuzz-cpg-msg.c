/* libFuzzer target: colod's CPG message decoder. What decodes must encode
 * back to the same bytes (no field is read loosely). */
#include "config.h"

#include "cpg-msg.h"

#include <glib.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    CpgMsg m;
    GError *err = NULL;
    uint32_t from = size >= 16 ? (uint32_t)data[12] << 24 | (uint32_t)data[13] << 16 | data[14] << 8 | data[15] : 0;

    if (cpg_msg_decode(data, size, from, "web1", &m, &err)) {
        uint8_t buf[CPG_MSG_MAX];
        size_t len = cpg_msg_encode(&m, "web1", buf);

        if (len != size || memcmp(buf, data, size) != 0) {
            __builtin_trap();
        }
    } else {
        g_error_free(err);
    }
    return 0;
}
