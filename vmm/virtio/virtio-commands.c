#include "config.h"

#include "virtio/virtio-commands.h"

#include <qb/qblog.h>

#include "common/qmp/qmp-args.h"
#include "virtio/virtio-net.h"

void virtio_announce_all(Vm *vm)
{
    for (guint i = 0; i < vm->virtio_nets->len; i++) {
        virtio_net_announce(vm->virtio_nets->pdata[i]);
    }
    if (vm->virtio_nets->len) {
        qb_log(LOG_INFO, "VM %s: announced %u NIC(s)", vm->name, vm->virtio_nets->len);
    }
}

/* QEMU's arguments (initial, max, rounds, step, interfaces, id) are
 * accepted; one round goes out at once, whatever they say: the tests and
 * colod want the bridge updated now, not over the next seconds. */
static JsonNode *cmd_announce_self(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { "initial", "max", "rounds", "step", "interfaces", "id", NULL };

    if (qmp_args_check(args, allowed, error)) {
        virtio_announce_all(opaque);
    }
    return NULL;
}

void virtio_commands_register(QmpServer *qmp, Vm *vm)
{
    qmp_server_register(qmp, "announce-self", cmd_announce_self, vm);
}
