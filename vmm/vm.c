#include "config.h"

#include <gio/gio.h>

#include "vm.h"

#include <string.h>

#include <qb/qblog.h>

#include "devices/acpi-pm.h"
#include "devices/cmos.h"
#include "devices/memory-hotplug.h"
#include "devices/reset-control.h"
#include "devices/serial.h"
#include "dimm.h"
#include "kvm-state.h"
#include "pci/pci.h"
#include "migration/migration.h"
#include "common/qmp/qmp-server.h"
#include "vcpu-state.h"
#include "virtio/virtio-blk.h"
#include "virtio/virtio-commands.h"
#include "virtio/virtio-net.h"

enum {
    VM_REQUEST_SHUTDOWN = 1u << 0,
    VM_REQUEST_RESET = 1u << 1,
    VM_REQUEST_INTERNAL_ERROR = 1u << 2,
};

static const char *const shutdown_cause_names[] = {
    [SHUTDOWN_CAUSE_HOST_QMP_QUIT] = "host-qmp-quit",
    [SHUTDOWN_CAUSE_HOST_QMP_SYSTEM_RESET] = "host-qmp-system-reset",
    [SHUTDOWN_CAUSE_HOST_SIGNAL] = "host-signal",
    [SHUTDOWN_CAUSE_GUEST_SHUTDOWN] = "guest-shutdown",
    [SHUTDOWN_CAUSE_GUEST_RESET] = "guest-reset",
};

const char *shutdown_cause_name(ShutdownCause cause)
{
    return shutdown_cause_names[cause];
}

static bool shutdown_cause_is_guest(ShutdownCause cause)
{
    return cause == SHUTDOWN_CAUSE_GUEST_SHUTDOWN || cause == SHUTDOWN_CAUSE_GUEST_RESET;
}

void vm_emit_event(Vm *vm, const char *event, JsonObject *data)
{
    if (vm->qmp) {
        qmp_server_emit_event(vm->qmp, event, data);
    } else if (data) {
        json_object_unref(data);
    }
}

/* ---- stop-the-world ---------------------------------------------------- */

static void vm_kick_all(Vm *vm)
{
    for (unsigned i = 0; i < vm->ncpus; i++) {
        if (vm->vcpus[i]) {
            vcpu_kick(vm->vcpus[i]);
        }
    }
}

/* With the lock held: wait until every started vCPU is parked. */
static void vm_wait_parked_locked(Vm *vm)
{
    while (vm->vcpus_paused < vm->vcpus_started && !vm->exiting) {
        /* Kick again on every wake-up: a signal that landed between a
         * vCPU's pause check and its KVM_RUN is caught by immediate_exit,
         * but one sent before its thread existed is not. */
        vm_kick_all(vm);
        gint64 deadline = g_get_monotonic_time() + 10 * G_TIME_SPAN_MILLISECOND;
        g_cond_wait_until(&vm->cond, &vm->lock, deadline);
    }
}

void vm_add_pause_hook(Vm *vm, void (*pause)(void *opaque), void (*resume)(void *opaque),
                       void *opaque)
{
    VmPauseHook hook = { pause, resume, opaque };

    g_array_append_val(vm->pause_hooks, hook);
}

/* With the lock held, vCPUs parked or about to run: bring the device
 * threads in line with pause_count (paused while it is above zero). */
static void vm_sync_device_pause_locked(Vm *vm)
{
    bool want = vm->pause_count > 0;

    if (want == vm->devices_paused) {
        return;
    }
    for (guint i = 0; i < vm->pause_hooks->len; i++) {
        const VmPauseHook *h = &g_array_index(vm->pause_hooks, VmPauseHook, i);
        if (want) {
            h->pause(h->opaque);
        } else {
            h->resume(h->opaque);
        }
    }
    vm->devices_paused = want;
}

void vm_pause_vcpus(Vm *vm)
{
    g_mutex_lock(&vm->lock);
    vm->pause_count++;
    vm_wait_parked_locked(vm);
    vm_sync_device_pause_locked(vm);
    g_mutex_unlock(&vm->lock);
}

