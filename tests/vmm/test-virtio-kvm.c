/* virtio-blk in a whole colo-vmm VM on real KVM: a tiny PVH guest kicks a
 * request the test queued, the kick reaches the I/O thread by ioeventfd,
 * the completion comes back as an MSI-X message through irqfd and the
 * guest's interrupt handler reports it on COM1. Skips without /dev/kvm. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "boot-images.h"
#include "kvm-open.h"
#include "common/log.h"
#include "chardev.h"
#include "pci/pci.h"
#include "virtio-driver.h"
#include "virtio/virtio-blk.h"
#include "vcpu.h"
#include "vm.h"

#define IDTR_ADDR 0x7f000
#define IDT_ADDR 0x80000
#define HDR 0x500000ULL
#define DATA 0x501000ULL
#define STATUS 0x502000ULL
#define SECTOR 3

/* 32-bit code at @base: mask the PICs, load the IDT, software-enable the
 * LAPIC, sti, publish the queued request, kick queue 0 at @notify, hlt. Vector 0x41 (queue 0's
 * MSI-X message) prints IRQ41, any other vector X; both stop the CPU. */
static void guest_code(Code *c, uint32_t base, uint32_t notify, uint32_t *irq_handler, uint32_t *other_handler)
{
    EMIT(c, 0x66, 0xba, 0xf8, 0x03);               /* mov dx, 0x3f8 */
    EMIT(c, 0xb0, 0xff, 0xe6, 0x21, 0xe6, 0xa1);   /* mov al, 0xff; out 0x21, al; out 0xa1, al */
    EMIT(c, 0x0f, 0x01, 0x1d);                     /* lidt [IDTR_ADDR] */
    code_emit_u32(c, IDTR_ADDR);
    EMIT(c, 0xc7, 0x05);                           /* mov dword [LAPIC SVR], 0x1ff */
    code_emit_u32(c, 0xfee000f0);
    code_emit_u32(c, 0x1ff);
    code_emit_out_str(c, "GO\n");
    EMIT(c, 0xfb);                                 /* sti */
    EMIT(c, 0x66, 0xc7, 0x05);                     /* mov word [avail.idx], 1: publish */
    code_emit_u32(c, (uint32_t)TD_AVAIL(0) + 2);
    EMIT(c, 0x01, 0x00);
    EMIT(c, 0x66, 0xc7, 0x05);                     /* mov word [notify], 0 */
    code_emit_u32(c, notify);
    EMIT(c, 0x00, 0x00);
    EMIT(c, 0xf4, 0xeb, 0xfd);                     /* hlt; jmp hlt */
    *irq_handler = base + (uint32_t)c->n;
    code_emit_out_str(c, "IRQ41\n");
    EMIT(c, 0xfa, 0xf4, 0xeb, 0xfc);               /* cli; hlt; jmp back */
    *other_handler = base + (uint32_t)c->n;
    code_emit_out_str(c, "X\n");
    EMIT(c, 0xfa, 0xf4, 0xeb, 0xfc);
}

static void write_idt(GuestMemory *mem, uint32_t irq_handler, uint32_t other_handler)
{
    uint8_t idt[256 * 8], idtr[6];

    for (unsigned v = 0; v < 256; v++) {
        uint32_t h = v == 0x41 ? irq_handler : other_handler;
        uint8_t *e = idt + 8 * v;
        e[0] = (uint8_t)h;
        e[1] = (uint8_t)(h >> 8);
        e[2] = 0x08;                /* 32-bit code selector of the boot GDT */
        e[3] = 0;
        e[4] = 0;
        e[5] = 0x8e;                /* present, interrupt gate */
        e[6] = (uint8_t)(h >> 16);
        e[7] = (uint8_t)(h >> 24);
    }
    idtr[0] = 0xff;
    idtr[1] = 0x07;
    idtr[2] = (uint8_t)IDT_ADDR;
    idtr[3] = (uint8_t)(IDT_ADDR >> 8);
    idtr[4] = (uint8_t)(IDT_ADDR >> 16);
    idtr[5] = 0;
    g_assert_true(guest_memory_write(mem, IDT_ADDR, idt, sizeof(idt)));
    g_assert_true(guest_memory_write(mem, IDTR_ADDR, idtr, sizeof(idtr)));
}

