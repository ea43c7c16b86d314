/* colod's CPG messages: the wire layout of one message byte by byte, round
 * trips of every type, and each malformation refused with its reason. */
#include "config.h"

#include "cpg-msg.h"

#include <glib.h>
#include <string.h>

#define VM "web1"

static const CpgMsg samples[] = {
    { .type = CPG_MSG_HELLO, .sender = 1, .generation = 42, .role = COLOD_ROLE_SECONDARY,
      .state = CLUSTER_SECONDARY_PROTECTED, .vmm = VMM_SECONDARY, .paused = true, .protect_enabled = true },
    { .type = CPG_MSG_HELLO, .sender = 7, .role = COLOD_ROLE_NONE, .state = CLUSTER_STARTING },
    { .type = CPG_MSG_PROTECT_REQUEST, .sender = 1, .target = 2, .generation = G_MAXINT64 },
    { .type = CPG_MSG_PROTECT_ACK, .sender = 2, .target = 1, .generation = 43, .accepted = true },
    { .type = CPG_MSG_PROTECT_ACK, .sender = 2, .target = 1, .generation = 43 },
    { .type = CPG_MSG_FAILOVER_CLAIM, .sender = 2, .generation = 44, .by_admin = true, .unprotect = true },
    { .type = CPG_MSG_FAILOVER_ACK, .sender = 1, .target = 2, .generation = 44 },
    { .type = CPG_MSG_SWITCHOVER, .sender = 1, .target = 2, .generation = 44 },
    { .type = CPG_MSG_SHUTDOWN, .sender = 0xfffffffe, .restart = true },
    { .type = CPG_MSG_SHUTDOWN, .sender = 3 },
    /* 10-13: relocation by postcopy */
    { .type = CPG_MSG_RELOCATE_REQUEST, .sender = 1, .target = 2, .generation = 45 },
    { .type = CPG_MSG_RELOCATE_ACK, .sender = 2, .target = 1, .generation = 45, .accepted = true },
    { .type = CPG_MSG_RELOCATE_ACK, .sender = 2, .target = 1, .generation = 45 },
    { .type = CPG_MSG_HELLO, .sender = 2, .generation = 45, .role = COLOD_ROLE_PRIMARY,
      .state = CLUSTER_RELOCATE_TARGET, .vmm = VMM_PRIMARY },
};

static void assert_same(const CpgMsg *a, const CpgMsg *b)
{
    g_assert_cmpint(a->type, ==, b->type);
    g_assert_cmpuint(a->sender, ==, b->sender);
    g_assert_cmpuint(a->target, ==, b->target);
    g_assert_cmpuint(a->generation, ==, b->generation);
    g_assert_cmpint(a->role, ==, b->role);
    g_assert_cmpint(a->state, ==, b->state);
    g_assert_cmpint(a->vmm, ==, b->vmm);
    g_assert_cmpint(a->paused, ==, b->paused);
    g_assert_cmpint(a->protect_enabled, ==, b->protect_enabled);
    g_assert_cmpint(a->accepted, ==, b->accepted);
    g_assert_cmpint(a->by_admin, ==, b->by_admin);
    g_assert_cmpint(a->unprotect, ==, b->unprotect);
    g_assert_cmpint(a->restart, ==, b->restart);
}

static void test_layout(void)
{
    static const uint8_t want[] = {
        'C', 'O', 'L', 'D', 0, 1, 0, 1, 0, 0, 0, 38, 0, 0, 0, 1, 0, 0, 0, 0, 0, 4, 'w', 'e', 'b', '1',
        0, 0, 0, 0, 0, 0, 0, 42, COLOD_ROLE_SECONDARY, CLUSTER_SECONDARY_PROTECTED, VMM_SECONDARY, 3,
    };
    uint8_t buf[CPG_MSG_MAX];
    size_t len = cpg_msg_encode(&samples[0], VM, buf);

    g_assert_cmpmem(buf, len, want, sizeof(want));
}

/* The relocation's messages and states came after version 1's first
 * ones: their numbers on the wire are fixed, and the old ones unchanged. */
