#include "config.h"

#include <gio/gio.h>

#include "virtio/virtio-pci.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <qb/qblog.h>

#include "pci/kvm-irq.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040
#define VIRTIO_PCI_CAP_COMMON 1
#define VIRTIO_PCI_CAP_NOTIFY 2
#define VIRTIO_PCI_CAP_ISR 3
#define VIRTIO_PCI_CAP_DEVICE 4
#define VIRTIO_ISR_QUEUE 1
#define VIRTIO_ISR_CONFIG 2

/* Common configuration offsets (4.1.4.3). */
enum {
    CC_DFSELECT = 0, CC_DF = 4, CC_GFSELECT = 8, CC_GF = 12, CC_MSIX_CONFIG = 16,
    CC_NUM_QUEUES = 18, CC_STATUS = 20, CC_CONFIG_GEN = 21, CC_Q_SELECT = 22, CC_Q_SIZE = 24,
    CC_Q_MSIX = 26, CC_Q_ENABLE = 28, CC_Q_NOTIFY_OFF = 30, CC_Q_DESC = 32, CC_Q_DRIVER = 40,
    CC_Q_DEVICE = 48,
};

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
    return get16(p) | (uint32_t)get16(p + 2) << 16;
}

static uint64_t get64(const uint8_t *p)
{
    return get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ---- interrupts ---------------------------------------------------------- */

void virtio_dev_notify(VirtioDev *vd, unsigned q)
{
    Virtqueue *vq = &vd->vqs[q];

    if (!virtq_should_notify(vq)) {
        return;
    }
    vd->isr |= VIRTIO_ISR_QUEUE;
    msix_notify(&vd->msix, vq->vector);
}

void virtio_dev_complete(VirtioDev *vd, unsigned q, const VirtqElem *elem, uint32_t written)
{
    if (virtq_push(&vd->vqs[q], elem, written)) {
        virtio_dev_notify(vd, q);
    } else {
        virtio_dev_set_needs_reset(vd);
    }
}

void virtio_dev_set_needs_reset(VirtioDev *vd)
{
    if (vd->status & VIRTIO_STATUS_NEEDS_RESET) {
        return;
    }
    vd->status |= VIRTIO_STATUS_NEEDS_RESET;
    qb_log(LOG_ERR, "%s: device error, DEVICE_NEEDS_RESET set; the driver must reset it", vd->name);
    if (vd->status & VIRTIO_STATUS_DRIVER_OK) {
        vd->isr |= VIRTIO_ISR_CONFIG;
        vd->config_generation++;
        msix_notify(&vd->msix, vd->msix_config);
    }
}

void virtio_dev_wake(VirtioDev *vd)
{
    uint64_t one = 1;

    if (write(vd->ctl_fd, &one, sizeof(one)) < 0 && errno != EAGAIN) {
        qb_log(LOG_ERR, "%s: wake: %s", vd->name, strerror(errno));
    }
}

/* ---- reset and features ----------------------------------------------------- */

/* Lock held. */
static void virtio_dev_reset_locked(VirtioDev *vd)
{
    if (vd->ops->reset) {
        vd->ops->reset(vd);
    }
    vd->device_feature_select = vd->driver_feature_select = 0;
    vd->driver_features = 0;
    vd->msix_config = MSIX_NO_VECTOR;
    vd->status = 0;
    vd->queue_select = 0;
    vd->isr = 0;
    for (unsigned q = 0; q < vd->ops->num_queues; q++) {
        virtq_reset(&vd->vqs[q], vd->ops->queue_size);
    }
    msix_reset(&vd->msix);
}

void virtio_dev_reset(VirtioDev *vd)
{
    g_mutex_lock(&vd->lock);
    virtio_dev_reset_locked(vd);
    g_mutex_unlock(&vd->lock);
    virtio_dev_wake(vd);
}

static void virtio_dev_set_status(VirtioDev *vd, uint8_t status)
{
    if (status == 0) {
        qb_log(LOG_DEBUG, "%s: reset by the driver", vd->name);
        virtio_dev_reset_locked(vd);
        virtio_dev_wake(vd);
        return;
    }
    if ((status & VIRTIO_STATUS_FEATURES_OK) && !(vd->status & VIRTIO_STATUS_FEATURES_OK)) {
        uint64_t f = vd->driver_features;
        if ((f & ~vd->host_features) || !(f & (1ULL << VIRTIO_F_VERSION_1)) ||
            (vd->ops->features_ok && !vd->ops->features_ok(vd, f))) {
            /* Left clear: the driver reads it back and gives up (2.2). */
            qb_log(LOG_WARNING, "%s: driver features 0x%" G_GINT64_MODIFIER "x refused (offered 0x%"
                   G_GINT64_MODIFIER "x)", vd->name, f, vd->host_features);
            status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
        }
    }
    if ((status & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_FEATURES_OK)) {
        status &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
    }
    /* NEEDS_RESET is the device's to set; only a reset clears it. */
    vd->status = (uint8_t)((status & ~VIRTIO_STATUS_NEEDS_RESET) | (vd->status & VIRTIO_STATUS_NEEDS_RESET));
    if (status & VIRTIO_STATUS_DRIVER_OK) {
        virtio_dev_wake(vd);    /* buffers may already wait */
    }
}

/* ---- common configuration ---------------------------------------------------- */

static void virtio_common_pack(VirtioDev *vd, uint8_t *cc)
{
    unsigned sel = vd->queue_select;
    Virtqueue *vq = sel < vd->ops->num_queues ? &vd->vqs[sel] : NULL;

    memset(cc, 0, VIRTIO_PCI_COMMON_LEN);
    put32(cc + CC_DFSELECT, vd->device_feature_select);
    put32(cc + CC_DF, vd->device_feature_select < 2 ?
                      (uint32_t)(vd->host_features >> (32 * vd->device_feature_select)) : 0);
    put32(cc + CC_GFSELECT, vd->driver_feature_select);
    put32(cc + CC_GF, vd->driver_feature_select < 2 ?
                      (uint32_t)(vd->driver_features >> (32 * vd->driver_feature_select)) : 0);
    put16(cc + CC_MSIX_CONFIG, vd->msix_config);
    put16(cc + CC_NUM_QUEUES, (uint16_t)vd->ops->num_queues);
    cc[CC_STATUS] = vd->status;
    cc[CC_CONFIG_GEN] = vd->config_generation;
    put16(cc + CC_Q_SELECT, vd->queue_select);
    if (vq) {
        put16(cc + CC_Q_SIZE, vq->size);
        put16(cc + CC_Q_MSIX, vq->vector);
        put16(cc + CC_Q_ENABLE, vq->enabled);
        put16(cc + CC_Q_NOTIFY_OFF, (uint16_t)sel);
        put64(cc + CC_Q_DESC, vq->desc);
        put64(cc + CC_Q_DRIVER, vq->avail);
        put64(cc + CC_Q_DEVICE, vq->used);
    }
}

static bool overlaps(unsigned off, unsigned len, unsigned field, unsigned flen)
{
    return off < field + flen && field < off + len;
}

/* Apply the fields a write of [off, off+len) touched; @cc holds the packed
 * registers with the written bytes merged in. */
static void virtio_common_apply(VirtioDev *vd, const uint8_t *cc, unsigned off, unsigned len)
{
    unsigned sel = vd->queue_select;
    Virtqueue *vq = sel < vd->ops->num_queues ? &vd->vqs[sel] : NULL;
    bool features_locked = vd->status & VIRTIO_STATUS_FEATURES_OK;

    if (overlaps(off, len, CC_DFSELECT, 4)) {
        vd->device_feature_select = get32(cc + CC_DFSELECT);
    }
    if (overlaps(off, len, CC_GFSELECT, 4)) {
        vd->driver_feature_select = get32(cc + CC_GFSELECT);
    }
    if (overlaps(off, len, CC_GF, 4) && !features_locked && vd->driver_feature_select < 2) {
        unsigned shift = 32 * vd->driver_feature_select;
        vd->driver_features = (vd->driver_features & ~(0xffffffffULL << shift)) |
                              (uint64_t)get32(cc + CC_GF) << shift;
    }
    if (overlaps(off, len, CC_MSIX_CONFIG, 2)) {
        uint16_t v = get16(cc + CC_MSIX_CONFIG);
        vd->msix_config = v < vd->msix.nvec ? v : MSIX_NO_VECTOR;
    }
    if (overlaps(off, len, CC_Q_SELECT, 2)) {
        vd->queue_select = get16(cc + CC_Q_SELECT);
    }
    /* Queue fields only change while that queue is disabled (4.1.4.3.2). */
    if (vq && !vq->enabled) {
        if (overlaps(off, len, CC_Q_SIZE, 2)) {
            vq->size = get16(cc + CC_Q_SIZE);
        }
        if (overlaps(off, len, CC_Q_DESC, 8)) {
            vq->desc = get64(cc + CC_Q_DESC);
        }
        if (overlaps(off, len, CC_Q_DRIVER, 8)) {
            vq->avail = get64(cc + CC_Q_DRIVER);
        }
        if (overlaps(off, len, CC_Q_DEVICE, 8)) {
            vq->used = get64(cc + CC_Q_DEVICE);
        }
    }
    if (vq && overlaps(off, len, CC_Q_MSIX, 2)) {
        uint16_t v = get16(cc + CC_Q_MSIX);
        vq->vector = v < vd->msix.nvec ? v : MSIX_NO_VECTOR;
    }
    if (vq && overlaps(off, len, CC_Q_ENABLE, 2) && get16(cc + CC_Q_ENABLE) == 1 && !vq->enabled) {
        if (vq->size > vd->ops->queue_size) {
            vq->broken = true;
            qb_log(LOG_ERR, "%s: queue size %u above the maximum %u", vq->name, vq->size,
                   vd->ops->queue_size);
        }
        if (vq->broken || !virtq_enable(vq)) {
            virtio_dev_set_needs_reset(vd);
        }
    }
    if (overlaps(off, len, CC_STATUS, 1)) {
        virtio_dev_set_status(vd, cc[CC_STATUS]);
    }
}

static void virtio_common_io(VirtioDev *vd, unsigned off, uint8_t *data, unsigned len, bool is_write)
{
    uint8_t cc[VIRTIO_PCI_COMMON_LEN];

    if (off + len > VIRTIO_PCI_COMMON_LEN) {
        if (!is_write) {
            memset(data, 0, len);
        }
        return;
    }
    virtio_common_pack(vd, cc);
    if (!is_write) {
        memcpy(data, cc + off, len);
        return;
    }
    memcpy(cc + off, data, len);
    virtio_common_apply(vd, cc, off, len);
}

/* ---- BAR0 ------------------------------------------------------------------- */

static void virtio_kick(VirtioDev *vd, unsigned q)
{
    uint64_t one = 1;

    if (q < vd->ops->num_queues && write(vd->kick_fds[q], &one, sizeof(one)) < 0 && errno != EAGAIN) {
        qb_log(LOG_ERR, "%s: kick: %s", vd->name, strerror(errno));
    }
}

void virtio_dev_bar_io(VirtioDev *vd, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
    if (msix_bar_io(&vd->msix, offset, data, len, is_write)) {
        return;
    }
    /* A kick without ioeventfd (or of another width) lands here: hand it
     * to the I/O thread the same way. */
    if (offset >= VIRTIO_PCI_NOTIFY_OFF && offset < VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * VIRTIO_MAX_QUEUES) {
        if (is_write) {
            __atomic_add_fetch(&vd->slow_kicks, 1, __ATOMIC_RELAXED);
            virtio_kick(vd, (unsigned)(offset - VIRTIO_PCI_NOTIFY_OFF) / VIRTIO_PCI_NOTIFY_MULT);
        } else {
            memset(data, 0, len);
        }
        return;
    }
    g_mutex_lock(&vd->lock);
    if (offset < VIRTIO_PCI_COMMON_OFF + VIRTIO_PCI_COMMON_LEN) {
        virtio_common_io(vd, (unsigned)offset, data, len, is_write);
    } else if (offset >= VIRTIO_PCI_ISR_OFF && offset < VIRTIO_PCI_ISR_OFF + 4) {
        if (!is_write) {
            memset(data, 0, len);
            if (offset == VIRTIO_PCI_ISR_OFF) {
                data[0] = vd->isr;
                vd->isr = 0;    /* read to clear */
            }
        }
    } else if (offset >= VIRTIO_PCI_DEVICE_OFF && offset + len <= VIRTIO_PCI_DEVICE_OFF + vd->ops->config_size) {
        if (!is_write && vd->ops->config_read) {
            vd->ops->config_read(vd, (unsigned)(offset - VIRTIO_PCI_DEVICE_OFF), data, len);
        }
    } else if (!is_write) {
        memset(data, 0, len);
    }
    g_mutex_unlock(&vd->lock);
}

static void virtio_pci_bar_io(PciDevice *dev, unsigned bar, uint64_t offset, uint8_t *data,
                              unsigned len, bool is_write)
{
    virtio_dev_bar_io(dev->opaque, offset, data, len, is_write);
}

/* Move the queues' ioeventfds with BAR0. A failure only costs speed: the
 * kick then exits to the vCPU thread and is forwarded from there. */
static void virtio_pci_bar_mapped(PciDevice *dev, unsigned bar, uint64_t addr)
{
    VirtioDev *vd = dev->opaque;
    Kvm *kvm = pci_bus_kvm(dev->bus);

    if (!kvm || bar != 0) {
        return;
    }
    vd->ioeventfd = addr != PCI_BAR_UNMAPPED;
    for (unsigned q = 0; q < vd->ops->num_queues; q++) {
        if (vd->notify_base != PCI_BAR_UNMAPPED) {
            uint64_t a = vd->notify_base + VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * q;
            if (!kvm_ioeventfd_assign(kvm, a, 0, vd->kick_fds[q], false, NULL)) {
                kvm_ioeventfd_assign(kvm, a, 2, vd->kick_fds[q], false, NULL);
            }
        }
        if (addr != PCI_BAR_UNMAPPED) {
            uint64_t a = addr + VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * q;
            g_autoptr(GError) error = NULL;
            if (!kvm_ioeventfd_assign(kvm, a, 0, vd->kick_fds[q], true, NULL) &&
                !kvm_ioeventfd_assign(kvm, a, 2, vd->kick_fds[q], true, &error)) {
                qb_log(LOG_WARNING, "%s: %s; kicks take the slow path", vd->name, error->message);
                vd->ioeventfd = false;
            }
        }
    }
    vd->notify_base = addr;
}

static void virtio_pci_config_written(PciDevice *dev, unsigned offset, unsigned len)
{
    VirtioDev *vd = dev->opaque;

    msix_config_written(&vd->msix);
}

static const PciDeviceOps virtio_pci_ops = {
    .bar_io = virtio_pci_bar_io,
    .bar_mapped = virtio_pci_bar_mapped,
    .config_written = virtio_pci_config_written,
};

/* ---- the I/O thread -------------------------------------------------------------- */

static void drain(int fd)
{
    uint64_t v;

    while (read(fd, &v, sizeof(v)) == sizeof(v)) {
    }
}

static gpointer virtio_dev_thread(gpointer opaque)
{
    VirtioDev *vd = opaque;
    unsigned nq = vd->ops->num_queues;

    for (;;) {
        struct pollfd pfd[VIRTIO_MAX_QUEUES + 2];
        unsigned n = 0;

        pfd[n++] = (struct pollfd) { .fd = vd->ctl_fd, .events = POLLIN };
        for (unsigned q = 0; q < nq; q++) {
            pfd[n++] = (struct pollfd) { .fd = vd->kick_fds[q], .events = POLLIN };
        }
        g_mutex_lock(&vd->lock);
        bool extra = vd->extra_fd >= 0 && vd->extra_events && (vd->status & VIRTIO_STATUS_DRIVER_OK);
        if (extra) {
            pfd[n++] = (struct pollfd) { .fd = vd->extra_fd, .events = vd->extra_events };
        }
        int timeout = vd->retry_ms;
        g_mutex_unlock(&vd->lock);
        int ready = poll(pfd, n, timeout);
        if (ready < 0) {
            if (errno == EINTR) {
                continue;
            }
            qb_log(LOG_ERR, "%s: poll: %s; I/O thread ends", vd->name, strerror(errno));
            return NULL;
        }
        if (ready == 0) {
            pfd[0].revents = POLLIN;    /* retry: every queue, as after a wake-up */
        }

        g_mutex_lock(&vd->lock);
        while (vd->paused && !vd->stopping) {
            g_cond_wait(&vd->cond, &vd->lock);
        }
        if (vd->stopping) {
            g_mutex_unlock(&vd->lock);
            return NULL;
        }
        if (pfd[0].revents) {
            drain(vd->ctl_fd);
        }
        bool live = (vd->status & VIRTIO_STATUS_DRIVER_OK) && !(vd->status & VIRTIO_STATUS_NEEDS_RESET);
        for (unsigned q = 0; q < nq; q++) {
            if (!pfd[1 + q].revents && !pfd[0].revents) {
                continue;
            }
            drain(vd->kick_fds[q]);
            Virtqueue *vq = &vd->vqs[q];
            if (live && vq->enabled && !vq->broken) {
                vd->ops->queue_notify(vd, q);
                if (vq->broken) {
                    virtio_dev_set_needs_reset(vd);
                    live = false;
                }
            }
        }
        if (extra && live && pfd[n - 1].revents && vd->ops->fd_ready) {
            vd->ops->fd_ready(vd, pfd[n - 1].revents);
        }
        g_mutex_unlock(&vd->lock);
    }
}

void virtio_dev_pause(VirtioDev *vd)
{
    /* The I/O thread holds the lock while it touches guest memory; once we
     * had it, the thread is outside and stays out while paused. */
    g_mutex_lock(&vd->lock);
    vd->paused++;
    g_mutex_unlock(&vd->lock);
}

void virtio_dev_resume(VirtioDev *vd)
{
    g_mutex_lock(&vd->lock);
    g_assert(vd->paused > 0);
    if (--vd->paused == 0) {
        g_cond_broadcast(&vd->cond);
    }
    g_mutex_unlock(&vd->lock);
}

/* ---- life cycle ------------------------------------------------------------------ */

static void virtio_add_cap(PciDevice *dev, uint8_t type, uint32_t off, uint32_t len, uint32_t mult)
{
    uint8_t c = pci_device_add_cap(dev, PCI_CAP_ID_VNDR, mult ? 20 : 16);

    g_assert(c);
    dev->config[c + 2] = mult ? 20 : 16;
    dev->config[c + 3] = type;
    dev->config[c + 4] = 0;     /* BAR0 */
    pci_config_set32(dev, c + 8, off);
    pci_config_set32(dev, c + 12, len);
    if (mult) {
        pci_config_set32(dev, c + 16, mult);
    }
}

VirtioDev *virtio_dev_new(PciBus *bus, GuestMemory *mem, const VirtioDevOps *ops, void *opaque,
                          const char *name, uint64_t features, GError **error)
{
    VirtioDev *vd = g_new0(VirtioDev, 1);

    g_return_val_if_fail(ops->num_queues <= VIRTIO_MAX_QUEUES && ops->queue_size <= VIRTQ_MAX_SIZE, NULL);
    g_mutex_init(&vd->lock);
    g_cond_init(&vd->cond);
    vd->ops = ops;
    vd->opaque = opaque;
    vd->name = g_strdup(name);
    vd->mem = mem;
    vd->host_features = features | 1ULL << VIRTIO_F_VERSION_1;
    vd->notify_base = PCI_BAR_UNMAPPED;
    vd->extra_fd = -1;
    vd->retry_ms = -1;
    vd->elem = g_new0(VirtqElem, 1);
    vd->ctl_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
        vd->kick_fds[q] = q < ops->num_queues ? eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) : -1;
        g_snprintf(vd->vq_names[q], sizeof(vd->vq_names[q]), "%s q%u", name, q);
        vd->vqs[q].name = vd->vq_names[q];
        vd->vqs[q].mem = mem;
    }
    bool fds_ok = vd->ctl_fd >= 0;
    for (unsigned q = 0; q < ops->num_queues; q++) {
        fds_ok = fds_ok && vd->kick_fds[q] >= 0;
    }
    if (!fds_ok) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "%s: eventfd: %s", name, strerror(errno));
        goto fail;
    }
    vd->pci = pci_device_new(bus, name, VIRTIO_PCI_VENDOR, (uint16_t)(VIRTIO_PCI_DEVICE_BASE + ops->device_id),
                             ops->class_code, &virtio_pci_ops, vd, error);
    if (!vd->pci) {
        goto fail;
    }
    /* Revision 1 and subsystem id >= 0x40: a modern-only device (4.1.2.1). */
    pci_device_set_subsystem(vd->pci, VIRTIO_PCI_VENDOR, 0x40 + ops->device_id, 1);
    virtio_add_cap(vd->pci, VIRTIO_PCI_CAP_COMMON, VIRTIO_PCI_COMMON_OFF, VIRTIO_PCI_COMMON_LEN, 0);
    virtio_add_cap(vd->pci, VIRTIO_PCI_CAP_ISR, VIRTIO_PCI_ISR_OFF, 4, 0);
    virtio_add_cap(vd->pci, VIRTIO_PCI_CAP_DEVICE, VIRTIO_PCI_DEVICE_OFF, MAX(ops->config_size, 4u), 0);
    virtio_add_cap(vd->pci, VIRTIO_PCI_CAP_NOTIFY, VIRTIO_PCI_NOTIFY_OFF,
                   VIRTIO_PCI_NOTIFY_MULT * ops->num_queues, VIRTIO_PCI_NOTIFY_MULT);
    if (!msix_init(&vd->msix, vd->pci, ops->num_queues + 1, 0, VIRTIO_PCI_MSIX_TABLE,
                   VIRTIO_PCI_MSIX_PBA, error)) {
        goto fail;
    }
    virtio_dev_reset_locked(vd);
    if (!pci_device_add_bar(vd->pci, 0, VIRTIO_PCI_BAR_SIZE, error)) {
        goto fail;
    }
    return vd;

