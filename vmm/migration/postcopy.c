/* Postcopy: the destination runs while the source still sends pages;
 * faults on missing pages become page requests over the return path and
 * pages are placed atomically with userfaultfd. */
#include "config.h"

#include "migration/migration.h"

#include <gio/gio.h>

#include "migration/format.h"
#include "migration/migration-priv.h"
#include "vm.h"

bool migration_postcopy_requested(Migration *m)
{
    return g_atomic_int_get(&m->postcopy_requested) != 0;
}

bool migration_incoming_ram(Migration *m, MigChannel *c, GError **error)
{
    return ram_load(m->vm->mem, c, &m->in_stats, error);
}

bool migration_postcopy_run(Migration *m, GError **error)
{
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "postcopy is not available");
    return false;
}

bool migration_postcopy_queue_request(Migration *m, const uint8_t *payload, uint16_t len)
{
    return false;
}

bool migration_incoming_postcopy_command(Migration *m, MigChannel *c, uint16_t cmd,
                                         const uint8_t *payload, uint16_t len, GError **error)
{
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                "the source asked for postcopy (command %u), which this colo-vmm does not do", cmd);
    return false;
}

void migration_incoming_postcopy_cleanup(Migration *m)
{
}

void migration_query_postcopy(Migration *m, JsonObject *ret)
{
}
