/* QMP commands for RAM hot-add, in QEMU's names: object-add / object-del
 * of memory backends, device_add / device_del of pc-dimm,
 * query-memory-devices, query-memory-size-summary, query-memdev. And the
 * same objects and devices from the command line (-object, -device
 * pc-dimm), which exist before the guest starts. */
#ifndef COLO_VMM_DIMM_COMMANDS_H
#define COLO_VMM_DIMM_COMMANDS_H

#include <stdbool.h>
#include <glib.h>

#include "common/qmp/qmp-server.h"
#include "vm.h"

void dimm_commands_register(QmpServer *qmp, Vm *vm);

/* "-object memory-backend-ram,id=mem1,size=64M" and
 * "-device pc-dimm,id=dimm1,memdev=mem1[,slot=N][,addr=A]" (the spec
 * without the option name), in command-line order. */
bool dimm_cmdline_object(Vm *vm, const char *spec, GError **error);
bool dimm_cmdline_device(Vm *vm, const char *spec, GError **error);

#endif