fail:
    virtio_dev_free(vd);
    return NULL;
}

bool virtio_dev_start(VirtioDev *vd, GError **error)
{
    vd->thread = g_thread_try_new(vd->name, virtio_dev_thread, vd, error);
    return vd->thread != NULL;
}

void virtio_dev_free(VirtioDev *vd)
{
    if (!vd) {
        return;
    }
    if (vd->thread) {
        g_mutex_lock(&vd->lock);
        vd->stopping = true;
        g_cond_broadcast(&vd->cond);
        g_mutex_unlock(&vd->lock);
        virtio_dev_wake(vd);
        g_thread_join(vd->thread);
    }
    /* The PCI function stays with the bus (freed with it); unhook it. */
    if (vd->pci) {
        vd->pci->ops = NULL;
    }
    msix_clear(&vd->msix);
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
        if (vd->kick_fds[q] >= 0) {
            close(vd->kick_fds[q]);
        }
    }
    if (vd->ctl_fd >= 0) {
        close(vd->ctl_fd);
    }
    g_free(vd->elem);
    g_free(vd->name);
    g_cond_clear(&vd->cond);
    g_mutex_clear(&vd->lock);
    g_free(vd);
}

/* ---- migration ---------------------------------------------------------------------- */

static bool virtio_dev_state_save(void *opaque, StateWriter *out, GError **error)
{
    VirtioDev *vd = opaque;

    g_mutex_lock(&vd->lock);
    state_put_u32(out, vd->device_feature_select);
    state_put_u32(out, vd->driver_feature_select);
    state_put_u64(out, vd->driver_features);
    state_put_u16(out, vd->msix_config);
    state_put_u8(out, vd->status);
    state_put_u8(out, vd->config_generation);
    state_put_u16(out, vd->queue_select);
    state_put_u8(out, vd->isr);
    state_put_u32(out, vd->ops->num_queues);
    for (unsigned q = 0; q < vd->ops->num_queues; q++) {
        const Virtqueue *vq = &vd->vqs[q];
        state_put_u16(out, vq->size);
        state_put_u8(out, (uint8_t)(vq->enabled | vq->broken << 1));
        state_put_u64(out, vq->desc);
        state_put_u64(out, vq->avail);
        state_put_u64(out, vq->used);
        state_put_u16(out, vq->last_avail);
        state_put_u16(out, vq->used_idx);
        state_put_u16(out, vq->vector);
    }
    msix_state_save(&vd->msix, out);
    g_mutex_unlock(&vd->lock);
    return true;
}

