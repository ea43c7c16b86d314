/* virtio-blk throughput through the device model (not a test): batches of
 * 64 requests of 128 KiB (header, one data descriptor, status) published at
 * once with one kick, on a 64 MiB raw image in the page cache, through a
 * chosen block stack. Measures the VMM's side of disk I/O: the ring walk,
 * the block layer, the file I/O and the completion interrupts; no guest.
 *
 *   tests/vmm/blk-bench read|write [raw|bitmap|overlay] [batches]
 *
 * raw: the image alone; bitmap: a dirty-block bitmap (64 KiB) over it;
 * overlay: a copy-on-write overlay (4 KiB, memfd) over it. Prints MiB/s. */
#include "config.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/dirty-bitmap.h"
#include "block/overlay.h"
#include "block/raw.h"
#include "iobus.h"
#include "memory.h"
#include "pci/pci.h"
#include "virtio-driver.h"
#include "virtio/virtio-blk.h"

#define NREQ 64
#define REQ_BYTES (128 * 1024)
#define IMAGE_BYTES (64ULL << 20)
#define HDRS 0x500000ULL        /* 32 bytes per request: header, status */
#define DATA 0x600000ULL        /* REQ_BYTES per request */
#define F_FLUSH (1ULL << 9)
#define F_VERSION_1 (1ULL << 32)

static char *make_image(void)
{
    char *path = NULL;
    int fd = g_file_open_tmp("blk-bench-XXXXXX", &path, NULL);
    g_autofree uint8_t *chunk = g_malloc(1 << 20);

    if (fd < 0) {
        return NULL;
    }
    memset(chunk, 0x33, 1 << 20);
    for (uint64_t done = 0; done < IMAGE_BYTES; done += 1 << 20) {
        if (write(fd, chunk, 1 << 20) != 1 << 20) {
            close(fd);
            g_unlink(path);
            g_free(path);
            return NULL;
        }
    }
    close(fd);
    return path;
}

static BlockNode *make_stack(const char *path, const char *kind)
{
    BlockNode *node = block_raw_open(path, false, NULL);

    if (node && !strcmp(kind, "bitmap")) {
        node = block_dirty_bitmap_new(node, 0, NULL);
    } else if (node && !strcmp(kind, "overlay")) {
        node = block_overlay_new(node, 0, NULL, NULL);
    } else if (node && strcmp(kind, "raw")) {
        block_node_close(node);
        node = NULL;
    }
    return node;
}

/* One batch: NREQ requests at consecutive offsets from *@sector. */
static void run_batch(TestDriver *td, GuestMemory *mem, bool write, uint64_t *sector)
{
    for (unsigned r = 0; r < NREQ; r++) {
        uint8_t hdr[16] = { write ? 1 : 0 };
        uint16_t d = (uint16_t)(3 * r);
        for (unsigned k = 0; k < 8; k++) {
            hdr[8 + k] = (uint8_t)(*sector >> (8 * k));
        }
        *sector = (*sector + REQ_BYTES / 512) % (IMAGE_BYTES / 512);
        guest_memory_write(mem, HDRS + 32 * r, hdr, sizeof(hdr));
        td_desc(td, 0, d, HDRS + 32 * r, 16, VIRTQ_DESC_F_NEXT, d + 1);
        td_desc(td, 0, d + 1, DATA + (uint64_t)REQ_BYTES * r, REQ_BYTES,
                VIRTQ_DESC_F_NEXT | (write ? 0 : VIRTQ_DESC_F_WRITE), d + 2);
        td_desc(td, 0, d + 2, HDRS + 32 * r + 16, 1, VIRTQ_DESC_F_WRITE, 0);
        if (r == NREQ - 1) {
            td_submit(td, 0, d);
        } else {
            td_publish(td, 0, d);
        }
    }
    for (unsigned done = 0; done < NREQ;) {
        uint32_t id, len;
        while (td_used(td, 0, &id, &len)) {
            done++;
        }
        if (done < NREQ) {
            td_wait_irq(td, 1, 1000);
        }
    }
}

int main(int argc, char **argv)
{
    GuestMemoryConfig mc = { .size = 64 << 20 };
    TestDriver td;
    uint64_t sector = 0;

    if (argc < 2 || (strcmp(argv[1], "read") && strcmp(argv[1], "write"))) {
        fprintf(stderr, "usage: %s read|write [raw|bitmap|overlay] [batches]\n", argv[0]);
        return 2;
    }
    bool write = argv[1][0] == 'w';
    const char *kind = argc > 2 ? argv[2] : "raw";
    int batches = argc > 3 ? atoi(argv[3]) : 200;
    g_autofree char *path = make_image();
    BlockNode *node = path ? make_stack(path, kind) : NULL;
    if (!node || batches <= 0) {
        fprintf(stderr, "blk-bench: cannot set up (%s)\n", path ? kind : "image");
        return 1;
    }
    IoBus *io = iobus_new();
    GuestMemory *mem = guest_memory_new(&mc, NULL);
    PciBus *bus = pci_bus_new(io, NULL, NULL);
    VirtioBlk *blk = virtio_blk_new_node(bus, mem, node, 0, NULL);
    if (!mem || !blk || !virtio_dev_start(virtio_blk_dev(blk), NULL)) {
        fprintf(stderr, "blk-bench: cannot create the device\n");
        return 1;
    }
    td_probe(&td, io, mem, virtio_blk_dev(blk));
    td_negotiate(&td, F_VERSION_1 | F_FLUSH);
    td_setup_queue(&td, 0, 256);
    td_driver_ok(&td);
    run_batch(&td, mem, write, &sector);        /* warm-up */
    gint64 t0 = g_get_monotonic_time();
    for (int b = 0; b < batches; b++) {
        run_batch(&td, mem, write, &sector);
    }
    double secs = (double)(g_get_monotonic_time() - t0) / 1e6;
    printf("%s %s: %d x %d x %d KiB in %.3f s: %.0f MiB/s\n", argv[1], kind, batches, NREQ,
           REQ_BYTES / 1024, secs, (double)batches * NREQ * REQ_BYTES / (1 << 20) / secs);
    virtio_blk_free(blk);
    pci_bus_free(bus);
    guest_memory_free(mem);
    iobus_free(io);
    g_unlink(path);
    return 0;
}
