#include "config.h"

#include "fuzz-vm.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <glib.h>
#include <qb/qblog.h>

#include "devices/acpi-pm.h"
#include "devices/cmos.h"
#include "devices/serial.h"
#include "dimm.h"
#include "migration/migration-priv.h"

Vm fuzz_vm;
static Migration *mig;

static void fuzz_memory(void)
{
    GuestMemoryConfig cfg = { .size = 2 << 20 };

    if (mig) {
        ram_load_state_clear(&mig->dst.ram);
    }
    dimms_free(fuzz_vm.dimms);
    guest_memory_free(fuzz_vm.mem);
    fuzz_vm.mem = guest_memory_new(&cfg, NULL);
    fuzz_vm.dimms = dimms_new(fuzz_vm.mem, NULL, NULL, 10 << 20, 2, NULL);
    if (mig) {
        /* The migration's view of the VM follows the new memory. */
        mig->host.mem = fuzz_vm.mem;
        mig->host.dimms = fuzz_vm.dimms;
    }
}

Migration *fuzz_vm_migration(void)
{
    if (mig) {
        return mig;
    }
    Vm *vm = &fuzz_vm;
    qb_log_init("fuzz", LOG_USER, LOG_EMERG);
    qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_FALSE);
    fuzz_memory();
    vm->iobus = iobus_new();
    vm->ctx = g_main_context_default();
    vm->pause_hooks = g_array_new(FALSE, FALSE, sizeof(VmPauseHook));
    vm->virtio_nets = g_ptr_array_new();
    vm->virtio_blks = g_ptr_array_new();
    vmstate_registry_init(&vm->vmstate);
    Chardev *chr = chardev_new("none", NULL, NULL);
    vm->serial = serial_new(vm->iobus, NULL, SERIAL_COM1_PORT, SERIAL_COM1_IRQ, chr, NULL);
    vm->cmos = cmos_new(vm->iobus, vm->mem, 1, NULL);
    vm->pm = acpi_pm_new(vm->iobus, NULL, NULL, NULL, NULL);
    vmstate_register(&vm->vmstate, &serial_state_ops, 0, vm->serial);
    vmstate_register(&vm->vmstate, &cmos_state_ops, 0, vm->cmos);
    vmstate_register(&vm->vmstate, &acpi_pm_state_ops, 0, vm->pm);
    MigrationHost host = vm_migration_host(vm);
    mig = migration_new(&host);
    return mig;
}

void fuzz_vm_reset_memory(void)
{
    if (guest_memory_nr_blocks(fuzz_vm.mem) > 1) {
        fuzz_memory();
    }
}

MigChannel *fuzz_channel(const uint8_t *data, size_t size)
{
    int fd = memfd_create("stream", MFD_CLOEXEC);

    if (fd < 0 || write(fd, data, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET) != 0) {
        abort();
    }
    return mig_channel_new(fd);
}
