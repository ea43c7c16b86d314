/* The QMP commands that act on the VM as a whole: run state, power, reset,
 * vCPU and memory inspection. */
#ifndef COLO_VMM_VM_COMMANDS_H
#define COLO_VMM_VM_COMMANDS_H

#include "common/qmp/qmp-server.h"
#include "vm.h"

void vm_commands_register(QmpServer *qmp, Vm *vm);

#endif
