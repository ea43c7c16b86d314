/* query-status's object (the shape coloctl --json status prints and the
 * OCF agent reads; docs/man/coloctl.8 lists the members): the state
 * machine's snapshot, colo-vmm's pid and its last query-colo-status,
 * colo-proxy's own status and counters. */
#include "config.h"

#include "control.h"

#include "cluster-fsm-query.h"

static void set_string_or_null(JsonObject *o, const char *name, bool present, const char *value)
{
    if (present) {
        json_object_set_string_member(o, name, value);
    } else {
        json_object_set_null_member(o, name);
    }
}

static JsonObject *peer_json(const ClusterFsmStatus *st)
{
    JsonObject *o = json_object_new();
    bool k = st->peer.known;

    json_object_set_int_member(o, "node-id", st->peer.node_id);
    json_object_set_boolean_member(o, "present", st->peer.present);
    set_string_or_null(o, "role", k, colod_role_name(st->peer.role));
    if (k) {
        json_object_set_int_member(o, "generation", (gint64)st->peer.generation);
        json_object_set_boolean_member(o, "paused", st->peer.paused);
    } else {
        json_object_set_null_member(o, "generation");
        json_object_set_null_member(o, "paused");
    }
    set_string_or_null(o, "state", k, cluster_state_name(st->peer.state));
    set_string_or_null(o, "vmm", k, vmm_kind_name(st->peer.vmm));
    return o;
}

static JsonObject *vmm_json(const ClusterFsmStatus *st, VmmDriver *vmm)
{
    JsonObject *o = json_object_new();
    GPid pid = vmm ? vmm_driver_pid(vmm) : 0;

    if (pid > 0) {
        json_object_set_int_member(o, "pid", pid);
    } else {
        json_object_set_null_member(o, "pid");
    }
    json_object_set_string_member(o, "kind", vmm_kind_name(st->vmm));
    json_object_set_boolean_member(o, "paused", st->paused);
    return o;
}

JsonObject *colod_control_status_build(const char *vm_name, const ClusterFsm *fsm, VmmDriver *vmm,
                                       ProxyDriver *proxy_driver, JsonObject *settings)
{
    JsonObject *o = json_object_new();
    JsonObject *colo_proxy = proxy_driver ? proxy_driver_query(proxy_driver) : NULL;
    JsonObject *colo = vmm ? vmm_driver_colo_status(vmm) : NULL;
    JsonObject *proxy = colo && json_object_has_member(colo, "proxy") ? json_object_get_object_member(colo, "proxy")
                                                                       : NULL;
    ClusterFsmStatus st;

    cluster_fsm_query(fsm, &st);
    json_object_set_string_member(o, "vm", vm_name);
    json_object_set_int_member(o, "node-id", st.node_id);
    json_object_set_string_member(o, "state", cluster_state_name(st.state));
    json_object_set_string_member(o, "role", colod_role_name(st.role));
    json_object_set_boolean_member(o, "running", cluster_fsm_status_running(&st));
    json_object_set_int_member(o, "generation", (gint64)st.generation);
    json_object_set_boolean_member(o, "quorate", st.quorate);
    json_object_set_boolean_member(o, "managed", st.managed);
    json_object_set_boolean_member(o, "protect", st.protect_enabled);
    set_string_or_null(o, "waiting", st.wait != WAIT_NONE, wait_reason_name(st.wait));
    json_object_set_string_member(o, "reason", st.reason);
    json_object_set_object_member(o, "peer", peer_json(&st));
    json_object_set_object_member(o, "vmm", vmm_json(&st, vmm));
    /* colo-vmm's last query-colo-status (polled while COLO runs); its
     * "proxy" member is colo-vmm's view of its colo-proxy. */
    if (colo) {
        json_object_set_object_member(o, "colo", json_object_ref(colo));
    } else {
        json_object_set_null_member(o, "colo");
    }
    if (proxy) {
        json_object_set_object_member(o, "proxy", json_object_ref(proxy));
    } else {
        json_object_set_null_member(o, "proxy");
    }
    /* The proxy's own view (colod polls it): its pid, role, restarts and
     * query-stats counters; null while no colo-proxy runs. */
    if (colo_proxy) {
        json_object_set_object_member(o, "colo-proxy", colo_proxy);
    } else {
        json_object_set_null_member(o, "colo-proxy");
    }
    json_object_set_object_member(o, "settings", settings);
    return o;
}
