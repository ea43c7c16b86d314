/* The KVM virtual machine: /dev/kvm, the VM file descriptor, the in-kernel
 * irqchip (PIC, IOAPIC, LAPIC) and PIT, memory slots and CPUID. */
#ifndef COLO_VMM_KVM_H
#define COLO_VMM_KVM_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <linux/kvm.h>

#include "memory.h"

typedef struct Kvm {
    int sys_fd;                     /* /dev/kvm */
    int vm_fd;
    int run_size;                   /* mmap size of struct kvm_run */
    struct kvm_cpuid2 *cpuid;       /* what KVM supports, as the template for every vCPU */
    bool manual_dirty_protect;      /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 enabled */
    bool has_xcrs;                  /* KVM_CAP_XCRS: the host has XSAVE (no XCR0 to move otherwise) */
    bool dirty_logging;
} Kvm;

/* Open /dev/kvm (or @dev), create the VM with in-kernel irqchip and PIT.
 * Fails with a clear message when KVM or a needed capability is missing. */
Kvm *kvm_new(const char *dev, GError **error);
void kvm_free(Kvm *kvm);

/* Map every region of @mem into the guest. */
bool kvm_map_memory(Kvm *kvm, GuestMemory *mem, GError **error);
/* Map one region (@opaque: the Kvm), with dirty logging if it is on: the
 * GuestMemoryMapFunc of guest_memory_plug, which holds the layout lock. */
bool kvm_map_region(void *opaque, const MemRegion *region, GError **error);

/* Dirty logging of vCPU writes for migration and checkpoints, with manual
 * re-protection (KVM_CLEAR_DIRTY_LOG) where the kernel has it. Start marks
 * every page dirty (the first sync returns them all). */
bool kvm_dirty_log_start(Kvm *kvm, GuestMemory *mem, GError **error);
void kvm_dirty_log_stop(Kvm *kvm, GuestMemory *mem);
/* Fetch and clear the slot's dirty bits, ORed into @bitmap (bit 0 = first
 * page of the region). Returns false on an ioctl failure. */
bool kvm_dirty_log_sync(Kvm *kvm, const MemRegion *region, unsigned long *bitmap, GError **error);

/* Drive an interrupt line of the in-kernel PIC/IOAPIC (GSI). Thread-safe. */
void kvm_set_irq(Kvm *kvm, unsigned gsi, bool level);

#define CPUID_1_ECX_HYPERVISOR (1u << 31)

/* A vCPU's CPUID: KVM's supported set with this vCPU's APIC id filled in
 * and the hypervisor bit set. */
struct kvm_cpuid2 *kvm_cpuid_for_vcpu(const Kvm *kvm, unsigned apic_id, unsigned ncpus);

/* Whole in-kernel interrupt controller and PIT state, for reset (and,
 * later, migration). */
typedef struct KvmIrqchipState {
    struct kvm_irqchip pic_master;
    struct kvm_irqchip pic_slave;
    struct kvm_irqchip ioapic;
    struct kvm_pit_state2 pit;
} KvmIrqchipState;

bool kvm_irqchip_save(Kvm *kvm, KvmIrqchipState *state, GError **error);
bool kvm_irqchip_restore(Kvm *kvm, const KvmIrqchipState *state, GError **error);

#endif