static void test_kvm_blk(void)
{
    int kfd = test_open_kvm();
    if (kfd < 0) {
        return;
    }
    close(kfd);

    g_autofree char *disk = NULL, *serial_path = NULL;
    int fd = g_file_open_tmp("kvm-blk-XXXXXX", &disk, NULL);
    g_assert_cmpint(ftruncate(fd, 64 * 512), ==, 0);
    close(fd);
    fd = g_file_open_tmp("kvm-serial-XXXXXX", &serial_path, NULL);
    close(fd);

    /* The kernel's code needs the notify address, known once the VM
     * exists; the VMM assigns BAR0 of the first device at the window
     * base, so build it from that and check below. */
    uint32_t notify = (uint32_t)PCI_MMIO_ASSIGN_BASE + VIRTIO_PCI_NOTIFY_OFF;
    TestElfOpts eo = test_elf_defaults();
    Code code = { .n = 0 };
    uint32_t irq_handler, other_handler;
    guest_code(&code, (uint32_t)eo.paddr, notify, &irq_handler, &other_handler);
    eo.text = code.b;
    eo.text_len = code.n;
    eo.entry = eo.paddr;
    g_autoptr(GBytes) kernel = test_elf_build(&eo);
    gsize klen;
    const void *kdata = g_bytes_get_data(kernel, &klen);
    g_autofree char *kpath = test_tmpfile(kdata, klen);

    g_autoptr(GError) error = NULL;
    g_autofree char *spec = g_strdup_printf("file:%s", serial_path);
    Chardev *chr = chardev_new(spec, NULL, &error);
    g_assert_no_error(error);
    VirtioBlkConfig bc = { .file = disk };
    g_autoptr(GPtrArray) drives = g_ptr_array_new();
    g_ptr_array_add(drives, &bc);
    VmConfig cfg = {
        .name = "virtio-kvm", .ncpus = 1, .memory = { .size = 64 << 20 },
        .boot = { .kernel = kpath, .cmdline = "", .ncpus = 1 }, .serial = chr, .drives = drives,
    };
    Vm *vm = vm_new(&cfg, g_main_context_default(), &error);
    g_assert_no_error(error);
    g_assert_nonnull(vm);

    /* Set the device up from the host side as the guest's driver would,
     * and queue one 512-byte write; the guest only kicks. */
    VirtioDev *vd = virtio_blk_dev(vm->virtio_blks->pdata[0]);
    TestDriver td;
    td_probe(&td, vm->iobus, vm->mem, vd);
    g_assert_cmphex(td.bar + td.notify, ==, notify);
    g_assert_true(td_negotiate(&td, (1ULL << 32) | (1ULL << 9)));
    td_setup_queue(&td, 0, 16);
    td_driver_ok(&td);
    write_idt(vm->mem, irq_handler, other_handler);
    uint8_t hdr[16] = { 1, 0, 0, 0, 0, 0, 0, 0, SECTOR }, data[512], status = 0xee;
    for (unsigned i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)(i ^ 0xa5);
    }
    g_assert_true(guest_memory_write(vm->mem, HDR, hdr, sizeof(hdr)));
    g_assert_true(guest_memory_write(vm->mem, DATA, data, sizeof(data)));
    g_assert_true(guest_memory_write(vm->mem, STATUS, &status, 1));
    td_desc(&td, 0, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
    td_desc(&td, 0, 1, DATA, 512, VIRTQ_DESC_F_NEXT, 2);
    td_desc(&td, 0, 2, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    /* ring[0] = 0, idx still 0: the guest publishes it before its kick,
     * so nothing completes before its interrupt handler is in place. */
    uint8_t avail[6] = { 0, 0, 0, 0, 0, 0 };
    g_assert_true(guest_memory_write(vm->mem, TD_AVAIL(0), avail, sizeof(avail)));

    g_assert_true(vm_start(vm, false, &error));
    g_autofree char *out = NULL;
    gint64 deadline = g_get_monotonic_time() + 20 * G_TIME_SPAN_SECOND;
    while (g_get_monotonic_time() < deadline) {
        g_main_context_iteration(NULL, FALSE);
        g_free(out);
        out = NULL;
        g_file_get_contents(serial_path, &out, NULL, NULL);
        if (out && (strstr(out, "IRQ41") || strchr(out, 'X'))) {
            break;
        }
        g_usleep(20000);
    }
    g_assert_nonnull(out);
    if (strcmp(out, "GO\nIRQ41\n") != 0) {
        uint8_t st = 0;
        guest_memory_read(vm->mem, STATUS, &st, 1);
        g_test_message("no interrupt: request status 0x%02x, used_idx %u, last_avail %u, "
                       "slow kicks %u, MSI-X pending 0x%" G_GINT64_MODIFIER "x ctrl 0x%x",
                       st, vd->vqs[0].used_idx, vd->vqs[0].last_avail, vd->slow_kicks,
                       vd->msix.pending, vd->msix.ctrl);
    }
    g_assert_cmpstr(out, ==, "GO\nIRQ41\n");
    g_assert_true(guest_memory_read(vm->mem, STATUS, &status, 1));
    g_assert_cmpuint(status, ==, 0);
    g_autofree char *contents = NULL;
    gsize len;
    g_assert_true(g_file_get_contents(disk, &contents, &len, NULL));
    g_assert_cmpmem(contents + SECTOR * 512, 512, data, sizeof(data));
    if (vd->ioeventfd) {
        g_assert_cmpuint(vd->slow_kicks, ==, 0);
    } else {
        g_test_message("no ioeventfd here: the kick came as an MMIO exit");
    }

    /* Stop-the-world stops the device thread too, and lets it go again. */
    vm_pause_vcpus(vm);
    g_assert_cmpuint(vd->paused, ==, 1);
    vm_resume_vcpus(vm);
    g_assert_cmpuint(vd->paused, ==, 0);

    vm_free(vm);
    chardev_free(chr);
    g_unlink(disk);
    g_unlink(serial_path);
    g_unlink(kpath);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    vcpu_init_signals();
    colo_log_init("test-virtio-kvm", NULL, false, NULL, g_getenv("COLO_TEST_DEBUG") != NULL, NULL);
    g_test_add_func("/virtio/kvm/blk-ioeventfd-irqfd", test_kvm_blk);
    int ret = g_test_run();
    /* Closes the blackbox, whose files would otherwise stay in /dev/shm. */
    colo_log_fini();
    return ret;
}
