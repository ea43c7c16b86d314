/* The primary's queue of what the secondary sends on the return path: a
 * checkpoint-ready that arrives before the primary's COLO thread starts
 * (the secondary enters COLO as soon as the initial sync is in) is kept
 * for it; only a new protection empties the queue. colod's protect failed
 * now and then with "waiting for checkpoint-ready: no answer from the
 * secondary" when COLO's start emptied it. No KVM needed. */
#include "config.h"

#include <glib.h>

#include "colo/colo-priv.h"
#include "colo/colo.h"
#include "migration/migration.h"

static void rp_put(Migration *m, uint32_t msg, uint64_t value)
{
    uint8_t p[12];
    uint32_t be32 = GUINT32_TO_BE(msg);
    uint64_t be64 = GUINT64_TO_BE(value);

    memcpy(p, &be32, 4);
    memcpy(p + 4, &be64, 8);
    g_assert_true(colo_rp_message(m, p, sizeof(p)));
}

static void test_ready_before_colo_starts(void)
{
    MigrationHost host = { 0 };
    Migration *m = migration_new(&host);

    /* Left from a COLO before: a new protection starts with none. */
    rp_put(m, COLO_MSG_CHECKPOINT_REPLY, 0);
    colo_rp_reset(m);
    g_assert_cmpuint(m->colo->rp_count, ==, 0);
    /* The secondary is quicker than the primary's COLO thread. */
    rp_put(m, COLO_MSG_CHECKPOINT_READY, 0);
    colo_begin(m);
    g_assert_cmpuint(m->colo->rp_count, ==, 1);
    g_assert_cmpuint(m->colo->rp_msg[0], ==, COLO_MSG_CHECKPOINT_READY);
    /* Not what a secondary sends: refused, not queued. */
    uint8_t bogus[12] = { 0xff, 0xff, 0xff, 0xff };
    g_assert_false(colo_rp_message(m, bogus, sizeof(bogus)));
    g_assert_false(colo_rp_message(m, bogus, 11));
    g_assert_cmpuint(m->colo->rp_count, ==, 1);
    migration_free(m);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/colo/rp/ready-before-colo-starts", test_ready_before_colo_starts);
    return g_test_run();
}
