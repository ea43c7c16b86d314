/* Boots the loader's output on real KVM: a tiny PVH ELF and a tiny bzImage
 * whose code checks the boot parameters it was handed (magic, loader
 * fields, command line), reloads segments from our GDT, uses the stack,
 * writes above 32 MiB (through the identity page tables in long mode) and
 * reports on COM1. Raw ioctls, independent of the VMM core. Skips when
 * /dev/kvm cannot be opened. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "boot-images.h"
#include "kvm-open.h"
#include "boot/boot.h"

#define RAM_MIB     64
#define COM1        0x3f8
#define PROBE_ADDR  0x3000000U   /* 48 MiB: beyond anything the loader wrote */

static size_t emit_jcc(Code *c, uint8_t op)           /* short jump, target patched later */
{
    uint8_t insn[2] = { op, 0 };
    code_emit(c, insn, 2);
    return c->n - 1;
}

static void patch_here(Code *c, size_t at)
{
    c->b[at] = (uint8_t)(c->n - (at + 1));
}

/* The tail both programs share: success message, failure message, halt. */
static void emit_finish(Code *c, const char *ok, size_t *fails, unsigned nfails)
{
    EMIT(c, 0x50, 0x58);                       /* push eax; pop eax: the stack works */
    code_emit_out_str(c, ok);
    size_t done = emit_jcc(c, 0xeb);
    for (unsigned i = 0; i < nfails; i++) {
        patch_here(c, fails[i]);
    }
    code_emit_out_str(c, "FAIL\n");
    patch_here(c, done);
    EMIT(c, 0xfa, 0xf4, 0xeb, 0xfc);           /* cli; hlt; jmp back */
}

static void pvh_code(Code *c, uint32_t base)
{
    size_t fails[2];

    EMIT(c, 0x66, 0xba, 0xf8, 0x03);           /* mov dx, 0x3f8 */
    EMIT(c, 0x81, 0x3b, 0x78, 0xc5, 0x6e, 0x33); /* cmp dword [ebx], hvm_start_info magic */
    fails[0] = emit_jcc(c, 0x75);
    EMIT(c, 0x8b, 0x43, 0x18);                 /* mov eax, [ebx + cmdline_paddr] */
    EMIT(c, 0x80, 0x38, 'c');                  /* cmp byte [eax], 'c' */
    fails[1] = emit_jcc(c, 0x75);
    EMIT(c, 0x66, 0xb8, 0x18, 0x00, 0x8e, 0xd8, 0x8e, 0xd0); /* mov ax, 0x18; mov ds, ax; mov ss, ax */
    EMIT(c, 0xea);                             /* ljmp 0x08:next (reloads CS from the GDT) */
    code_emit_u32(c, base + (uint32_t)c->n + 6);
    EMIT(c, 0x08, 0x00);
    EMIT(c, 0xc7, 0x05);                       /* mov dword [PROBE_ADDR], 0x50564821 */
    code_emit_u32(c, PROBE_ADDR);
    code_emit_u32(c, 0x50564821);
    emit_finish(c, "PVH-OK\n", fails, 2);
}

static void linux64_code(Code *c)
{
    size_t fails[3];

    EMIT(c, 0x66, 0xba, 0xf8, 0x03);           /* mov dx, 0x3f8 */
    EMIT(c, 0x80, 0xbe, 0x10, 0x02, 0x00, 0x00, 0xff); /* cmp byte [rsi + type_of_loader], 0xff */
    fails[0] = emit_jcc(c, 0x75);
    EMIT(c, 0x80, 0xbe, 0xe8, 0x01, 0x00, 0x00, 0x04); /* cmp byte [rsi + e820_entries], 4 */
    fails[1] = emit_jcc(c, 0x75);
    EMIT(c, 0x8b, 0x86, 0x28, 0x02, 0x00, 0x00); /* mov eax, [rsi + cmd_line_ptr] */
    EMIT(c, 0x80, 0x38, 'c');                  /* cmp byte [rax], 'c' */
    fails[2] = emit_jcc(c, 0x75);
    EMIT(c, 0x66, 0xb8, 0x18, 0x00, 0x8e, 0xd8); /* mov ax, 0x18; mov ds, ax */
    EMIT(c, 0xc7, 0x04, 0x25);                 /* mov dword [PROBE_ADDR], 0x4c363421 */
    code_emit_u32(c, PROBE_ADDR);
    code_emit_u32(c, 0x4c363421);
    emit_finish(c, "LINUX64-OK\n", fails, 3);
}

typedef struct Machine {
    int kvm, vm, vcpu;
    struct kvm_run *run;
    size_t run_size;
    GuestMemory *mem;
} Machine;

