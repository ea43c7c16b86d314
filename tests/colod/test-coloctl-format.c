/* coloctl's output formats (coloctl/status-text.c, coloctl/metrics.c) on
 * status objects as colod sends them: the human status (each part, a hint
 * for every wait reason the state machine has), event lines, and the
 * Prometheus text format checked by a parser of the format's rules
 * (HELP and TYPE once before a family's samples, label escaping, counters
 * named _total, values). */
#include "config.h"

#include "cluster-fsm.h"
#include "coloctl.h"

#include <string.h>

static const char *const full_status =
    "{\"vm\":\"web1\",\"node-id\":1,\"state\":\"primary-protected\",\"role\":\"primary\",\"running\":true,"
    "\"generation\":7,\"quorate\":true,\"managed\":false,\"protect\":true,\"waiting\":null,"
    "\"reason\":\"protected: COLO runs\","
    "\"peer\":{\"node-id\":2,\"present\":true,\"role\":\"secondary\",\"generation\":7,\"paused\":false,"
    "\"state\":\"secondary-protected\",\"vmm\":\"secondary\"},"
    "\"vmm\":{\"pid\":1234,\"kind\":\"primary\",\"paused\":false},"
    "\"colo\":{\"mode\":\"primary\",\"last-mode\":\"none\",\"reason\":\"none\",\"x-broken\":false,\"x-unusable\":false,"
    "\"checkpoints\":{\"count\":42,\"pause-us\":{\"p50\":1200,\"p99\":3000,\"max\":4000,\"last\":1500},"
    "\"last-pages\":12,\"last-bytes\":49152,\"reasons\":{\"periodic\":40,\"mismatch\":2}},"
    "\"proxy\":{\"path\":\"/run/colo/web1/proxy.sock\",\"connected\":true,\"epoch\":41,\"requests\":2,"
    "\"requests-ignored\":0,\"failed-over\":false}},"
    "\"proxy\":{\"path\":\"/run/colo/web1/proxy.sock\",\"connected\":true,\"epoch\":41,\"requests\":2,"
    "\"requests-ignored\":0,\"failed-over\":false},"
    "\"colo-proxy\":{\"pid\":4321,\"role\":\"primary\",\"ready\":true,\"failed-over\":false,\"restarts\":1,"
    "\"status\":{\"role\":\"primary\"},\"stats\":{\"epoch\":41,\"compared\":900,\"released\":1000,"
    "\"queue-depth\":3,\"mismatches\":{\"payload\":2,\"flags\":1},\"nfq-lost\":0}},"
    "\"settings\":{\"checkpoint-delay\":null,\"log-level\":\"info\"}}";

static JsonObject *parse(const char *text)
{
    g_autoptr(JsonParser) p = json_parser_new();
    g_autoptr(GError) err = NULL;

    json_parser_load_from_data(p, text, -1, &err);
    g_assert_no_error(err);
    return json_object_ref(json_node_get_object(json_parser_get_root(p)));
}

static void assert_contains(const char *text, const char *part)
{
    if (!strstr(text, part)) {
        g_error("%s\n--- does not contain ---\n%s", text, part);
    }
}

static void test_status_full(void)
{
    g_autoptr(JsonObject) st = parse(full_status);
    g_autofree char *text = coloctl_status_text(st);

    assert_contains(text, "VM web1 on node 1: primary-protected\n");
    assert_contains(text, "  role         primary, generation 7, the guest serves here\n");
    assert_contains(text, "  quorum       yes\n");
    assert_contains(text, "  protection   enabled\n");
    assert_contains(text, "  colo-vmm     pid 1234, primary\n");
    assert_contains(text, "  last         protected: COLO runs\n");
    assert_contains(text, "Peer node 2: present\n  state        secondary-protected\n");
    assert_contains(text, "  role         secondary, generation 7\n");
    assert_contains(text, "COLO: primary, 42 checkpoints\n");
    assert_contains(text, "  pause        last 1.5 ms, p50 1.2 ms, p99 3.0 ms, max 4.0 ms\n");
    assert_contains(text, "  last sent    12 pages, 49152 bytes\n");
    assert_contains(text, "  reasons      periodic 40, mismatch 2\n");
    assert_contains(text, "  proxy        connected, epoch 41, 2 checkpoint requests (0 ignored)\n");
    assert_contains(text, "  colo-proxy   pid 4321, primary, restarted 1 times\n");
    assert_contains(text, "  packets      900 compared, 1000 released, 3 held now, 3 mismatches\n");
    assert_contains(text, "Settings: checkpoint-delay default, log-level info\n");
    g_assert_null(strstr(text, "WAITING"));
}

static void test_status_waiting(void)
{
    g_autoptr(JsonObject) st = parse(
        "{\"vm\":\"web1\",\"node-id\":2,\"state\":\"wait-admin\",\"role\":\"secondary\",\"running\":false,"
        "\"generation\":7,\"quorate\":true,\"protect\":false,\"waiting\":\"tie\",\"reason\":\"both hold 7\","
        "\"peer\":{\"node-id\":1,\"present\":true,\"role\":null,\"generation\":null,\"state\":null},"
        "\"vmm\":{\"pid\":null,\"kind\":\"none\",\"paused\":false},\"colo\":null,\"proxy\":null}");
    g_autofree char *text = coloctl_status_text(st);

    assert_contains(text, "  role         secondary, generation 7, the guest does not serve here\n");
    assert_contains(text, "  protection   disabled (coloctl protect enables it)\n");
    assert_contains(text, "  colo-vmm     not running\n");
    assert_contains(text, "  WAITING      for an administrator: tie: both nodes hold equally new copies: "
                          "`coloctl failover` on the node whose copy to keep\n");
    assert_contains(text, "Peer node 1: present\n  state        no hello from it yet\n");
    g_assert_null(strstr(text, "COLO:"));
}

/* Whatever colod leaves out, the text says "?" and nothing breaks. */
static void test_status_empty(void)
{
    const char *objects[] = { "{}", "{\"peer\":5,\"vmm\":[],\"colo\":{\"checkpoints\":\"x\"},\"settings\":{}}",
                              "{\"colo\":{\"mode\":\"none\",\"last-mode\":\"secondary\",\"reason\":\"error\","
                              "\"x-broken\":true}}" };

    for (size_t i = 0; i < G_N_ELEMENTS(objects); i++) {
        g_autoptr(JsonObject) st = parse(objects[i]);
        g_autofree char *text = coloctl_status_text(st);
        g_autofree char *metrics = coloctl_metrics_text(st);

        assert_contains(text, "VM ? on node 0: ?\n");
        assert_contains(metrics, "colod_up{vm=\"\"} 1\n");
    }
    {
        g_autoptr(JsonObject) st = parse(objects[2]);
        g_autofree char *text = coloctl_status_text(st);

        assert_contains(text, "COLO: not running (last secondary, ended: error), 0 checkpoints, BROKEN");
    }
}

/* Every wait reason of the state machine has advice. */
static void test_wait_hints(void)
{
    for (WaitReason w = WAIT_UNKNOWN; w <= WAIT_RELOCATION_LOST; w++) {
        const char *name = wait_reason_name(w);

        if (!coloctl_wait_hint(name)) {
            g_error("no hint for wait reason %s", name);
        }
    }
    g_assert_null(coloctl_wait_hint("none"));
    g_assert_null(coloctl_wait_hint(NULL));
}

static void test_event_text(void)
{
    g_autoptr(JsonObject) data = parse("{\"old\":\"wait-admin\",\"new\":\"primary-starting\",\"role\":\"primary\","
                                       "\"generation\":6,\"running\":false,\"waiting\":null,\"reason\":\"started\"}");
    g_autoptr(JsonObject) ts = parse("{\"seconds\":1700000000,\"microseconds\":123456}");
    g_autoptr(JsonObject) quorum = parse("{\"quorate\":false}");
    g_autofree char *line = coloctl_event_text("COLOD_STATE", data, ts);
    g_autofree char *plain = coloctl_event_text("COLOD_STATE", data, NULL);
    g_autofree char *q = coloctl_event_text("COLOD_QUORUM", quorum, NULL);
    g_autofree char *none = coloctl_event_text("SHUTDOWN", NULL, NULL);

    g_assert_true(g_regex_match_simple("^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.123 COLOD_STATE ", line, 0, 0));
    g_assert_cmpstr(plain, ==, "COLOD_STATE wait-admin -> primary-starting (primary, generation 6): started");
    g_assert_cmpstr(q, ==, "COLOD_QUORUM quorate=false");
    g_assert_cmpstr(none, ==, "SHUTDOWN");
}

