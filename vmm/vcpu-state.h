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

/* The vCPU's whole state now, in the section's format. Taken right after
 * creation it is what a system reset puts back: every MSR too (TSC, PAT,
 * MTRRs, the paravirtual ones), as a real CPU's reset and QEMU's do. */
GBytes *vcpu_state_capture(Vcpu *vcpu, GError **error);
bool vcpu_state_restore(Vcpu *vcpu, GBytes *state, GError **error);

#endif
