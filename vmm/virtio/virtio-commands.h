/* QMP commands of the virtio devices: announce-self (QEMU's: broadcast a
 * RARP from every NIC so the network learns where the guest is). */
#ifndef COLO_VMM_VIRTIO_VIRTIO_COMMANDS_H
#define COLO_VMM_VIRTIO_VIRTIO_COMMANDS_H

#include "common/qmp/qmp-server.h"
#include "vm.h"

void virtio_commands_register(QmpServer *qmp, Vm *vm);

/* RARP from every NIC; what a destination does after a migration. */
void virtio_announce_all(Vm *vm);

#endif
