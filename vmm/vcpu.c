#include "config.h"

#include <gio/gio.h>

#include "vcpu.h"
#include "vcpu-state.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <qb/qblog.h>

#include "kvm.h"
#include "vm.h"

#define VCPU_KICK_SIGNAL SIGUSR1

/* The kvm_run of the vCPU on this thread, for the kick signal handler. */
static __thread struct kvm_run *vcpu_current_run;

static void vcpu_kick_handler(int sig)
{
    /* Either KVM_RUN returns EINTR now, or the next entry returns at once. */
    if (vcpu_current_run) {
        vcpu_current_run->immediate_exit = 1;
    }
}

void vcpu_init_signals(void)
{
    struct sigaction sa = { .sa_handler = vcpu_kick_handler };

    sigemptyset(&sa.sa_mask);
    sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
}

static bool vcpu_fail(GError **error, Vcpu *vcpu, const char *what)
{
    int err = errno;

    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "vCPU %u: %s: %s",
                vcpu->index, what, g_strerror(err));
    return false;
}

/* Everything a system reset puts back, as it is right after creation (and
 * SET_CPUID2, which decides which MSRs exist). */
static bool vcpu_save_reset_state(Vcpu *vcpu, GError **error)
{
    if (ioctl(vcpu->fd, KVM_GET_SREGS, &vcpu->reset_sregs) < 0) {
        return vcpu_fail(error, vcpu, "reading the reset state");
    }
    vcpu->reset_state = vcpu_state_capture(vcpu, error);
    return vcpu->reset_state != NULL;
}

Vcpu *vcpu_new(Vm *vm, unsigned index, GError **error)
{
    Vcpu *vcpu = g_new0(Vcpu, 1);
    g_autofree struct kvm_cpuid2 *cpuid = NULL;

    vcpu->vm = vm;
    vcpu->index = index;
    vcpu->fd = ioctl(vm->kvm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
    if (vcpu->fd < 0) {
        vcpu_fail(error, vcpu, "KVM_CREATE_VCPU");
        goto fail;
    }
    vcpu->run = mmap(NULL, vm->kvm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
    if (vcpu->run == MAP_FAILED) {
        vcpu->run = NULL;
        vcpu_fail(error, vcpu, "mapping kvm_run");
        goto fail;
    }
    cpuid = kvm_cpuid_for_vcpu(vm->kvm, index, vm->ncpus);
    if (ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid) < 0) {
        vcpu_fail(error, vcpu, "KVM_SET_CPUID2");
        goto fail;
    }
    if (!vcpu_save_reset_state(vcpu, error)) {
        goto fail;
    }
    return vcpu;

fail:
    vcpu_free(vcpu);
    return NULL;
}

void vcpu_free(Vcpu *vcpu)
{
    if (!vcpu) {
        return;
    }
    if (vcpu->started) {
        pthread_join(vcpu->thread, NULL);
    }
    if (vcpu->run) {
        munmap(vcpu->run, vcpu->vm->kvm->run_size);
    }
    if (vcpu->fd >= 0) {
        close(vcpu->fd);
    }
    g_clear_pointer(&vcpu->reset_state, g_bytes_unref);
    g_free(vcpu);
}

void vcpu_kick(Vcpu *vcpu)
{
    if (vcpu->started) {
        pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
    }
}

/* KVM paravirtual MSRs that point the host at guest memory: a reset must
 * turn them off, or the host keeps writing into the rebooted guest. The
 * creation-time state has them off already when KVM lists them as
 * saveable; this holds when it does not. */
static const uint32_t vcpu_pv_msrs[] = {
    0x4b564d00, /* MSR_KVM_WALL_CLOCK_NEW */
    0x4b564d01, /* MSR_KVM_SYSTEM_TIME_NEW */
    0x4b564d02, /* MSR_KVM_ASYNC_PF_EN */
    0x4b564d03, /* MSR_KVM_STEAL_TIME */
    0x4b564d04, /* MSR_KVM_PV_EOI_EN */
    0x11,       /* MSR_KVM_WALL_CLOCK */
    0x12,       /* MSR_KVM_SYSTEM_TIME */
};

static bool vcpu_reset_pv_msrs(Vcpu *vcpu, GError **error)
{
    g_autofree struct kvm_msrs *msrs = g_malloc0(sizeof(*msrs) + sizeof(struct kvm_msr_entry));

    /* One at a time: KVM_SET_MSRS stops at the first MSR a host lacks. */
    for (unsigned i = 0; i < G_N_ELEMENTS(vcpu_pv_msrs); i++) {
        msrs->nmsrs = 1;
        msrs->entries[0] = (struct kvm_msr_entry){ .index = vcpu_pv_msrs[i] };
        if (ioctl(vcpu->fd, KVM_SET_MSRS, msrs) < 0) {
            return vcpu_fail(error, vcpu, "KVM_SET_MSRS");
        }
    }
    return true;
}

bool vcpu_reset(Vcpu *vcpu, GError **error)
{
    return vcpu_state_restore(vcpu, vcpu->reset_state, error) && vcpu_reset_pv_msrs(vcpu, error);
}

bool vcpu_set_boot_state(Vcpu *vcpu, const BootEntry *entry, GError **error)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs = vcpu->reset_sregs;

    /* The loader writes the mode-defining fields; APIC base and pending
     * interrupts stay as KVM set them. */
    boot_cpu_state(entry, &regs, &sregs);
    if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0) {
        return vcpu_fail(error, vcpu, "setting the boot state");
    }
    return true;
}

