/* Fixed addresses, sizes and vectors shared by the assembly and C parts of
 * the guest. */
#ifndef TESTGUEST_LAYOUT_H
#define TESTGUEST_LAYOUT_H

#define MAX_CPUS        32            /* = STATUS_MAX_CPUS = MP_MAX_CPUS */
#define STACK_SIZE      16384         /* per-CPU area: struct percpu, then the stack; aligned to its size */
#define TRAMPOLINE_GPA  0x8000        /* AP real-mode start (SIPI vector 0x08) */

#define SEL_CODE32      0x08
#define SEL_DATA        0x10
#define SEL_CODE64      0x18

#define VEC_PIC_BASE    0x20          /* 8259s, remapped and masked: 0x20-0x2f */
#define VEC_TIMER       0x40          /* LAPIC timer, every CPU */
#define VEC_SCI         0x41          /* ACPI SCI through IOAPIC pin 9, boot CPU */
#define VEC_NET         0x50          /* virtio-net receive queue, MSI-X to the boot CPU */
#define VEC_BLK         0x51          /* virtio-blk request queue, MSI-X to the boot CPU */
#define VEC_SPURIOUS    0xff

#define INTR_STUB_SIZE  16            /* bytes per vector stub in intr-stubs.S */

#endif
