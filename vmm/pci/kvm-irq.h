/* KVM interrupt plumbing for PCI devices: MSI routes (GSIs above the
 * IOAPIC's 24 pins), irqfd (an eventfd that injects a GSI without a VMM
 * exit) and ioeventfd (a guest MMIO write that signals an eventfd instead
 * of exiting to a vCPU thread).
 *
 * KVM_SET_GSI_ROUTING replaces the whole table, so MsiRoutes keeps KVM's
 * default PIC/IOAPIC routes for GSIs 0-23 and adds one MSI route per
 * allocated GSI. Thread-safe (vCPU threads update routes on MSI-X table
 * writes). */
#ifndef COLO_VMM_PCI_KVM_IRQ_H
#define COLO_VMM_PCI_KVM_IRQ_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "kvm.h"

typedef struct MsiRoutes MsiRoutes;

/* @kvm may be NULL (unit tests): every call then succeeds and does nothing. */
MsiRoutes *msi_routes_new(Kvm *kvm);
void msi_routes_free(MsiRoutes *routes);

/* A new GSI routed to the MSI message (@addr, @data); -1 on failure. */
int msi_routes_add(MsiRoutes *routes, GError **error);
/* Point @gsi at a new message. */
bool msi_routes_set(MsiRoutes *routes, int gsi, uint64_t addr, uint32_t data);

/* Bind (@assign) or unbind @fd to @gsi. */
bool kvm_irqfd_assign(Kvm *kvm, int fd, int gsi, bool assign, GError **error);
/* Writes of @len bytes (0: any length where the kernel allows it) to guest
 * address @addr signal @fd. */
bool kvm_ioeventfd_assign(Kvm *kvm, uint64_t addr, unsigned len, int fd, bool assign,
                          GError **error);

#endif
