/* colo-vmm's command line, in QEMU's spelling (-m 64M, -smp 2, -kernel ...).
 * GOption cannot parse single-dash long options, hence a small table. */
#ifndef COLO_VMM_CMDLINE_H
#define COLO_VMM_CMDLINE_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "virtio/virtio-blk.h"
#include "virtio/virtio-net.h"

typedef struct VmmOptions {
    uint64_t ram_size;          /* bytes */
    uint64_t maxmem;            /* -m maxmem=, bytes (0: none) */
    unsigned mem_slots;         /* -m slots= */
    GPtrArray *mem_objects;     /* -object specs (memory backends, TLS credentials), in order */
    GPtrArray *dimms;           /* -device pc-dimm specs, in order */
    unsigned ncpus;
    char *kernel;
    char *initrd;
    char *append;
    char *mem_path;
    bool mem_share;             /* -mem-share: boot RAM in a memfd, not anonymous memory */
    bool start_paused;          /* -S */
    char *name;
    char *serial;               /* chardev spec; NULL = default */
    char *qmp;                  /* path of the QMP unix socket */
    char *qmp_group;            /* -qmp ...,group=NAME: its members may connect too */
    char *incoming;             /* -incoming URI or "defer" */
    char *allowed_peer;         /* -global migration.x-allowed-peer=ADDR */
    char *tls_creds;            /* -global migration.tls-creds=ID */
    char *tls_hostname;         /* -global migration.tls-hostname=NAME */
    char *colo_proxy;           /* -colo-proxy PATH: the local colo-proxy's control socket */
    GPtrArray *netdevs;         /* VirtioNetConfig from -netdev tap (mac unset) */
    GPtrArray *nets;            /* VirtioNetConfig: -device virtio-net-pci joined to its -netdev */
    GPtrArray *drives;          /* VirtioBlkConfig: -drive if=virtio, and if=none ones
                                 * a -device virtio-blk-pci,drive=ID names */
    GPtrArray *blockdevs;       /* VirtioBlkConfig from -drive if=none (not yet a disk) */
    GPtrArray *blk_refs;        /* drive=ID of each -device virtio-blk-pci, in order */
    bool daemonize;
    char *pidfile;
    char *logfile;              /* -D */
    bool debug;                 /* -debug: debug-level logging */
    bool help;
    bool version;
} VmmOptions;

#define VMM_MAX_CPUS 64

/* Parses argv; on error sets @error with a message naming the option. */
bool vmm_options_parse(VmmOptions *opts, int argc, char **argv, GError **error);
void vmm_options_clear(VmmOptions *opts);
const char *vmm_options_usage(void);

/* "unix:PATH,server=on,wait=off" -> PATH; only a listening unix socket is
 * supported for QMP. */
bool vmm_parse_qmp_spec(const char *spec, char **path, char **group, GError **error);

#endif
