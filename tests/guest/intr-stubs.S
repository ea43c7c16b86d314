/* One 16-byte stub per vector. Each pushes a dummy error code where the
 * CPU pushes none, then the vector, and goes to intr_common, which never
 * returns (IRET is not emulated here): it restarts the CPU on a fresh
 * stack in intr_entry(vector, error, rip, rsp). */
#include "layout.h"

    .section .text
    .balign INTR_STUB_SIZE
    .globl intr_stubs
intr_stubs:
    .set vec, 0
    .rept 256
    .balign INTR_STUB_SIZE
    .if (vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    pushq $0
    .endif
    pushq $vec
    jmp intr_common
    .set vec, vec + 1
    .endr

intr_common:
    mov (%rsp), %rdi                /* vector */
    mov 8(%rsp), %rsi               /* error code */
    mov 16(%rsp), %rdx              /* interrupted RIP */
    mov 40(%rsp), %rcx              /* interrupted RSP */
    /* The frame lies inside this CPU's area: its top is the fresh stack. */
    mov %rsp, %rax
    or $(STACK_SIZE - 1), %rax
    lea 1(%rax), %rsp
    call intr_entry
    ud2
