/* libFuzzer target: arbitrary bytes as a bzImage kernel file. */
#include "config.h"

#include "fuzz-boot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_boot_run(boot_bzimage_load, data, size);
}