static void test_layout_relocate(void)
{
    static const uint8_t want[] = {
        'C', 'O', 'L', 'D', 0, 1, 0, 9, 0, 0, 0, 38, 0, 0, 0, 2, 0, 0, 0, 1, 0, 4, 'w', 'e', 'b', '1',
        0, 0, 0, 0, 0, 0, 0, 45, 1, 0, 0, 0,
    };
    uint8_t buf[CPG_MSG_MAX];
    size_t len = cpg_msg_encode(&samples[11], VM, buf);

    g_assert_cmpmem(buf, len, want, sizeof(want));
    len = cpg_msg_encode(&samples[10], VM, buf);
    g_assert_cmpuint(len, ==, 34);
    g_assert_cmpuint(buf[7], ==, 8);
    g_assert_cmpint(CLUSTER_STOPPED, ==, 15);
    g_assert_cmpint(CLUSTER_RELOCATE_REQUESTED, ==, 16);
    g_assert_cmpint(CLUSTER_RELOCATING, ==, 17);
    g_assert_cmpint(CLUSTER_RELOCATE_TARGET, ==, 18);
}

static void test_round_trip(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(samples); i++) {
        uint8_t buf[CPG_MSG_MAX];
        size_t len = cpg_msg_encode(&samples[i], VM, buf);
        CpgMsg back;
        g_autoptr(GError) err = NULL;

        g_assert_true(cpg_msg_decode(buf, len, samples[i].sender, VM, &back, &err));
        g_assert_no_error(err);
        assert_same(&samples[i], &back);
        /* Every shorter or longer delivery is refused. */
        for (size_t cut = 0; cut < len; cut++) {
            g_autoptr(GError) e = NULL;

            g_assert_false(cpg_msg_decode(buf, cut, samples[i].sender, VM, &back, &e));
            g_assert_error(e, CPG_MSG_ERROR, 0);
        }
        {
            g_autoptr(GError) e = NULL;

            buf[len] = 0;
            g_assert_false(cpg_msg_decode(buf, len + 1, samples[i].sender, VM, &back, &e));
            g_assert_nonnull(strstr(e->message, "length field"));
        }
    }
    /* The longest name fits CPG_MSG_MAX. */
    {
        g_autofree char *name = g_strnfill(CPG_MSG_NAME_MAX, 'n');
        uint8_t buf[CPG_MSG_MAX];
        CpgMsg back;

        for (size_t i = 0; i < G_N_ELEMENTS(samples); i++) {
            size_t len = cpg_msg_encode(&samples[i], name, buf);

            g_assert_cmpuint(len, <=, CPG_MSG_MAX);
            g_assert_true(cpg_msg_decode(buf, len, samples[i].sender, name, &back, NULL));
        }
    }
}

/* Encodes samples[@i], lets @poke change it, and expects a refusal whose
 * message holds @want. */
static void expect_refused(size_t i, void (*poke)(uint8_t *buf, size_t *len), const char *want)
{
    uint8_t buf[CPG_MSG_MAX + 8] = { 0 };
    size_t len = cpg_msg_encode(&samples[i], VM, buf);
    CpgMsg back = { .type = CPG_MSG_SHUTDOWN, .sender = 99 };
    g_autoptr(GError) err = NULL;

    poke(buf, &len);
    g_assert_false(cpg_msg_decode(buf, len, samples[i].sender, VM, &back, &err));
    g_assert_error(err, CPG_MSG_ERROR, 0);
    if (!strstr(err->message, want)) {
        g_error("sample %zu: \"%s\" lacks \"%s\"", i, err->message, want);
    }
    g_assert_cmpuint(back.sender, ==, 99); /* nothing partly decoded */
}

#define BODY (CPG_MSG_HEADER_LEN + 4)
static void magic(uint8_t *b, size_t *len) { b[3] ^= 1; }
static void version0(uint8_t *b, size_t *len) { b[5] = 0; }
static void version2(uint8_t *b, size_t *len) { b[5] = 2; }
static void type0(uint8_t *b, size_t *len) { b[7] = 0; }
static void type_max(uint8_t *b, size_t *len) { b[7] = CPG_MSG__MAX; }
static void type_high(uint8_t *b, size_t *len) { b[6] = 1; }
static void length_field(uint8_t *b, size_t *len) { b[11]++; }
static void sender(uint8_t *b, size_t *len) { b[15] ^= 4; }
static void name_len0(uint8_t *b, size_t *len) { b[21] = 0; }
static void name_len_big(uint8_t *b, size_t *len) { b[20] = 1; }
static void name_other(uint8_t *b, size_t *len) { b[22] = 'W'; }
static void name_ctl(uint8_t *b, size_t *len) { b[22] = '\n'; }
/* A HELLO claiming to be a PROTECT_ACK: same length, other type. */
static void hello_as_request(uint8_t *b, size_t *len) { b[7] = CPG_MSG_PROTECT_REQUEST; }
static void role(uint8_t *b, size_t *len) { b[BODY + 8] = COLOD_ROLE__MAX; }
static void state(uint8_t *b, size_t *len) { b[BODY + 9] = CLUSTER__MAX; }
static void vmm(uint8_t *b, size_t *len) { b[BODY + 10] = VMM__MAX; }
static void flags4(uint8_t *b, size_t *len) { b[BODY + 11] |= 4; }
static void accepted2(uint8_t *b, size_t *len) { b[BODY + 8] = 2; }
static void reserved9(uint8_t *b, size_t *len) { b[BODY + 9] = 1; }
static void reserved11(uint8_t *b, size_t *len) { b[BODY + 11] = 0x80; }
static void claim_flags(uint8_t *b, size_t *len) { b[BODY + 8] |= 4; }
static void shutdown_flags(uint8_t *b, size_t *len) { b[BODY] |= 2; }
static void shutdown_reserved(uint8_t *b, size_t *len) { b[BODY + 3] = 1; }
static void generation_top(uint8_t *b, size_t *len) { b[BODY] = 0x80; }