/* Everything from the stream is checked as if the guest had written it:
 * features within what we offer, queues that fit guest RAM. */
static bool virtio_dev_state_load(void *opaque, StateReader *in, uint32_t version, GError **error)
{
    VirtioDev *vd = opaque;
    bool ok = true;

    g_mutex_lock(&vd->lock);
    virtio_dev_reset_locked(vd);
    vd->device_feature_select = state_get_u32(in);
    vd->driver_feature_select = state_get_u32(in);
    vd->driver_features = state_get_u64(in);
    uint16_t msix_config = state_get_u16(in);
    vd->status = state_get_u8(in);
    vd->config_generation = state_get_u8(in);
    vd->queue_select = state_get_u16(in);
    vd->isr = state_get_u8(in);
    vd->msix_config = msix_config < vd->msix.nvec ? msix_config : MSIX_NO_VECTOR;
    if (state_get_u32(in) != vd->ops->num_queues) {
        in->error = true;
    }
    for (unsigned q = 0; q < vd->ops->num_queues && !in->error; q++) {
        Virtqueue *vq = &vd->vqs[q];
        vq->size = state_get_u16(in);
        uint8_t flags = state_get_u8(in);
        vq->desc = state_get_u64(in);
        vq->avail = state_get_u64(in);
        vq->used = state_get_u64(in);
        vq->last_avail = state_get_u16(in);
        vq->used_idx = state_get_u16(in);
        uint16_t vector = state_get_u16(in);
        vq->vector = vector < vd->msix.nvec ? vector : MSIX_NO_VECTOR;
        vq->broken = flags & 2;
        if ((flags & 1) && !in->error && (vq->size > vd->ops->queue_size || !virtq_enable(vq))) {
            ok = false;
        }
    }
    msix_state_load(&vd->msix, in);
    if (vd->driver_features & ~vd->host_features) {
        ok = false;
    }
    if (!state_reader_finish(in, vd->name, error)) {
        ok = false;
    } else if (!ok) {
        g_set_error(error, VMSTATE_ERROR, VMSTATE_ERROR_INVALID,
                    "%s: features or queues in the stream do not fit this device", vd->name);
    }
    if (!ok) {
        virtio_dev_reset_locked(vd);
    } else if (vd->ops->features_ok && (vd->status & VIRTIO_STATUS_FEATURES_OK)) {
        vd->ops->features_ok(vd, vd->driver_features);
    }
    g_mutex_unlock(&vd->lock);
    virtio_dev_wake(vd);
    return ok;
}

const VmStateOps virtio_dev_state_ops = {
    .id = "virtio",
    .version = 1,
    .min_version = 1,
    .save = virtio_dev_state_save,
    .load = virtio_dev_state_load,
};
