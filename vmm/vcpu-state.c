#include "config.h"

#include "vcpu-state.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include <gio/gio.h>
#include <qb/qblog.h>

#include "vm.h"

#define VCPU_STATE_VERSION 1
#define VCPU_MAX_MSRS      1024

static bool vcpu_state_fail(GError **error, const Vcpu *vcpu, const char *what)
{
    int err = errno;

    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "vCPU %u: %s: %s",
                vcpu->index, what, g_strerror(err));
    return false;
}

/* The MSRs KVM says it can save and restore, once per process. */
static const struct kvm_msr_list *vcpu_msr_list(int sys_fd)
{
    static struct kvm_msr_list *list;
    static GMutex lock;

    g_mutex_lock(&lock);
    if (!list) {
        list = g_malloc0(sizeof(*list) + VCPU_MAX_MSRS * sizeof(uint32_t));
        list->nmsrs = VCPU_MAX_MSRS;
        if (ioctl(sys_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
            qb_log(LOG_WARNING, "KVM_GET_MSR_INDEX_LIST: %s; MSRs will not migrate", strerror(errno));
            list->nmsrs = 0;
        }
    }
    g_mutex_unlock(&lock);
    return list;
}

/* Reads every listed MSR the vCPU has; KVM stops at the first one it
 * refuses, so skip that one and go on. */
static GArray *vcpu_read_msrs(Vcpu *vcpu)
{
    const struct kvm_msr_list *list = vcpu_msr_list(vcpu->vm->kvm->sys_fd);
    GArray *out = g_array_new(FALSE, FALSE, sizeof(struct kvm_msr_entry));
    g_autofree struct kvm_msrs *msrs =
        g_malloc0(sizeof(*msrs) + list->nmsrs * sizeof(struct kvm_msr_entry));

    for (uint32_t start = 0; start < list->nmsrs;) {
        uint32_t n = list->nmsrs - start;
        msrs->nmsrs = n;
        for (uint32_t i = 0; i < n; i++) {
            msrs->entries[i] = (struct kvm_msr_entry){ .index = list->indices[start + i] };
        }
        int got = ioctl(vcpu->fd, KVM_GET_MSRS, msrs);
        if (got < 0) {
            break;
        }
        g_array_append_vals(out, msrs->entries, (guint)got);
        start += (uint32_t)got + 1;
    }
    return out;
}

static bool vcpu_state_save(void *opaque, StateWriter *w, GError **error)
{
    Vcpu *vcpu = opaque;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    g_autofree struct kvm_xsave *xsave = g_malloc0(sizeof(*xsave));
    struct kvm_xcrs xcrs;
    g_autofree struct kvm_lapic_state *lapic = g_malloc0(sizeof(*lapic));
    struct kvm_vcpu_events events;
    struct kvm_mp_state mp;
    struct kvm_debugregs dbg;

    /* Without KVM_CAP_XCRS (a host CPU without XSAVE) there is no XCR0:
     * the section says so with nr_xcrs 0, as KVM itself would. */
    memset(&xcrs, 0, sizeof(xcrs));
    if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0 ||
        ioctl(vcpu->fd, KVM_GET_XSAVE, xsave) < 0 ||
        (vcpu->vm->kvm->has_xcrs && ioctl(vcpu->fd, KVM_GET_XCRS, &xcrs) < 0) ||
        ioctl(vcpu->fd, KVM_GET_LAPIC, lapic) < 0 ||
        ioctl(vcpu->fd, KVM_GET_VCPU_EVENTS, &events) < 0 ||
        ioctl(vcpu->fd, KVM_GET_MP_STATE, &mp) < 0 ||
        ioctl(vcpu->fd, KVM_GET_DEBUGREGS, &dbg) < 0) {
        return vcpu_state_fail(error, vcpu, "reading state");
    }
    g_autoptr(GArray) msrs = vcpu_read_msrs(vcpu);

    state_put_blob(w, &regs, sizeof(regs));
    state_put_blob(w, &sregs, sizeof(sregs));
    state_put_blob(w, xsave, sizeof(*xsave));
    state_put_blob(w, &xcrs, sizeof(xcrs));
    state_put_blob(w, lapic, sizeof(*lapic));
    state_put_blob(w, &events, sizeof(events));
    state_put_blob(w, &mp, sizeof(mp));
    state_put_blob(w, &dbg, sizeof(dbg));
    state_put_u32(w, msrs->len);
    for (guint i = 0; i < msrs->len; i++) {
        const struct kvm_msr_entry *e = &g_array_index(msrs, struct kvm_msr_entry, i);
        state_put_u32(w, e->index);
        state_put_u64(w, e->data);
    }
    return true;
}

/* A destination without XCRs can take the state of a guest that used
 * nothing beyond x87 and SSE (XCR0 bits 0-1, what every CPU has); a guest
 * that enabled AVX or more cannot run there, and is refused by name. */
