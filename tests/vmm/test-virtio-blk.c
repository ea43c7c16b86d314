/* virtio-pci transport, split virtqueue validation and virtio-blk, driven
 * through the I/O bus and guest memory as a guest driver would (no KVM):
 * requests complete on the device's I/O thread and raise MSI-X vectors. */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "iobus.h"
#include "memory.h"
#include "pci/pci.h"
#include "block-test-filter.h"
#include "block/dirty-bitmap.h"
#include "block/overlay.h"
#include "block/raw.h"
#include "virtio-driver.h"
#include "virtio/virtio-blk.h"

#define F_SEG_MAX (1ULL << 2)
#define F_FLUSH (1ULL << 9)
#define F_VERSION_1 (1ULL << 32)
#define HDR 0x500000ULL
#define DATA 0x501000ULL
#define STATUS 0x5ff000ULL
#define SECTORS 64

typedef struct Fixture {
    IoBus *io;
    GuestMemory *mem;
    PciBus *bus;
    VirtioBlk *blk;
    TestDriver td;
    char *path;
} Fixture;

static void fx_setup(Fixture *fx, gconstpointer data)
{
    GuestMemoryConfig mc = { .size = 16 << 20 };
    VirtioBlkConfig bc = { 0 };
    int fd = g_file_open_tmp("virtio-blk-XXXXXX", &fx->path, NULL);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, SECTORS * 512), ==, 0);
    close(fd);
    bc.file = fx->path;
    fx->io = iobus_new();
    fx->mem = guest_memory_new(&mc, NULL);
    fx->bus = pci_bus_new(fx->io, NULL, NULL);
    fx->blk = virtio_blk_new(fx->bus, fx->mem, &bc, 0, NULL);
    g_assert_nonnull(fx->blk);
    g_assert_true(virtio_dev_start(virtio_blk_dev(fx->blk), NULL));
    td_probe(&fx->td, fx->io, fx->mem, virtio_blk_dev(fx->blk));
}

static void fx_teardown(Fixture *fx, gconstpointer data)
{
    virtio_blk_free(fx->blk);
    pci_bus_free(fx->bus);
    guest_memory_free(fx->mem);
    iobus_free(fx->io);
    g_unlink(fx->path);
    g_free(fx->path);
}

static void fx_ready(Fixture *fx)
{
    g_assert_true(td_negotiate(&fx->td, F_VERSION_1 | F_FLUSH | F_SEG_MAX));
    td_setup_queue(&fx->td, 0, 16);
    td_driver_ok(&fx->td);
    g_assert_cmphex(td_status(&fx->td), ==, 0x0f);
}

/* One request: header, optional data, status. Returns the status byte
 * (0xff if it did not complete) and the used length. */
