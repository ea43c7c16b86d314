#include "config.h"

#include <gio/gio.h>

#include "pci/kvm-irq.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include <qb/qblog.h>

#define IOAPIC_PINS 24
#define PIC_PINS 16
#define MSI_MAX_ROUTES 256

typedef struct MsiRoute {
    bool used;
    uint64_t addr;
    uint32_t data;
} MsiRoute;

struct MsiRoutes {
    Kvm *kvm;
    GMutex lock;
    MsiRoute msi[MSI_MAX_ROUTES];   /* GSI IOAPIC_PINS + index */
};

MsiRoutes *msi_routes_new(Kvm *kvm)
{
    MsiRoutes *routes = g_new0(MsiRoutes, 1);

    routes->kvm = kvm;
    g_mutex_init(&routes->lock);
    return routes;
}

void msi_routes_free(MsiRoutes *routes)
{
    if (routes) {
        g_mutex_clear(&routes->lock);
        g_free(routes);
    }
}

/* Lock held. KVM's default table (PIC and IOAPIC for 0-15, IOAPIC for
 * 16-23) plus our MSI routes. */
static bool msi_routes_commit(MsiRoutes *routes)
{
    unsigned max = IOAPIC_PINS + PIC_PINS + MSI_MAX_ROUTES, n = 0;
    g_autofree struct kvm_irq_routing *table =
        g_malloc0(sizeof(*table) + max * sizeof(struct kvm_irq_routing_entry));

    if (!routes->kvm) {
        return true;
    }
    for (unsigned gsi = 0; gsi < IOAPIC_PINS; gsi++) {
        if (gsi < PIC_PINS) {
            table->entries[n++] = (struct kvm_irq_routing_entry) {
                .gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
                .u.irqchip = { .irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
                               .pin = gsi % 8 },
            };
        }
        table->entries[n++] = (struct kvm_irq_routing_entry) {
            .gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
            .u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi },
        };
    }
    for (unsigned i = 0; i < MSI_MAX_ROUTES; i++) {
        if (routes->msi[i].used) {
            table->entries[n++] = (struct kvm_irq_routing_entry) {
                .gsi = IOAPIC_PINS + i, .type = KVM_IRQ_ROUTING_MSI,
                .u.msi = { .address_lo = (uint32_t)routes->msi[i].addr,
                           .address_hi = (uint32_t)(routes->msi[i].addr >> 32),
                           .data = routes->msi[i].data },
            };
        }
    }
    table->nr = n;
    if (ioctl(routes->kvm->vm_fd, KVM_SET_GSI_ROUTING, table) < 0) {
        qb_log(LOG_ERR, "KVM_SET_GSI_ROUTING (%u routes): %s", n, strerror(errno));
        return false;
    }
    return true;
}

int msi_routes_add(MsiRoutes *routes, GError **error)
{
    int gsi = -1;

    g_mutex_lock(&routes->lock);
    for (unsigned i = 0; i < MSI_MAX_ROUTES; i++) {
        if (!routes->msi[i].used) {
            routes->msi[i] = (MsiRoute) { .used = true };
            gsi = (int)(IOAPIC_PINS + i);
            break;
        }
    }
    if (gsi < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "no free MSI route (max %d)", MSI_MAX_ROUTES);
    } else if (!msi_routes_commit(routes)) {
        routes->msi[gsi - IOAPIC_PINS].used = false;
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot add an MSI route");
        gsi = -1;
    }
    g_mutex_unlock(&routes->lock);
    return gsi;
}

bool msi_routes_set(MsiRoutes *routes, int gsi, uint64_t addr, uint32_t data)
{
    bool ok = true;
    unsigned i = (unsigned)gsi - IOAPIC_PINS;

    g_return_val_if_fail(gsi >= IOAPIC_PINS && i < MSI_MAX_ROUTES, false);
    g_mutex_lock(&routes->lock);
    if (routes->msi[i].addr != addr || routes->msi[i].data != data) {
        routes->msi[i].addr = addr;
        routes->msi[i].data = data;
        ok = msi_routes_commit(routes);
    }
    g_mutex_unlock(&routes->lock);
    return ok;
}

bool kvm_irqfd_assign(Kvm *kvm, int fd, int gsi, bool assign, GError **error)
{
    struct kvm_irqfd irqfd = {
        .fd = (uint32_t)fd, .gsi = (uint32_t)gsi, .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
    };

    if (!kvm) {
        return true;
    }
    if (ioctl(kvm->vm_fd, KVM_IRQFD, &irqfd) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "KVM_IRQFD gsi %d: %s",
                    gsi, strerror(errno));
        return false;
    }
    return true;
}

bool kvm_ioeventfd_assign(Kvm *kvm, uint64_t addr, unsigned len, int fd, bool assign,
                          GError **error)
{
    struct kvm_ioeventfd ioe = {
        .addr = addr, .len = len, .fd = fd, .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
    };

    if (!kvm) {
        return true;
    }
    if (ioctl(kvm->vm_fd, KVM_IOEVENTFD, &ioe) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "KVM_IOEVENTFD 0x%" G_GINT64_MODIFIER "x/%u: %s", addr, len, strerror(errno));
        return false;
    }
    return true;
}
