/* A system reset puts every vCPU back as it was at power-on, MSRs too:
 * a Linux guest left its PAT, syscall and paravirtual MSRs and a running
 * TSC behind, and QEMU (like a real CPU) resets them. Runs on /dev/kvm
 * (skips without it); the VM is built but never run. */
#include "config.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "boot-images.h"
#include "chardev.h"
#include "common/log.h"
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

static void test_reset_msrs(void)
{
    int fd = test_open_kvm();
    if (fd < 0) {
        return;
    }
    close(fd);

    Code code = { .n = 0 };
    EMIT(&code, 0xfa, 0xf4, 0xeb, 0xfc);        /* cli; hlt; jmp back */
    TestElfOpts eo = test_elf_defaults();
    eo.text = code.b;
    eo.text_len = code.n;
    eo.entry = eo.paddr;
    g_autoptr(GBytes) kernel = test_elf_build(&eo);
    gsize klen;
    const void *kdata = g_bytes_get_data(kernel, &klen);
    g_autofree char *kpath = test_tmpfile(kdata, klen);
    g_autoptr(GError) error = NULL;
    Chardev *chr = chardev_new("null", NULL, &error);
    g_assert_no_error(error);
    VmConfig cfg = {
        .name = "vcpu-reset", .ncpus = 2, .memory = { .size = 32 << 20 },
        .boot = { .kernel = kpath, .cmdline = "", .ncpus = 2 }, .serial = chr,
    };
    Vm *vm = vm_new(&cfg, g_main_context_default(), &error);
    g_assert_no_error(error);

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
    vm_free(vm);
    chardev_free(chr);
    g_unlink(kpath);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    vcpu_init_signals();
    colo_log_init("test-vcpu-reset", NULL, false, NULL, g_getenv("COLO_TEST_DEBUG") != NULL, NULL);
    g_test_add_func("/vcpu/reset/msrs", test_reset_msrs);
    int ret = g_test_run();
    colo_log_fini();
    return ret;
}