static bool machine_new(Machine *m)
{
    memset(m, 0, sizeof(*m));
    m->kvm = test_open_kvm();
    if (m->kvm < 0) {
        return false;
    }
    m->vm = ioctl(m->kvm, KVM_CREATE_VM, 0);
    g_assert_cmpint(m->vm, >=, 0);
    g_assert_cmpint(ioctl(m->vm, KVM_SET_TSS_ADDR, 0xfffbd000UL), ==, 0);

    m->mem = test_mem_new(RAM_MIB);
    struct kvm_userspace_memory_region slot = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = (uint64_t)RAM_MIB << 20,
        .userspace_addr = (uintptr_t)guest_memory_ptr(m->mem, 0, (uint64_t)RAM_MIB << 20),
    };
    g_assert_cmpint(ioctl(m->vm, KVM_SET_USER_MEMORY_REGION, &slot), ==, 0);

    m->vcpu = ioctl(m->vm, KVM_CREATE_VCPU, 0);
    g_assert_cmpint(m->vcpu, >=, 0);
    /* Long mode needs the guest CPUID to advertise it. */
    size_t nent = 256;
    g_autofree struct kvm_cpuid2 *cpuid =
        g_malloc0(sizeof(*cpuid) + nent * sizeof(struct kvm_cpuid_entry2));
    cpuid->nent = (uint32_t)nent;
    g_assert_cmpint(ioctl(m->kvm, KVM_GET_SUPPORTED_CPUID, cpuid), ==, 0);
    g_assert_cmpint(ioctl(m->vcpu, KVM_SET_CPUID2, cpuid), ==, 0);

    int size = ioctl(m->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    g_assert_cmpint(size, >, 0);
    m->run_size = (size_t)size;
    m->run = mmap(NULL, m->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, m->vcpu, 0);
    g_assert_true(m->run != MAP_FAILED);
    return true;
}

static void machine_free(Machine *m)
{
    munmap(m->run, m->run_size);
    close(m->vcpu);
    close(m->vm);
    close(m->kvm);
    guest_memory_free(m->mem);
}

/* Loads @kernel, applies boot_cpu_state() and runs until HLT; returns
 * what the guest wrote to COM1. */
static char *machine_boot(Machine *m, GBytes *kernel)
{
    gsize len;
    const uint8_t *k = g_bytes_get_data(kernel, &len);
    BootImages img = { .kernel = k, .kernel_size = len, .cmdline = "console=ttyS0", .ncpus = 1 };
    BootEntry entry;
    GError *error = NULL;
    struct kvm_regs regs;
    struct kvm_sregs sregs;

    g_assert_true(boot_load_images(m->mem, &img, &entry, &error));
    g_assert_no_error(error);
    g_assert_cmpint(ioctl(m->vcpu, KVM_GET_SREGS, &sregs), ==, 0);
    boot_cpu_state(&entry, &regs, &sregs);
    g_assert_cmpint(ioctl(m->vcpu, KVM_SET_SREGS, &sregs), ==, 0);
    g_assert_cmpint(ioctl(m->vcpu, KVM_SET_REGS, &regs), ==, 0);

    GString *out = g_string_new(NULL);
    alarm(60);      /* a guest that never halts kills the test instead of hanging CI */
    for (unsigned exits = 0; exits < 1000; exits++) {
        if (ioctl(m->vcpu, KVM_RUN, 0) < 0) {
            g_assert_cmpint(errno, ==, EINTR);
            continue;
        }
        if (m->run->exit_reason == KVM_EXIT_HLT) {
            break;
        }
        if (m->run->exit_reason == KVM_EXIT_IO && m->run->io.port == COM1 &&
            m->run->io.direction == KVM_EXIT_IO_OUT) {
            g_string_append_len(out, (char *)m->run + m->run->io.data_offset,
                                (gssize)m->run->io.size * m->run->io.count);
            continue;
        }
        ioctl(m->vcpu, KVM_GET_REGS, &regs);
        g_error("unexpected exit %u at rip 0x%llx after output \"%s\"", m->run->exit_reason,
                regs.rip, out->str);
    }
    alarm(0);
    return g_string_free(out, FALSE);
}

static uint32_t probe(Machine *m)
{
    uint32_t v;
    g_assert_true(guest_memory_read(m->mem, PROBE_ADDR, &v, 4));
    return GUINT32_FROM_LE(v);
}

static void test_kvm_pvh(void)
{
    Machine m;
    if (!machine_new(&m)) {
        return;
    }
    Code c = { .n = 0 };
    TestElfOpts o = test_elf_defaults();
    pvh_code(&c, (uint32_t)o.paddr);
    o.text = c.b;
    o.text_len = c.n;
    o.entry = o.paddr;
    g_autoptr(GBytes) k = test_elf_build(&o);
    g_autofree char *out = machine_boot(&m, k);
    g_assert_cmpstr(out, ==, "PVH-OK\n");
    g_assert_cmphex(probe(&m), ==, 0x50564821);
    machine_free(&m);
}

static void test_kvm_linux64(void)
{
    Machine m;
    if (!machine_new(&m)) {
        return;
    }
    Code c = { .n = 0 };
    TestBzOpts o = test_bz_defaults();
    linux64_code(&c);
    o.code64 = c.b;
    o.code64_len = c.n;
    g_autoptr(GBytes) k = test_bz_build(&o);
    g_autofree char *out = machine_boot(&m, k);
    g_assert_cmpstr(out, ==, "LINUX64-OK\n");
    g_assert_cmphex(probe(&m), ==, 0x4c363421);
    machine_free(&m);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/boot/kvm/pvh", test_kvm_pvh);
    g_test_add_func("/boot/kvm/linux64", test_kvm_linux64);
    return g_test_run();
}
