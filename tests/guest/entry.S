/* PVH entry: the VMM starts us in 32-bit flat protected mode, paging off,
 * interrupts off, %ebx = hvm_start_info. We load our own GDT, identity-map
 * the first 4 GiB with 2 MiB pages, enter long mode and call guest_main()
 * on CPU 0's stack. */
#include "layout.h"
#include "longmode.inc"

/* XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit entry point. The descriptor is 8
 * bytes (as in Linux), which both 4- and 8-byte readers accept. */
    .section .note.Xen, "a"
    .balign 4
    .long 4
    .long 8
    .long 18
    .asciz "Xen"
    .balign 4
    .quad pvh_entry32

    .section .text.entry, "ax"
    .code32
    .globl pvh_entry32
pvh_entry32:
    cli
    cld
    lgdt gdt_desc
    ljmp $SEL_CODE32, $1f
1:  mov $SEL_DATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %eax, %fs
    mov %eax, %gs
    mov $(cpu_areas + STACK_SIZE), %esp
    mov %ebx, %esi
    enable_long_mode
    ljmp $SEL_CODE64, $entry64

    .code64
entry64:
    mov $SEL_DATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %eax, %fs
    mov %eax, %gs
    /* Clear bss ourselves: after a reset the VMM may reload the image
     * without clearing RAM, and stale per-CPU state would survive. */
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    shr $3, %ecx
    xor %eax, %eax
    rep stosq
    mov $(cpu_areas + STACK_SIZE), %rsp
    mov %esi, %edi                  /* zero-extends: hvm_start_info GPA */
    call guest_main
    ud2

/* APs arrive here from the trampoline, in long mode on their own stack
 * but still on the trampoline's GDT. */
    .globl ap_entry64
ap_entry64:
    lgdt gdt_desc
    mov $SEL_DATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    call ap_main
    ud2

    .section .rodata
    .balign 8
    .globl gdt, gdt_desc
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff        /* 0x08 code32 */
    .quad 0x00cf92000000ffff        /* 0x10 data */
    .quad 0x00af9a000000ffff        /* 0x18 code64 */
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .quad gdt

/* Identity map of 0-4 GiB in 2 MiB pages; the top GiB (LAPIC, IOAPIC,
 * PCI holes) uncached. dimm.c maps hot-added RAM above on demand,
 * through pdpt. */
    .section .data.pagetables, "aw"
    .balign 4096
    .globl pml4, pdpt
pml4:
    .quad pdpt + 0x3
    .fill 511, 8, 0
pdpt:
    .quad pd + 0x0003, pd + 0x1003, pd + 0x2003, pd + 0x3003
    .fill 508, 8, 0
pd:
    .set addr, 0
    .rept 1536
    .quad addr + 0x83               /* P, RW, PS */
    .set addr, addr + 0x200000
    .endr
    .rept 512
    .quad addr + 0x9b               /* P, RW, PWT, PCD, PS */
    .set addr, addr + 0x200000
    .endr
