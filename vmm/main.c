/* colo-vmm: options, logging, daemon set-up, the VM, QMP, main loop. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>
#include <qb/qblog.h>

#include "cmdline.h"
#include "common/log.h"
#include "common/daemon.h"
#include "dimm-commands.h"
#include "colo/colo-commands.h"
#include "colo/colo.h"
#include "migration/migration-commands.h"
#include "migration/migration.h"
#include "migration/mig-tls.h"
#include "common/qmp/qmp-server.h"
#include "vm-commands.h"
#include "virtio/virtio-commands.h"
#include "vm.h"

/* Exit codes: 0 clean shutdown, 1 bad usage or start-up failure. */
enum { EXIT_OK = 0, EXIT_START_FAILED = 1 };

static gboolean on_signal(gpointer opaque)
{
    Vm *vm = opaque;

    qb_log(LOG_INFO, "terminating on signal");
    vm_shutdown(vm, SHUTDOWN_CAUSE_HOST_SIGNAL);
    return G_SOURCE_CONTINUE;
}

/* Start-up failed: say so once on stderr, and in the log file or syslog. */
static int vmm_fail(const char *what, GError *error)
{
    fprintf(stderr, "colo-vmm: %s%s\n", what, error ? error->message : "");
    qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_FALSE);
    qb_log(LOG_ERR, "%s%s", what, error ? error->message : "");
    return EXIT_START_FAILED;
}

int main(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    VmmOptions opts;
    int ret = EXIT_START_FAILED;
    Chardev *serial = NULL;
    QmpServer *qmp = NULL;
    Vm *vm = NULL;
    DaemonNotify *notify = NULL;

    if (!vmm_options_parse(&opts, argc, argv, &error)) {
        fprintf(stderr, "colo-vmm: %s\n", error->message);
        vmm_options_clear(&opts);
        return EXIT_START_FAILED;
    }
    if (opts.help || opts.version) {
        fputs(opts.help ? vmm_options_usage() : "colo-vmm " PACKAGE_VERSION "\n", stdout);
        vmm_options_clear(&opts);
        return EXIT_OK;
    }

    if (!colo_log_init("colo-vmm", opts.name, false, opts.logfile, opts.debug, &error)) {
        fprintf(stderr, "colo-vmm: %s\n", error->message);
        goto out;
    }
    colo_log_route_glib();
    signal(SIGPIPE, SIG_IGN);
    vcpu_init_signals();

    /* Fork before any thread exists; the parent waits to hear that the VM
     * started, so its exit code tells whether it did. */
    if (opts.daemonize && !(notify = daemon_start(&error))) {
        ret = vmm_fail("cannot daemonize: ", error);
        goto out;
    }
    if (notify) {
        colo_log_after_fork();
    }

    GMainContext *ctx = g_main_context_default();
    const char *serial_spec = opts.serial ? opts.serial : (opts.daemonize ? "none" : "stdio");
    serial = chardev_new(serial_spec, ctx, &error);
    if (!serial) {
        ret = vmm_fail("-serial: ", error);
        goto out;
    }

    VmConfig cfg = {
        .name = opts.name,
        .ncpus = opts.ncpus,
        .memory = { .size = opts.ram_size, .mem_path = opts.mem_path, .mem_share = opts.mem_share },
        .maxmem = opts.maxmem,
        .mem_slots = opts.mem_slots,
        .boot = { .kernel = opts.kernel, .initrd = opts.initrd, .cmdline = opts.append,
                  .ncpus = opts.ncpus },
        .serial = serial,
        .nets = opts.nets,
        .drives = opts.drives,
    };
    vm = vm_new(&cfg, ctx, &error);
    if (!vm) {
        ret = vmm_fail("", error);
        goto out;
    }
    for (guint i = 0; i < opts.mem_objects->len; i++) {
        const char *spec = opts.mem_objects->pdata[i];
        if (mig_tls_object_spec(spec) ? !mig_tls_object_add(vm->migration->tls, spec, &error)
                                      : !dimm_cmdline_object(vm, spec, &error)) {
            ret = vmm_fail("", error);
            goto out;
        }
    }
    for (guint i = 0; i < opts.dimms->len; i++) {
        if (!dimm_cmdline_device(vm, opts.dimms->pdata[i], &error)) {
            ret = vmm_fail("", error);
            goto out;
        }
    }

    if (opts.colo_proxy) {
        colo_set_proxy(vm->migration, opts.colo_proxy);
    }
    if (opts.qmp) {
        qmp = qmp_server_new(ctx, "colo-vmm " PACKAGE_VERSION, COLO_VERSION_MAJOR,
                             COLO_VERSION_MINOR, COLO_VERSION_MICRO);
        if (!qmp_server_listen_unix_group(qmp, opts.qmp, opts.qmp_group, &error)) {
            ret = vmm_fail("-qmp: ", error);
            goto out;
        }
        vm->qmp = qmp;
        vm_commands_register(qmp, vm);
        dimm_commands_register(qmp, vm);
        virtio_commands_register(qmp, vm);
        migration_commands_register(qmp, vm->migration);
        colo_commands_register(qmp, vm->migration);
    }
    if (opts.allowed_peer && !migration_set_allowed_peer(vm->migration, opts.allowed_peer, &error)) {
        ret = vmm_fail("-global migration.x-allowed-peer: ", error);
        goto out;
    }
    if (!mig_tls_set_params(vm->migration->tls, opts.tls_creds, opts.tls_hostname, &error)) {
        ret = vmm_fail("-global migration.tls-creds: ", error);
        goto out;
    }
    if (opts.incoming) {
        /* vCPUs wait parked until the stream has arrived. */
        vm_set_run_state(vm, RUN_STATE_INMIGRATE);
        if (strcmp(opts.incoming, "defer") != 0 &&
            !migration_incoming_listen(vm->migration, opts.incoming, &error)) {
            ret = vmm_fail("-incoming: ", error);
            goto out;
        }
    }
    if (opts.pidfile && !daemon_write_pidfile(opts.pidfile, &error)) {
        ret = vmm_fail("-pidfile: ", error);
        goto out;
    }

    vm->autostart = !opts.start_paused;
    if (!vm_start(vm, opts.start_paused || opts.incoming, &error)) {
        ret = vmm_fail("", error);
        goto out;
    }
    if (notify) {
        daemon_ready(notify);
        notify = NULL;
        colo_log_to_syslog();
    }

    vm->loop = g_main_loop_new(ctx, FALSE);
    g_unix_signal_add(SIGTERM, on_signal, vm);
    g_unix_signal_add(SIGINT, on_signal, vm);
    g_unix_signal_add(SIGHUP, on_signal, vm);
    g_main_loop_run(vm->loop);
    g_main_loop_unref(vm->loop);
    vm->loop = NULL;
    ret = vm->exit_code;

out:
    if (notify) {
        daemon_failed(notify);
    }
    vm_free(vm);
    /* After the VM so the SHUTDOWN event and last replies go out first. */
    qmp_server_free(qmp);
    chardev_free(serial);
    if (opts.pidfile && ret == EXIT_OK) {
        unlink(opts.pidfile);
    }
    vmm_options_clear(&opts);
    colo_log_fini();
    return ret;
}
