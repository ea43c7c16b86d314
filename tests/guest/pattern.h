/* The workload's page pattern: what one write puts into a page, and how a
 * checker decides whether a page holds what the guest's own record says.
 * Pure code: guest, host unit tests; tests/guest/testguest.py mirrors it. */
#ifndef TESTGUEST_PATTERN_H
#define TESTGUEST_PATTERN_H

#include <stdbool.h>
#include <stdint.h>

#define PATTERN_PAGE_SIZE    4096
#define PATTERN_MAGIC        0x50475443u   /* "CTGP" in memory */
#define PATTERN_TRAILER_OFF  (PATTERN_PAGE_SIZE - 8)

/* Bytes 0-23 of a written page (little-endian); bytes 4088-4095 hold
 * ~check. The rest of the page is left alone. */
struct pattern_header {
    uint32_t magic;
    uint32_t page;     /* index of the page in the workload area */
    uint64_t gen;      /* how many times this page has been written, >= 1 */
    uint64_t check;    /* pattern_check(page, gen) */
};

enum pattern_result {
    PATTERN_OK,
    PATTERN_BAD_MAGIC,     /* header missing: page never written, or lost */
    PATTERN_BAD_INDEX,     /* a page written for another place */
    PATTERN_BAD_CHECK,     /* header or trailer does not match its gen: torn or corrupt */
    PATTERN_STALE,         /* older generation than the record says */
    PATTERN_AHEAD,         /* newer generation than the record allows */
};

uint64_t pattern_check(uint32_t page, uint64_t gen);

/* Writes generation @gen of page @page into @mem (one page). gen and check
 * first, the trailer last, so an interrupted write is visible as such. */
void pattern_write(void *mem, uint32_t page, uint64_t gen);

/* Generation page @offset of a slice of @slice_pages should hold after the
 * CPU owning the slice made @writes writes, round-robin from offset 0. */
uint64_t pattern_expected_gen(uint64_t writes, uint64_t slice_pages, uint64_t offset);

/* Verifies one page against the expected generation. @in_flight: this page
 * is the owner's next one, which a paused guest may have half written:
 * then gen may be expected or expected + 1 and check/trailer are not
 * required. @expected 0 (never written) accepts any content. */
enum pattern_result pattern_verify(const void *mem, uint32_t page, uint64_t expected, bool in_flight);

const char *pattern_result_str(enum pattern_result r);

#endif
