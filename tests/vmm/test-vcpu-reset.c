/* A system reset puts every vCPU back as it was at power-on, MSRs too:
 * a Linux guest left its PAT, syscall and paravirtual MSRs and a running
 * TSC behind, and QEMU (like a real CPU) resets them. And a paused vCPU
 * has no I/O half done, or a reset (or a saved state) would lose it or
 * have KVM finish it on top of the new state. Runs on /dev/kvm (skips
 * without it). */
#include "config.h"

#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "boot-images.h"
#include "chardev.h"
#include "common/log.h"
#include "iobus.h"
#include "kvm-open.h"
#include "vcpu.h"
#include "vm.h"

#define MSR_IA32_TSC          0x10
#define MSR_IA32_SYSENTER_CS  0x174
#define MSR_IA32_CR_PAT       0x277
#define MSR_STAR              0xc0000081
#define MSR_LSTAR             0xc0000082
#define PAT_POWER_ON          0x0007040600070406ULL

static uint64_t msr_get(Vcpu *vcpu, uint32_t index)
{
    g_autofree struct kvm_msrs *m = g_malloc0(sizeof(*m) + sizeof(struct kvm_msr_entry));

    m->nmsrs = 1;
    m->entries[0].index = index;
    g_assert_cmpint(ioctl(vcpu->fd, KVM_GET_MSRS, m), ==, 1);
    return m->entries[0].data;
}

static void msr_set(Vcpu *vcpu, uint32_t index, uint64_t value)
{
    g_autofree struct kvm_msrs *m = g_malloc0(sizeof(*m) + sizeof(struct kvm_msr_entry));

    m->nmsrs = 1;
    m->entries[0] = (struct kvm_msr_entry){ .index = index, .data = value };
    g_assert_cmpint(ioctl(vcpu->fd, KVM_SET_MSRS, m), ==, 1);
}

/* A VM of ncpus vCPUs booting code (32-bit, flat, at the ELF's load
 * address); false (the test skips) without /dev/kvm. */
typedef struct TestVm {
    Vm *vm;
    Chardev *chr;
    char *kpath;
    uint64_t code_gpa;
} TestVm;

static bool test_vm_new(TestVm *t, const char *name, unsigned ncpus, const Code *code)
{
    int fd = test_open_kvm();
    if (fd < 0) {
        return false;
    }
    close(fd);

    TestElfOpts eo = test_elf_defaults();
    eo.text = code->b;
    eo.text_len = code->n;
    eo.entry = eo.paddr;
    g_autoptr(GBytes) kernel = test_elf_build(&eo);
    gsize klen;
    const void *kdata = g_bytes_get_data(kernel, &klen);
    g_autoptr(GError) error = NULL;
    t->kpath = test_tmpfile(kdata, klen);
    t->code_gpa = eo.paddr;
    t->chr = chardev_new("null", NULL, &error);
    g_assert_no_error(error);
    VmConfig cfg = {
        .name = name, .ncpus = ncpus, .memory = { .size = 32 << 20 },
        .boot = { .kernel = t->kpath, .cmdline = "", .ncpus = ncpus }, .serial = t->chr,
    };
    t->vm = vm_new(&cfg, g_main_context_default(), &error);
    g_assert_no_error(error);
    return true;
}

static void test_vm_free(TestVm *t)
{
    vm_free(t->vm);
    chardev_free(t->chr);
    g_unlink(t->kpath);
    g_free(t->kpath);
}

static void test_reset_msrs(void)
{
    Code code = { .n = 0 };
    EMIT(&code, 0xfa, 0xf4, 0xeb, 0xfc);        /* cli; hlt; jmp back */
    TestVm t;
    if (!test_vm_new(&t, "vcpu-reset", 2, &code)) {
        return;
    }
    Vm *vm = t.vm;
    g_autoptr(GError) error = NULL;

    for (unsigned i = 0; i < 2; i++) {
        Vcpu *v = vm->vcpus[i];
        /* What a guest's kernel leaves behind; the TSC far ahead, as after
         * a long uptime. */
        msr_set(v, MSR_IA32_CR_PAT, 0x0606060606060606ULL);
        msr_set(v, MSR_STAR, 0x0023001000000000ULL);
        msr_set(v, MSR_LSTAR, 0xffffffff81000000ULL);
        msr_set(v, MSR_IA32_SYSENTER_CS, 0x10);
        msr_set(v, MSR_IA32_TSC, 1ULL << 50);
    }
    for (unsigned i = 0; i < 2; i++) {
        g_assert_true(vcpu_reset(vm->vcpus[i], &error));
        g_assert_no_error(error);
    }
    uint64_t tsc[2];
    for (unsigned i = 0; i < 2; i++) {
        Vcpu *v = vm->vcpus[i];
        g_assert_cmphex(msr_get(v, MSR_IA32_CR_PAT), ==, PAT_POWER_ON);
        g_assert_cmphex(msr_get(v, MSR_STAR), ==, 0);
        g_assert_cmphex(msr_get(v, MSR_LSTAR), ==, 0);
        g_assert_cmphex(msr_get(v, MSR_IA32_SYSENTER_CS), ==, 0);
        tsc[i] = msr_get(v, MSR_IA32_TSC);
    }
    /* The TSCs go back to their power-on values (near zero on most hosts;
     * this machine's software KVM starts them at the host's), together:
     * KVM matches TSC writes made close in time. */
    g_test_message("TSCs after the reset: %" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT, tsc[0], tsc[1]);
    g_assert_cmpuint(tsc[0], <, 1ULL << 50);
    g_assert_cmpuint(tsc[1], <, 1ULL << 50);
    g_assert_cmpuint(tsc[1] - MIN(tsc[1], tsc[0]), <, 1ULL << 34);
    test_vm_free(&t);
}

