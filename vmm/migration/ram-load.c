/* The destination side of RAM migration: the page loader and where it
 * stores pages. */
#include "config.h"

#include "migration/ram.h"
#include "migration/ram-priv.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <gio/gio.h>
#include <qb/qblog.h>

#include "migration/format.h"

/* Pages in holes of the block's file (memfd, tmpfs, or a sparse file) hold
 * nothing; SEEK_DATA also counts swapped-out pages as data, unlike mincore. */
void ram_load_state_init(RamLoadState *st, const GuestMemory *mem)
{
    for (unsigned i = 0; i < mem->nr_blocks; i++) {
        const RamBlock *b = mem->blocks[i];
        size_t words = bitmap_words(block_pages(b));
        unsigned long *map = g_new0(unsigned long, words);
        off_t pos = 0, end = (off_t)b->size;

        while (pos < end) {
            off_t data = lseek(b->fd, pos, SEEK_DATA);
            if (data < 0) {
                if (errno != ENXIO) {
                    /* No hole support: everything may hold data. */
                    memset(map, 0xff, words * sizeof(unsigned long));
                }
                break;
            }
            off_t hole = lseek(b->fd, data, SEEK_HOLE);
            if (hole < 0 || hole > end) {
                hole = end;
            }
            for (uint64_t p = (uint64_t)data / GUEST_PAGE_SIZE;
                 p < ((uint64_t)hole + GUEST_PAGE_SIZE - 1) / GUEST_PAGE_SIZE; p++) {
                map[p / BITS_PER_WORD] |= 1UL << (p % BITS_PER_WORD);
            }
            pos = hole;
        }
        g_free(st->maybe_data[i]);
        st->maybe_data[i] = map;
    }
}

void ram_load_state_clear(RamLoadState *st)
{
    for (unsigned i = 0; i < GUEST_MAX_REGIONS; i++) {
        g_free(st->maybe_data[i]);
        st->maybe_data[i] = NULL;
    }
}

static unsigned long *ram_load_word(RamLoadState *st, const GuestMemory *mem, const RamBlock *b,
                                    uint64_t page)
{
    unsigned long *map = st ? st->maybe_data[ram_block_index(mem, b)] : NULL;

    return map ? &map[page / BITS_PER_WORD] : NULL;
}

void ram_load_note_data(RamLoadState *st, const GuestMemory *mem, const RamBlock *b, uint64_t offset)
{
    uint64_t page = offset / GUEST_PAGE_SIZE;
    unsigned long *w = ram_load_word(st, mem, b, page);

    if (w) {
        __atomic_fetch_or(w, 1UL << (page % BITS_PER_WORD), __ATOMIC_RELAXED);
    }
}

void ram_load_store(RamLoadState *st, const GuestMemory *mem, const RamBlock *b, uint64_t offset,
                    const void *data, size_t len)
{
    int bi = st ? (int)ram_block_index(mem, b) : -1;

    if (bi >= 0 && !g_atomic_int_get(&st->no_pwrite[bi])) {
        const uint8_t *p = data;
        size_t done = 0;
        while (done < len) {
            ssize_t n = pwrite(b->fd, p + done, len - done, (off_t)(offset + done));
            if (n <= 0) {
                if (n < 0 && errno == EINTR) {
                    continue;
                }
                g_atomic_int_set(&st->no_pwrite[bi], 1);
                break;
            }
            done += (size_t)n;
        }
        if (done == len) {
            return;
        }
        data = p + done;
        offset += done;
        len -= done;
    }
    memcpy(b->host + offset, data, len);
}

void ram_load_zero_page(RamLoadState *st, const GuestMemory *mem, const RamBlock *b, uint64_t offset)
{
    uint64_t page = offset / GUEST_PAGE_SIZE;
    unsigned long *w = ram_load_word(st, mem, b, page);
    uint8_t *host = b->host + offset;

    if (w && !(__atomic_load_n(w, __ATOMIC_RELAXED) & (1UL << (page % BITS_PER_WORD)))) {
        return;     /* never had data: zero without touching it */
    }
    if (!buffer_is_zero(host, GUEST_PAGE_SIZE)) {
        memset(host, 0, GUEST_PAGE_SIZE);
    }
}

static bool ram_load_fail(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static bool ram_load_fail(GError **error, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "RAM: %s", msg);
    return false;
}

static bool ram_read_id(MigChannel *c, char id[MIG_MAX_ID_LEN + 1])
{
    uint8_t len = mig_get_u8(c);

    mig_get_bytes(c, id, len);
    id[len] = '\0';
    return mig_channel_error(c) == 0;
}

bool ram_load_blocks(GuestMemory *mem, MigChannel *c, GError **error)
{
    uint32_t n = mig_get_be32(c);
    char id[MIG_MAX_ID_LEN + 1];

    if (!mig_channel_error(c) && n != mem->nr_blocks) {
        return ram_load_fail(error, "source has %u RAM blocks, this VM %u (same -m on both sides?)",
                             n, mem->nr_blocks);
    }
    for (uint32_t i = 0; i < n && !mig_channel_error(c); i++) {
        if (!ram_read_id(c, id)) {
            break;
        }
        uint64_t size = mig_get_be64(c);
        const RamBlock *b = ram_block_by_id(mem, id);
        if (!mig_channel_error(c) && (!b || b->size != size)) {
            return ram_load_fail(error, "source RAM block '%s' of %" G_GUINT64_FORMAT
                                 " bytes does not match this VM's (%s)", id, size,
                                 b ? "different size" : "no such block");
        }
    }
    return true;
}

