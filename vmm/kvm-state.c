#include "config.h"

#include "kvm-state.h"

#include <errno.h>
#include <sys/ioctl.h>

#include <gio/gio.h>

static bool kvm_irqchip_state_save(void *opaque, StateWriter *w, GError **error)
{
    KvmIrqchipState s;

    if (!kvm_irqchip_save(opaque, &s, error)) {
        return false;
    }
    state_put_blob(w, &s.pic_master, sizeof(s.pic_master));
    state_put_blob(w, &s.pic_slave, sizeof(s.pic_slave));
    state_put_blob(w, &s.ioapic, sizeof(s.ioapic));
    state_put_blob(w, &s.pit, sizeof(s.pit));
    return true;
}

static bool kvm_irqchip_state_load(void *opaque, StateReader *r, uint32_t version, GError **error)
{
    KvmIrqchipState s;

    state_get_blob(r, &s.pic_master, sizeof(s.pic_master));
    state_get_blob(r, &s.pic_slave, sizeof(s.pic_slave));
    state_get_blob(r, &s.ioapic, sizeof(s.ioapic));
    state_get_blob(r, &s.pit, sizeof(s.pit));
    if (!state_reader_finish(r, "irqchip", error)) {
        return false;
    }
    if (s.pic_master.chip_id != KVM_IRQCHIP_PIC_MASTER || s.pic_slave.chip_id != KVM_IRQCHIP_PIC_SLAVE ||
        s.ioapic.chip_id != KVM_IRQCHIP_IOAPIC) {
        g_set_error(error, VMSTATE_ERROR, VMSTATE_ERROR_INVALID, "irqchip state names the wrong chips");
        return false;
    }
    return kvm_irqchip_restore(opaque, &s, error);
}

const VmStateOps kvm_irqchip_state_ops = {
    .id = "irqchip",
    .version = 1,
    .min_version = 1,
    .save = kvm_irqchip_state_save,
    .load = kvm_irqchip_state_load,
};

static bool kvm_clock_state_save(void *opaque, StateWriter *w, GError **error)
{
    Kvm *kvm = opaque;
    struct kvm_clock_data clock = { 0 };

    if (ioctl(kvm->vm_fd, KVM_GET_CLOCK, &clock) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "KVM_GET_CLOCK: %s",
                    g_strerror(errno));
        return false;
    }
    state_put_u64(w, clock.clock);
    return true;
}

static bool kvm_clock_state_load(void *opaque, StateReader *r, uint32_t version, GError **error)
{
    Kvm *kvm = opaque;
    /* The guest's clock goes on from where the source left it. */
    struct kvm_clock_data clock = { .clock = state_get_u64(r) };

    if (!state_reader_finish(r, "kvmclock", error)) {
        return false;
    }
    if (ioctl(kvm->vm_fd, KVM_SET_CLOCK, &clock) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "KVM_SET_CLOCK: %s",
                    g_strerror(errno));
        return false;
    }
    return true;
}

const VmStateOps kvm_clock_state_ops = {
    .id = "kvmclock",
    .version = 1,
    .min_version = 1,
    .save = kvm_clock_state_save,
    .load = kvm_clock_state_load,
};
