#include "config.h"

#include "vm-commands.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <unistd.h>

#include <qb/qblog.h>

static JsonNode *json_node_from_object(JsonObject *obj)
{
    JsonNode *node = json_node_new(JSON_NODE_OBJECT);

    json_node_take_object(node, obj);
    return node;
}

static JsonNode *cmd_query_status(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { NULL };
    Vm *vm = opaque;

    if (!qmp_args_check(args, allowed, error)) {
        return NULL;
    }
    JsonObject *ret = json_object_new();
    json_object_set_string_member(ret, "status", run_state_name(vm->state));
    json_object_set_boolean_member(ret, "singlestep", FALSE);
    json_object_set_boolean_member(ret, "running", run_state_is_running(vm->state));
    return json_node_from_object(ret);
}

static JsonNode *cmd_stop(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { NULL };
    Vm *vm = opaque;

    if (!qmp_args_check(args, allowed, error)) {
        return NULL;
    }
    if (vm->state == RUN_STATE_INMIGRATE) {
        vm->autostart = false;  /* as QEMU: stay paused when the load ends */
    } else {
        vm_stop(vm, RUN_STATE_PAUSED);
    }
    return NULL;
}

static JsonNode *cmd_cont(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { NULL };

    if (qmp_args_check(args, allowed, error)) {
        vm_cont(opaque, error);
    }
    return NULL;
}

static gboolean quit_later(gpointer opaque)
{
    vm_shutdown(opaque, SHUTDOWN_CAUSE_HOST_QMP_QUIT);
    return G_SOURCE_REMOVE;
}

static JsonNode *cmd_quit(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { NULL };
    Vm *vm = opaque;

    if (!qmp_args_check(args, allowed, error)) {
        return NULL;
    }
    /* Reply first, then SHUTDOWN, as QEMU. */
    GSource *src = g_idle_source_new();
    g_source_set_priority(src, G_PRIORITY_LOW);
    g_source_set_callback(src, quit_later, vm, NULL);
    g_source_attach(src, vm->ctx);
    g_source_unref(src);
    return NULL;
}

static JsonNode *cmd_system_powerdown(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { NULL };

    if (qmp_args_check(args, allowed, error)) {
        vm_powerdown(opaque);
    }
    return NULL;
}

static JsonNode *cmd_system_reset(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { NULL };

    if (qmp_args_check(args, allowed, error)) {
        vm_reset(opaque, SHUTDOWN_CAUSE_HOST_QMP_SYSTEM_RESET, error);
    }
    return NULL;
}

static JsonNode *cmd_query_cpus_fast(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { NULL };
    Vm *vm = opaque;

    if (!qmp_args_check(args, allowed, error)) {
        return NULL;
    }
    JsonArray *cpus = json_array_new();
    for (unsigned i = 0; i < vm->ncpus; i++) {
        JsonObject *cpu = json_object_new();
        JsonObject *props = json_object_new();
        g_autofree char *path = g_strdup_printf("/machine/unattached/device[%u]", i);
        json_object_set_int_member(props, "core-id", 0);
        json_object_set_int_member(props, "thread-id", 0);
        json_object_set_int_member(props, "socket-id", i);
        json_object_set_int_member(cpu, "cpu-index", i);
        json_object_set_string_member(cpu, "qom-path", path);
        json_object_set_int_member(cpu, "thread-id", vm->vcpus[i]->tid);
        json_object_set_object_member(cpu, "props", props);
        json_object_set_string_member(cpu, "target", "x86_64");
        json_array_add_object_element(cpus, cpu);
    }
    JsonNode *node = json_node_new(JSON_NODE_ARRAY);
    json_node_take_array(node, cpus);
    return node;
}

static JsonNode *cmd_query_name(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { NULL };
    Vm *vm = opaque;

    if (!qmp_args_check(args, allowed, error)) {
        return NULL;
    }
    JsonObject *ret = json_object_new();
    json_object_set_string_member(ret, "name", vm->name);
    return json_node_from_object(ret);
}

