/* colod's key file: a full file, the defaults, and each kind of mistake
 * refused with a message that names the key. */
#include "config.h"

#include "colod-config.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

static const char minimal[] =
    "[vm]\nname=web1\nvmm-args=-m 512 -kernel '/srv/vm/my kernel' -smp 2\n"
    "[cluster]\npeer-name=nodeb\npeer-node-id=2\n"
    "[replication]\naddress=10.0.0.1\npeer-address=10.0.0.2\n"
    "[proxy]\nguest-interface=tap-web1\n";

static void test_minimal_defaults(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(ColodConfig) c = colod_config_load_data(minimal, -1, "web1.conf", &err);

    g_assert_no_error(err);
    g_assert_cmpstr(c->vm_name, ==, "web1");
    g_assert_cmpuint(g_strv_length(c->vmm_argv), ==, 6);
    g_assert_cmpstr(c->vmm_argv[3], ==, "/srv/vm/my kernel");
    g_assert_cmpstr(c->state_dir, ==, "/var/lib/colo/web1");
    g_assert_cmpstr(c->vmm_binary, ==, "colo-vmm");
    g_assert_null(c->socket_group);
    g_assert_cmpstr(c->peer_name, ==, "nodeb");
    g_assert_cmpuint(c->peer_node_id, ==, 2);
    g_assert_false(c->allow_split_brain);
    g_assert_false(c->managed);
    g_assert_cmpstr(c->address, ==, "10.0.0.1");
    g_assert_cmpstr(c->peer_address, ==, "10.0.0.2");
    g_assert_cmpuint(c->migration_port, ==, 8810);
    g_assert_cmpuint(c->proxy_port, ==, 7700);
    g_assert_false(c->protect_snapshot);
    g_assert_false(colod_config_has_disks(c));
    g_assert_cmpstr(c->guest_iface, ==, "tap-web1");
    g_assert_null(c->uplink);
    g_assert_cmpuint(c->queue_num, ==, 0);
    g_assert_null(c->tls_dir);
    g_assert_cmpuint(c->timeouts.qmp_ms, ==, 5000);
    g_assert_cmpuint(c->timeouts.peer_wait_ms, ==, 30000);
    g_assert_cmpuint(c->timeouts.protect_ack_ms, ==, 30000);
    g_assert_cmpuint(c->timeouts.protect_retry_ms, ==, 10000);
    g_assert_cmpuint(c->timeouts.claim_ms, ==, 5000);
    g_assert_cmpuint(c->timeouts.restart_grace_ms, ==, 30000);
    g_assert_cmpuint(c->timeouts.linger_ms, ==, 1000);
    g_assert_cmpuint(c->timeouts.proxy_link_ms, ==, 3000);
    g_assert_null(c->role_change_hook);
    g_assert_cmpuint(c->role_change_timeout_ms, ==, 10000);
    g_assert_null(c->state_change_hook);
    g_assert_cmpuint(c->state_change_timeout_ms, ==, 10000);
}

