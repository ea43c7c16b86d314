/* The vCPU's CPUID (kvm_cpuid_for_vcpu): what colo-vmm changes in KVM's
 * supported set, on a template built here (no KVM needed), then on the
 * real one from /dev/kvm when there is one. */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <glib.h>

#include "kvm.h"
#include "kvm-open.h"

/* The entry of leaf @function (subleaf 0); the test ends without it. */
static const struct kvm_cpuid_entry2 *leaf(const struct kvm_cpuid2 *c, uint32_t function)
{
    for (unsigned i = 0; i < c->nent; i++) {
        if (c->entries[i].function == function) {
            return &c->entries[i];
        }
    }
    g_error("no CPUID leaf 0x%x", function);
}

static void test_cpuid_template(void)
{
    Kvm kvm = { .sys_fd = -1, .vm_fd = -1 };

    kvm.cpuid = g_malloc0(sizeof(*kvm.cpuid) + 3 * sizeof(struct kvm_cpuid_entry2));
    kvm.cpuid->nent = 3;
    kvm.cpuid->entries[0] = (struct kvm_cpuid_entry2){ .function = 1, .ebx = 0xffff0800, .ecx = 0x1 };
    kvm.cpuid->entries[1] = (struct kvm_cpuid_entry2){ .function = 0xb, .edx = 0 };
    kvm.cpuid->entries[2] = (struct kvm_cpuid_entry2){ .function = 0x40000000, .eax = 0x40000001 };

    for (unsigned ncpus = 1; ncpus <= 4; ncpus += 3) {
        g_autofree struct kvm_cpuid2 *c = kvm_cpuid_for_vcpu(&kvm, ncpus - 1, ncpus);
        const struct kvm_cpuid_entry2 *l1 = leaf(c, 1);
        /* The hypervisor bit, and what KVM gave is kept. */
        g_assert_cmphex(l1->ecx, ==, CPUID_1_ECX_HYPERVISOR | 0x1);
        g_assert_cmphex(l1->ebx >> 24, ==, ncpus - 1);          /* initial APIC id */
        g_assert_cmphex((l1->ebx >> 16) & 0xff, ==, ncpus);      /* logical processors */
        g_assert_cmphex(l1->ebx & 0xffff, ==, 0x0800);
        g_assert_cmpuint((l1->edx >> 28) & 1, ==, ncpus > 1);   /* HTT */
        g_assert_cmphex(leaf(c, 0xb)->edx, ==, ncpus - 1);
        g_assert_cmphex(leaf(c, 0x40000000)->eax, ==, 0x40000001);
    }
    /* The template itself is not changed. */
    g_assert_cmphex(kvm.cpuid->entries[0].ecx, ==, 0x1);
    g_free(kvm.cpuid);
}

/* On the real KVM: leaf 1 says "hypervisor" and the KVM signature leaf is
 * there, which is what makes Linux look for kvm-clock. */
static void test_cpuid_kvm(void)
{
    g_autoptr(GError) error = NULL;
    int fd = test_open_kvm();
    if (fd < 0) {
        return;
    }
    close(fd);
    Kvm *kvm = kvm_new(NULL, &error);
    g_assert_no_error(error);
    g_autofree struct kvm_cpuid2 *c = kvm_cpuid_for_vcpu(kvm, 0, 1);
    g_assert_cmphex(leaf(c, 1)->ecx & CPUID_1_ECX_HYPERVISOR, ==, CPUID_1_ECX_HYPERVISOR);
    const struct kvm_cpuid_entry2 *sig = leaf(c, 0x40000000);
    char name[13] = { 0 };
    memcpy(name, &sig->ebx, 4);
    memcpy(name + 4, &sig->ecx, 4);
    memcpy(name + 8, &sig->edx, 4);
    g_assert_cmpstr(name, ==, "KVMKVMKVM");
    kvm_free(kvm);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cpuid/template", test_cpuid_template);
    g_test_add_func("/cpuid/kvm", test_cpuid_kvm);
    return g_test_run();
}
