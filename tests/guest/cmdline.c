/* Table-driven parser of the guest's "key=value" settings. */
#include "cmdline.h"

enum setting_kind { SETTING_U32, SETTING_SIZE, SETTING_U64, SETTING_IPV4, SETTING_CIDR };

struct setting {
    const char *key;
    enum setting_kind kind;
    size_t offset;
    uint64_t min, max;
};

#define CFG_OFF(field) __builtin_offsetof(struct guest_config, field)

static const struct setting settings[] = {
    { "interval", SETTING_U32, CFG_OFF(interval), 0, 86400 },
    { "hz", SETTING_U32, CFG_OFF(hz), 1, 1000 },
    { "dirty_pages", SETTING_U32, CFG_OFF(dirty_pages), 0, 1u << 20 },
    { "dirty_ms", SETTING_U32, CFG_OFF(dirty_ms), 0, 3600000 },
    { "area", SETTING_SIZE, CFG_OFF(area), 0, 1ULL << 40 },
    { "area_base", SETTING_U64, CFG_OFF(area_base), 0x200000, 1ULL << 40 },
    { "poweroff_after", SETTING_U32, CFG_OFF(poweroff_after), 0, 1u << 30 },
    { "cpus", SETTING_U32, CFG_OFF(cpus), 0, 1024 },
    { "crash_after", SETTING_U32, CFG_OFF(crash_after), 0, 1u << 30 },
    { "ip", SETTING_CIDR, CFG_OFF(ip), 0, 0 },
    { "gw", SETTING_IPV4, CFG_OFF(gw), 0, 0 },
};

void cmdline_defaults(struct guest_config *cfg)
{
    cfg->interval = 1;
    cfg->hz = 100;
    cfg->dirty_pages = 16;
    cfg->dirty_ms = 100;
    cfg->area = 4ULL << 20;
    cfg->area_base = 16ULL << 20;
    cfg->poweroff_after = 0;
    cfg->cpus = 0;
    cfg->crash_after = 0;
    cfg->ip = 0;
    cfg->netmask = 0xffffff00u;
    cfg->gw = 0;
}

bool cmdline_parse_ipv4(const char *s, size_t len, uint32_t *out)
{
    uint32_t ip = 0;
    size_t i = 0;

    for (int part = 0; part < 4; part++) {
        size_t start = i;
        uint64_t v;
        while (i < len && s[i] != '.') {
            i++;
        }
        if (i - start > 3 || !cmdline_parse_uint(s + start, i - start, &v) || v > 255 ||
            (s[start] == '0' && i - start > 1)) {
            return false;
        }
        ip = ip << 8 | (uint32_t)v;
        if (part < 3) {
            if (i == len) {
                return false;
            }
            i++;        /* the dot */
        }
    }
    if (i != len) {
        return false;
    }
    *out = ip;
    return true;
}

bool cmdline_parse_uint(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    unsigned base = 10;
    size_t i = 0;

    if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2;
    }
    if (i == len) {
        return false;
    }
    for (; i < len; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9') {
            d = (unsigned)(c - '0');
        } else if (base == 16 && c >= 'a' && c <= 'f') {
            d = (unsigned)(c - 'a' + 10);
        } else if (base == 16 && c >= 'A' && c <= 'F') {
            d = (unsigned)(c - 'A' + 10);
        } else {
            return false;
        }
        if (v > (UINT64_MAX - d) / base) {
            return false;
        }
        v = v * base + d;
    }
    *out = v;
    return true;
}

bool cmdline_parse_size(const char *s, size_t len, uint64_t *out)
{
    unsigned shift = 0;
    uint64_t v;

    if (len > 0) {
        switch (s[len - 1]) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        case 't': case 'T': shift = 40; break;
        default: break;
        }
        if (shift) {
            len--;
        }
    }
    if (!cmdline_parse_uint(s, len, &v)) {
        return false;
    }
    if (shift && v > (UINT64_MAX >> shift)) {
        return false;
    }
    *out = v << shift;
    return true;
}

static bool key_is(const char *key, const char *word, size_t len)
{
    size_t i = 0;

    for (; i < len; i++) {
        if (key[i] != word[i]) {       /* also stops at key's NUL */
            return false;
        }
    }
    return key[i] == '\0';
}

/* ip=A.B.C.D[/N]: address and netmask together. */
static bool setting_apply_cidr(const char *val, size_t len, struct guest_config *cfg)
{
    size_t slash = 0;
    uint64_t prefix = 24;
    uint32_t ip;

    while (slash < len && val[slash] != '/') {
        slash++;
    }
    if (!cmdline_parse_ipv4(val, slash, &ip) || ip == 0 ||
        (slash < len && (!cmdline_parse_uint(val + slash + 1, len - slash - 1, &prefix) || prefix < 1 ||
                         prefix > 32))) {
        return false;
    }
    cfg->ip = ip;
    cfg->netmask = (uint32_t)(0xffffffffULL << (32 - prefix));
    return true;
}

static bool setting_apply(const struct setting *st, const char *val, size_t len, struct guest_config *cfg)
{
    if (st->kind == SETTING_CIDR) {
        return setting_apply_cidr(val, len, cfg);
    }
    if (st->kind == SETTING_IPV4) {
        uint32_t ip;
        if (!cmdline_parse_ipv4(val, len, &ip)) {
            return false;
        }
        __builtin_memcpy((unsigned char *)cfg + st->offset, &ip, sizeof(ip));
        return true;
    }

    uint64_t v;
    bool ok = st->kind == SETTING_SIZE ? cmdline_parse_size(val, len, &v) : cmdline_parse_uint(val, len, &v);
    unsigned char *field = (unsigned char *)cfg + st->offset;

    if (!ok || v < st->min || v > st->max) {
        return false;
    }
    if (st->kind == SETTING_U32) {
        uint32_t v32 = (uint32_t)v;
        __builtin_memcpy(field, &v32, sizeof(v32));
    } else {
        __builtin_memcpy(field, &v, sizeof(v));
    }
    return true;
}

static unsigned cmdline_word(const char *w, size_t len, struct guest_config *cfg, cmdline_warn_fn warn,
                             void *opaque)
{
    size_t eq = 0;

    while (eq < len && w[eq] != '=') {
        eq++;
    }
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
        if (!key_is(settings[i].key, w, eq)) {
            continue;
        }
        if (eq == len) {
            if (warn) {
                warn(opaque, "setting without a value", w, len);
            }
            return 1;
        }
        if (!setting_apply(&settings[i], w + eq + 1, len - eq - 1, cfg)) {
            if (warn) {
                warn(opaque, "bad or out-of-range value, ignored", w, len);
            }
            return 1;
        }
        return 0;
    }
    if (warn) {
        warn(opaque, "unknown setting, ignored", w, len);
    }
    return 1;
}

unsigned cmdline_parse(const char *cmdline, size_t max, struct guest_config *cfg, cmdline_warn_fn warn,
                       void *opaque)
{
    unsigned problems = 0;
    size_t i = 0;

    while (i < max && cmdline[i]) {
        while (i < max && (cmdline[i] == ' ' || cmdline[i] == '\t' || cmdline[i] == '\n')) {
            i++;
        }
        size_t start = i;
        while (i < max && cmdline[i] && cmdline[i] != ' ' && cmdline[i] != '\t' && cmdline[i] != '\n') {
            i++;
        }
        if (i > start) {
            problems += cmdline_word(cmdline + start, i - start, cfg, warn, opaque);
        }
    }
    return problems;
}
