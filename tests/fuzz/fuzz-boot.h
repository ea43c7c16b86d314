/* Shared body of the kernel-loader fuzz targets: arbitrary bytes as the
 * kernel file. The loader must reject or load them without touching memory
 * outside guest RAM or the input (ASan watches both), and every rejection
 * must come with a BOOT_ERROR message. */
#ifndef COLO_FUZZ_BOOT_H
#define COLO_FUZZ_BOOT_H

#include <stdint.h>
#include <stdlib.h>

#include "boot/boot-internal.h"

typedef bool (*FuzzBootLoader)(GuestMemory *mem, const BootImages *img, BootEntry *entry,
                               GError **error);

static inline int fuzz_boot_run(FuzzBootLoader load, const uint8_t *data, size_t size)
{
    static GuestMemory *mem;
    static const uint8_t initrd[8192] = { 1, 2, 3 };

    if (!mem) {
        /* Small RAM so that hostile sizes hit the limits quickly. */
        GuestMemoryConfig cfg = { .size = 8 << 20 };
        mem = guest_memory_new(&cfg, NULL);
        if (!mem) {
            abort();
        }
    }
    BootImages img = {
        .kernel = data, .kernel_size = size,
        .initrd = (size & 1) ? initrd : NULL, .initrd_size = sizeof(initrd),
        .cmdline = "console=ttyS0", .ncpus = 2,
    };
    BootEntry entry;
    GError *error = NULL;

    if (!load(mem, &img, &entry, &error)) {
        g_assert(error && error->domain == BOOT_ERROR && error->message[0]);
        g_error_free(error);
    }
    return 0;
}

#endif
