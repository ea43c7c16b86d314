/* libFuzzer target: arbitrary bytes as an incoming migration stream, into
 * the small VM of fuzz-vm.c. The loader must refuse bad input with an
 * error, never crash or write outside RAM. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include <glib.h>

#include "fuzz-vm.h"
#include "migration/migration-priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Migration *mig = fuzz_vm_migration();
    MigChannel *c = fuzz_channel(data, size);
    GError *error = NULL;
    uint8_t kind, index;
    bool ok = migration_read_hello(c, &kind, &index, &error) &&
              migration_incoming_load(mig, c, &error);
    /* Either it loaded, or it says why. */
    if (!ok && !error) {
        abort();
    }
    g_clear_error(&error);
    mig_channel_free(c);
    g_mutex_lock(&mig->dst.rp_lock);
    mig_channel_free(mig->dst.rp);
    mig->dst.rp = NULL;
    g_mutex_unlock(&mig->dst.rp_lock);
    /* Each input its own incoming migration: postcopy state (bitmaps, a
     * fault thread) from one must not meet the next, or a finding would
     * not replay from its input alone. */
    postcopy_free(mig->postcopy, mig->host.mem);
    mig->postcopy = NULL;
    fuzz_vm_reset_memory();
    return 0;
}
