/* A vCPU's complete architectural state as a device-state section
 * ("cpu", instance = vCPU index): registers, segment and control registers,
 * XSAVE area (FPU/SSE/AVX), XCRs, the MSRs KVM lists as saveable, the
 * LAPIC, pending events, MP state and debug registers. Raw KVM structures:
 * the stream goes between x86-64 hosts running the same colo-vmm. */
#ifndef COLO_VMM_VCPU_STATE_H
#define COLO_VMM_VCPU_STATE_H

#include "migration/vmstate.h"
#include "vcpu.h"

extern const VmStateOps vcpu_state_ops;     /* opaque: Vcpu * */

#endif
