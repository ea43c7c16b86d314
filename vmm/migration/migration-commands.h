/* QMP commands of live migration, with QEMU's names and arguments. */
#ifndef COLO_VMM_MIGRATION_COMMANDS_H
#define COLO_VMM_MIGRATION_COMMANDS_H

#include "migration/migration.h"
#include "common/qmp/qmp-server.h"

void migration_commands_register(QmpServer *qmp, Migration *m);

#endif
