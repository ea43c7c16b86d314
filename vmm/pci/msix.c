#include "config.h"

#include <gio/gio.h>

#include "pci/msix.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <qb/qblog.h>

#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_FMASK  0x4000
#define MSIX_ENTRY_MASKED 1u

bool msix_init(Msix *msix, PciDevice *dev, unsigned nvec, unsigned bar, uint64_t table_off,
               uint64_t pba_off, GError **error)
{
    g_return_val_if_fail(nvec > 0 && nvec <= MSIX_MAX_VECTORS, false);
    memset(msix, 0, sizeof(*msix));
    g_mutex_init(&msix->lock);
    msix->dev = dev;
    msix->nvec = nvec;
    msix->table_off = table_off;
    msix->pba_off = pba_off;
    for (unsigned i = 0; i < MSIX_MAX_VECTORS; i++) {
        msix->fds[i] = -1;
        msix->gsis[i] = -1;
    }
    msix->cap = pci_device_add_cap(dev, PCI_CAP_ID_MSIX, 12);
    if (!msix->cap) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "%s: no room for MSI-X", dev->name);
        return false;
    }
    pci_config_set16(dev, msix->cap + 2, (uint16_t)(nvec - 1));
    pci_config_set32(dev, msix->cap + 4, (uint32_t)table_off | bar);
    pci_config_set32(dev, msix->cap + 8, (uint32_t)pba_off | bar);
    dev->wmask[msix->cap + 3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_FMASK) >> 8;

    MsiRoutes *routes = pci_bus_msi_routes(dev->bus);
    Kvm *kvm = pci_bus_kvm(dev->bus);
    for (unsigned i = 0; i < nvec; i++) {
        msix->table[i].ctrl = MSIX_ENTRY_MASKED;
        msix->fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (msix->fds[i] < 0) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "eventfd: %s", strerror(errno));
            return false;
        }
        if (kvm) {
            msix->gsis[i] = msi_routes_add(routes, error);
            if (msix->gsis[i] < 0 || !kvm_irqfd_assign(kvm, msix->fds[i], msix->gsis[i], true, error)) {
                return false;
            }
        }
    }
    return true;
}

void msix_clear(Msix *msix)
{
    if (!msix->dev) {
        return;     /* never initialised */
    }
    Kvm *kvm = pci_bus_kvm(msix->dev->bus);

    for (unsigned i = 0; i < MSIX_MAX_VECTORS; i++) {
        if (msix->fds[i] >= 0) {
            if (kvm && msix->gsis[i] >= 0) {
                kvm_irqfd_assign(kvm, msix->fds[i], msix->gsis[i], false, NULL);
            }
            close(msix->fds[i]);
            msix->fds[i] = -1;
        }
    }
    g_mutex_clear(&msix->lock);
    msix->dev = NULL;
}

static bool msix_enabled_locked(Msix *msix)
{
    return msix->ctrl & MSIX_CTRL_ENABLE;
}

bool msix_enabled(Msix *msix)
{
    g_mutex_lock(&msix->lock);
    bool on = msix_enabled_locked(msix);
    g_mutex_unlock(&msix->lock);
    return on;
}

static bool msix_masked_locked(Msix *msix, unsigned v)
{
    uint16_t ctrl = msix->ctrl;

    return !(ctrl & MSIX_CTRL_ENABLE) || (ctrl & MSIX_CTRL_FMASK) ||
           (msix->table[v].ctrl & MSIX_ENTRY_MASKED);
}

static void msix_fire(Msix *msix, unsigned v)
{
    uint64_t one = 1;

    if (write(msix->fds[v], &one, sizeof(one)) != sizeof(one) && errno != EAGAIN) {
        qb_log(LOG_ERR, "%s: MSI-X vector %u: %s", msix->dev->name, v, strerror(errno));
    }
}

/* Lock held: deliver what became unmasked. */
static void msix_flush_pending_locked(Msix *msix)
{
    for (unsigned v = 0; v < msix->nvec; v++) {
        if ((msix->pending & (1ULL << v)) && !msix_masked_locked(msix, v)) {
            msix->pending &= ~(1ULL << v);
            msix_fire(msix, v);
        }
    }
}

void msix_notify(Msix *msix, unsigned vector)
{
    if (vector >= msix->nvec) {
        return;
    }
    g_mutex_lock(&msix->lock);
    if (msix_masked_locked(msix, vector)) {
        msix->pending |= 1ULL << vector;
    } else {
        msix_fire(msix, vector);
    }
    g_mutex_unlock(&msix->lock);
}

