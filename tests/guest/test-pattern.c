/* Unit tests of the workload page pattern and its verification (host). */
#include <glib.h>
#include <string.h>

#include "pattern.h"

static void test_write_verify(void)
{
    g_autofree uint8_t *page = g_malloc0(PATTERN_PAGE_SIZE);

    /* Never written and expected so: fine, whatever the content. */
    g_assert_cmpint(pattern_verify(page, 7, 0, false), ==, PATTERN_OK);
    /* Expected written but empty: lost. */
    g_assert_cmpint(pattern_verify(page, 7, 1, false), ==, PATTERN_BAD_MAGIC);

    pattern_write(page, 7, 3);
    g_assert_cmpint(pattern_verify(page, 7, 3, false), ==, PATTERN_OK);
    g_assert_cmpint(pattern_verify(page, 7, 4, false), ==, PATTERN_STALE);
    g_assert_cmpint(pattern_verify(page, 7, 2, false), ==, PATTERN_AHEAD);
    g_assert_cmpint(pattern_verify(page, 8, 3, false), ==, PATTERN_BAD_INDEX);
    g_assert_cmpstr(pattern_result_str(PATTERN_STALE), ==, "stale: older generation than recorded");
}

static void test_corruption_detected(void)
{
    g_autofree uint8_t *page = g_malloc0(PATTERN_PAGE_SIZE);

    pattern_write(page, 5, 9);
    page[PATTERN_TRAILER_OFF] ^= 1;          /* torn: trailer from another write */
    g_assert_cmpint(pattern_verify(page, 5, 9, false), ==, PATTERN_BAD_CHECK);
    pattern_write(page, 5, 9);
    page[16] ^= 0x80;                        /* check value flipped */
    g_assert_cmpint(pattern_verify(page, 5, 9, false), ==, PATTERN_BAD_CHECK);
    /* A page copied from gen 8 with its own gen patched up is still caught. */
    pattern_write(page, 5, 8);
    uint64_t gen = 9;
    memcpy(page + 8, &gen, sizeof(gen));
    g_assert_cmpint(pattern_verify(page, 5, 9, false), ==, PATTERN_BAD_CHECK);
}

static void test_in_flight(void)
{
    g_autofree uint8_t *page = g_malloc0(PATTERN_PAGE_SIZE);
    struct pattern_header *h = (struct pattern_header *)page;

    pattern_write(page, 2, 4);
    /* Paused after the gen store of write 5, before check and trailer. */
    h->gen = 5;
    g_assert_cmpint(pattern_verify(page, 2, 4, true), ==, PATTERN_OK);
    g_assert_cmpint(pattern_verify(page, 2, 4, false), ==, PATTERN_AHEAD);
    h->gen = 6;
    g_assert_cmpint(pattern_verify(page, 2, 4, true), ==, PATTERN_AHEAD);
    h->gen = 3;
    g_assert_cmpint(pattern_verify(page, 2, 4, true), ==, PATTERN_STALE);
}

static void test_expected_gen(void)
{
    /* Slice of 4 pages, 10 writes: pages 0,1 written 3 times, 2,3 twice. */
    g_assert_cmpuint(pattern_expected_gen(10, 4, 0), ==, 3);
    g_assert_cmpuint(pattern_expected_gen(10, 4, 1), ==, 3);
    g_assert_cmpuint(pattern_expected_gen(10, 4, 2), ==, 2);
    g_assert_cmpuint(pattern_expected_gen(10, 4, 3), ==, 2);
    g_assert_cmpuint(pattern_expected_gen(0, 4, 0), ==, 0);
    g_assert_cmpuint(pattern_expected_gen(5, 0, 0), ==, 0);
    g_assert_cmpuint(pattern_expected_gen(5, 4, 4), ==, 0);

    /* Simulate a CPU's round-robin writes and check every page agrees. */
    enum { SLICE = 5, WRITES = 23 };
    g_autofree uint8_t *area = g_malloc0(SLICE * PATTERN_PAGE_SIZE);
    for (uint64_t w = 0; w < WRITES; w++) {
        pattern_write(area + (w % SLICE) * PATTERN_PAGE_SIZE, (uint32_t)(w % SLICE), w / SLICE + 1);
    }
    for (uint32_t p = 0; p < SLICE; p++) {
        g_assert_cmpint(pattern_verify(area + p * PATTERN_PAGE_SIZE, p, pattern_expected_gen(WRITES, SLICE, p),
                                       p == WRITES % SLICE), ==, PATTERN_OK);
    }
    /* One page rolled back to an older write is reported stale. */
    pattern_write(area + 1 * PATTERN_PAGE_SIZE, 1, 4);
    g_assert_cmpint(pattern_verify(area + PATTERN_PAGE_SIZE, 1, pattern_expected_gen(WRITES, SLICE, 1), false),
                    ==, PATTERN_STALE);
}

static void test_check_known_value(void)
{
    /* Pinned so tests/guest/testguest.py (which mirrors it) stays in step. */
    g_assert_cmpuint(pattern_check(0, 1), ==, 0xe220a8397b1dcdafULL);
    /* A DIMM page's index is its frame number: 0x100005 is 4 GiB + 20 KiB. */
    g_assert_cmpuint(pattern_check(0x100005, 3), ==, 0xe681c31924a5cd4cULL);
    g_assert_cmpuint(pattern_check(12345, 678), !=, pattern_check(12345, 679));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/guest/pattern/write-verify", test_write_verify);
    g_test_add_func("/guest/pattern/corruption", test_corruption_detected);
    g_test_add_func("/guest/pattern/in-flight", test_in_flight);
    g_test_add_func("/guest/pattern/expected-gen", test_expected_gen);
    g_test_add_func("/guest/pattern/check-value", test_check_known_value);
    return g_test_run();
}