static void test_full_file(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("colod-config-XXXXXX", &err);
    g_autofree char *path = g_build_filename(dir, "db.conf", NULL);
    g_autoptr(ColodConfig) c = NULL;

    g_assert_no_error(err);
    /* Every key set; [vm] name differs from the file's name. */
    g_assert_true(g_file_set_contents(path,
                                      "# a comment\n[vm]\nname=db-2.prod_x\nvmm-args=-m 1G\nstate-dir=/srv/colo/db\n"
                                      "vmm-binary=/opt/colo/bin/colo-vmm\nsocket-group=colo-admin\n"
                                      "[cluster]\npeer-name=node-b.example\npeer-node-id=4294967295\n"
                                      "allow-split-brain=true\nmanaged=true\n"
                                      "[replication]\naddress=fd00::1\npeer-address = fd00::2 \n"
                                      "migration-port=1\nproxy-port=65535\nprotect-mode=snapshot\n"
                                      "[proxy]\nguest-interface=tap0\nuplink=br0\nqueue-num=32767\n"
                                      "[tls]\ndir=/etc/colo/pki\n"
                                      "[timeouts]\nqmp-ms=2000\nclaim-ms=10\nrestart-grace-ms=86400000\nlinger-ms=5000\n"
                                      "proxy-link-ms=250\n"
                                      "[hooks]\nrole-change=/etc/colo/role-change\nrole-change-timeout-ms=3000\n"
                                      "state-change=/etc/colo/state-change\nstate-change-timeout-ms=4000\n",
                                      -1, &err));
    c = colod_config_load_file(path, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(c->path, ==, path);
    g_assert_cmpstr(c->vm_name, ==, "db-2.prod_x");
    g_assert_cmpstr(c->state_dir, ==, "/srv/colo/db");
    g_assert_cmpstr(c->vmm_binary, ==, "/opt/colo/bin/colo-vmm");
    g_assert_cmpstr(c->socket_group, ==, "colo-admin");
    g_assert_cmpuint(c->peer_node_id, ==, 4294967295u);
    g_assert_true(c->allow_split_brain);
    g_assert_true(c->managed);
    g_assert_true(c->protect_snapshot);
    g_assert_cmpstr(c->peer_address, ==, "fd00::2");
    g_assert_cmpuint(c->migration_port, ==, 1);
    g_assert_cmpuint(c->proxy_port, ==, 65535);
    g_assert_cmpstr(c->uplink, ==, "br0");
    g_assert_cmpuint(c->queue_num, ==, 32767);
    g_assert_cmpstr(c->tls_dir, ==, "/etc/colo/pki");
    g_assert_cmpuint(c->timeouts.qmp_ms, ==, 2000);
    g_assert_cmpuint(c->timeouts.claim_ms, ==, 10);
    g_assert_cmpuint(c->timeouts.restart_grace_ms, ==, 86400000);
    g_assert_cmpuint(c->timeouts.peer_wait_ms, ==, 30000);
    g_assert_cmpuint(c->timeouts.linger_ms, ==, 5000);
    g_assert_cmpuint(c->timeouts.proxy_link_ms, ==, 250);
    g_assert_cmpstr(c->role_change_hook, ==, "/etc/colo/role-change");
    g_assert_cmpuint(c->role_change_timeout_ms, ==, 3000);
    g_assert_cmpstr(c->state_change_hook, ==, "/etc/colo/state-change");
    g_assert_cmpuint(c->state_change_timeout_ms, ==, 4000);
    g_unlink(path);
    g_rmdir(dir);
}

/* Removes the line of @key from @text, if there is one. */
static void remove_key(GString *text, const char *key)
{
    g_autofree char *line = g_strdup_printf("\n%s=", key);
    const char *at = strstr(text->str, line);

    if (at) {
        g_string_erase(text, at - text->str, strchr(at + 1, '\n') - at);
    }
}

/* @edit: a line "key=value" to set in @group of the minimal file (replacing
 * the key's line if it has one), "-key" to remove a key, or with a NULL
 * @group text put before the file; @want: a piece of the error message. */
static void expect_error(const char *group, const char *edit, const char *want)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(ColodConfig) c = NULL;
    g_autoptr(GString) text = g_string_new(minimal);

    if (edit[0] == '-') {
        g_assert_nonnull(strstr(text->str, edit + 1));
        remove_key(text, edit + 1);
    } else if (!group) {
        g_string_prepend(text, edit);
    } else {
        g_autofree char *header = g_strdup_printf("[%s]\n", group);
        g_autofree char *key = g_strndup(edit, strcspn(edit, "="));
        const char *at;

        remove_key(text, key);
        at = strstr(text->str, header);
        if (at) {
            g_string_insert(text, at - text->str + strlen(header), edit);
        } else {
            g_string_append_printf(text, "%s%s", header, edit);
        }
    }
    c = colod_config_load_data(text->str, -1, "vm.conf", &err);
    g_assert_null(c);
    g_assert_error(err, COLOD_CONFIG_ERROR, 0);
    if (!strstr(err->message, want) || !g_str_has_prefix(err->message, "vm.conf: ")) {
        g_error("edit \"%s\": message \"%s\" lacks \"%s\"", edit, err->message, want);
    }
}

static void test_refused(void)
{
    expect_error("vm", "nmae=x\n", "[vm] nmae: unknown key");
    expect_error("colod", "x=1\n", "unknown group [colod]");
    expect_error(NULL, "-name", "[vm] name: required, not set");
    expect_error(NULL, "-vmm-args", "[vm] vmm-args: required");
    expect_error(NULL, "-peer-node-id", "[cluster] peer-node-id: required");
    expect_error(NULL, "-peer-address", "[replication] peer-address: required");
    expect_error(NULL, "-guest-interface", "[proxy] guest-interface: required");
    expect_error("replication", "migration-port=0\n", "[replication] migration-port: \"0\" is not a port");
    expect_error("replication", "proxy-port=65536\n", "[replication] proxy-port: \"65536\" is not a port");
    expect_error("replication", "proxy-port=-1\n", "is not a port");
    expect_error("replication", "proxy-port=77x\n", "is not a port");
    expect_error("replication", "protect-mode=postcopy\n",
                 "[replication] protect-mode: \"postcopy\" is not precopy or snapshot");
    expect_error("replication", "protect-mode=Snapshot\n", "is not precopy or snapshot");
    expect_error("replication", "migration-port=7700\n", "[replication] proxy-port: the same as migration-port");
    expect_error("replication", "address=10.0.0.2\n", "[replication] peer-address: the same as address");
    expect_error("replication", "address=nodea\n", "[replication] address: \"nodea\" is not an IPv4 or IPv6");
    expect_error("cluster", "peer-node-id=0\n", "peer-node-id: \"0\" is not a corosync node id");
    expect_error("cluster", "peer-node-id=4294967296\n", "is not a corosync node id");
    expect_error("cluster", "allow-split-brain=yes\n", "allow-split-brain: \"yes\" is not true or false");
    expect_error("timeouts", "qmp-ms=9\n", "[timeouts] qmp-ms: \"9\" is not a time in milliseconds");
    expect_error("timeouts", "claim-ms=86400001\n", "claim-ms: \"86400001\" is not a time");
    expect_error("vm", "state-dir=relative/dir\n", "state-dir: \"relative/dir\" is not an absolute path");
    expect_error("tls", "dir=pki\n", "[tls] dir: \"pki\" is not an absolute path");
    expect_error("tls", "certs=/etc/colo/pki\n", "[tls] certs: unknown key");
    expect_error("vm", "vmm-args=-m 'unterminated\n", "[vm] vmm-args:");
    expect_error("proxy", "queue-num=32768\n", "[proxy] queue-num: \"32768\" is not an NFQUEUE number (0-32767)");
    expect_error("proxy", "queue-num=-1\n", "is not an NFQUEUE number");
    expect_error("hooks", "role-change=move-address\n", "[hooks] role-change: \"move-address\" is not an absolute path");
    expect_error("hooks", "role-change-timeout-ms=0\n", "[hooks] role-change-timeout-ms: \"0\" is not a time");
    expect_error("hooks", "state-change=colo\n", "[hooks] state-change: \"colo\" is not an absolute path");
    expect_error("proxy", "uplink=a/b\n", "uplink: \"a/b\" is not a network interface name");
    expect_error("proxy", "uplink=sixteen-chars-xx\n", "is not a network interface name");
    expect_error("cluster", "peer-name=\n", "[cluster] peer-name: empty");
    expect_error(NULL, "not a key file", "vm.conf: ");
}

