#include "config.h"

#include <gio/gio.h>

#include "kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <qb/qblog.h>

/* Intel needs three pages for the real-mode TSS and one for the EPT
 * identity map, inside the 4 GiB hole, away from RAM and the IOAPIC. */
#define KVM_TSS_ADDR          0xfffbd000ULL
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ULL
#define KVM_CPUID_MAX_ENTRIES 256

static bool kvm_fail(GError **error, const char *what)
{
    int err = errno;

    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "KVM: %s: %s", what, g_strerror(err));
    return false;
}

static bool kvm_require(Kvm *kvm, int cap, const char *name, GError **error)
{
    if (ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, cap) <= 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "KVM: this kernel lacks %s, which colo-vmm needs", name);
        return false;
    }
    return true;
}

Kvm *kvm_new(const char *dev, GError **error)
{
    Kvm *kvm = g_new0(Kvm, 1);

    kvm->vm_fd = -1;
    kvm->sys_fd = open(dev ? dev : "/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm->sys_fd < 0) {
        int err = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "cannot open %s: %s%s",
                    dev ? dev : "/dev/kvm", g_strerror(err),
                    err == ENOENT ? " (is the kvm module loaded?)" :
                    err == EACCES ? " (are you in the kvm group?)" : "");
        goto fail;
    }
    int version = ioctl(kvm->sys_fd, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "KVM API version %d, colo-vmm needs %d", version, KVM_API_VERSION);
        goto fail;
    }
    if (!kvm_require(kvm, KVM_CAP_IRQCHIP, "an in-kernel irqchip", error) ||
        !kvm_require(kvm, KVM_CAP_PIT2, "an in-kernel PIT", error) ||
        !kvm_require(kvm, KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", error) ||
        !kvm_require(kvm, KVM_CAP_USER_MEMORY, "user memory slots", error)) {
        goto fail;
    }
    kvm->run_size = ioctl(kvm->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (kvm->run_size < (int)sizeof(struct kvm_run)) {
        kvm_fail(error, "KVM_GET_VCPU_MMAP_SIZE");
        goto fail;
    }

    kvm->has_xcrs = ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;

    kvm->cpuid = g_malloc0(sizeof(*kvm->cpuid) + KVM_CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2));
    kvm->cpuid->nent = KVM_CPUID_MAX_ENTRIES;
    if (ioctl(kvm->sys_fd, KVM_GET_SUPPORTED_CPUID, kvm->cpuid) < 0) {
        kvm_fail(error, "KVM_GET_SUPPORTED_CPUID");
        goto fail;
    }

    do {
        kvm->vm_fd = ioctl(kvm->sys_fd, KVM_CREATE_VM, 0);
    } while (kvm->vm_fd < 0 && errno == EINTR);
    if (kvm->vm_fd < 0) {
        kvm_fail(error, "KVM_CREATE_VM");
        goto fail;
    }
    /* Clear dirty bits per range, and start with every page dirty, so a
     * sync costs what it collects rather than a walk of all memory. */
    int manual = ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
    if (manual > 0) {
        struct kvm_enable_cap cap = {
            .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
            .args = { manual & (KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET) },
        };
        kvm->manual_dirty_protect = ioctl(kvm->vm_fd, KVM_ENABLE_CAP, &cap) == 0;
    }
    if (ioctl(kvm->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0) {
        kvm_fail(error, "KVM_SET_TSS_ADDR");
        goto fail;
    }
    uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
    if (ioctl(kvm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0) {
        kvm_fail(error, "KVM_SET_IDENTITY_MAP_ADDR");
        goto fail;
    }
    if (ioctl(kvm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
        kvm_fail(error, "KVM_CREATE_IRQCHIP");
        goto fail;
    }
    /* The speaker port (0x61) is left to the in-kernel PIT too. */
    struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
    if (ioctl(kvm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
        kvm_fail(error, "KVM_CREATE_PIT2");
        goto fail;
    }
    return kvm;

fail:
    kvm_free(kvm);
    return NULL;
}

void kvm_free(Kvm *kvm)
{
    if (!kvm) {
        return;
    }
    if (kvm->vm_fd >= 0) {
        close(kvm->vm_fd);
    }
    if (kvm->sys_fd >= 0) {
        close(kvm->sys_fd);
    }
    g_free(kvm->cpuid);
    g_free(kvm);
}

static bool kvm_set_slot(Kvm *kvm, const MemRegion *r, uint32_t flags, GError **error)
{
    struct kvm_userspace_memory_region slot = {
        .slot = r->slot,
        .flags = flags,
        .guest_phys_addr = r->gpa,
        .memory_size = r->size,
        .userspace_addr = (uintptr_t)(r->block->host + r->offset),
    };

    if (ioctl(kvm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
        return kvm_fail(error, "KVM_SET_USER_MEMORY_REGION");
    }
    return true;
}

bool kvm_map_region(void *opaque, const MemRegion *region, GError **error)
{
    Kvm *kvm = opaque;

    return kvm_set_slot(kvm, region, kvm->dirty_logging ? KVM_MEM_LOG_DIRTY_PAGES : 0, error);
}

static bool kvm_map_all(Kvm *kvm, const GuestMemory *mem, GError **error)
{
    for (unsigned i = 0; i < mem->nr_regions; i++) {
        if (!kvm_map_region(kvm, &mem->regions[i], error)) {
            return false;
        }
    }
    return true;
}

bool kvm_map_memory(Kvm *kvm, GuestMemory *mem, GError **error)
{
    g_mutex_lock(&mem->layout_lock);
    bool ok = kvm_map_all(kvm, mem, error);
    g_mutex_unlock(&mem->layout_lock);
    return ok;
}

/* Under the layout lock: a slot added meanwhile gets the flag in effect. */
static bool kvm_dirty_log_set(Kvm *kvm, GuestMemory *mem, bool on, GError **error)
{
    g_mutex_lock(&mem->layout_lock);
    kvm->dirty_logging = on;
    bool ok = kvm_map_all(kvm, mem, error);
    g_mutex_unlock(&mem->layout_lock);
    return ok;
}

bool kvm_dirty_log_start(Kvm *kvm, GuestMemory *mem, GError **error)
{
    if (!kvm_dirty_log_set(kvm, mem, true, error)) {
        kvm_dirty_log_stop(kvm, mem);
        return false;
    }
    return true;
}

void kvm_dirty_log_stop(Kvm *kvm, GuestMemory *mem)
{
    g_autoptr(GError) error = NULL;

    if (!kvm_dirty_log_set(kvm, mem, false, &error)) {
        qb_log(LOG_WARNING, "stopping dirty logging: %s", error->message);
    }
}

bool kvm_dirty_log_sync(Kvm *kvm, const MemRegion *region, unsigned long *bitmap, GError **error)
{
    uint64_t pages = region->size / GUEST_PAGE_SIZE;
    size_t words = (pages + 63) / 64;
    g_autofree unsigned long *got = g_new0(unsigned long, words);
    struct kvm_dirty_log log = { .slot = region->slot, .dirty_bitmap = got };

    if (ioctl(kvm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
        return kvm_fail(error, "KVM_GET_DIRTY_LOG");
    }
    if (kvm->manual_dirty_protect) {
        /* Re-protect only what we took; pages written since stay dirty. */
        struct kvm_clear_dirty_log clear = {
            .slot = region->slot,
            .first_page = 0,
            .num_pages = (uint32_t)pages,
            .dirty_bitmap = got,
        };
        if (ioctl(kvm->vm_fd, KVM_CLEAR_DIRTY_LOG, &clear) < 0) {
            return kvm_fail(error, "KVM_CLEAR_DIRTY_LOG");
        }
    }
    for (size_t i = 0; i < words; i++) {
        bitmap[i] |= got[i];
    }
    return true;
}

void kvm_set_irq(Kvm *kvm, unsigned gsi, bool level)
{
    struct kvm_irq_level irq = { .irq = gsi, .level = level };

    if (ioctl(kvm->vm_fd, KVM_IRQ_LINE, &irq) < 0) {
        qb_log(LOG_ERR, "KVM_IRQ_LINE gsi %u: %s", gsi, strerror(errno));
    }
}

struct kvm_cpuid2 *kvm_cpuid_for_vcpu(const Kvm *kvm, unsigned apic_id, unsigned ncpus)
{
    size_t size = sizeof(*kvm->cpuid) + kvm->cpuid->nent * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *cpuid = g_memdup2(kvm->cpuid, size);

    for (unsigned i = 0; i < cpuid->nent; i++) {
        struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
        switch (e->function) {
        case 1:
            /* Initial APIC id, logical processor count, HTT when > 1. */
            e->ebx = (e->ebx & 0x0000ffffu) | (apic_id << 24) | ((ncpus & 0xff) << 16);
            if (ncpus > 1) {
                e->edx |= 1u << 28;
            }
            /* The hypervisor bit, as QEMU sets it: without it Linux takes
             * itself for bare metal, ignores the KVM leaves (0x40000000)
             * and never uses kvm-clock. KVM leaves it to the VMM. */
            e->ecx |= CPUID_1_ECX_HYPERVISOR;
            break;
        case 0xb:
        case 0x1f:
            e->edx = apic_id;   /* x2APIC id */
            break;
        default:
            break;
        }
    }
    return cpuid;
}

bool kvm_irqchip_save(Kvm *kvm, KvmIrqchipState *state, GError **error)
{
    state->pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
    state->pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
    state->ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
    if (ioctl(kvm->vm_fd, KVM_GET_IRQCHIP, &state->pic_master) < 0 ||
        ioctl(kvm->vm_fd, KVM_GET_IRQCHIP, &state->pic_slave) < 0 ||
        ioctl(kvm->vm_fd, KVM_GET_IRQCHIP, &state->ioapic) < 0) {
        return kvm_fail(error, "KVM_GET_IRQCHIP");
    }
    if (ioctl(kvm->vm_fd, KVM_GET_PIT2, &state->pit) < 0) {
        return kvm_fail(error, "KVM_GET_PIT2");
    }
    return true;
}

bool kvm_irqchip_restore(Kvm *kvm, const KvmIrqchipState *state, GError **error)
{
    if (ioctl(kvm->vm_fd, KVM_SET_IRQCHIP, &state->pic_master) < 0 ||
        ioctl(kvm->vm_fd, KVM_SET_IRQCHIP, &state->pic_slave) < 0 ||
        ioctl(kvm->vm_fd, KVM_SET_IRQCHIP, &state->ioapic) < 0) {
        return kvm_fail(error, "KVM_SET_IRQCHIP");
    }
    if (ioctl(kvm->vm_fd, KVM_SET_PIT2, &state->pit) < 0) {
        return kvm_fail(error, "KVM_SET_PIT2");
    }
    return true;
}
