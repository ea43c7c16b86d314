/* virtio 1.x over PCI, the modern transport (4.1): common configuration,
 * notification, ISR and device-configuration structures in BAR0, MSI-X
 * (table and PBA also in BAR0), feature negotiation, device status and
 * reset, and one I/O thread per device.
 *
 * Threads and locks:
 * - vCPU threads access BAR0 (transport registers) under the device lock.
 * - The device's I/O thread waits in poll(2) on the queues' kick eventfds
 *   (bound to the notify addresses with ioeventfd, so a guest kick never
 *   exits to a vCPU thread), a control eventfd, and one extra fd of the
 *   device (the tap). It runs the device's handlers with the device lock
 *   held and raises interrupts through MSI-X irqfds.
 * - virtio_dev_pause() returns once the I/O thread is outside its handlers
 *   and keeps it there until virtio_dev_resume(): with the vCPUs parked,
 *   no guest memory is being read or written (checkpoints, migration). */
#ifndef COLO_VMM_VIRTIO_VIRTIO_PCI_H
#define COLO_VMM_VIRTIO_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "memory.h"
#include "migration/vmstate.h"
#include "pci/msix.h"
#include "pci/pci.h"
#include "virtio/virtqueue.h"

#define VIRTIO_MAX_QUEUES 4
#define VIRTIO_F_VERSION_1 32

/* Device status (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* BAR0 layout. */
#define VIRTIO_PCI_COMMON_OFF 0x0000
#define VIRTIO_PCI_COMMON_LEN 0x38
#define VIRTIO_PCI_ISR_OFF    0x1000
#define VIRTIO_PCI_DEVICE_OFF 0x2000
#define VIRTIO_PCI_NOTIFY_OFF 0x3000
#define VIRTIO_PCI_NOTIFY_MULT 4
#define VIRTIO_PCI_MSIX_TABLE 0x4000
#define VIRTIO_PCI_MSIX_PBA   0x5000
#define VIRTIO_PCI_BAR_SIZE   0x8000

typedef struct VirtioDev VirtioDev;

typedef struct VirtioDevOps {
    const char *type;               /* "virtio-net", "virtio-blk" */
    uint16_t device_id;             /* virtio device id (1 net, 2 blk) */
    uint32_t class_code;
    unsigned num_queues;
    uint16_t queue_size;
    unsigned config_size;           /* device configuration bytes */
    /* Device configuration (vCPU thread, lock held). */
    void (*config_read)(VirtioDev *vd, unsigned offset, uint8_t *data, unsigned len);
    /* Accept the driver's features (subset of what was offered), or refuse. */
    bool (*features_ok)(VirtioDev *vd, uint64_t features);
    /* Queue @q was kicked, or the extra fd is ready (I/O thread, lock held,
     * DRIVER_OK set). */
    void (*queue_notify)(VirtioDev *vd, unsigned q);
    void (*fd_ready)(VirtioDev *vd, short revents);
    /* The driver reset the device (lock held). */
    void (*reset)(VirtioDev *vd);
} VirtioDevOps;

struct VirtioDev {
    const VirtioDevOps *ops;
    void *opaque;                   /* the device model */
    char *name;                     /* "virtio-blk0" */
    GuestMemory *mem;
    PciDevice *pci;
    Msix msix;
    uint64_t host_features;

    GMutex lock;
    GCond cond;
    unsigned paused;
    bool stopping;
    GThread *thread;
    int ctl_fd;                     /* wakes the I/O thread */
    int kick_fds[VIRTIO_MAX_QUEUES];
    uint64_t notify_base;           /* where the notify area decodes, or PCI_BAR_UNMAPPED */
    int extra_fd;                   /* device's own fd, -1 if none */
    short extra_events;             /* what to poll it for; 0: not now */
    int retry_ms;                   /* run every queue again after this long without a
                                     * kick (a driver that forgot one); -1: never */
    bool ioeventfd;                 /* kicks bypass the vCPU threads (KVM took them) */
    unsigned slow_kicks;            /* kicks that came as MMIO exits instead */

    /* Transport registers. */
    uint32_t device_feature_select, driver_feature_select;
    uint64_t driver_features;
    uint16_t msix_config;
    uint8_t status;
    uint8_t config_generation;
    uint16_t queue_select;
    uint8_t isr;
    Virtqueue vqs[VIRTIO_MAX_QUEUES];
    char vq_names[VIRTIO_MAX_QUEUES][32];
    VirtqElem *elem;                /* scratch request for the I/O thread */
};

/* Create the PCI function, BAR0, MSI-X, the eventfds; the I/O thread
 * starts with virtio_dev_start. @features excludes VERSION_1 (added here). */
VirtioDev *virtio_dev_new(PciBus *bus, GuestMemory *mem, const VirtioDevOps *ops, void *opaque,
                          const char *name, uint64_t features, GError **error);
bool virtio_dev_start(VirtioDev *vd, GError **error);
/* Stops the thread and frees. */
void virtio_dev_free(VirtioDev *vd);

/* Transport register access, also what BAR0 accesses end up in. */
void virtio_dev_bar_io(VirtioDev *vd, uint64_t offset, uint8_t *data, unsigned len, bool is_write);

/* I/O thread (lock held): give @elem back with @written bytes and
 * interrupt the driver if it wants that. */
void virtio_dev_complete(VirtioDev *vd, unsigned q, const VirtqElem *elem, uint32_t written);
/* Interrupt for queue @q now (after a batch of virtq_push). */
void virtio_dev_notify(VirtioDev *vd, unsigned q);
/* Queue or device broken by the guest: DEVICE_NEEDS_RESET + config
 * interrupt (lock held). */
void virtio_dev_set_needs_reset(VirtioDev *vd);
/* Ask the I/O thread to rebuild its poll set (device changed extra_events). */
void virtio_dev_wake(VirtioDev *vd);

/* Whole-device reset as on power-up (system reset; main thread, vCPUs parked). */
void virtio_dev_reset(VirtioDev *vd);

/* Quiesce the I/O thread (see above); nests. */
void virtio_dev_pause(VirtioDev *vd);
void virtio_dev_resume(VirtioDev *vd);

/* Transport and queue state; instance = PCI slot. */
extern const VmStateOps virtio_dev_state_ops;

#endif