static bool vcpu_state_xcrs_loadable(Vcpu *vcpu, const struct kvm_xcrs *xcrs, GError **error)
{
    if (vcpu->vm->kvm->has_xcrs) {
        return true;
    }
    for (uint32_t i = 0; i < xcrs->nr_xcrs && i < KVM_MAX_XCRS; i++) {
        if (xcrs->xcrs[i].xcr == 0 && (xcrs->xcrs[i].value & ~3ULL)) {
            g_set_error(error, VMSTATE_ERROR, VMSTATE_ERROR_INVALID,
                        "vCPU %u uses XCR0 0x%llx, but this host's KVM has no XSAVE (KVM_CAP_XCRS)",
                        vcpu->index, (unsigned long long)xcrs->xcrs[i].value);
            return false;
        }
    }
    return true;
}

static bool vcpu_state_load(void *opaque, StateReader *r, uint32_t version, GError **error)
{
    Vcpu *vcpu = opaque;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    g_autofree struct kvm_xsave *xsave = g_malloc0(sizeof(*xsave));
    struct kvm_xcrs xcrs;
    g_autofree struct kvm_lapic_state *lapic = g_malloc0(sizeof(*lapic));
    struct kvm_vcpu_events events;
    struct kvm_mp_state mp;
    struct kvm_debugregs dbg;

    state_get_blob(r, &regs, sizeof(regs));
    state_get_blob(r, &sregs, sizeof(sregs));
    state_get_blob(r, xsave, sizeof(*xsave));
    state_get_blob(r, &xcrs, sizeof(xcrs));
    state_get_blob(r, lapic, sizeof(*lapic));
    state_get_blob(r, &events, sizeof(events));
    state_get_blob(r, &mp, sizeof(mp));
    state_get_blob(r, &dbg, sizeof(dbg));
    uint32_t nmsrs = state_get_u32(r);
    if (!r->error && nmsrs > VCPU_MAX_MSRS) {
        g_set_error(error, VMSTATE_ERROR, VMSTATE_ERROR_INVALID,
                    "vCPU %u state lists %u MSRs (at most %d)", vcpu->index, nmsrs, VCPU_MAX_MSRS);
        return false;
    }
    g_autofree struct kvm_msrs *msrs =
        g_malloc0(sizeof(*msrs) + (r->error ? 0 : nmsrs) * sizeof(struct kvm_msr_entry));
    msrs->nmsrs = r->error ? 0 : nmsrs;
    for (uint32_t i = 0; i < msrs->nmsrs; i++) {
        msrs->entries[i].index = state_get_u32(r);
        msrs->entries[i].data = state_get_u64(r);
    }
    g_autofree char *what = g_strdup_printf("vCPU %u", vcpu->index);
    if (!state_reader_finish(r, what, error)) {
        return false;
    }

    if (!vcpu_state_xcrs_loadable(vcpu, &xcrs, error)) {
        return false;
    }
    /* KVM's order matters: MSRs after sregs (EFER), LAPIC after APIC base,
     * events last so nothing pending is lost. KVM_SET_XCRS fails with
     * EINVAL on a host without XSAVE, so it is only made where KVM has
     * KVM_CAP_XCRS (as QEMU does). */
    if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0 ||
        ioctl(vcpu->fd, KVM_SET_XSAVE, xsave) < 0 ||
        (vcpu->vm->kvm->has_xcrs && ioctl(vcpu->fd, KVM_SET_XCRS, &xcrs) < 0)) {
        return vcpu_state_fail(error, vcpu, "restoring registers");
    }
    int set = ioctl(vcpu->fd, KVM_SET_MSRS, msrs);
    if (set < 0 || (uint32_t)set != msrs->nmsrs) {
        if (set >= 0) {
            errno = EINVAL;
            g_set_error(error, VMSTATE_ERROR, VMSTATE_ERROR_INVALID,
                        "vCPU %u: KVM refused MSR 0x%x", vcpu->index, msrs->entries[set].index);
            return false;
        }
        return vcpu_state_fail(error, vcpu, "restoring MSRs");
    }
    if (ioctl(vcpu->fd, KVM_SET_LAPIC, lapic) < 0 || ioctl(vcpu->fd, KVM_SET_MP_STATE, &mp) < 0 ||
        ioctl(vcpu->fd, KVM_SET_DEBUGREGS, &dbg) < 0 ||
        ioctl(vcpu->fd, KVM_SET_VCPU_EVENTS, &events) < 0) {
        return vcpu_state_fail(error, vcpu, "restoring LAPIC, MP state or events");
    }
    return true;
}

GBytes *vcpu_state_capture(Vcpu *vcpu, GError **error)
{
    StateWriter w = { g_byte_array_new() };

    if (!vcpu_state_save(vcpu, &w, error)) {
        g_byte_array_unref(w.buf);
        return NULL;
    }
    return g_byte_array_free_to_bytes(w.buf);
}

bool vcpu_state_restore(Vcpu *vcpu, GBytes *state, GError **error)
{
    StateReader r;
    gsize len;
    const uint8_t *data = g_bytes_get_data(state, &len);

    state_reader_init(&r, data, len);
    return vcpu_state_load(vcpu, &r, VCPU_STATE_VERSION, error);
}

const VmStateOps vcpu_state_ops = {
    .id = "cpu",
    .version = VCPU_STATE_VERSION,
    .min_version = VCPU_STATE_VERSION,
    .save = vcpu_state_save,
    .load = vcpu_state_load,
};
