/* AP start code, copied to TRAMPOLINE_GPA by the boot CPU. A SIPI starts
 * the AP in real mode at TRAMPOLINE_GPA; it switches to protected mode,
 * then long mode on the shared page tables, takes its stack from
 * tramp_stack and jumps to ap_entry64. Position-specific: every address
 * is computed relative to TRAMPOLINE_GPA. */
#include "layout.h"
#include "longmode.inc"

#define ABS(x) ((x) - tramp_start + TRAMPOLINE_GPA)

    .section .rodata.trampoline, "a"
    .globl tramp_start, tramp_end, tramp_stack
    .code16
tramp_start:
    cli
    cld
    xor %ax, %ax
    mov %ax, %ds
    lgdtl ABS(tramp_gdt_desc)
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $SEL_CODE32, $ABS(tramp32)

    .code32
tramp32:
    mov $SEL_DATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    enable_long_mode
    ljmp $SEL_CODE64, $ABS(tramp64)

    .code64
tramp64:
    mov ABS(tramp_stack), %rsp
    movabs $ap_entry64, %rax
    jmp *%rax

    .balign 8
tramp_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff
    .quad 0x00cf92000000ffff
    .quad 0x00af9a000000ffff
tramp_gdt_end:
tramp_gdt_desc:
    .word tramp_gdt_end - tramp_gdt - 1
    .long ABS(tramp_gdt)
    .balign 8
tramp_stack:
    .quad 0
tramp_end:
