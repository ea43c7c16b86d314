/* Guest RAM in the migration stream: what the sender and the loader share. */
#include "config.h"

#include "migration/ram.h"
#include "migration/ram-priv.h"

#include <string.h>

#include <gio/gio.h>

G_STATIC_ASSERT(GUEST_PAGE_SIZE == 4096);

bool buffer_is_zero(const void *buf, size_t len)
{
    const unsigned long *p = buf;
    size_t words = len / sizeof(unsigned long);

    /* Eight words per step: cheap to vectorise, and a dirty page usually
     * fails on the first step. */
    for (size_t i = 0; i + 8 <= words; i += 8) {
        if (p[i] | p[i + 1] | p[i + 2] | p[i + 3] | p[i + 4] | p[i + 5] | p[i + 6] | p[i + 7]) {
            return false;
        }
    }
    for (size_t i = words & ~(size_t)7; i < words; i++) {
        if (p[i]) {
            return false;
        }
    }
    for (size_t i = words * sizeof(unsigned long); i < len; i++) {
        if (((const uint8_t *)buf)[i]) {
            return false;
        }
    }
    return true;
}

unsigned ram_block_index(const GuestMemory *mem, const RamBlock *b)
{
    unsigned n = guest_memory_nr_blocks(mem);

    for (unsigned i = 0; i < n; i++) {
        if (mem->blocks[i] == b) {
            return i;
        }
    }
    g_assert_not_reached();
}

const RamBlock *ram_block_by_id(const GuestMemory *mem, const char *id)
{
    unsigned n = guest_memory_nr_blocks(mem);

    for (unsigned i = 0; i < n; i++) {
        if (!strcmp(mem->blocks[i]->id, id)) {
            return mem->blocks[i];
        }
    }
    return NULL;
}

bool ram_read_id(MigChannel *c, char id[MIG_MAX_ID_LEN + 1])
{
    uint8_t len = mig_get_u8(c);

    mig_get_bytes(c, id, len);
    id[len] = '\0';
    return mig_channel_error(c) == 0;
}

bool ram_read_device_record(MigChannel *c, RamDeviceRecord *rec, GError **error)
{
    if (ram_read_id(c, rec->id) && ram_read_id(c, rec->memdev)) {
        rec->slot = mig_get_be32(c);
        rec->addr = mig_get_be64(c);
        rec->size = mig_get_be64(c);
    }
    int err = mig_channel_error(c);
    if (err) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(-err),
                    "memory device record: %s", g_strerror(-err));
        return false;
    }
    if (!rec->id[0] || !rec->memdev[0]) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "memory device record without an id");
        return false;
    }
    return true;
}
