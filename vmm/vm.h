/* The virtual machine as a whole: KVM, RAM, vCPUs, devices, and its run
 * state (QEMU's names: prelaunch, running, paused, shutdown, internal-error).
 *
 * Threads: the main thread owns the run state and runs the GLib main loop
 * (QMP, character devices, requests). vCPU threads only raise requests
 * (power-off, reset, internal error) that the main thread carries out. */
#ifndef COLO_VMM_VM_H
#define COLO_VMM_VM_H

#include <stdbool.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "boot/boot.h"
#include "chardev.h"
#include "iobus.h"
#include "kvm.h"
#include "memory.h"
#include "runstate.h"
#include "migration/host.h"
#include "migration/vmstate.h"
#include "vcpu.h"

struct QmpServer;
struct Serial;
struct AcpiPm;
struct Cmos;
struct ResetControl;
struct PciBus;
struct MemoryHotplug;
struct Dimms;

/* Why the guest stops or restarts; the strings are QEMU's ShutdownCause. */
typedef enum ShutdownCause {
    SHUTDOWN_CAUSE_HOST_QMP_QUIT,
    SHUTDOWN_CAUSE_HOST_QMP_SYSTEM_RESET,
    SHUTDOWN_CAUSE_HOST_SIGNAL,
    SHUTDOWN_CAUSE_GUEST_SHUTDOWN,
    SHUTDOWN_CAUSE_GUEST_RESET,
} ShutdownCause;

typedef struct VmConfig {
    const char *name;
    unsigned ncpus;
    GuestMemoryConfig memory;
    uint64_t maxmem;            /* -m maxmem=; 0 with mem_slots 0: no RAM hot-add */
    unsigned mem_slots;         /* -m slots= */
    BootConfig boot;
    Chardev *serial;            /* COM1 back-end, owned by the caller */
    GPtrArray *nets;            /* VirtioNetConfig, may be NULL; the caller's */
    GPtrArray *drives;          /* VirtioBlkConfig, may be NULL; the caller's */
} VmConfig;

/* Called with every vCPU parked when the VM stops the world, and before
 * they run again: device I/O threads quiesce here so that no DMA is in
 * flight while the guest stands still (checkpoints, migration). */
typedef struct VmPauseHook {
    void (*pause)(void *opaque);
    void (*resume)(void *opaque);
    void *opaque;
} VmPauseHook;

typedef struct Vm {
    char *name;
    unsigned ncpus;
    Kvm *kvm;
    GuestMemory *mem;
    IoBus *iobus;
    Vcpu **vcpus;
    GBytes *kernel;             /* kept to reload the kernel on reset, */
    GBytes *initrd;             /* as firmware would */
    char *cmdline;
    KvmIrqchipState irqchip_reset;
    GMainContext *ctx;          /* main thread's */
    struct QmpServer *qmp;      /* may be NULL */

    struct Serial *serial;
    struct AcpiPm *pm;
    struct Cmos *cmos;
    struct ResetControl *reset_control;
    struct PciBus *pci;
    struct MemoryHotplug *memhp;
    struct Dimms *dimms;        /* pc-dimms and their memory backends */
    GPtrArray *virtio_blks;     /* VirtioBlk */
    GPtrArray *virtio_nets;     /* VirtioNet */
    GArray *pause_hooks;        /* VmPauseHook */
    bool devices_paused;        /* pause hooks ran (under lock) */
    VmStateRegistry vmstate;    /* device-state sections for migration */
    struct Migration *migration;    /* outgoing and incoming; NULL until used */

    /* Run control: state and pause handshake with the vCPU threads. */
    GMutex lock;
    GCond cond;
    RunState state;             /* changed by vm_set_run_state() only */
    bool autostart;             /* run when an incoming migration ends (not -S,
                                 * or cont during inmigrate) */
    unsigned pause_count;       /* reasons to keep vCPUs parked; 0 = run */
    unsigned vcpus_started;
    bool exiting;               /* vCPU threads end */
    unsigned vcpus_paused;

    /* Requests from vCPU threads, taken by the main thread; under lock. */
    unsigned requests;
    ShutdownCause request_cause;
    GMainLoop *loop;            /* quit when the VM ends; may be NULL */
    int exit_code;              /* what colo-vmm exits with once the loop ends */
} Vm;

Vm *vm_new(const VmConfig *cfg, GMainContext *ctx, GError **error);
void vm_free(Vm *vm);

/* Leave prelaunch: start vCPU threads (running unless -S). */
bool vm_start(Vm *vm, bool paused, GError **error);

/* The one place the run state changes, along the table in runstate.c.
 * Leaving running parks the vCPUs (a pause reference held until running
 * again) and emits STOP; entering running emits RESUME and lets them go.
 * A move the table does not list is a bug: it aborts, as QEMU's
 * runstate_set() does, rather than let a VM run where it must not. A move
 * to the current state does nothing. Main thread. */
void vm_set_run_state(Vm *vm, RunState to);
/* QEMU's vm_stop(): a running VM moves to @new_state; any other stays as it
 * is. Main thread. */
void vm_stop(Vm *vm, RunState new_state);
/* QEMU's vm_stop_force_state(): stopped in @new_state, whatever it was. */
void vm_stop_force_state(Vm *vm, RunState new_state);
/* Run the guest (from a state the table lets run). Main thread. */
void vm_run(Vm *vm);
/* QMP cont: refused where a reset is needed or a migration is finishing;
 * during inmigrate it runs the guest when the load ends. Main thread. */
bool vm_cont(Vm *vm, GError **error);

/* Stop-the-world for the main thread: every vCPU out of KVM_RUN and parked,
 * without changing the run state seen by QMP. Nests with vm_stop. */
void vm_pause_vcpus(Vm *vm);
void vm_resume_vcpus(Vm *vm);
/* Hold the guest's network devices (RX and TX) while the vCPUs may run:
 * COLO keeps the output of a checkpoint's next epoch in the guest until
 * the secondary has loaded. Nests; any thread. */
void vm_hold_network(Vm *vm);
void vm_release_network(Vm *vm);
/* Before vm_start. Hooks run under the VM lock: they must not call back
 * into the VM. */
void vm_add_pause_hook(Vm *vm, void (*pause)(void *opaque), void (*resume)(void *opaque),
                       void *opaque);

/* Reset devices, vCPUs and the kernel image; emits RESET. Main thread. */
bool vm_reset(Vm *vm, ShutdownCause cause, GError **error);

/* End the VM: SHUTDOWN event, vCPUs stopped, main loop quit. Main thread. */
void vm_shutdown(Vm *vm, ShutdownCause cause);

/* End the process without a guest shutdown (a failed incoming migration
 * leaves nothing to run): vCPUs stopped, main loop quit, exit @code. */
void vm_terminate(Vm *vm, int code);

/* Ask for an ACPI power-button press (system_powerdown). */
void vm_powerdown(Vm *vm);

/* From any thread (typically a vCPU): the guest asked for power-off or a
 * reset, or a vCPU hit an error it cannot continue from. */
void vm_request_shutdown(Vm *vm, ShutdownCause cause);
void vm_request_reset(Vm *vm, ShutdownCause cause);
void vm_request_internal_error(Vm *vm, unsigned vcpu_index);

/* Emit a QMP event if a server is attached; takes @data (may be NULL). */
void vm_emit_event(Vm *vm, const char *event, JsonObject *data);

/* What migration and COLO may use of @vm (migration/host.h). */
MigrationHost vm_migration_host(Vm *vm);

const char *shutdown_cause_name(ShutdownCause cause);

#endif
