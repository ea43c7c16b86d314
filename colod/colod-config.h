/* colod's configuration: one GKeyFile per protected VM (/etc/colo/VM.conf,
 * docs/man/colo.conf.5), validated strictly: an unknown group or key, a
 * missing required key or a value out of range is an error naming the file,
 * the group and the key. (Not config.h: that name is autoconf's, and a
 * quoted include looks in this directory first.) */
#ifndef COLOD_COLOD_CONFIG_H
#define COLOD_COLOD_CONFIG_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define COLOD_CONFIG_ERROR (colod_config_error_quark())
GQuark colod_config_error_quark(void);

/* Longest VM name: it names the CPG group ("colo-" NAME, CPG allows 128
 * bytes), the state directory and log idents. */
#define COLOD_VM_NAME_MAX 64

/* Timeouts in milliseconds ([timeouts] in the file). */
typedef struct {
    uint32_t qmp_ms;            /* each QMP command to colo-vmm / colo-proxy */
    uint32_t peer_wait_ms;      /* start-up: the peer's hello, then ask an administrator */
    uint32_t protect_ack_ms;    /* the peer's answer to a protect request */
    uint32_t protect_retry_ms;  /* between failed protect attempts */
    uint32_t claim_ms;          /* the peer's answer to a failover claim */
    uint32_t restart_grace_ms;  /* a peer colod that said it restarts */
    uint32_t linger_ms;         /* a dead primary colo-vmm's proxy, until the secondary serves */
    uint32_t proxy_link_ms;     /* a protect waits for the proxies' link */
} ColodTimeouts;

typedef struct {
    char *path;               /* the file it came from (or the origin given) */
    char *vm_name;            /* [vm] name */
    char **vmm_argv;          /* [vm] vmm-args, split as a shell would */
    char *vmm_binary;         /* [vm] vmm-binary, default colo-vmm (in PATH) */
    char *state_dir;          /* [vm] state-dir, default /var/lib/colo/NAME */
    char *socket_group;       /* [vm] socket-group: may use the control sockets, NULL: root only */
    char *peer_name;          /* [cluster] peer-name */
    uint32_t peer_node_id;    /* [cluster] peer-node-id */
    bool allow_split_brain;   /* [cluster] allow-split-brain, default false */
    bool managed;             /* [cluster] managed (by pacemaker), default false */
    char *address;            /* [replication] address: bind here */
    char *peer_address;       /* [replication] peer-address: the only peer accepted */
    uint16_t migration_port;  /* [replication] migration-port */
    uint16_t proxy_port;      /* [replication] proxy-port */
    bool protect_snapshot;    /* [replication] protect-mode: snapshot (true) or precopy */
    char *guest_iface;        /* [proxy] guest-interface */
    char *uplink;             /* [proxy] uplink, NULL if not set */
    uint16_t queue_num;       /* [proxy] queue-num */
    char *proxy_binary;       /* [proxy] proxy-binary, default colo-proxy (in PATH) */
    char *tls_dir;            /* [tls] dir: certificates for the replication stream and the proxy link, NULL: no TLS */
    ColodTimeouts timeouts;
    char *role_change_hook;   /* [hooks] role-change: absolute path, NULL if not set (hooks.h) */
    uint32_t role_change_timeout_ms; /* [hooks] role-change-timeout-ms */
    char *state_change_hook;  /* [hooks] state-change (or colod --state-change-hook): absolute path, NULL if not set */
    uint32_t state_change_timeout_ms; /* [hooks] state-change-timeout-ms */
} ColodConfig;

/* Parses @data (@len bytes, -1 for a NUL-terminated string); @origin names
 * it in errors. Returns NULL and sets @error on any problem. */
ColodConfig *colod_config_load_data(const char *data, gssize len, const char *origin, GError **error);

/* Reads and parses the file at @path. */
ColodConfig *colod_config_load_file(const char *path, GError **error);

void colod_config_free(ColodConfig *config);

/* Whether [vm] vmm-args give the VM a disk (-drive): such a VM is not
 * relocated by postcopy (colo-vmm carries disks only with x-colo). */
bool colod_config_has_disks(const ColodConfig *config);

/* "precopy" or "snapshot" (protect-mode) into @snapshot; false if neither. */
bool colod_protect_mode_parse(const char *value, bool *snapshot);

/* Whether @name is acceptable as a VM name: 1..COLOD_VM_NAME_MAX bytes of
 * [A-Za-z0-9_.-], starting with a letter or digit. */
bool colod_vm_name_valid(const char *name);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ColodConfig, colod_config_free)

#endif