static void test_refused(void)
{
    expect_refused(0, magic, "bad magic");
    expect_refused(0, version0, "version 0");
    expect_refused(0, version2, "version 2 (this colod speaks 1)");
    expect_refused(0, type0, "unknown type 0");
    expect_refused(0, type_max, "unknown type");
    expect_refused(0, type_high, "unknown type 257");
    expect_refused(0, length_field, "length field 39, 38 bytes delivered");
    expect_refused(0, sender, "sender field 5, delivered from node 1");
    expect_refused(0, name_len0, "VM name length 0");
    expect_refused(0, name_len_big, "VM name length 260");
    expect_refused(0, name_other, "for another VM (\"Web1\"), not web1");
    expect_refused(0, name_ctl, "for another VM (\"\\neb1\")");
    expect_refused(0, hello_as_request, "protect-request of 38 bytes, expected 34");
    expect_refused(0, role, "role 4");
    expect_refused(0, state, "state 19");
    expect_refused(0, vmm, "vmm 3");
    expect_refused(0, flags4, "unknown flags 0x07");
    expect_refused(3, accepted2, "protect-ack with accepted 2");
    expect_refused(3, reserved9, "reserved");
    expect_refused(5, reserved11, "reserved");
    expect_refused(5, claim_flags, "failover-claim with unknown flags 0x07");
    expect_refused(8, shutdown_flags, "shutdown with unknown flags 0x03");
    expect_refused(9, shutdown_reserved, "reserved");
    expect_refused(2, generation_top, "protect-request with generation 9295429630892703743 out of range");
    expect_refused(6, generation_top, "out of range");
    expect_refused(11, accepted2, "relocate-ack with accepted 2");
    expect_refused(12, reserved9, "reserved");
    expect_refused(10, generation_top, "relocate-request with generation 9223372036854775853 out of range");
    expect_refused(11, generation_top, "out of range");
}

/* A message for another VM of the same length is refused even when only
 * the name differs (two VMs' groups must never mix). */
static void test_other_vm(void)
{
    uint8_t buf[CPG_MSG_MAX];
    size_t len = cpg_msg_encode(&samples[2], "web2", buf);
    CpgMsg back;
    g_autoptr(GError) err = NULL;

    g_assert_false(cpg_msg_decode(buf, len, 1, VM, &back, &err));
    g_assert_nonnull(strstr(err->message, "for another VM"));
    g_clear_error(&err);
    len = cpg_msg_encode(&samples[2], "web", buf);
    g_assert_false(cpg_msg_decode(buf, len, 1, VM, &back, &err));
}

static void test_names(void)
{
    for (int t = 1; t < CPG_MSG__MAX; t++) {
        g_assert_cmpstr(cpg_msg_type_name(t), !=, "unknown");
    }
    g_assert_cmpstr(cpg_msg_type_name(0), ==, "unknown");
    g_assert_cmpstr(cpg_msg_type_name(CPG_MSG__MAX), ==, "unknown");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/colod/cpg-msg/layout", test_layout);
    g_test_add_func("/colod/cpg-msg/layout-relocate", test_layout_relocate);
    g_test_add_func("/colod/cpg-msg/round-trip", test_round_trip);
    g_test_add_func("/colod/cpg-msg/refused", test_refused);
    g_test_add_func("/colod/cpg-msg/other-vm", test_other_vm);
    g_test_add_func("/colod/cpg-msg/names", test_names);
    return g_test_run();
}
