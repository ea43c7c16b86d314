/* libFuzzer target: the guest's command-line parser. The input is the
 * command line, not NUL-terminated (the parser must stop at max). Every
 * accepted setting must land inside its documented range. */
#include <stdint.h>
#include <stdlib.h>

#include "cmdline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void count(void *opaque, const char *what, const char *word, size_t len)
{
    (void)what;
    (void)word;
    if (!len) {
        abort();            /* a problem is always about some word */
    }
    ++*(unsigned *)opaque;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct guest_config cfg;
    unsigned warned = 0;
    uint64_t v;

    cmdline_defaults(&cfg);
    unsigned problems = cmdline_parse((const char *)data, size, &cfg, count, &warned);
    if (problems != warned || cfg.hz < 1 || cfg.hz > 1000 || cfg.interval > 86400 || cfg.area_base < 0x200000) {
        abort();
    }
    (void)cmdline_parse_size((const char *)data, size, &v);
    return 0;
}