/* ---- Prometheus ---------------------------------------------------------------- */

typedef struct {
    GHashTable *help;    /* family -> seen */
    GHashTable *type;    /* family -> "gauge" / "counter" */
    GHashTable *samples; /* "name{labels}" -> value string */
} Parsed;

static void parsed_free(Parsed *p)
{
    g_hash_table_destroy(p->help);
    g_hash_table_destroy(p->type);
    g_hash_table_destroy(p->samples);
}

/* Checks the format's rules line by line; fails the test on a broken one. */
static void parse_metrics(const char *text, Parsed *p)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    g_autoptr(GRegex) comment = g_regex_new("^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$", 0, 0, NULL);
    g_autoptr(GRegex) sample = g_regex_new(
        "^([a-zA-Z_:][a-zA-Z0-9_:]*)\\{((?:[a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\\\\n]|\\\\[\\\\\"n])*\",?)*)\\} "
        "(-?[0-9.e+-]+|NaN|[+-]Inf)$", 0, 0, NULL);
    guint n = g_strv_length(lines);

    p->help = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    p->type = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    p->samples = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_assert_cmpstr(lines[n - 1], ==, ""); /* ends with a newline */
    for (guint i = 0; i + 1 < n; i++) {
        g_autoptr(GMatchInfo) m = NULL;

        if (g_regex_match(comment, lines[i], 0, &m)) {
            g_autofree char *kind = g_match_info_fetch(m, 1);
            g_autofree char *name = g_match_info_fetch(m, 2);
            g_autofree char *rest = g_match_info_fetch(m, 3);
            GHashTable *t = !strcmp(kind, "HELP") ? p->help : p->type;

            if (g_hash_table_contains(t, name)) {
                g_error("second # %s for %s", kind, name);
            }
            if (t == p->type) {
                g_assert_true(!strcmp(rest, "gauge") || !strcmp(rest, "counter"));
                g_assert_true(g_hash_table_contains(p->help, name));
                if (!strcmp(rest, "counter")) {
                    g_assert_true(g_str_has_suffix(name, "_total"));
                }
            }
            g_hash_table_insert(t, g_strdup(name), g_strdup(rest));
            continue;
        }
        g_clear_pointer(&m, g_match_info_unref);
        if (!g_regex_match(sample, lines[i], 0, &m)) {
            g_error("not a Prometheus line: %s", lines[i]);
        }
        {
            g_autofree char *name = g_match_info_fetch(m, 1);
            g_autofree char *labels = g_match_info_fetch(m, 2);
            g_autofree char *value = g_match_info_fetch(m, 3);

            if (!g_hash_table_contains(p->type, name)) {
                g_error("sample of %s before its # TYPE", name);
            }
            g_assert_true(g_str_has_prefix(labels, "vm=\""));
            g_hash_table_insert(p->samples, g_strdup_printf("%s{%s}", name, labels), g_steal_pointer(&value));
        }
    }
}

static void assert_sample(Parsed *p, const char *key, const char *value)
{
    const char *v = g_hash_table_lookup(p->samples, key);

    if (g_strcmp0(v, value)) {
        g_error("%s: %s, not %s", key, v ? v : "missing", value);
    }
}