static void test_vm_names(void)
{
    g_autofree char *longest = g_strnfill(COLOD_VM_NAME_MAX, 'a');
    g_autofree char *too_long = g_strnfill(COLOD_VM_NAME_MAX + 1, 'a');
    g_autofree char *edit = g_strdup_printf("name=%s\n", too_long);

    g_assert_true(colod_vm_name_valid("a"));
    g_assert_true(colod_vm_name_valid(longest));
    g_assert_true(colod_vm_name_valid("9.x_y-z"));
    g_assert_false(colod_vm_name_valid(""));
    g_assert_false(colod_vm_name_valid(too_long));
    g_assert_false(colod_vm_name_valid(".."));
    g_assert_false(colod_vm_name_valid("-a"));
    g_assert_false(colod_vm_name_valid("a/b"));
    g_assert_false(colod_vm_name_valid("a b"));
    g_assert_false(colod_vm_name_valid("caf\xc3\xa9"));
    expect_error("vm", edit, "[vm] name: \"aaaa");
    expect_error("vm", "name=../etc\n", "is not a VM name");
}

static void test_missing_file(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(ColodConfig) c = colod_config_load_file("/nonexistent/colo/vm.conf", &err);

    g_assert_null(c);
    g_assert_error(err, COLOD_CONFIG_ERROR, 0);
    g_assert_nonnull(strstr(err->message, "/nonexistent/colo/vm.conf"));
}

/* The example the colod package installs (/etc/colo/vm.conf.example) is a
 * file colod accepts, with every key it shows uncommented left at its
 * documented default. */
static void test_shipped_example(void)
{
    const char *src = g_getenv("COLO_SRCDIR");
    g_autofree char *path = g_build_filename(src ? src : ".", "colod", "vm.conf.example", NULL);
    g_autoptr(GError) err = NULL;
    g_autoptr(ColodConfig) c = colod_config_load_file(path, &err);

    g_assert_no_error(err);
    g_assert_cmpstr(c->vm_name, ==, "web1");
    g_assert_cmpstr(c->state_dir, ==, "/var/lib/colo/web1");
    g_assert_cmpstr(c->peer_name, ==, "node2");
    g_assert_cmpuint(c->peer_node_id, ==, 2);
    g_assert_false(c->allow_split_brain);
    g_assert_false(c->managed);
    g_assert_cmpuint(c->migration_port, ==, 8810);
    g_assert_cmpuint(c->proxy_port, ==, 7700);
    g_assert_cmpstr(c->guest_iface, ==, "tap-web1");
    g_assert_cmpuint(c->timeouts.qmp_ms, ==, 5000);
    g_assert_false(c->protect_snapshot);
    g_assert_true(colod_config_has_disks(c)); /* its -drive: never relocated by postcopy */
    g_assert_null(c->tls_dir);
    g_assert_null(c->role_change_hook);
    /* vmm-args split as a shell would: the quoted -append is one word. */
    g_assert_true(g_strv_contains((const char *const *)c->vmm_argv, "console=ttyS0 root=/dev/vda"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/colod/config/minimal-defaults", test_minimal_defaults);
    g_test_add_func("/colod/config/full-file", test_full_file);
    g_test_add_func("/colod/config/refused", test_refused);
    g_test_add_func("/colod/config/vm-names", test_vm_names);
    g_test_add_func("/colod/config/missing-file", test_missing_file);
    g_test_add_func("/colod/config/shipped-example", test_shipped_example);
    return g_test_run();
}
