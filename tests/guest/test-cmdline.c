/* Unit tests of the guest's command-line parser (host build). */
#include <glib.h>
#include <string.h>

#include "cmdline.h"

typedef struct {
    GPtrArray *msgs;
} Warnings;

static void collect(void *opaque, const char *what, const char *word, size_t len)
{
    Warnings *w = opaque;

    g_ptr_array_add(w->msgs, g_strdup_printf("%s: %.*s", what, (int)len, word));
}

static unsigned parse(const char *s, struct guest_config *cfg, Warnings *w)
{
    cmdline_defaults(cfg);
    g_ptr_array_set_size(w->msgs, 0);
    return cmdline_parse(s, strlen(s) + 1, cfg, collect, w);
}

static void test_defaults(void)
{
    struct guest_config cfg;
    Warnings w = { g_ptr_array_new_with_free_func(g_free) };

    g_assert_cmpuint(parse("", &cfg, &w), ==, 0);
    g_assert_cmpuint(cfg.interval, ==, 1);
    g_assert_cmpuint(cfg.hz, ==, 100);
    g_assert_cmpuint(cfg.dirty_pages, ==, 16);
    g_assert_cmpuint(cfg.dirty_ms, ==, 100);
    g_assert_cmpuint(cfg.area, ==, 4 << 20);
    g_assert_cmpuint(cfg.area_base, ==, 16 << 20);
    g_assert_cmpuint(cfg.poweroff_after, ==, 0);
    g_assert_cmpuint(cfg.cpus, ==, 0);
    g_assert_cmpuint(cfg.crash_after, ==, 0);
    g_assert_cmpuint(w.msgs->len, ==, 0);
    g_ptr_array_free(w.msgs, TRUE);
}

static void test_all_keys(void)
{
    struct guest_config cfg;
    Warnings w = { g_ptr_array_new_with_free_func(g_free) };

    g_assert_cmpuint(parse("  interval=0 hz=250\tdirty_pages=1000 dirty_ms=5 area=8M area_base=0x4000000 "
                           "poweroff_after=30 cpus=2 crash_after=7\n", &cfg, &w), ==, 0);
    g_assert_cmpuint(cfg.interval, ==, 0);
    g_assert_cmpuint(cfg.hz, ==, 250);
    g_assert_cmpuint(cfg.dirty_pages, ==, 1000);
    g_assert_cmpuint(cfg.dirty_ms, ==, 5);
    g_assert_cmpuint(cfg.area, ==, 8 << 20);
    g_assert_cmpuint(cfg.area_base, ==, 0x4000000);
    g_assert_cmpuint(cfg.poweroff_after, ==, 30);
    g_assert_cmpuint(cfg.cpus, ==, 2);
    g_assert_cmpuint(cfg.crash_after, ==, 7);
    g_ptr_array_free(w.msgs, TRUE);
}

static void test_problems_reported(void)
{
    struct guest_config cfg;
    Warnings w = { g_ptr_array_new_with_free_func(g_free) };

    g_assert_cmpuint(parse("console=ttyS0 hz=0 interval=abc area=12Q quiet interval hz=100000 intervalx=3 hz=50",
                           &cfg, &w), ==, 8);
    g_assert_cmpuint(w.msgs->len, ==, 8);
    g_assert_cmpstr(g_ptr_array_index(w.msgs, 0), ==, "unknown setting, ignored: console=ttyS0");
    g_assert_cmpstr(g_ptr_array_index(w.msgs, 1), ==, "bad or out-of-range value, ignored: hz=0");
    g_assert_cmpstr(g_ptr_array_index(w.msgs, 2), ==, "bad or out-of-range value, ignored: interval=abc");
    g_assert_cmpstr(g_ptr_array_index(w.msgs, 3), ==, "bad or out-of-range value, ignored: area=12Q");
    g_assert_cmpstr(g_ptr_array_index(w.msgs, 4), ==, "unknown setting, ignored: quiet");
    g_assert_cmpstr(g_ptr_array_index(w.msgs, 5), ==, "setting without a value: interval");
    g_assert_cmpstr(g_ptr_array_index(w.msgs, 6), ==, "bad or out-of-range value, ignored: hz=100000");
    g_assert_cmpstr(g_ptr_array_index(w.msgs, 7), ==, "unknown setting, ignored: intervalx=3");
    /* Bad words change nothing; the good one after them still applies. */
    g_assert_cmpuint(cfg.hz, ==, 50);
    g_assert_cmpuint(cfg.interval, ==, 1);
    g_assert_cmpuint(cfg.area, ==, 4 << 20);
    g_ptr_array_free(w.msgs, TRUE);
}