void vm_resume_vcpus(Vm *vm)
{
    g_mutex_lock(&vm->lock);
    g_assert(vm->pause_count > 0);
    vm->pause_count--;
    if (vm->pause_count == 0) {
        vm_sync_device_pause_locked(vm);
        g_cond_broadcast(&vm->cond);
    }
    g_mutex_unlock(&vm->lock);
}

void vm_hold_network(Vm *vm)
{
    for (guint i = 0; i < vm->virtio_nets->len; i++) {
        virtio_dev_pause(virtio_net_dev(vm->virtio_nets->pdata[i]));
    }
}

void vm_release_network(Vm *vm)
{
    for (guint i = 0; i < vm->virtio_nets->len; i++) {
        virtio_dev_resume(virtio_net_dev(vm->virtio_nets->pdata[i]));
    }
}

/* ---- run state --------------------------------------------------------- */

void vm_set_run_state(Vm *vm, RunState to)
{
    RunState from = vm->state;

    if (to == from) {
        return;
    }
    if (!run_state_transition_valid(from, to)) {
        qb_log(LOG_CRIT, "VM %s: invalid run state change %s -> %s", vm->name,
               run_state_name(from), run_state_name(to));
        g_error("invalid run state change %s -> %s", run_state_name(from), run_state_name(to));
    }
    if (run_state_is_running(from) && to != RUN_STATE_SHUTDOWN) {
        vm_pause_vcpus(vm);     /* held by the not-running state */
    }
    vm->state = to;
    qb_log(LOG_INFO, "VM %s: %s -> %s", vm->name, run_state_name(from), run_state_name(to));
    if (run_state_is_running(from) && to != RUN_STATE_SHUTDOWN) {
        vm_emit_event(vm, "STOP", NULL);
    } else if (run_state_is_running(to)) {
        vm_emit_event(vm, "RESUME", NULL);
        vm_resume_vcpus(vm);
    }
}

void vm_stop(Vm *vm, RunState new_state)
{
    if (run_state_is_running(vm->state)) {
        vm_set_run_state(vm, new_state);
    }
}

void vm_stop_force_state(Vm *vm, RunState new_state)
{
    g_return_if_fail(!run_state_is_running(new_state));
    vm_set_run_state(vm, new_state);
}

void vm_run(Vm *vm)
{
    vm_set_run_state(vm, RUN_STATE_RUNNING);
}

bool vm_cont(Vm *vm, GError **error)
{
    if (run_state_needs_reset(vm->state) || vm->state == RUN_STATE_FINISH_MIGRATE) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", run_state_refusal(vm->state));
        return false;
    }
    if (vm->state == RUN_STATE_INMIGRATE) {
        /* The guest's state is still on its way: run it once loaded. */
        vm->autostart = true;
        return true;
    }
    vm_run(vm);
    return true;
}

bool vm_start(Vm *vm, bool paused, GError **error)
{
    for (unsigned i = 0; i < vm->ncpus; i++) {
        if (!vcpu_start(vm->vcpus[i], error)) {
            return false;
        }
        g_mutex_lock(&vm->lock);
        vm->vcpus_started++;
        g_mutex_unlock(&vm->lock);
    }
    /* Device threads stand still whenever the vCPUs do, from the start
     * (-S, -incoming) on. */
    g_mutex_lock(&vm->lock);
    vm_sync_device_pause_locked(vm);
    g_mutex_unlock(&vm->lock);
    if (!paused) {
        vm_run(vm);
    }
    return true;
}

/* ---- reset and shutdown -------------------------------------------------- */

static bool vm_load_boot(Vm *vm, GError **error)
{
    BootImages img = {
        .kernel = g_bytes_get_data(vm->kernel, &img.kernel_size),
        .initrd = vm->initrd ? g_bytes_get_data(vm->initrd, &img.initrd_size) : NULL,
        .cmdline = vm->cmdline,
        .ncpus = vm->ncpus,
        .mem_slots = vm->dimms->slots,
    };
    BootEntry entry;

    return boot_load_images(vm->mem, &img, &entry, error) &&
           vcpu_set_boot_state(vm->vcpus[0], &entry, error);
}

