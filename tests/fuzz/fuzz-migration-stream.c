/* libFuzzer target: arbitrary bytes as an incoming migration stream, into
 * a small VM (2 MiB of RAM, room for two DIMMs of up to 8 MiB, serial, CMOS,
 * ACPI PM; no KVM). The loader must refuse bad input with an error, never
 * crash or write outside RAM. */
#include "config.h"

#include <stdint.h>
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
#include "migration/migration.h"
#include "vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static Vm vm;
static Migration *mig;

/* RAM and DIMMs afresh: an input that added a DIMM must not change what
 * the next one finds. */
static void fuzz_memory(void)
{
    GuestMemoryConfig cfg = { .size = 2 << 20 };

    if (mig) {
        ram_load_state_clear(&mig->in_ram);
    }
    dimms_free(vm.dimms);
    guest_memory_free(vm.mem);
    vm.mem = guest_memory_new(&cfg, NULL);
    vm.dimms = dimms_new(vm.mem, NULL, NULL, 10 << 20, 2, NULL);
}

static void fuzz_setup(void)
{
    qb_log_init("fuzz", LOG_USER, LOG_EMERG);
    qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_FALSE);
    fuzz_memory();
    vm.iobus = iobus_new();
    vm.ctx = g_main_context_default();
    vmstate_registry_init(&vm.vmstate);
    Chardev *chr = chardev_new("none", NULL, NULL);
    vm.serial = serial_new(vm.iobus, NULL, SERIAL_COM1_PORT, SERIAL_COM1_IRQ, chr, NULL);
    vm.cmos = cmos_new(vm.iobus, vm.mem, 1, NULL);
    vm.pm = acpi_pm_new(vm.iobus, NULL, NULL, NULL, NULL);
    vmstate_register(&vm.vmstate, &serial_state_ops, 0, vm.serial);
    vmstate_register(&vm.vmstate, &cmos_state_ops, 0, vm.cmos);
    vmstate_register(&vm.vmstate, &acpi_pm_state_ops, 0, vm.pm);
    mig = migration_new(&vm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!mig) {
        fuzz_setup();
    }
    int fd = memfd_create("stream", MFD_CLOEXEC);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET) != 0) {
        abort();
    }
    MigChannel *c = mig_channel_new(fd);
    GError *error = NULL;
    uint8_t kind, index;
    bool ok = migration_read_hello(c, &kind, &index, &error) &&
              migration_incoming_load(mig, c, &error);
    /* Either it loaded, or it says why. */
    if (!ok && !error) {
        abort();
    }
    g_clear_error(&error);
    mig_channel_free(c);
    g_mutex_lock(&mig->rp_lock);
    mig_channel_free(mig->in_rp);
    mig->in_rp = NULL;
    g_mutex_unlock(&mig->rp_lock);
    if (guest_memory_nr_blocks(vm.mem) > 1) {
        fuzz_memory();
    }
    return 0;
}
