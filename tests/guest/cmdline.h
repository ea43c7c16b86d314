/* The guest's settings and the parser of its command line ("key=value"
 * words). Pure code: compiled into the guest and into host unit tests. */
#ifndef TESTGUEST_CMDLINE_H
#define TESTGUEST_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_config {
    uint32_t interval;        /* seconds between status lines, 0 = quiet */
    uint32_t hz;              /* timer ticks per second on every CPU */
    uint32_t dirty_pages;     /* pages written per workload period, all CPUs together */
    uint32_t dirty_ms;        /* workload period in ms, 0 = no workload */
    uint64_t area;            /* workload area in bytes (whole pages), 0 = no workload */
    uint64_t area_base;       /* its guest-physical address (2 MiB aligned) */
    uint32_t poweroff_after;  /* seconds after "ready" to power off, 0 = never */
    uint32_t cpus;            /* CPUs to use at most, 0 = all the MP table lists */
    uint32_t crash_after;     /* seconds after "ready" to raise #UD on CPU 0 (tests), 0 = never */
    uint32_t ip;              /* IPv4 address (host order), 0 = network off */
    uint32_t netmask;         /* from the prefix length of ip=A.B.C.D/N (default /24) */
    uint32_t gw;              /* default gateway, 0 = none */
};

/* Reports one problem with one word of the command line: @what says what
 * is wrong ("unknown setting", ...), @word/@len is the word. */
typedef void (*cmdline_warn_fn)(void *opaque, const char *what, const char *word, size_t len);

void cmdline_defaults(struct guest_config *cfg);

/* Applies every "key=value" word of @cmdline (at most @max bytes, stops at
 * NUL) to @cfg. Unknown keys, words without '=', and values that do not
 * parse or are out of range are reported through @warn (may be NULL) and
 * leave @cfg unchanged. Returns the number of problems. */
unsigned cmdline_parse(const char *cmdline, size_t max, struct guest_config *cfg, cmdline_warn_fn warn,
                       void *opaque);

/* A decimal or 0x-hex number, exactly @len bytes, no overflow. */
bool cmdline_parse_uint(const char *s, size_t len, uint64_t *out);

/* An IPv4 address "A.B.C.D", exactly @len bytes, host order. */
bool cmdline_parse_ipv4(const char *s, size_t len, uint32_t *out);

/* A number with an optional K, M, G or T suffix (powers of 1024). */
bool cmdline_parse_size(const char *s, size_t len, uint64_t *out);

#endif