bool vm_reset(Vm *vm, ShutdownCause cause, GError **error)
{
    bool ok = true;

    vm_pause_vcpus(vm);
    serial_reset(vm->serial);
    cmos_reset(vm->cmos);
    acpi_pm_reset(vm->pm);
    memory_hotplug_reset(vm->memhp);
    pci_bus_reset(vm->pci);
    for (guint i = 0; i < vm->virtio_blks->len; i++) {
        virtio_dev_reset(virtio_blk_dev(vm->virtio_blks->pdata[i]));
    }
    for (guint i = 0; i < vm->virtio_nets->len; i++) {
        virtio_dev_reset(virtio_net_dev(vm->virtio_nets->pdata[i]));
    }
    ok = kvm_irqchip_restore(vm->kvm, &vm->irqchip_reset, error);
    for (unsigned i = 0; ok && i < vm->ncpus; i++) {
        ok = vcpu_reset(vm->vcpus[i], error);
    }
    ok = ok && vm_load_boot(vm, error);
    if (ok) {
        JsonObject *data = json_object_new();
        json_object_set_boolean_member(data, "guest", shutdown_cause_is_guest(cause));
        json_object_set_string_member(data, "reason", shutdown_cause_name(cause));
        qb_log(LOG_INFO, "VM %s: reset (%s)", vm->name, shutdown_cause_name(cause));
        vm_emit_event(vm, "RESET", data);
    }
    vm_resume_vcpus(vm);
    if (!ok) {
        /* Half a reset cannot run: park the guest where an operator sees it. */
        vm_stop_force_state(vm, RUN_STATE_INTERNAL_ERROR);
    } else if (vm->state == RUN_STATE_INTERNAL_ERROR) {
        vm_set_run_state(vm, RUN_STATE_PAUSED);    /* as QEMU: cont may run it now */
    }
    return ok;
}

static void vm_end(Vm *vm)
{
    g_mutex_lock(&vm->lock);
    vm->exiting = true;
    g_cond_broadcast(&vm->cond);
    g_mutex_unlock(&vm->lock);
    vm_kick_all(vm);
    vm_set_run_state(vm, RUN_STATE_SHUTDOWN);
    if (vm->loop) {
        g_main_loop_quit(vm->loop);
    }
}

void vm_shutdown(Vm *vm, ShutdownCause cause)
{
    if (vm->state == RUN_STATE_SHUTDOWN) {
        return;
    }
    JsonObject *data = json_object_new();
    json_object_set_boolean_member(data, "guest", shutdown_cause_is_guest(cause));
    json_object_set_string_member(data, "reason", shutdown_cause_name(cause));
    qb_log(LOG_INFO, "VM %s: shutdown (%s)", vm->name, shutdown_cause_name(cause));
    vm_emit_event(vm, "SHUTDOWN", data);
    vm_end(vm);
}

void vm_terminate(Vm *vm, int code)
{
    if (vm->state == RUN_STATE_SHUTDOWN) {
        return;
    }
    vm->exit_code = code;
    vm_end(vm);
}

void vm_powerdown(Vm *vm)
{
    vm_emit_event(vm, "POWERDOWN", NULL);
    acpi_pm_press_power_button(vm->pm);
}

/* ---- requests from vCPU threads ------------------------------------------ */

static gboolean vm_handle_requests(gpointer opaque)
{
    Vm *vm = opaque;
    unsigned requests, held = 0;
    ShutdownCause cause;

    g_mutex_lock(&vm->lock);
    requests = vm->requests;
    cause = vm->request_cause;
    vm->requests = 0;
    for (unsigned r = requests; r; r &= r - 1) {
        held++;
    }
    vm_wait_parked_locked(vm);
    g_mutex_unlock(&vm->lock);

    if (requests & VM_REQUEST_SHUTDOWN) {
        vm_shutdown(vm, cause);
    } else if (requests & VM_REQUEST_RESET) {
        g_autoptr(GError) error = NULL;
        if (!vm_reset(vm, cause, &error)) {
            qb_log(LOG_ERR, "VM %s: reset failed: %s", vm->name, error->message);
        }
    } else if (requests & VM_REQUEST_INTERNAL_ERROR) {
        vm_stop(vm, RUN_STATE_INTERNAL_ERROR);
    }

    /* Each request parked the vCPUs once when it was posted. */
    g_mutex_lock(&vm->lock);
    vm->pause_count -= held;
    if (vm->pause_count == 0) {
        vm_sync_device_pause_locked(vm);
        g_cond_broadcast(&vm->cond);
    }
    g_mutex_unlock(&vm->lock);
    return G_SOURCE_REMOVE;
}

