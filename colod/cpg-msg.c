/* Encoding and strict decoding of colod's CPG messages (cpg-msg.h has the
 * layout). */
#include "config.h"

#include "cpg-msg.h"

#include <string.h>

G_DEFINE_QUARK(cpg-msg-error-quark, cpg_msg_error)

#define HELLO_PAUSED 0x01u
#define HELLO_PROTECT 0x02u
#define CLAIM_BY_ADMIN 0x01u
#define CLAIM_UNPROTECT 0x02u
#define SHUTDOWN_RESTART 0x01u

/* Body sizes by type; 0: no such type. */
static const size_t body_len[CPG_MSG__MAX] = {
    [CPG_MSG_HELLO] = 12,
    [CPG_MSG_PROTECT_REQUEST] = 8,
    [CPG_MSG_PROTECT_ACK] = 12,
    [CPG_MSG_FAILOVER_CLAIM] = 12,
    [CPG_MSG_FAILOVER_ACK] = 8,
    [CPG_MSG_SWITCHOVER] = 8,
    [CPG_MSG_SHUTDOWN] = 4,
    [CPG_MSG_RELOCATE_REQUEST] = 8,
    [CPG_MSG_RELOCATE_ACK] = 12,
};

const char *cpg_msg_type_name(CpgMsgType type)
{
    static const char *const names[CPG_MSG__MAX] = {
        [CPG_MSG_HELLO] = "hello",
        [CPG_MSG_PROTECT_REQUEST] = "protect-request",
        [CPG_MSG_PROTECT_ACK] = "protect-ack",
        [CPG_MSG_FAILOVER_CLAIM] = "failover-claim",
        [CPG_MSG_FAILOVER_ACK] = "failover-ack",
        [CPG_MSG_SWITCHOVER] = "switchover",
        [CPG_MSG_SHUTDOWN] = "shutdown",
        [CPG_MSG_RELOCATE_REQUEST] = "relocate-request",
        [CPG_MSG_RELOCATE_ACK] = "relocate-ack",
    };

    return (unsigned)type < CPG_MSG__MAX && names[type] ? names[type] : "unknown";
}

/* Big-endian fields at any alignment. */
#define PUT(bits, p, v)                                        \
    do {                                                       \
        guint##bits be_ = GUINT##bits##_TO_BE(v);              \
        memcpy((p), &be_, sizeof(be_));                        \
    } while (0)

static void put16(uint8_t *p, uint16_t v) { PUT(16, p, v); }
static void put32(uint8_t *p, uint32_t v) { PUT(32, p, v); }
static void put64(uint8_t *p, uint64_t v) { PUT(64, p, v); }

static uint16_t get16(const uint8_t *p)
{
    guint16 v;

    memcpy(&v, p, sizeof(v));
    return GUINT16_FROM_BE(v);
}

static uint32_t get32(const uint8_t *p)
{
    guint32 v;

    memcpy(&v, p, sizeof(v));
    return GUINT32_FROM_BE(v);
}

static uint64_t get64(const uint8_t *p)
{
    guint64 v;

    memcpy(&v, p, sizeof(v));
    return GUINT64_FROM_BE(v);
}

size_t cpg_msg_encode(const CpgMsg *m, const char *vm_name, uint8_t *buf)
{
    size_t name_len = strlen(vm_name);
    size_t len;
    uint8_t *b;

    g_assert(m->type > 0 && m->type < CPG_MSG__MAX);
    g_assert(name_len >= 1 && name_len <= CPG_MSG_NAME_MAX);
    len = CPG_MSG_HEADER_LEN + name_len + body_len[m->type];
    memset(buf, 0, len);
    put32(buf, CPG_MSG_MAGIC);
    put16(buf + 4, CPG_MSG_VERSION);
    put16(buf + 6, (uint16_t)m->type);
    put32(buf + 8, (uint32_t)len);
    put32(buf + 12, m->sender);
    put32(buf + 16, m->target);
    put16(buf + 20, (uint16_t)name_len);
    memcpy(buf + CPG_MSG_HEADER_LEN, vm_name, name_len);
    b = buf + CPG_MSG_HEADER_LEN + name_len;
    switch (m->type) {
    case CPG_MSG_HELLO:
        put64(b, m->generation);
        b[8] = (uint8_t)m->role;
        b[9] = (uint8_t)m->state;
        b[10] = (uint8_t)m->vmm;
        b[11] = (uint8_t)((m->paused ? HELLO_PAUSED : 0) | (m->protect_enabled ? HELLO_PROTECT : 0));
        break;
    case CPG_MSG_PROTECT_ACK:
    case CPG_MSG_RELOCATE_ACK:
        put64(b, m->generation);
        b[8] = m->accepted;
        break;
    case CPG_MSG_FAILOVER_CLAIM:
        put64(b, m->generation);
        b[8] = (uint8_t)((m->by_admin ? CLAIM_BY_ADMIN : 0) | (m->unprotect ? CLAIM_UNPROTECT : 0));
        break;
    case CPG_MSG_PROTECT_REQUEST:
    case CPG_MSG_FAILOVER_ACK:
    case CPG_MSG_SWITCHOVER:
    case CPG_MSG_RELOCATE_REQUEST:
        put64(b, m->generation);
        break;
    case CPG_MSG_SHUTDOWN:
        b[0] = m->restart ? SHUTDOWN_RESTART : 0;
        break;
    default:
        g_assert_not_reached();
    }
    return len;
}