static void vcpu_dump_state(Vcpu *vcpu)
{
    struct kvm_regs r;
    struct kvm_sregs s;

    if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0) {
        return;
    }
    qb_log(LOG_ERR, "vCPU %u: RIP=%016llx RSP=%016llx RFLAGS=%08llx RAX=%016llx RBX=%016llx",
           vcpu->index, r.rip, r.rsp, r.rflags, r.rax, r.rbx);
    qb_log(LOG_ERR, "vCPU %u: CS=%04x CR0=%08llx CR3=%016llx CR4=%08llx EFER=%08llx",
           vcpu->index, s.cs.selector, s.cr0, s.cr3, s.cr4, s.efer);
}

static void vcpu_handle_io(Vcpu *vcpu)
{
    struct kvm_run *run = vcpu->run;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

    /* String I/O (rep ins/outs) arrives as count items of size bytes. */
    for (uint32_t i = 0; i < run->io.count; i++) {
        iobus_dispatch(vcpu->vm->iobus, IOBUS_PIO, run->io.port, data, run->io.size, is_write);
        data += run->io.size;
    }
}

static void vcpu_handle_mmio(Vcpu *vcpu)
{
    struct kvm_run *run = vcpu->run;
    unsigned len = MIN(run->mmio.len, sizeof(run->mmio.data));

    if (!iobus_dispatch(vcpu->vm->iobus, IOBUS_MMIO, run->mmio.phys_addr, run->mmio.data,
                        len, run->mmio.is_write)) {
        qb_log(LOG_DEBUG, "vCPU %u: unassigned MMIO %s at 0x%" PRIx64, vcpu->index,
               run->mmio.is_write ? "write" : "read", (uint64_t)run->mmio.phys_addr);
    }
}

