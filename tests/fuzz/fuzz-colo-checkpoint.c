/* libFuzzer target: arbitrary bytes as the checkpoint stream a COLO
 * secondary reads from its primary (COLO messages, RAM records into the
 * RAM cache, device state), into the small VM of fuzz-vm.c. The loader must
 * end every input with an error or the stream's end, never crash, and never
 * touch guest memory outside a committed checkpoint. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include <glib.h>

#include "colo/colo-priv.h"
#include "fuzz-vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Migration *mig = fuzz_vm_migration();
    GError *error = NULL;
    ColoSecondary *s = colo_secondary_new(mig, &error);

    if (!s) {
        abort();
    }
    MigChannel *c = fuzz_channel(data, size);
    if (colo_secondary_loop(s, c, &error)) {
        abort();    /* it only returns when the stream ends */
    }
    /* A malformed input says why; otherwise the channel ended. */
    if (!error && !mig_channel_error(c)) {
        abort();
    }
    g_clear_error(&error);
    mig_channel_free(c);
    colo_secondary_free(s);
    return 0;
}
