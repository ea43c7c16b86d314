/* The small VM the migration fuzz targets load into: 2 MiB of RAM, room for
 * two DIMMs of up to 8 MiB, serial, CMOS, ACPI PM; no KVM, no vCPU. */
#ifndef COLO_TESTS_FUZZ_VM_H
#define COLO_TESTS_FUZZ_VM_H

#include <stddef.h>
#include <stdint.h>

#include "migration/channel.h"
#include "migration/migration.h"
#include "vm.h"

extern Vm fuzz_vm;

/* The VM and its Migration, made on the first call. */
Migration *fuzz_vm_migration(void);
/* RAM and DIMMs afresh (an input that added a DIMM must not change what
 * the next one finds), if the last input added any. */
void fuzz_vm_reset_memory(void);
/* @data as a readable channel. */
MigChannel *fuzz_channel(const uint8_t *data, size_t size);

#endif
