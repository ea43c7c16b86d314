/* Device-state sections for what KVM keeps in the kernel: the interrupt
 * controllers with the PIT ("irqchip") and the guest clock ("kvmclock"). */
#ifndef COLO_VMM_KVM_STATE_H
#define COLO_VMM_KVM_STATE_H

#include "kvm.h"
#include "migration/vmstate.h"

extern const VmStateOps kvm_irqchip_state_ops;     /* opaque: Kvm * */
extern const VmStateOps kvm_clock_state_ops;       /* opaque: Kvm * */

#endif