/* The posting vCPU parks at its next loop turn, so it runs no further guest
 * code after asking for power-off or reset. */
static void vm_post_request(Vm *vm, unsigned request, ShutdownCause cause)
{
    bool first;

    g_mutex_lock(&vm->lock);
    first = !(vm->requests & request);
    if (first) {
        vm->requests |= request;
        vm->pause_count++;
        if (request != VM_REQUEST_INTERNAL_ERROR) {
            vm->request_cause = cause;
        }
    }
    g_mutex_unlock(&vm->lock);
    if (first) {
        g_main_context_invoke(vm->ctx, vm_handle_requests, vm);
    }
}

void vm_request_shutdown(Vm *vm, ShutdownCause cause)
{
    vm_post_request(vm, VM_REQUEST_SHUTDOWN, cause);
}

void vm_request_reset(Vm *vm, ShutdownCause cause)
{
    vm_post_request(vm, VM_REQUEST_RESET, cause);
}

void vm_request_internal_error(Vm *vm, unsigned vcpu_index)
{
    qb_log(LOG_ERR, "VM %s: vCPU %u cannot continue; VM stopped (internal-error)", vm->name, vcpu_index);
    vm_post_request(vm, VM_REQUEST_INTERNAL_ERROR, SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
}

static void vm_on_power_off(void *opaque)
{
    vm_request_shutdown(opaque, SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
}

static void vm_on_reset(void *opaque)
{
    vm_request_reset(opaque, SHUTDOWN_CAUSE_GUEST_RESET);
}

/* ---- construction ------------------------------------------------------ */

static void vm_virtio_pause(void *opaque)
{
    virtio_dev_pause(opaque);
}

static void vm_virtio_resume(void *opaque)
{
    virtio_dev_resume(opaque);
}

static bool vm_add_virtio(Vm *vm, VirtioDev *vd, GError **error)
{
    vm_add_pause_hook(vm, vm_virtio_pause, vm_virtio_resume, vd);
    return virtio_dev_start(vd, error);
}

/* The PCI bus, then disks and NICs in command-line order (slots 1, 2, ...). */
static bool vm_create_pci_devices(Vm *vm, const VmConfig *cfg, GError **error)
{
    vm->pci = pci_bus_new(vm->iobus, vm->kvm, error);
    if (!vm->pci) {
        return false;
    }
    for (guint i = 0; cfg->drives && i < cfg->drives->len; i++) {
        VirtioBlk *blk = virtio_blk_new(vm->pci, vm->mem, cfg->drives->pdata[i], i, error);
        if (!blk) {
            return false;
        }
        g_ptr_array_add(vm->virtio_blks, blk);
        if (!vm_add_virtio(vm, virtio_blk_dev(blk), error)) {
            return false;
        }
    }
    for (guint i = 0; cfg->nets && i < cfg->nets->len; i++) {
        VirtioNet *net = virtio_net_new(vm->pci, vm->mem, cfg->nets->pdata[i], i, error);
        if (!net) {
            return false;
        }
        g_ptr_array_add(vm->virtio_nets, net);
        if (!vm_add_virtio(vm, virtio_net_dev(net), error)) {
            return false;
        }
    }
    return true;
}

static bool vm_create_devices(Vm *vm, const VmConfig *cfg, GError **error)
{
    vm->serial = serial_new(vm->iobus, vm->kvm, SERIAL_COM1_PORT, SERIAL_COM1_IRQ, cfg->serial, error);
    if (!vm->serial) {
        return false;
    }
    vm->cmos = cmos_new(vm->iobus, vm->mem, vm->ncpus, error);
    if (!vm->cmos) {
        return false;
    }
    vm->pm = acpi_pm_new(vm->iobus, vm->kvm, vm_on_power_off, vm, error);
    if (!vm->pm) {
        return false;
    }
    vm->reset_control = reset_control_new(vm->iobus, vm_on_reset, vm, error);
    if (!vm->reset_control) {
        return false;
    }
    /* The controller exists without slots too: the guest then reads zeros. */
    vm->memhp = memory_hotplug_new(vm->iobus, vm->pm, cfg->mem_slots, error);
    if (!vm->memhp) {
        return false;
    }
    vm->dimms = dimms_new(vm->mem, vm->kvm, vm->memhp, cfg->maxmem, cfg->mem_slots, error);
    if (!vm->dimms) {
        return false;
    }
    return vm_create_pci_devices(vm, cfg, error);
}

/* Sections in load order: vCPUs first (APIC base before the irqchip),
 * then the interrupt controllers, the clock, and the devices. */
static void vm_register_state(Vm *vm)
{
    for (unsigned i = 0; i < vm->ncpus; i++) {
        vmstate_register(&vm->vmstate, &vcpu_state_ops, i, vm->vcpus[i]);
    }
    vmstate_register(&vm->vmstate, &kvm_irqchip_state_ops, 0, vm->kvm);
    vmstate_register(&vm->vmstate, &kvm_clock_state_ops, 0, vm->kvm);
    vmstate_register(&vm->vmstate, &serial_state_ops, 0, vm->serial);
    vmstate_register(&vm->vmstate, &cmos_state_ops, 0, vm->cmos);
    vmstate_register(&vm->vmstate, &acpi_pm_state_ops, 0, vm->pm);
    vmstate_register(&vm->vmstate, &memory_hotplug_state_ops, 0, vm->memhp);
    /* PCI config space (BARs, MSI-X enable) before the virtio state. */
    for (guint i = 0; i < vm->virtio_blks->len + vm->virtio_nets->len; i++) {
        VirtioDev *vd = i < vm->virtio_blks->len ? virtio_blk_dev(vm->virtio_blks->pdata[i]) :
                        virtio_net_dev(vm->virtio_nets->pdata[i - vm->virtio_blks->len]);
        vmstate_register(&vm->vmstate, &pci_device_state_ops, vd->pci->slot, vd->pci);
        vmstate_register(&vm->vmstate, &virtio_dev_state_ops, vd->pci->slot, vd);
    }
}

static RunState vm_host_run_state(Vm *vm)
{
    return vm->state;
}

static bool vm_host_autostart(Vm *vm)
{
    return vm->autostart;
}

static int vm_dup_qmp_caller(Vm *vm)
{
    return vm->qmp ? qmp_server_dup_caller(vm->qmp) : -1;
}

/* What migration and COLO may use of the VM (migration/host.h). */
static const MigrationHostOps vm_migration_host_ops = {
    .run_state = vm_host_run_state,
    .autostart = vm_host_autostart,
    .set_run_state = vm_set_run_state,
    .stop_force_state = vm_stop_force_state,
    .run = vm_run,
    .terminate = vm_terminate,
    .emit_event = vm_emit_event,
    .pause_vcpus = vm_pause_vcpus,
    .resume_vcpus = vm_resume_vcpus,
    .hold_network = vm_hold_network,
    .release_network = vm_release_network,
    .announce = virtio_announce_all,
    .dup_qmp_caller = vm_dup_qmp_caller,
};

MigrationHost vm_migration_host(Vm *vm)
{
    return (MigrationHost) {
        .mem = vm->mem, .kvm = vm->kvm, .vmstate = &vm->vmstate, .disks = vm->virtio_blks,
        .dimms = vm->dimms, .ctx = vm->ctx, .ops = &vm_migration_host_ops, .vm = vm,
    };
}

Vm *vm_new(const VmConfig *cfg, GMainContext *ctx, GError **error)
{
    Vm *vm = g_new0(Vm, 1);

    g_mutex_init(&vm->lock);
    g_cond_init(&vm->cond);
    vmstate_registry_init(&vm->vmstate);
    vm->pause_hooks = g_array_new(FALSE, FALSE, sizeof(VmPauseHook));
    vm->virtio_blks = g_ptr_array_new_with_free_func((GDestroyNotify)virtio_blk_free);
    vm->virtio_nets = g_ptr_array_new_with_free_func((GDestroyNotify)virtio_net_free);
    vm->name = g_strdup(cfg->name ? cfg->name : "colo-vm");
    vm->ncpus = cfg->ncpus;
    vm->ctx = ctx;
    vm->state = RUN_STATE_PRELAUNCH;
    vm->pause_count = 1;        /* held by the not-running state */
    vm->cmdline = g_strdup(cfg->boot.cmdline ? cfg->boot.cmdline : "");

    vm->kernel = boot_read_file(cfg->boot.kernel, "the kernel", cfg->memory.size, error);
    if (!vm->kernel) {
        goto fail;
    }
    if (cfg->boot.initrd &&
        !(vm->initrd = boot_read_file(cfg->boot.initrd, "the initrd", cfg->memory.size, error))) {
        goto fail;
    }
    vm->kvm = kvm_new(NULL, error);
    if (!vm->kvm) {
        goto fail;
    }
    vm->mem = guest_memory_new(&cfg->memory, error);
    if (!vm->mem || !kvm_map_memory(vm->kvm, vm->mem, error)) {
        goto fail;
    }
    vm->iobus = iobus_new();
    if (!vm_create_devices(vm, cfg, error)) {
        goto fail;
    }
    vm->vcpus = g_new0(Vcpu *, vm->ncpus);
    for (unsigned i = 0; i < vm->ncpus; i++) {
        vm->vcpus[i] = vcpu_new(vm, i, error);
        if (!vm->vcpus[i]) {
            goto fail;
        }
    }
    if (!kvm_irqchip_save(vm->kvm, &vm->irqchip_reset, error) || !vm_load_boot(vm, error)) {
        goto fail;
    }
    vm_register_state(vm);
    MigrationHost host = vm_migration_host(vm);
    vm->migration = migration_new(&host);
    qb_log(LOG_INFO, "VM %s: %u vCPU(s), %" G_GUINT64_FORMAT " MiB, kernel %s",
           vm->name, vm->ncpus, vm->mem->ram_size >> 20, cfg->boot.kernel);
    return vm;

fail:
    vm_free(vm);
    return NULL;
}

void vm_free(Vm *vm)
{
    if (!vm) {
        return;
    }
    /* Migration threads first: they may be waiting on the main loop. */
    migration_free(vm->migration);
    g_mutex_lock(&vm->lock);
    vm->exiting = true;
    g_cond_broadcast(&vm->cond);
    g_mutex_unlock(&vm->lock);
    if (vm->vcpus) {
        vm_kick_all(vm);
        for (unsigned i = 0; i < vm->ncpus; i++) {
            vcpu_free(vm->vcpus[i]);
        }
        g_free(vm->vcpus);
    }
    vmstate_registry_clear(&vm->vmstate);
    /* Device threads end before the bus, RAM and KVM they use go. */
    g_ptr_array_free(vm->virtio_blks, TRUE);
    g_ptr_array_free(vm->virtio_nets, TRUE);
    pci_bus_free(vm->pci);
    g_array_free(vm->pause_hooks, TRUE);
    serial_free(vm->serial);
    cmos_free(vm->cmos);
    dimms_free(vm->dimms);
    memory_hotplug_free(vm->memhp);
    acpi_pm_free(vm->pm);
    reset_control_free(vm->reset_control);
    iobus_free(vm->iobus);
    guest_memory_free(vm->mem);
    kvm_free(vm->kvm);
    if (vm->kernel) {
        g_bytes_unref(vm->kernel);
    }
    if (vm->initrd) {
        g_bytes_unref(vm->initrd);
    }
    g_free(vm->cmdline);
    g_free(vm->name);
    g_cond_clear(&vm->cond);
    g_mutex_clear(&vm->lock);
    g_free(vm);
}
