/* What migration and COLO may use of the VM, and nothing more: its memory
 * and dirty logging, its device sections, its disks and RAM slots, the main
 * thread's context, and a few run controls. The VM fills one in (vm.c);
 * migration code never sees the VM's own structure.
 *
 * Threads: the fields are fixed for the VM's life. emit_event,
 * pause_vcpus, resume_vcpus, hold_network and release_network may be
 * called from any thread; the other calls are the main thread's (migration
 * threads reach them through migration_call_main). */
#ifndef COLO_VMM_MIGRATION_HOST_H
#define COLO_VMM_MIGRATION_HOST_H

#include <stdbool.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "kvm.h"
#include "memory.h"
#include "runstate.h"
#include "migration/vmstate.h"

struct Vm;
struct Dimms;

typedef struct MigrationHostOps {
    RunState (*run_state)(struct Vm *vm);
    /* Run when an incoming migration ends (no -S, or cont during inmigrate)? */
    bool (*autostart)(struct Vm *vm);
    void (*set_run_state)(struct Vm *vm, RunState to);
    /* Stop the vCPUs and enter @to even from a state that cannot stop. */
    void (*stop_force_state)(struct Vm *vm, RunState to);
    void (*run)(struct Vm *vm);
    /* End colo-vmm with @code (a half-loaded guest cannot run). */
    void (*terminate)(struct Vm *vm, int code);
    /* A QMP event; takes @data (may be NULL). Any thread. */
    void (*emit_event)(struct Vm *vm, const char *event, JsonObject *data);
    /* Park and release the vCPUs without a run-state change (a checkpoint);
     * they nest with every other pause (vm.c counts them). */
    void (*pause_vcpus)(struct Vm *vm);
    void (*resume_vcpus)(struct Vm *vm);
    /* Keep the guest's NICs from sending while the vCPUs run (COLO's
     * output of an epoch not yet checkpointed), and let them go. */
    void (*hold_network)(struct Vm *vm);
    void (*release_network)(struct Vm *vm);
    /* Tell the network where the guest is now (it arrived here). */
    void (*announce)(struct Vm *vm);
    /* Inside a QMP command: a duplicate of its client's socket, or -1
     * (qmp_server_dup_caller). May be NULL (no QMP). */
    int (*dup_qmp_caller)(struct Vm *vm);
} MigrationHostOps;

typedef struct MigrationHost {
    GuestMemory *mem;           /* every RAM block, hot-added DIMMs included */
    Kvm *kvm;                   /* dirty logging; NULL where there is none (fuzzing) */
    const VmStateRegistry *vmstate;
    GPtrArray *disks;           /* VirtioBlk, the VM's, in -drive order */
    struct Dimms *dimms;        /* for DIMMs that arrive with the stream */
    GMainContext *ctx;          /* the main thread's */
    const MigrationHostOps *ops;
    struct Vm *vm;              /* only ever passed back to @ops */
} MigrationHost;

#endif