static bool bad(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static bool bad(GError **error, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, CPG_MSG_ERROR, 0, "CPG message refused: %s", msg);
    return false;
}

static bool zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

/* The body of @m's type at @b (length already checked). */
static bool decode_body(const uint8_t *b, CpgMsg *m, GError **error)
{
    switch (m->type) {
    case CPG_MSG_HELLO:
        m->generation = get64(b);
        if (b[8] >= COLOD_ROLE__MAX || b[9] >= CLUSTER__MAX || b[10] >= VMM__MAX) {
            return bad(error, "hello with role %u, state %u, vmm %u out of range", b[8], b[9], b[10]);
        }
        if (b[11] & ~(HELLO_PAUSED | HELLO_PROTECT)) {
            return bad(error, "hello with unknown flags 0x%02x", b[11]);
        }
        m->role = b[8];
        m->state = b[9];
        m->vmm = b[10];
        m->paused = b[11] & HELLO_PAUSED;
        m->protect_enabled = b[11] & HELLO_PROTECT;
        break;
    case CPG_MSG_PROTECT_ACK:
    case CPG_MSG_RELOCATE_ACK:
        m->generation = get64(b);
        if (b[8] > 1 || !zero(b + 9, 3)) {
            return bad(error, "%s with accepted %u or reserved bytes set", cpg_msg_type_name(m->type), b[8]);
        }
        m->accepted = b[8];
        break;
    case CPG_MSG_FAILOVER_CLAIM:
        m->generation = get64(b);
        if ((b[8] & ~(CLAIM_BY_ADMIN | CLAIM_UNPROTECT)) || !zero(b + 9, 3)) {
            return bad(error, "failover-claim with unknown flags 0x%02x or reserved bytes set", b[8]);
        }
        m->by_admin = b[8] & CLAIM_BY_ADMIN;
        m->unprotect = b[8] & CLAIM_UNPROTECT;
        break;
    case CPG_MSG_PROTECT_REQUEST:
    case CPG_MSG_FAILOVER_ACK:
    case CPG_MSG_SWITCHOVER:
    case CPG_MSG_RELOCATE_REQUEST:
        m->generation = get64(b);
        break;
    case CPG_MSG_SHUTDOWN:
        if ((b[0] & ~SHUTDOWN_RESTART) || !zero(b + 1, 3)) {
            return bad(error, "shutdown with unknown flags 0x%02x or reserved bytes set", b[0]);
        }
        m->restart = b[0] & SHUTDOWN_RESTART;
        break;
    default:
        g_assert_not_reached();
    }
    /* Generations stay below 2^63 (state-file.c), so "newest + 1" fits. */
    if (m->generation > G_MAXINT64) {
        return bad(error, "%s with generation %" G_GUINT64_FORMAT " out of range", cpg_msg_type_name(m->type),
                   m->generation);
    }
    return true;
}

bool cpg_msg_decode(const uint8_t *buf, size_t len, uint32_t from, const char *vm_name, CpgMsg *out,
                    GError **error)
{
    CpgMsg m = { 0 };
    uint16_t version, type, name_len;
    uint32_t msg_len;

    if (len < CPG_MSG_HEADER_LEN) {
        return bad(error, "%zu bytes, shorter than a header", len);
    }
    if (get32(buf) != CPG_MSG_MAGIC) {
        return bad(error, "bad magic 0x%08x", get32(buf));
    }
    version = get16(buf + 4);
    type = get16(buf + 6);
    msg_len = get32(buf + 8);
    name_len = get16(buf + 20);
    if (version != CPG_MSG_VERSION) {
        return bad(error, "version %u (this colod speaks %d)", version, CPG_MSG_VERSION);
    }
    if (type == 0 || type >= CPG_MSG__MAX) {
        return bad(error, "unknown type %u", type);
    }
    if (msg_len != len) {
        return bad(error, "length field %u, %zu bytes delivered", msg_len, len);
    }
    if (name_len == 0 || name_len > CPG_MSG_NAME_MAX) {
        return bad(error, "VM name length %u", name_len);
    }
    if (len != CPG_MSG_HEADER_LEN + name_len + body_len[type]) {
        return bad(error, "%s of %zu bytes, expected %zu", cpg_msg_type_name(type), len,
                   CPG_MSG_HEADER_LEN + name_len + body_len[type]);
    }
    if (strlen(vm_name) != name_len || memcmp(buf + CPG_MSG_HEADER_LEN, vm_name, name_len) != 0) {
        /* The name came from the wire: escaped before it reaches a log. */
        g_autofree char *name = g_strndup((const char *)buf + CPG_MSG_HEADER_LEN, name_len);
        g_autofree char *shown = g_strescape(name, NULL);

        return bad(error, "for another VM (\"%s\"), not %s", shown, vm_name);
    }
    m.type = type;
    m.sender = get32(buf + 12);
    m.target = get32(buf + 16);
    if (m.sender != from) {
        return bad(error, "sender field %u, delivered from node %u", m.sender, from);
    }
    if (!decode_body(buf + CPG_MSG_HEADER_LEN + name_len, &m, error)) {
        return false;
    }
    *out = m;
    return true;
}