#define COUNTER_GPA 0x80000000u   /* above RAM, below the PCI window */

static void count_reads(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
    (void)offset;
    if (!is_write) {
        memset(data, 0, len);
        g_atomic_int_inc((gint *)opaque);
    }
}

/* KVM finishes an MMIO read (stores the value, moves RIP on) only when
 * the vCPU enters KVM_RUN again. A vCPU that parked right after the exit
 * left it pending: its saved state had RIP on the read already served, a
 * restored state (a reset, a COLO checkpoint loaded on the secondary) got
 * the old instruction's register write and RIP on top. The
 * guest reads a counting register in a loop and counts in EBX: at every
 * pause the two agree. */
static void test_pause_completes_mmio(void)
{
    Code code = { .n = 0 };
    EMIT(&code, 0x31, 0xdb);                            /* xor ebx, ebx */
    EMIT(&code, 0xa1, 0x00, 0x00, 0x00, 0x80);          /* 2: mov eax, [COUNTER_GPA] */
    EMIT(&code, 0x43);                                  /* 7: inc ebx */
    EMIT(&code, 0xeb, 0xf8);                            /* 8: jmp 2 */
    TestVm t;
    if (!test_vm_new(&t, "vcpu-pause-io", 1, &code)) {
        return;
    }
    Vm *vm = t.vm;
    g_autoptr(GError) error = NULL;
    gint reads = 0;
    g_assert_true(iobus_register(vm->iobus, IOBUS_MMIO, COUNTER_GPA, 4, count_reads, &reads, "counter", &error));
    g_assert_no_error(error);

    g_assert_true(vm_start(vm, false, &error));
    g_assert_no_error(error);
    unsigned at_read = 0, after_read = 0;
    for (unsigned i = 0; i < 100; i++) {
        g_usleep(2000);
        vm_pause_vcpus(vm);
        struct kvm_regs r;
        g_assert_cmpint(ioctl(vm->vcpus[0]->fd, KVM_GET_REGS, &r), ==, 0);
        uint64_t off = r.rip - t.code_gpa;
        uint64_t served = (uint64_t)g_atomic_int_get(&reads);
        /* Stopped after the read's completion, before the increment: one
         * read ahead of EBX; anywhere else they are equal. */
        if (off == 0) {
            g_assert_cmpuint(served, ==, 0);        /* not started yet (a loaded host) */
        } else if (off == 7) {
            after_read++;
            g_assert_cmpuint(served, ==, (uint32_t)r.rbx + 1);
        } else {
            at_read += off == 2;
            if (off != 2 && off != 8) {
                g_error("vCPU paused at code offset %" G_GUINT64_FORMAT, off);
            }
            g_assert_cmpuint(served, ==, (uint32_t)r.rbx);
        }
        vm_resume_vcpus(vm);
    }
    g_test_message("pauses after a read %u, before one %u, reads %d", after_read, at_read, g_atomic_int_get(&reads));
    g_assert_cmpuint(g_atomic_int_get(&reads), >, 0);
    test_vm_free(&t);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    vcpu_init_signals();
    colo_log_init("test-vcpu-reset", NULL, false, NULL, g_getenv("COLO_TEST_DEBUG") != NULL, NULL);
    g_test_add_func("/vcpu/reset/msrs", test_reset_msrs);
    g_test_add_func("/vcpu/pause/completes-mmio", test_pause_completes_mmio);
    int ret = g_test_run();
    colo_log_fini();
    return ret;
}
