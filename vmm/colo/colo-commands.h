/* QMP commands of COLO: QEMU's query-colo-status and x-colo-lost-heartbeat,
 * and x-colo-checkpoint (ours: a checkpoint now). */
#ifndef COLO_VMM_COLO_COLO_COMMANDS_H
#define COLO_VMM_COLO_COLO_COMMANDS_H

#include "migration/migration.h"
#include "common/qmp/qmp-server.h"

void colo_commands_register(QmpServer *qmp, Migration *m);

#endif
