/* vCPUs: one thread each running KVM_RUN and handing exits to the I/O bus.
 * The main thread stops and restarts them all through vm_pause/vm_resume. */
#ifndef COLO_VMM_VCPU_H
#define COLO_VMM_VCPU_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>
#include <glib.h>
#include <linux/kvm.h>

#include "boot/boot.h"

struct Vm;

typedef struct Vcpu {
    struct Vm *vm;
    unsigned index;             /* also the APIC id */
    int fd;
    struct kvm_run *run;
    pthread_t thread;
    bool started;
    pid_t tid;                  /* for query-cpus-fast */
    GBytes *reset_state;        /* vcpu_state_capture() right after creation */
    struct kvm_sregs reset_sregs; /* its sregs, the base of the boot state */
    bool paused;                /* acknowledged a pause; under vm->lock */
    bool exit_unfinished;       /* KVM_RUN returned an exit; the vCPU thread's own */
} Vcpu;

Vcpu *vcpu_new(struct Vm *vm, unsigned index, GError **error);
void vcpu_free(Vcpu *vcpu);

/* Start the thread; it first waits for the VM to leave the paused state. */
bool vcpu_start(Vcpu *vcpu, GError **error);

/* Make KVM_RUN return to user space soon (signal plus immediate_exit). */
void vcpu_kick(Vcpu *vcpu);

/* Put the vCPU back to its creation state; the boot vCPU then gets the
 * kernel's entry state. Only while the vCPU is paused. */
bool vcpu_reset(Vcpu *vcpu, GError **error);

/* Boot vCPU entry state from the loader. Only while paused. */
bool vcpu_set_boot_state(Vcpu *vcpu, const BootEntry *entry, GError **error);

/* Install the kick signal handler; once per process, before vcpu_start. */
void vcpu_init_signals(void);

#endif
