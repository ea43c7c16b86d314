/* RAM added to a running guest, in QEMU's terms: memory backends
 * (object-add memory-backend-ram|memfd|file) and the pc-dimm devices that
 * plug them into the guest (device_add pc-dimm). docs/memory-hotplug.md is
 * the user's side.
 *
 * DIMMs live in the device memory area that -m slots=N,maxmem=SIZE sets
 * aside: from ROUND_UP(4 GiB + RAM above 4 GiB, 1 GiB), maxmem minus the
 * boot RAM long. Each is one RamBlock (named by its backend) and one KVM
 * slot; the memory hot-plug controller tells the guest. Hot-remove is not
 * supported. Main thread, except dimms_plug_incoming (migration loader). */
#ifndef COLO_VMM_DIMM_H
#define COLO_VMM_DIMM_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "devices/memory-hotplug.h"
#include "kvm.h"
#include "memory.h"

#define DIMM_ALIGN (2ULL << 20)     /* DIMM sizes and addresses */

typedef struct MemoryBackend {
    char *id;
    char *type;                 /* "memory-backend-ram", "-memfd" or "-file" */
    uint64_t size;
    char *mem_path;             /* -file only */
    bool share, prealloc;
    RamBlock *block;            /* allocated at creation, owned until plugged */
    struct Dimm *dimm;          /* the device using it, or NULL */
} MemoryBackend;

typedef struct Dimm {
    char *id;
    MemoryBackend *backend;
    unsigned slot;
    uint64_t addr;
    bool hotplugged;            /* added while the guest ran (or for the guest to find) */
} Dimm;

typedef struct Dimms {
    GMutex lock;                /* the lists; queries may come from any thread */
    GuestMemory *mem;
    Kvm *kvm;
    MemoryHotplug *hp;
    uint64_t base, area_size;   /* device memory area; size 0: hot-add not enabled */
    unsigned slots;
    GPtrArray *backends;        /* MemoryBackend */
    GPtrArray *dimms;           /* Dimm */
} Dimms;

/* @maxmem and @slots as -m gives them (0, 0: no hot-add). */
Dimms *dimms_new(GuestMemory *mem, Kvm *kvm, MemoryHotplug *hp, uint64_t maxmem, unsigned slots,
                 GError **error);
void dimms_free(Dimms *d);

/* Area for the device memory, from -m (also for the e820 and ACPI code). */
uint64_t dimms_area_base(uint64_t ram_size);

/* object-add: a backend of @type named @id. @mem_path for -file only. */
bool dimms_add_backend(Dimms *d, const char *type, const char *id, uint64_t size, const char *mem_path,
                       bool share, bool prealloc, GError **error);
/* object-del: only a backend no DIMM uses. */
bool dimms_del_backend(Dimms *d, const char *id, GError **error);

/* device_add pc-dimm: @slot < 0 and @addr UINT64_MAX choose (first free
 * slot, first 2 MiB-aligned gap). @notify: tell the guest (false while the
 * guest has not started: it finds the DIMM when it boots). */
bool dimms_plug(Dimms *d, const char *id, const char *memdev, int slot, uint64_t addr, bool notify,
                GError **error);

/* A DIMM the migration source has: make sure the same one is here (the
 * backend is created as memory-backend-ram unless it exists; -mem-path's
 * directory if that was given is not used: a DIMM's backend is its own). */
bool dimms_plug_incoming(Dimms *d, const char *id, const char *memdev, unsigned slot, uint64_t addr,
                         uint64_t size, GError **error);

/* Plugged bytes (DIMMs), for query-memory-size-summary. */
uint64_t dimms_plugged_size(Dimms *d);

#endif