/* pmemsave: guest-physical memory to a file, read while the guest may run
 * (pause it first for a consistent image). */
static JsonNode *cmd_pmemsave(JsonObject *args, gpointer opaque, GError **error)
{
    static const char *const allowed[] = { "val", "size", "filename", NULL };
    Vm *vm = opaque;
    gint64 addr, size;
    const char *filename;

    if (!qmp_args_check(args, allowed, error) ||
        !qmp_arg_int(args, "val", true, &addr, error) ||
        !qmp_arg_int(args, "size", true, &size, error) ||
        !qmp_arg_string(args, "filename", true, &filename, error)) {
        return NULL;
    }
    uint64_t start = (uint64_t)addr, len = (uint64_t)size;
    if (addr < 0 || size < 0 || start + len < start) {
        g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC, "Invalid parameter 'val'/'size'");
        return NULL;
    }
    int fd = open(filename, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC, "Could not open '%s': %s",
                    filename, g_strerror(errno));
        return NULL;
    }
    g_autofree uint8_t *buf = g_malloc(1 << 20);
    for (uint64_t done = 0; done < len;) {
        size_t chunk = (size_t)MIN(len - done, (uint64_t)(1 << 20));
        if (!guest_memory_read(vm->mem, start + done, buf, chunk)) {
            g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                        "Invalid addr 0x%016" PRIx64 "/size %" PRIu64 " specified: not guest RAM",
                        start + done, (uint64_t)chunk);
            goto fail;
        }
        if (write(fd, buf, chunk) != (ssize_t)chunk) {
            g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC, "Error writing '%s': %s",
                        filename, g_strerror(errno ? errno : ENOSPC));
            goto fail;
        }
        done += chunk;
    }
    close(fd);
    return NULL;

fail:
    close(fd);
    unlink(filename);
    return NULL;
}

/* The dispatcher's check of a command's run states. */
static bool vm_qmp_gate(const char *command, uint32_t states, gpointer opaque, GError **error)
{
    Vm *vm = opaque;

    if (states & RUN_STATE_BIT(vm->state)) {
        return true;
    }
    g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC, "%s", run_state_refusal(vm->state));
    qb_log(LOG_INFO, "qmp: %s refused in run state %s", command, run_state_name(vm->state));
    return false;
}

void vm_commands_register(QmpServer *qmp, Vm *vm)
{
    static const struct {
        const char *name;
        QmpCommandFunc fn;
        uint32_t states;
    } commands[] = {
        { "query-status", cmd_query_status, QMP_STATES_ANY },
        { "stop", cmd_stop, QMP_STATES_ANY },
        /* Not while a migration finishes (the destination may run it next),
         * nor where only a reset helps; during inmigrate it is deferred. */
        { "cont", cmd_cont, RUN_STATES_ALL & ~(RUN_STATE_BIT(RUN_STATE_FINISH_MIGRATE) |
                                               RUN_STATE_BIT(RUN_STATE_INTERNAL_ERROR) |
                                               RUN_STATE_BIT(RUN_STATE_SHUTDOWN)) },
        { "quit", cmd_quit, QMP_STATES_ANY },
        /* A migration loads or saves the devices and RAM these change. */
        { "system_powerdown", cmd_system_powerdown, RUN_STATES_ALL & ~RUN_STATES_MIGRATING },
        { "system_reset", cmd_system_reset, RUN_STATES_ALL & ~RUN_STATES_MIGRATING },
        { "query-cpus-fast", cmd_query_cpus_fast, QMP_STATES_ANY },
        { "query-name", cmd_query_name, QMP_STATES_ANY },
        { "pmemsave", cmd_pmemsave, QMP_STATES_ANY },
    };

    qmp_server_set_gate(qmp, vm_qmp_gate, vm);
    for (unsigned i = 0; i < G_N_ELEMENTS(commands); i++) {
        qmp_server_register_in(qmp, commands[i].name, commands[i].states, commands[i].fn, vm);
    }
}