static void test_metrics_full(void)
{
    g_autoptr(JsonObject) st = parse(full_status);
    g_autofree char *text = coloctl_metrics_text(st);
    Parsed p;

    parse_metrics(text, &p);
    assert_sample(&p, "colod_up{vm=\"web1\"}", "1");
    assert_sample(&p, "colod_info{vm=\"web1\",node_id=\"1\",state=\"primary-protected\",waiting=\"\"}", "1");
    assert_sample(&p, "colod_role{vm=\"web1\",role=\"primary\"}", "1");
    assert_sample(&p, "colod_role{vm=\"web1\",role=\"secondary\"}", "0");
    assert_sample(&p, "colod_generation{vm=\"web1\"}", "7");
    assert_sample(&p, "colod_quorate{vm=\"web1\"}", "1");
    assert_sample(&p, "colod_running{vm=\"web1\"}", "1");
    assert_sample(&p, "colod_protected{vm=\"web1\"}", "1");
    assert_sample(&p, "colod_waiting{vm=\"web1\"}", "0");
    assert_sample(&p, "colod_peer_present{vm=\"web1\"}", "1");
    assert_sample(&p, "colod_peer_generation{vm=\"web1\"}", "7");
    assert_sample(&p, "colod_colo_checkpoints_total{vm=\"web1\"}", "42");
    assert_sample(&p, "colod_colo_checkpoints_by_reason_total{vm=\"web1\",reason=\"mismatch\"}", "2");
    assert_sample(&p, "colod_colo_pause_last_seconds{vm=\"web1\"}", "0.0015");
    assert_sample(&p, "colod_colo_pause_max_seconds{vm=\"web1\"}", "0.004");
    assert_sample(&p, "colod_colo_last_checkpoint_bytes{vm=\"web1\"}", "49152");
    assert_sample(&p, "colod_colo_broken{vm=\"web1\"}", "0");
    assert_sample(&p, "colod_proxy_checkpoint_requests_total{vm=\"web1\"}", "2");
    assert_sample(&p, "colod_proxy_connected{vm=\"web1\"}", "1");
    assert_sample(&p, "colod_proxy_restarts_total{vm=\"web1\"}", "1");
    assert_sample(&p, "colod_proxy_packets_compared_total{vm=\"web1\"}", "900");
    assert_sample(&p, "colod_proxy_packets_released_total{vm=\"web1\"}", "1000");
    assert_sample(&p, "colod_proxy_packets_held{vm=\"web1\"}", "3");
    assert_sample(&p, "colod_proxy_mismatches_total{vm=\"web1\",reason=\"payload\"}", "2");
    assert_sample(&p, "colod_proxy_nfqueue_lost_total{vm=\"web1\"}", "0");
    g_assert_cmpstr(g_hash_table_lookup(p.type, "colod_colo_checkpoints_total"), ==, "counter");
    parsed_free(&p);
}

/* No COLO, a waiting node, and label values that need escaping. */
static void test_metrics_escaping(void)
{
    g_autoptr(JsonObject) st = parse("{\"vm\":\"a\\\"b\\\\c\\nd\",\"node-id\":2,\"state\":\"wait-admin\","
                                     "\"waiting\":\"tie\",\"role\":\"secondary\",\"peer\":{\"present\":false},"
                                     "\"colo\":null}");
    g_autofree char *text = coloctl_metrics_text(st);
    Parsed p;

    parse_metrics(text, &p);
    assert_sample(&p, "colod_waiting{vm=\"a\\\"b\\\\c\\nd\"}", "1");
    assert_sample(&p, "colod_info{vm=\"a\\\"b\\\\c\\nd\",node_id=\"2\",state=\"wait-admin\",waiting=\"tie\"}", "1");
    assert_sample(&p, "colod_peer_present{vm=\"a\\\"b\\\\c\\nd\"}", "0");
    g_assert_false(g_hash_table_contains(p.type, "colod_colo_checkpoints_total"));
    g_assert_false(g_hash_table_contains(p.type, "colod_peer_generation"));
    parsed_free(&p);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/coloctl/status/full", test_status_full);
    g_test_add_func("/coloctl/status/waiting", test_status_waiting);
    g_test_add_func("/coloctl/status/empty", test_status_empty);
    g_test_add_func("/coloctl/status/wait-hints", test_wait_hints);
    g_test_add_func("/coloctl/events/text", test_event_text);
    g_test_add_func("/coloctl/metrics/full", test_metrics_full);
    g_test_add_func("/coloctl/metrics/escaping", test_metrics_escaping);
    return g_test_run();
}