void msix_config_written(Msix *msix)
{
    g_mutex_lock(&msix->lock);
    msix->ctrl = pci_config_get16(msix->dev, msix->cap + 2);
    msix_flush_pending_locked(msix);
    g_mutex_unlock(&msix->lock);
}

static void msix_update_route_locked(Msix *msix, unsigned v)
{
    if (msix->gsis[v] >= 0) {
        const MsixEntry *e = &msix->table[v];
        msi_routes_set(pci_bus_msi_routes(msix->dev->bus), msix->gsis[v],
                       (uint64_t)e->addr_hi << 32 | e->addr_lo, e->data);
    }
}

bool msix_bar_io(Msix *msix, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
    uint64_t table_end = msix->table_off + 16ULL * msix->nvec;
    uint64_t pba_end = msix->pba_off + 8 * ((msix->nvec + 63) / 64);

    if (offset >= msix->pba_off && offset < pba_end) {
        if (!is_write) {
            uint8_t pba[8];
            g_mutex_lock(&msix->lock);
            for (unsigned i = 0; i < 8; i++) {
                pba[i] = (uint8_t)(msix->pending >> (8 * i));
            }
            g_mutex_unlock(&msix->lock);
            uint64_t o = offset - msix->pba_off;
            for (unsigned i = 0; i < len; i++) {
                data[i] = o + i < 8 ? pba[o + i] : 0;
            }
        }
        return true;
    }
    if (offset < msix->table_off || offset >= table_end) {
        return false;
    }
    /* Dword or qword accesses, naturally aligned (PCI spec); others are
     * ignored rather than half-applied. */
    if ((len != 4 && len != 8) || (offset & (len - 1))) {
        if (!is_write) {
            memset(data, 0, len);
        }
        return true;
    }
    g_mutex_lock(&msix->lock);
    for (unsigned done = 0; done < len; done += 4) {
        uint64_t o = offset + done - msix->table_off;
        unsigned v = (unsigned)(o / 16);
        uint32_t *field = &msix->table[v].addr_lo + (o % 16) / 4;
        if (v >= msix->nvec) {
            break;
        }
        if (is_write) {
            uint32_t val = (uint32_t)data[done] | (uint32_t)data[done + 1] << 8 |
                           (uint32_t)data[done + 2] << 16 | (uint32_t)data[done + 3] << 24;
            if (field == &msix->table[v].ctrl) {
                val &= MSIX_ENTRY_MASKED;
            }
            *field = val;
            msix_update_route_locked(msix, v);
        } else {
            for (unsigned i = 0; i < 4; i++) {
                data[done + i] = (uint8_t)(*field >> (8 * i));
            }
        }
    }
    if (is_write) {
        msix_flush_pending_locked(msix);
    }
    g_mutex_unlock(&msix->lock);
    return true;
}

void msix_reset(Msix *msix)
{
    g_mutex_lock(&msix->lock);
    for (unsigned v = 0; v < msix->nvec; v++) {
        msix->table[v] = (MsixEntry) { .ctrl = MSIX_ENTRY_MASKED };
    }
    msix->pending = 0;
    g_mutex_unlock(&msix->lock);
}

void msix_state_save(Msix *msix, StateWriter *out)
{
    g_mutex_lock(&msix->lock);
    state_put_u32(out, msix->nvec);
    for (unsigned v = 0; v < msix->nvec; v++) {
        state_put_u32(out, msix->table[v].addr_lo);
        state_put_u32(out, msix->table[v].addr_hi);
        state_put_u32(out, msix->table[v].data);
        state_put_u32(out, msix->table[v].ctrl);
    }
    state_put_u64(out, msix->pending);
    g_mutex_unlock(&msix->lock);
}

void msix_state_load(Msix *msix, StateReader *in)
{
    if (state_get_u32(in) != msix->nvec) {
        in->error = true;
        return;
    }
    g_mutex_lock(&msix->lock);
    for (unsigned v = 0; v < msix->nvec; v++) {
        msix->table[v].addr_lo = state_get_u32(in);
        msix->table[v].addr_hi = state_get_u32(in);
        msix->table[v].data = state_get_u32(in);
        msix->table[v].ctrl = state_get_u32(in) & MSIX_ENTRY_MASKED;
        msix_update_route_locked(msix, v);
    }
    msix->pending = state_get_u64(in) & (msix->nvec == 64 ? ~0ULL : (1ULL << msix->nvec) - 1);
    g_mutex_unlock(&msix->lock);
}