/* Returns false when the vCPU cannot go on. */
static bool vcpu_handle_exit(Vcpu *vcpu)
{
    struct kvm_run *run = vcpu->run;

    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        vcpu_handle_io(vcpu);
        return true;
    case KVM_EXIT_MMIO:
        vcpu_handle_mmio(vcpu);
        return true;
    case KVM_EXIT_INTR:
        return true;
    case KVM_EXIT_SHUTDOWN:
        /* A triple fault resets a PC. */
        qb_log(LOG_WARNING, "vCPU %u: triple fault, resetting the guest", vcpu->index);
        vcpu_dump_state(vcpu);
        vm_request_reset(vcpu->vm, SHUTDOWN_CAUSE_GUEST_RESET);
        return true;
    case KVM_EXIT_SYSTEM_EVENT:
        if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN) {
            vm_request_shutdown(vcpu->vm, SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
        } else {
            vm_request_reset(vcpu->vm, SHUTDOWN_CAUSE_GUEST_RESET);
        }
        return true;
    case KVM_EXIT_INTERNAL_ERROR:
        qb_log(LOG_ERR, "vCPU %u: KVM internal error, suberror %u%s", vcpu->index,
               run->internal.suberror,
               run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ? " (instruction emulation failed)" : "");
        vcpu_dump_state(vcpu);
        return false;
    case KVM_EXIT_FAIL_ENTRY:
        qb_log(LOG_ERR, "vCPU %u: KVM entry failed, hardware reason 0x%llx", vcpu->index,
               (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        vcpu_dump_state(vcpu);
        return false;
    default:
        qb_log(LOG_ERR, "vCPU %u: unexpected KVM exit reason %u", vcpu->index, run->exit_reason);
        vcpu_dump_state(vcpu);
        return false;
    }
}

/* Park while the VM wants the vCPUs out of the guest. Returns false when
 * the thread is to end.
 *
 * KVM finishes an exit to user space (stores what an I/O or MMIO read
 * returned, moves RIP past the instruction) only when the vCPU enters
 * KVM_RUN again. Parked before that, the vCPU's saved state would show the
 * instruction not yet done although its device access was (a destination
 * would do it twice), and a reset's restored state would get the old
 * instruction's completion on top of it. So a vCPU that has had an exit
 * goes in once more with immediate_exit, which completes the instruction
 * and runs no guest code, before it parks (as QEMU does). */
static bool vcpu_wait_runnable(Vcpu *vcpu)
{
    Vm *vm = vcpu->vm;
    bool go_on;

    g_mutex_lock(&vm->lock);
    if (vcpu->exit_unfinished && vm->pause_count > 0 && !vm->exiting) {
        g_mutex_unlock(&vm->lock);
        vcpu->run->immediate_exit = 1;
        return true;
    }
    while (vm->pause_count > 0 && !vm->exiting) {
        if (!vcpu->paused) {
            vcpu->paused = true;
            vm->vcpus_paused++;
            g_cond_broadcast(&vm->cond);
        }
        g_cond_wait(&vm->cond, &vm->lock);
    }
    if (vcpu->paused) {
        vcpu->paused = false;
        vm->vcpus_paused--;
    }
    go_on = !vm->exiting;
    g_mutex_unlock(&vm->lock);
    return go_on;
}

static void *vcpu_thread(void *opaque)
{
    Vcpu *vcpu = opaque;
    sigset_t set;

    vcpu->tid = (pid_t)syscall(SYS_gettid);
    vcpu_current_run = vcpu->run;
    sigemptyset(&set);
    sigaddset(&set, VCPU_KICK_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);

    while (vcpu_wait_runnable(vcpu)) {
        if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
            vcpu->exit_unfinished = false;
            if (errno == EINTR || errno == EAGAIN) {
                vcpu->run->immediate_exit = 0;
                continue;
            }
            qb_log(LOG_ERR, "vCPU %u: KVM_RUN: %s", vcpu->index, strerror(errno));
            vm_request_internal_error(vcpu->vm, vcpu->index);
            continue;
        }
        vcpu->exit_unfinished = true;
        if (!vcpu_handle_exit(vcpu)) {
            vm_request_internal_error(vcpu->vm, vcpu->index);
        }
    }
    vcpu_current_run = NULL;
    return NULL;
}

bool vcpu_start(Vcpu *vcpu, GError **error)
{
    char name[16];
    int err = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);

    if (err) {
        errno = err;
        return vcpu_fail(error, vcpu, "starting its thread");
    }
    vcpu->started = true;
    snprintf(name, sizeof(name), "vcpu%u", vcpu->index);
    pthread_setname_np(vcpu->thread, name);
    return true;
}