static uint8_t blk_request(Fixture *fx, uint32_t type, uint64_t sector, uint32_t len, bool data_in,
                           uint32_t *used_len)
{
    uint8_t hdr[16] = { 0 }, status = 0xee;
    uint32_t id = 0, ulen = 0;

    hdr[0] = (uint8_t)type;
    for (unsigned k = 0; k < 8; k++) {
        hdr[8 + k] = (uint8_t)(sector >> (8 * k));
    }
    g_assert_true(guest_memory_write(fx->mem, HDR, hdr, sizeof(hdr)));
    g_assert_true(guest_memory_write(fx->mem, STATUS, &status, 1));
    td_desc(&fx->td, 0, 0, HDR, 16, VIRTQ_DESC_F_NEXT, len ? 1 : 2);
    if (len) {
        td_desc(&fx->td, 0, 1, DATA, len, VIRTQ_DESC_F_NEXT | (data_in ? VIRTQ_DESC_F_WRITE : 0), 2);
    }
    td_desc(&fx->td, 0, 2, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    td_submit(&fx->td, 0, 0);
    if (!td_wait_irq(&fx->td, 1, 5000)) {
        return 0xff;
    }
    g_assert_true(td_used(&fx->td, 0, &id, &ulen));
    g_assert_cmpuint(id, ==, 0);
    g_assert_true(guest_memory_read(fx->mem, STATUS, &status, 1));
    if (used_len) {
        *used_len = ulen;
    }
    return status;
}

static void test_caps(Fixture *fx, gconstpointer data)
{
    TestDriver *td = &fx->td;

    g_assert_cmphex(td_cfg_read(fx->io, td->slot, PCI_DEVICE_ID, 2), ==, 0x1042);
    g_assert_cmphex(td_cfg_read(fx->io, td->slot, PCI_REVISION_ID, 1), ==, 1);
    g_assert_cmphex(td_cfg_read(fx->io, td->slot, PCI_SUBSYSTEM_ID, 2), >=, 0x40);
    g_assert_cmphex(td_cfg_read(fx->io, td->slot, 0x08, 4) >> 8, ==, 0x010000);
    /* Offered: FLUSH, SEG_MAX and VERSION_1. */
    td_mmio_write(fx->io, td->bar + td->common, 0, 4);
    uint64_t f = td_mmio_read(fx->io, td->bar + td->common + 4, 4);
    td_mmio_write(fx->io, td->bar + td->common, 1, 4);
    f |= td_mmio_read(fx->io, td->bar + td->common + 4, 4) << 32;
    g_assert_cmphex(f, ==, F_VERSION_1 | F_FLUSH | F_SEG_MAX);
    /* Capacity in the device configuration. */
    g_assert_cmpuint(td_mmio_read(fx->io, td->bar + td->device, 8), ==, SECTORS);
    g_assert_cmpuint(td_mmio_read(fx->io, td->bar + td->common + 18, 2), ==, 1);
}

static void test_features_refused(Fixture *fx, gconstpointer data)
{
    /* Not offered (EVENT_IDX, bit 29), and no VERSION_1: both refused. */
    g_assert_false(td_negotiate(&fx->td, F_VERSION_1 | (1ULL << 29)));
    g_assert_false(td_negotiate(&fx->td, F_FLUSH));
    g_assert_true(td_negotiate(&fx->td, F_VERSION_1));
    /* DRIVER_OK without FEATURES_OK does not stick. */
    td_set_status(&fx->td, 0);
    td_set_status(&fx->td, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
    g_assert_false(td_status(&fx->td) & VIRTIO_STATUS_DRIVER_OK);
}

static void test_read_write_flush(Fixture *fx, gconstpointer data)
{
    uint8_t pattern[4096], back[4096];
    uint32_t ulen;
    g_autofree char *contents = NULL;
    gsize len;

    fx_ready(fx);
    for (unsigned i = 0; i < sizeof(pattern); i++) {
        pattern[i] = (uint8_t)(i * 7 + 3);
    }
    g_assert_true(guest_memory_write(fx->mem, DATA, pattern, sizeof(pattern)));
    g_assert_cmpuint(blk_request(fx, 1, 8, sizeof(pattern), false, &ulen), ==, 0);
    g_assert_cmpuint(ulen, ==, 1);
    g_assert_cmpuint(blk_request(fx, 4, 0, 0, false, NULL), ==, 0);     /* FLUSH */
    /* On the host's file once the flush completed. */
    g_assert_true(g_file_get_contents(fx->path, &contents, &len, NULL));
    g_assert_cmpuint(len, ==, SECTORS * 512);
    g_assert_cmpmem(contents + 8 * 512, sizeof(pattern), pattern, sizeof(pattern));

    /* Read back into zeroed guest memory; the pages it wrote are dirty. */
    unsigned long bits[1] = { 0 };
    dirty_log_collect(&fx->mem->dirty, 0, 0x600000 / 4096, (unsigned long[0x600000 / 4096 / 64]) { 0 });
    memset(back, 0, sizeof(back));
    g_assert_true(guest_memory_write(fx->mem, DATA, back, sizeof(back)));
    dirty_log_collect(&fx->mem->dirty, 0, 0x600000 / 4096, (unsigned long[0x600000 / 4096 / 64]) { 0 });
    g_assert_cmpuint(blk_request(fx, 0, 8, sizeof(back), true, &ulen), ==, 0);
    g_assert_cmpuint(ulen, ==, sizeof(back) + 1);
    g_assert_true(guest_memory_read(fx->mem, DATA, back, sizeof(back)));
    g_assert_cmpmem(back, sizeof(back), pattern, sizeof(pattern));
    /* Pages: DATA (0x501), STATUS (0x5ff), the used ring (0x108). */
    dirty_log_collect(&fx->mem->dirty, DATA / 4096 & ~63ULL, 64, bits);
    g_assert_true(bits[0] & (1UL << (DATA / 4096 % 64)));
    dirty_log_collect(&fx->mem->dirty, STATUS / 4096 & ~63ULL, 64, bits);
    g_assert_true(bits[0] & (1UL << (STATUS / 4096 % 64)));
    bits[0] = 0;
    dirty_log_collect(&fx->mem->dirty, TD_USED(0) / 4096 & ~63ULL, 64, bits);
    g_assert_true(bits[0] & (1UL << (TD_USED(0) / 4096 % 64)));

    /* Past the end, or not a multiple of a sector: IOERR, device fine. */
    g_assert_cmpuint(blk_request(fx, 0, SECTORS, 512, true, NULL), ==, 1);
    g_assert_cmpuint(blk_request(fx, 1, 0, 100, false, NULL), ==, 1);
    g_assert_cmpuint(blk_request(fx, 0, UINT64_MAX / 256, 512, true, NULL), ==, 1);
    /* Unknown type: UNSUPP. GET_ID: the serial. */
    g_assert_cmpuint(blk_request(fx, 99, 0, 0, false, NULL), ==, 2);
    g_assert_cmpuint(blk_request(fx, 8, 0, 20, true, NULL), ==, 0);
    char id[21] = { 0 };
    g_assert_true(guest_memory_read(fx->mem, DATA, id, 20));
    g_assert_cmpstr(id, ==, "colo-blk0");
    g_assert_false(td_status(&fx->td) & VIRTIO_STATUS_NEEDS_RESET);
    /* ISR: the queue bit, cleared by reading it (not by reading its neighbours). */
    g_assert_cmphex(td_mmio_read(fx->io, fx->td.bar + fx->td.isr + 1, 1), ==, 0);
    g_assert_cmphex(td_mmio_read(fx->io, fx->td.bar + fx->td.isr, 1), ==, 1);
    g_assert_cmphex(td_mmio_read(fx->io, fx->td.bar + fx->td.isr, 1), ==, 0);
}

/* A malformed queue: the device sets DEVICE_NEEDS_RESET, raises the config
 * vector, completes nothing; after a reset it works again. */
static void expect_broken(Fixture *fx)
{
    uint32_t id, len;

    g_assert_true(td_wait_irq(&fx->td, 0, 5000));
    g_assert_true(td_status(&fx->td) & VIRTIO_STATUS_NEEDS_RESET);
    g_assert_true(td_mmio_read(fx->io, fx->td.bar + fx->td.isr, 1) & 2);    /* config change */
    g_assert_false(td_used(&fx->td, 0, &id, &len));
    /* Kicks after that are ignored. */
    td_submit(&fx->td, 0, 0);
    g_assert_false(td_wait_irq(&fx->td, 1, 50));
    fx_ready(fx);
    g_assert_cmpuint(blk_request(fx, 4, 0, 0, false, NULL), ==, 0);
}

static void test_bad_head(Fixture *fx, gconstpointer data)
{
    fx_ready(fx);
    td_submit(&fx->td, 0, 16);      /* queue size is 16 */
    expect_broken(fx);
}

static void test_bad_next(Fixture *fx, gconstpointer data)
{
    fx_ready(fx);
    td_desc(&fx->td, 0, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 300);
    td_submit(&fx->td, 0, 0);
    expect_broken(fx);
}

static void test_loop(Fixture *fx, gconstpointer data)
{
    fx_ready(fx);
    td_desc(&fx->td, 0, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
    td_desc(&fx->td, 0, 1, DATA, 512, VIRTQ_DESC_F_NEXT, 2);
    td_desc(&fx->td, 0, 2, DATA, 512, VIRTQ_DESC_F_NEXT, 0);
    td_submit(&fx->td, 0, 0);
    expect_broken(fx);
}

static void test_oversized_chain(Fixture *fx, gconstpointer data)
{
    fx_ready(fx);
    /* 16 descriptors in a row, the last one chaining on to 0 again: longer
     * than the queue. */
    for (uint16_t i = 0; i < 16; i++) {
        td_desc(&fx->td, 0, i, DATA, 512, VIRTQ_DESC_F_NEXT, (uint16_t)((i + 1) % 16));
    }
    td_submit(&fx->td, 0, 0);
    expect_broken(fx);
}

static void test_buffer_outside_ram(Fixture *fx, gconstpointer data)
{
    fx_ready(fx);
    td_desc(&fx->td, 0, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
    td_desc(&fx->td, 0, 1, (16 << 20) - 256, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
    td_desc(&fx->td, 0, 2, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    td_submit(&fx->td, 0, 0);
    expect_broken(fx);
    /* Wrapping around the address space. */
    td_desc(&fx->td, 0, 0, UINT64_MAX - 8, 16, 0, 0);
    td_submit(&fx->td, 0, 0);
    expect_broken(fx);
}

static void test_writable_then_readable(Fixture *fx, gconstpointer data)
{
    fx_ready(fx);
    td_desc(&fx->td, 0, 0, STATUS, 1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    td_desc(&fx->td, 0, 1, HDR, 16, 0, 0);
    td_submit(&fx->td, 0, 0);
    expect_broken(fx);
}

static void test_indirect(Fixture *fx, gconstpointer data)
{
    fx_ready(fx);
    td_desc(&fx->td, 0, 0, HDR, 64, VIRTQ_DESC_F_INDIRECT, 0);
    td_submit(&fx->td, 0, 0);
    expect_broken(fx);
}

static void test_ring_outside_ram(Fixture *fx, gconstpointer data)
{
    TestDriver *td = &fx->td;
    uint64_t cc = td->bar + td->common;

    g_assert_true(td_negotiate(td, F_VERSION_1 | F_FLUSH));
    td_mmio_write(fx->io, cc + 22, 0, 2);
    td_mmio_write(fx->io, cc + 24, 16, 2);
    td_mmio_write(fx->io, cc + 32, (16 << 20) - 64, 8);   /* 256 bytes of descriptors */
    td_mmio_write(fx->io, cc + 40, TD_AVAIL(0), 8);
    td_mmio_write(fx->io, cc + 48, TD_USED(0), 8);
    td_mmio_write(fx->io, cc + 28, 1, 2);
    g_assert_true(td_status(td) & VIRTIO_STATUS_NEEDS_RESET);
    g_assert_cmpuint(td_mmio_read(fx->io, cc + 28, 2), ==, 0);
    /* Queue size not a power of two, or above the maximum: refused too. */
    g_assert_true(td_negotiate(td, F_VERSION_1));
    g_assert_false(td_status(td) & VIRTIO_STATUS_NEEDS_RESET);
    td_mmio_write(fx->io, cc + 22, 0, 2);
    td_mmio_write(fx->io, cc + 24, 12, 2);
    td_mmio_write(fx->io, cc + 28, 1, 2);
    g_assert_true(td_status(td) & VIRTIO_STATUS_NEEDS_RESET);
    g_assert_true(td_negotiate(td, F_VERSION_1));
    td_mmio_write(fx->io, cc + 22, 0, 2);
    td_mmio_write(fx->io, cc + 24, 4096, 2);
    td_mmio_write(fx->io, cc + 28, 1, 2);
    g_assert_true(td_status(td) & VIRTIO_STATUS_NEEDS_RESET);
    /* A queue index that does not exist reads size 0 and takes no writes. */
    td_mmio_write(fx->io, cc + 22, 7, 2);
    g_assert_cmpuint(td_mmio_read(fx->io, cc + 24, 2), ==, 0);
    td_mmio_write(fx->io, cc + 28, 1, 2);
    g_assert_cmpuint(td_mmio_read(fx->io, cc + 28, 2), ==, 0);
}

static void test_avail_jump(Fixture *fx, gconstpointer data)
{
    uint8_t idx[2] = { 100, 0 };

    fx_ready(fx);
    g_assert_true(guest_memory_write(fx->mem, TD_AVAIL(0) + 2, idx, 2));
    td_mmio_write(fx->io, fx->td.bar + fx->td.notify, 0, 2);
    expect_broken(fx);
}

/* Paused, the I/O thread touches no guest memory; resumed, it catches up. */
static void test_pause(Fixture *fx, gconstpointer data)
{
    VirtioDev *vd = virtio_blk_dev(fx->blk);
    uint32_t id, len;
    uint8_t hdr[16] = { 4 };

    fx_ready(fx);
    g_assert_true(guest_memory_write(fx->mem, HDR, hdr, sizeof(hdr)));
    td_desc(&fx->td, 0, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 2);
    td_desc(&fx->td, 0, 2, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    virtio_dev_pause(vd);
    virtio_dev_pause(vd);           /* nests */
    td_submit(&fx->td, 0, 0);
    g_assert_false(td_wait_irq(&fx->td, 1, 100));
    g_assert_false(td_used(&fx->td, 0, &id, &len));
    virtio_dev_resume(vd);
    g_assert_false(td_wait_irq(&fx->td, 1, 50));
    virtio_dev_resume(vd);
    g_assert_true(td_wait_irq(&fx->td, 1, 5000));
    g_assert_true(td_used(&fx->td, 0, &id, &len));
}

/* Data in several descriptors, the header sharing the first with data and
 * the status byte sharing the last: the device finds the data between. */
static void test_vectored(Fixture *fx, gconstpointer data)
{
    uint8_t hdr[16] = { 1 }, pattern[1536], back[1536], status = 0xee;
    uint32_t id, len;
    g_autofree char *contents = NULL;
    gsize flen;

    fx_ready(fx);
    for (unsigned i = 0; i < sizeof(pattern); i++) {
        pattern[i] = (uint8_t)(i * 13 + 1);
    }
    hdr[8] = 3;                     /* sector 3 */
    /* Write: [header + 500 data], [12 data], [1024 data], [status]. */
    g_assert_true(guest_memory_write(fx->mem, 0x520000, hdr, sizeof(hdr)));
    g_assert_true(guest_memory_write(fx->mem, 0x520010, pattern, 500));
    g_assert_true(guest_memory_write(fx->mem, 0x530000, pattern + 500, 12));
    g_assert_true(guest_memory_write(fx->mem, 0x540000, pattern + 512, 1024));
    g_assert_true(guest_memory_write(fx->mem, STATUS, &status, 1));
    td_desc(&fx->td, 0, 0, 0x520000, 516, VIRTQ_DESC_F_NEXT, 1);
    td_desc(&fx->td, 0, 1, 0x530000, 12, VIRTQ_DESC_F_NEXT, 2);
    td_desc(&fx->td, 0, 2, 0x540000, 1024, VIRTQ_DESC_F_NEXT, 3);
    td_desc(&fx->td, 0, 3, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    td_submit(&fx->td, 0, 0);
    g_assert_true(td_wait_irq(&fx->td, 1, 5000));
    g_assert_true(td_used(&fx->td, 0, &id, &len));
    g_assert_true(guest_memory_read(fx->mem, STATUS, &status, 1));
    g_assert_cmpuint(status, ==, 0);
    g_assert_true(g_file_get_contents(fx->path, &contents, &flen, NULL));
    g_assert_cmpmem(contents + 3 * 512, sizeof(pattern), pattern, sizeof(pattern));

    /* Read: [header], [700 data], [836 data + status]. */
    hdr[0] = 0;
    status = 0xee;
    g_assert_true(guest_memory_write(fx->mem, HDR, hdr, sizeof(hdr)));
    g_assert_true(guest_memory_write(fx->mem, 0x560000 + 836, &status, 1));
    td_desc(&fx->td, 0, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
    td_desc(&fx->td, 0, 1, 0x550000, 700, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
    td_desc(&fx->td, 0, 2, 0x560000, 837, VIRTQ_DESC_F_WRITE, 0);
    td_submit(&fx->td, 0, 0);
    g_assert_true(td_wait_irq(&fx->td, 1, 5000));
    g_assert_true(td_used(&fx->td, 0, &id, &len));
    g_assert_cmpuint(len, ==, sizeof(back) + 1);
    g_assert_true(guest_memory_read(fx->mem, 0x550000, back, 700));
    g_assert_true(guest_memory_read(fx->mem, 0x560000, back + 700, 836));
    g_assert_cmpmem(back, sizeof(back), pattern, sizeof(pattern));
    g_assert_true(guest_memory_read(fx->mem, 0x560000 + 836, &status, 1));
    g_assert_cmpuint(status, ==, 0);
}

/* A filter slid in under a running device sees its writes; taken out, it
 * sees nothing more; the device goes on working throughout. */
static void test_filter_inserted(Fixture *fx, gconstpointer data)
{
    SpyLog log = { 0 };
    BlockNode *raw = virtio_blk_node(fx->blk);
    uint8_t buf[1024];

    g_assert_true(block_node_find(raw, &block_raw_driver) == raw);
    fx_ready(fx);
    BlockNode *filter = spy_new(raw, &log);
    virtio_blk_set_node(fx->blk, filter);
    memset(buf, 0x5a, sizeof(buf));
    g_assert_true(guest_memory_write(fx->mem, DATA, buf, sizeof(buf)));
    g_assert_cmpuint(blk_request(fx, 1, 5, sizeof(buf), false, NULL), ==, 0);
    g_assert_cmpuint(log.writes, ==, 1);
    g_assert_cmpuint(log.offset, ==, 5 * 512);
    g_assert_cmpuint(log.bytes, ==, sizeof(buf));
    /* Reads and flushes go through to the image. */
    memset(buf, 0, sizeof(buf));
    g_assert_true(guest_memory_write(fx->mem, DATA, buf, sizeof(buf)));
    g_assert_cmpuint(blk_request(fx, 0, 5, sizeof(buf), true, NULL), ==, 0);
    g_assert_true(guest_memory_read(fx->mem, DATA, buf, sizeof(buf)));
    g_assert_cmpuint(buf[0], ==, 0x5a);
    g_assert_cmpuint(buf[sizeof(buf) - 1], ==, 0x5a);
    g_assert_cmpuint(blk_request(fx, 4, 0, 0, false, NULL), ==, 0);
    g_assert_cmpuint(log.writes, ==, 1);

    virtio_blk_set_node(fx->blk, raw);
    g_assert_true(block_node_remove_filter(filter) == raw);
    g_assert_cmpuint(blk_request(fx, 1, 7, 512, false, NULL), ==, 0);
    g_assert_cmpuint(log.writes, ==, 1);
}

/* The COLO stacks under a running device: an overlay keeps the guest's
 * writes off the image until discarded; a dirty bitmap above it records
 * the blocks the guest wrote. */
static void test_overlay_and_bitmap(Fixture *fx, gconstpointer data)
{
    BlockNode *raw = virtio_blk_node(fx->blk);
    uint8_t buf[1024], orig[1024];
    g_autofree char *contents = NULL;
    gsize len;

    fx_ready(fx);
    g_assert_cmpuint(blk_request(fx, 0, 5, sizeof(orig), true, NULL), ==, 0);
    g_assert_true(guest_memory_read(fx->mem, DATA, orig, sizeof(orig)));
    BlockNode *overlay = block_overlay_new(raw, 4096, NULL, NULL);
    BlockNode *bitmap = block_dirty_bitmap_new(overlay, 4096, NULL);
    virtio_blk_set_node(fx->blk, bitmap);

    memset(buf, 0x6b, sizeof(buf));
    g_assert_true(guest_memory_write(fx->mem, DATA, buf, sizeof(buf)));
    g_assert_cmpuint(blk_request(fx, 1, 5, sizeof(buf), false, NULL), ==, 0);
    g_assert_cmpuint(blk_request(fx, 4, 0, 0, false, NULL), ==, 0);
    /* Sectors 5-6: 4 KiB block 0; nothing else. */
    g_assert_cmpuint(block_dirty_bitmap_count(bitmap), ==, 1);
    g_assert_true(block_dirty_bitmap_test(bitmap, 0));
    g_assert_true(g_file_get_contents(fx->path, &contents, &len, NULL));
    g_assert_cmpmem(contents + 5 * 512, sizeof(orig), orig, sizeof(orig));
    memset(buf, 0, sizeof(buf));
    g_assert_true(guest_memory_write(fx->mem, DATA, buf, sizeof(buf)));
    g_assert_cmpuint(blk_request(fx, 0, 5, sizeof(buf), true, NULL), ==, 0);
    g_assert_true(guest_memory_read(fx->mem, DATA, buf, sizeof(buf)));
    g_assert_cmpuint(buf[0], ==, 0x6b);

    /* Checkpoint: the overlay is dropped (device paused meanwhile). */
    virtio_dev_pause(virtio_blk_dev(fx->blk));
    g_assert_true(block_node_find(virtio_blk_node(fx->blk), &block_overlay_driver) == overlay);
    g_assert_cmpint(block_overlay_discard_all(overlay), ==, 0);
    virtio_dev_resume(virtio_blk_dev(fx->blk));
    g_assert_cmpuint(blk_request(fx, 0, 5, sizeof(buf), true, NULL), ==, 0);
    g_assert_true(guest_memory_read(fx->mem, DATA, buf, sizeof(buf)));
    g_assert_cmpmem(buf, sizeof(buf), orig, sizeof(orig));
}

/* Guest writes, one per sector in order, each with its sector number + 1. */
typedef struct GuestWriter {
    Fixture *fx;
    gint done;                  /* writes completed */
} GuestWriter;

static gpointer guest_writer(gpointer data)
{
    GuestWriter *gw = data;

    for (uint32_t sector = 0; sector < SECTORS; sector++) {
        uint32_t mark = sector + 1;
        g_assert_true(guest_memory_write(gw->fx->mem, DATA, &mark, sizeof(mark)));
        g_assert_cmpuint(blk_request(gw->fx, 1, sector, 512, false, NULL), ==, 0);
        g_atomic_int_set(&gw->done, (gint)mark);
    }
    return NULL;
}

/* An overlay committed and taken out while the guest writes (COLO's
 * secondary at failover): every write the guest saw complete ends up in
 * the image, none left behind in the overlay that was closed. */
static void test_overlay_removed_while_writing(Fixture *fx, gconstpointer data)
{
    GuestWriter gw = { fx, 0 };
    g_autofree char *contents = NULL;
    gsize len;

    fx_ready(fx);
    BlockNode *raw = virtio_blk_node(fx->blk);
    virtio_blk_set_node(fx->blk, block_overlay_new(raw, 512, NULL, NULL));
    GThread *writer = g_thread_new("guest", guest_writer, &gw);
    while (g_atomic_int_get(&gw.done) < SECTORS / 4) {
        g_usleep(100);
    }
    g_assert_cmpint(virtio_blk_remove_filter(fx->blk, block_overlay_commit), ==, 0);
    g_thread_join(writer);
    g_assert_true(virtio_blk_node(fx->blk) == raw);
    g_assert_true(g_file_get_contents(fx->path, &contents, &len, NULL));
    for (uint32_t sector = 0; sector < SECTORS; sector++) {
        uint32_t mark;
        memcpy(&mark, contents + sector * 512, sizeof(mark));
        g_assert_cmpuint(mark, ==, sector + 1);
    }
    /* Nothing to take out of a bare image. */
    g_assert_cmpint(virtio_blk_remove_filter(fx->blk, NULL), ==, -EINVAL);
}

/* Transport state survives save/load; a forged stream is refused. */
static void test_state(Fixture *fx, gconstpointer data)
{
    VirtioDev *vd = virtio_blk_dev(fx->blk);
    g_autoptr(GByteArray) buf = g_byte_array_new();
    StateWriter w = { buf };
    StateReader r;

    fx_ready(fx);
    g_assert_cmpuint(blk_request(fx, 4, 0, 0, false, NULL), ==, 0);
    virtio_dev_pause(vd);
    g_assert_true(virtio_dev_state_ops.save(vd, &w, NULL));
    virtio_dev_resume(vd);
    virtio_dev_reset(vd);
    g_assert_cmpuint(td_status(&fx->td), ==, 0);
    state_reader_init(&r, buf->data, buf->len);
    g_assert_true(virtio_dev_state_ops.load(vd, &r, 1, NULL));
    g_assert_cmphex(td_status(&fx->td), ==, 0x0f);
    /* The queue carries on where it was: the next request completes. */
    g_assert_cmpuint(blk_request(fx, 4, 0, 0, false, NULL), ==, 0);

    /* Features the device never offered: refused, device left reset. */
    g_autoptr(GError) error = NULL;
    buf->data[8 + 3] |= 0x20;      /* driver_features bit 29 */
    state_reader_init(&r, buf->data, buf->len);
    g_assert_false(virtio_dev_state_ops.load(vd, &r, 1, &error));
    g_assert_nonnull(error);
    g_assert_cmpuint(td_status(&fx->td), ==, 0);
    buf->data[8 + 3] &= (uint8_t)~0x20;
    state_reader_init(&r, buf->data, buf->len - 3);
    g_clear_error(&error);
    g_assert_false(virtio_dev_state_ops.load(vd, &r, 1, &error));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fx_setup, fn, fx_teardown)
    ADD("/virtio/blk/caps", test_caps);
    ADD("/virtio/blk/features-refused", test_features_refused);
    ADD("/virtio/blk/read-write-flush", test_read_write_flush);
    ADD("/virtio/blk/vectored", test_vectored);
    ADD("/virtio/blk/filter-inserted", test_filter_inserted);
    ADD("/virtio/blk/overlay-and-bitmap", test_overlay_and_bitmap);
    ADD("/virtio/blk/overlay-removed-while-writing", test_overlay_removed_while_writing);
    ADD("/virtio/blk/pause", test_pause);
    ADD("/virtio/blk/state", test_state);
    ADD("/virtio/malformed/head-out-of-range", test_bad_head);
    ADD("/virtio/malformed/next-out-of-range", test_bad_next);
    ADD("/virtio/malformed/loop", test_loop);
    ADD("/virtio/malformed/oversized-chain", test_oversized_chain);
    ADD("/virtio/malformed/buffer-outside-ram", test_buffer_outside_ram);
    ADD("/virtio/malformed/writable-then-readable", test_writable_then_readable);
    ADD("/virtio/malformed/indirect", test_indirect);
    ADD("/virtio/malformed/ring-outside-ram", test_ring_outside_ram);
    ADD("/virtio/malformed/avail-index-jump", test_avail_jump);
    return g_test_run();
}