bool ram_load(GuestMemory *mem, MigChannel *c, RamStats *stats, RamLoadState *st,
              RamPlaceFunc place, void *opaque, GError **error)
{
    const RamBlock *block = NULL;
    char id[MIG_MAX_ID_LEN + 1];
    g_autofree uint8_t *page = g_malloc((size_t)MIG_MAX_RUN * GUEST_PAGE_SIZE);

    while (!mig_channel_error(c)) {
        uint64_t word = mig_get_be64(c);
        uint64_t flags = word & MIG_PAGE_FLAGS_MASK;
        uint64_t offset = word & ~MIG_PAGE_FLAGS_MASK;

        if (mig_channel_error(c)) {
            break;
        }
        if (flags == MIG_PAGE_EOS) {
            return true;
        }
        if (flags & ~(uint64_t)(MIG_PAGE_ZERO | MIG_PAGE_PAGE | MIG_PAGE_RUN | MIG_PAGE_CONTINUE)) {
            return ram_load_fail(error, "unknown page flags 0x%" G_GINT64_MODIFIER "x", flags);
        }
        if (flags & MIG_PAGE_CONTINUE) {
            if (!block) {
                return ram_load_fail(error, "page continues a block that was never named");
            }
        } else {
            if (!ram_read_id(c, id)) {
                break;
            }
            block = ram_block_by_id(mem, id);
            if (!block) {
                return ram_load_fail(error, "unknown RAM block '%s'", id);
            }
        }
        if (offset >= block->size) {
            return ram_load_fail(error, "page offset 0x%" G_GINT64_MODIFIER "x beyond block '%s'",
                                 offset, block->id);
        }
        uint8_t *host = block->host + offset;
        switch (flags & (MIG_PAGE_ZERO | MIG_PAGE_PAGE | MIG_PAGE_RUN)) {
        case MIG_PAGE_RUN: {
            uint16_t n = mig_get_be16(c);
            if (mig_channel_error(c)) {
                break;
            }
            if (n < 2 || n > MIG_MAX_RUN || (uint64_t)n * GUEST_PAGE_SIZE > block->size - offset) {
                return ram_load_fail(error, "run of %u pages at 0x%" G_GINT64_MODIFIER "x does not fit "
                                     "block '%s'", n, offset, block->id);
            }
            for (uint16_t i = 0; i < n && place; i++) {
                mig_get_bytes(c, page, GUEST_PAGE_SIZE);
                if (!mig_channel_error(c) && !place(opaque, block, offset + i * GUEST_PAGE_SIZE, page)) {
                    return ram_load_fail(error, "cannot place page 0x%" G_GINT64_MODIFIER "x",
                                         (guint64)(offset + i * GUEST_PAGE_SIZE));
                }
            }
            if (!place) {
                mig_get_bytes(c, page, (size_t)n * GUEST_PAGE_SIZE);
                if (!mig_channel_error(c)) {
                    ram_load_store(st, mem, block, offset, page, (size_t)n * GUEST_PAGE_SIZE);
                }
            }
            for (uint16_t i = 0; i < n; i++) {
                ram_load_note_data(st, mem, block, offset + i * GUEST_PAGE_SIZE);
            }
            __atomic_fetch_add(&stats->normal, n, __ATOMIC_RELAXED);
            break;
        }
        case MIG_PAGE_ZERO: {
            uint8_t fill = mig_get_u8(c);
            if (mig_channel_error(c)) {
                break;
            }
            if (place) {
                if (fill) {
                    memset(page, fill, GUEST_PAGE_SIZE);
                }
                if (!place(opaque, block, offset, fill ? page : NULL)) {
                    return ram_load_fail(error, "cannot place page 0x%" G_GINT64_MODIFIER "x", offset);
                }
            } else if (fill) {
                memset(host, fill, GUEST_PAGE_SIZE);
                ram_load_note_data(st, mem, block, offset);
            } else {
                ram_load_zero_page(st, mem, block, offset);
            }
            __atomic_fetch_add(&stats->duplicate, 1, __ATOMIC_RELAXED);
            break;
        }
        case MIG_PAGE_PAGE:
            mig_get_bytes(c, page, GUEST_PAGE_SIZE);
            if (mig_channel_error(c)) {
                break;
            }
            ram_load_note_data(st, mem, block, offset);
            if (place && !place(opaque, block, offset, page)) {
                return ram_load_fail(error, "cannot place page 0x%" G_GINT64_MODIFIER "x", offset);
            }
            if (!place) {
                ram_load_store(st, mem, block, offset, page, GUEST_PAGE_SIZE);
            }
            __atomic_fetch_add(&stats->normal, 1, __ATOMIC_RELAXED);
            break;
        default:
            return ram_load_fail(error, "page entry is neither zero nor full (flags 0x%"
                                 G_GINT64_MODIFIER "x)", flags);
        }
    }
    int err = mig_channel_error(c);
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(-err), "RAM: stream %s: %s",
                err == -EIO ? "ended in the middle of a record" : "failed", g_strerror(-err));
    return false;
}
