/* The workload page pattern and its verification. */
#include "pattern.h"

uint64_t pattern_check(uint32_t page, uint64_t gen)
{
    /* splitmix64 finaliser over (gen, page): cheap, and any single changed
     * bit of either input changes the result. */
    uint64_t z = gen * 0x9e3779b97f4a7c15ULL ^ page;

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void pattern_write(void *mem, uint32_t page, uint64_t gen)
{
    volatile struct pattern_header *h = mem;
    volatile uint64_t *trailer = (volatile uint64_t *)((unsigned char *)mem + PATTERN_TRAILER_OFF);
    uint64_t check = pattern_check(page, gen);

    h->gen = gen;
    h->check = check;
    h->page = page;
    h->magic = PATTERN_MAGIC;
    *trailer = ~check;
}

uint64_t pattern_expected_gen(uint64_t writes, uint64_t slice_pages, uint64_t offset)
{
    if (!slice_pages || offset >= slice_pages) {
        return 0;
    }
    return writes / slice_pages + (offset < writes % slice_pages ? 1 : 0);
}

enum pattern_result pattern_verify(const void *mem, uint32_t page, uint64_t expected, bool in_flight)
{
    const struct pattern_header *h = mem;
    uint64_t trailer;

    if (expected == 0 && !in_flight) {
        return PATTERN_OK;
    }
    if (h->magic != PATTERN_MAGIC) {
        return expected == 0 ? PATTERN_OK : PATTERN_BAD_MAGIC;
    }
    if (h->page != page) {
        return PATTERN_BAD_INDEX;
    }
    if (h->gen < expected) {
        return PATTERN_STALE;
    }
    if (h->gen > expected + (in_flight ? 1 : 0)) {
        return PATTERN_AHEAD;
    }
    if (in_flight) {
        return PATTERN_OK;
    }
    __builtin_memcpy(&trailer, (const unsigned char *)mem + PATTERN_TRAILER_OFF, sizeof(trailer));
    if (h->check != pattern_check(page, h->gen) || trailer != ~h->check) {
        return PATTERN_BAD_CHECK;
    }
    return PATTERN_OK;
}

const char *pattern_result_str(enum pattern_result r)
{
    switch (r) {
    case PATTERN_OK: return "ok";
    case PATTERN_BAD_MAGIC: return "no pattern header (page lost?)";
    case PATTERN_BAD_INDEX: return "header names another page";
    case PATTERN_BAD_CHECK: return "check value or trailer wrong (torn or corrupt page)";
    case PATTERN_STALE: return "stale: older generation than recorded";
    case PATTERN_AHEAD: return "newer generation than recorded";
    }
    return "?";
}