static void test_bounded_and_no_warn(void)
{
    struct guest_config cfg;
    const char s[] = { 'h', 'z', '=', '5', '0', '0' };   /* no NUL: max bounds it */

    cmdline_defaults(&cfg);
    g_assert_cmpuint(cmdline_parse(s, 5, &cfg, NULL, NULL), ==, 0);
    g_assert_cmpuint(cfg.hz, ==, 50);
    g_assert_cmpuint(cmdline_parse("bogus", 5, &cfg, NULL, NULL), ==, 1);
}

static void test_numbers(void)
{
    uint64_t v;

    g_assert_true(cmdline_parse_uint("0", 1, &v) && v == 0);
    g_assert_true(cmdline_parse_uint("0x1F", 4, &v) && v == 31);
    g_assert_true(cmdline_parse_uint("18446744073709551615", 20, &v) && v == UINT64_MAX);
    g_assert_false(cmdline_parse_uint("18446744073709551616", 20, &v));
    g_assert_false(cmdline_parse_uint("0x", 2, &v));
    g_assert_false(cmdline_parse_uint("", 0, &v));
    g_assert_false(cmdline_parse_uint("-1", 2, &v));
    g_assert_false(cmdline_parse_uint("12a", 3, &v));

    g_assert_true(cmdline_parse_size("8M", 2, &v) && v == 8ULL << 20);
    g_assert_true(cmdline_parse_size("2g", 2, &v) && v == 2ULL << 30);
    g_assert_true(cmdline_parse_size("64k", 3, &v) && v == 64ULL << 10);
    g_assert_true(cmdline_parse_size("4096", 4, &v) && v == 4096);
    g_assert_true(cmdline_parse_size("0x10M", 5, &v) && v == 16ULL << 20);
    g_assert_false(cmdline_parse_size("M", 1, &v));
    g_assert_false(cmdline_parse_size("17179869184G", 12, &v));   /* 2^34 G overflows */
}

static void test_network_settings(void)
{
    struct guest_config cfg;
    Warnings w = { g_ptr_array_new_with_free_func(g_free) };
    uint32_t ip;

    g_assert_cmpuint(parse("", &cfg, &w), ==, 0);
    g_assert_cmpuint(cfg.ip, ==, 0);            /* network off */
    g_assert_cmpuint(parse("ip=10.0.2.15/16 gw=10.0.0.1", &cfg, &w), ==, 0);
    g_assert_cmpuint(cfg.ip, ==, 0x0a00020f);
    g_assert_cmpuint(cfg.netmask, ==, 0xffff0000u);
    g_assert_cmpuint(cfg.gw, ==, 0x0a000001);
    g_assert_cmpuint(parse("ip=192.168.1.2", &cfg, &w), ==, 0);
    g_assert_cmpuint(cfg.ip, ==, 0xc0a80102);
    g_assert_cmpuint(cfg.netmask, ==, 0xffffff00u);     /* /24 unless told */
    g_assert_cmpuint(parse("ip=1.2.3.4/32", &cfg, &w), ==, 0);
    g_assert_cmpuint(cfg.netmask, ==, 0xffffffffu);

    g_assert_cmpuint(parse("ip=1.2.3 ip=1.2.3.4.5 ip=256.1.1.1 ip=1.2.3.4/0 ip=1.2.3.4/33 ip=0.0.0.0 "
                           "ip=01.2.3.4 ip=1..3.4 gw=1.2.3.4/24 ip=1.2.3.4/", &cfg, &w), ==, 10);
    g_assert_cmpuint(cfg.ip, ==, 0);
    g_assert_cmpstr(g_ptr_array_index(w.msgs, 0), ==, "bad or out-of-range value, ignored: ip=1.2.3");
    g_assert_false(cmdline_parse_ipv4("1.2.3.4 ", 8, &ip));
    g_assert_true(cmdline_parse_ipv4("255.255.255.255", 15, &ip) && ip == 0xffffffffu);
    g_ptr_array_free(w.msgs, TRUE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/guest/cmdline/defaults", test_defaults);
    g_test_add_func("/guest/cmdline/all-keys", test_all_keys);
    g_test_add_func("/guest/cmdline/problems-reported", test_problems_reported);
    g_test_add_func("/guest/cmdline/bounded", test_bounded_and_no_warn);
    g_test_add_func("/guest/cmdline/numbers", test_numbers);
    g_test_add_func("/guest/cmdline/network", test_network_settings);
    return g_test_run();
}
