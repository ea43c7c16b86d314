/* The secondary's guest RAM faulted in ahead of the commits (see
 * ram-populate.h). */
#include "config.h"

#include "colo/ram-populate.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <glib.h>
#include <qb/qblog.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* One huge page a step: the unit the faults clear, and short enough that
 * a stop waits for little. */
#define POPULATE_STEP (2ULL << 20)

struct RamPopulate {
    const GuestMemory *mem;
    GThread *thread;
    gint stop;
};

static gpointer populate_thread(gpointer opaque)
{
    RamPopulate *rp = opaque;
    uint64_t done = 0;
    gint64 t0 = g_get_monotonic_time();

    /* Behind everything else on the host: the commits it spares are the
     * latency path, the guests' vCPUs the work. */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) < 0) {
        qb_log(LOG_DEBUG, "COLO: populating the guest's RAM at nice 19: %s", g_strerror(errno));
    }
    for (unsigned i = 0; i < guest_memory_nr_blocks(rp->mem); i++) {
        const RamBlock *b = rp->mem->blocks[i];

        for (uint64_t off = 0; off < b->size; off += POPULATE_STEP) {
            if (g_atomic_int_get(&rp->stop)) {
                return NULL;
            }
            size_t len = (size_t)MIN(POPULATE_STEP, b->size - off);

            if (madvise(b->host + off, len, MADV_POPULATE_WRITE) < 0) {
                /* Before Linux 5.14 (EINVAL), or out of memory: the
                 * commits fault the pages in themselves, as they did. */
                qb_log(LOG_INFO, "COLO: the guest's RAM is not populated ahead of the checkpoints: %s",
                       g_strerror(errno));
                return NULL;
            }
            done += len;
        }
    }
    qb_log(LOG_INFO, "COLO: the guest's RAM is populated (%" G_GUINT64_FORMAT " MiB in %" G_GINT64_FORMAT " ms)",
           done >> 20, (g_get_monotonic_time() - t0) / 1000);
    return NULL;
}

RamPopulate *ram_populate_start(const GuestMemory *mem)
{
    RamPopulate *rp = g_new0(RamPopulate, 1);

    rp->mem = mem;
    rp->thread = g_thread_new("colo/populate", populate_thread, rp);
    return rp;
}

void ram_populate_stop(RamPopulate *rp)
{
    if (!rp) {
        return;
    }
    g_atomic_int_set(&rp->stop, 1);
    g_thread_join(rp->thread);
    g_free(rp);
}
