#include "config.h"

#include "migration/ram.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <gio/gio.h>
#include <qb/qblog.h>

#include "migration/format.h"

#define BITS_PER_WORD (8 * sizeof(unsigned long))

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

static uint64_t block_pages(const RamBlock *b)
{
    return b->size / GUEST_PAGE_SIZE;
}

static size_t bitmap_words(uint64_t bits)
{
    return (bits + BITS_PER_WORD - 1) / BITS_PER_WORD;
}

static unsigned block_index(const GuestMemory *mem, const RamBlock *b)
{
    for (unsigned i = 0; i < mem->nr_blocks; i++) {
        if (mem->blocks[i] == b) {
            return i;
        }
    }
    g_assert_not_reached();
}

const RamBlock *ram_block_by_id(const GuestMemory *mem, const char *id)
{
    for (unsigned i = 0; i < mem->nr_blocks; i++) {
        if (!strcmp(mem->blocks[i]->id, id)) {
            return mem->blocks[i];
        }
    }
    return NULL;
}

/* ---- source -------------------------------------------------------------- */

bool ram_save_setup(RamSave *rs, GuestMemory *mem, Kvm *kvm, GError **error)
{
    memset(rs, 0, sizeof(*rs));
    rs->mem = mem;
    rs->kvm = kvm;
    for (unsigned i = 0; i < mem->nr_blocks; i++) {
        uint64_t pages = block_pages(mem->blocks[i]);
        size_t words = bitmap_words(pages);
        rs->bmap[i] = g_new(unsigned long, words);
        memset(rs->bmap[i], 0xff, words * sizeof(unsigned long));
        if (pages % BITS_PER_WORD) {
            rs->bmap[i][words - 1] = (1UL << (pages % BITS_PER_WORD)) - 1;
        }
        rs->dirty += pages;
    }
    if (kvm && !kvm_dirty_log_start(kvm, mem, error)) {
        ram_save_cleanup(rs);
        return false;
    }
    rs->logging = kvm != NULL;
    /* Device writes before this point are covered by "everything dirty". */
    for (unsigned i = 0; i < mem->nr_blocks; i++) {
        const RamBlock *b = mem->blocks[i];
        g_autofree unsigned long *scratch = g_new0(unsigned long, bitmap_words(block_pages(b)));
        dirty_log_collect(&mem->dirty, b->ram_offset / GUEST_PAGE_SIZE, block_pages(b), scratch);
    }
    return true;
}

void ram_save_cleanup(RamSave *rs)
{
    if (rs->logging) {
        kvm_dirty_log_stop(rs->kvm, rs->mem);
        rs->logging = false;
    }
    for (unsigned i = 0; i < GUEST_MAX_REGIONS; i++) {
        g_free(rs->bmap[i]);
        rs->bmap[i] = NULL;
    }
}

void ram_save_blocks(RamSave *rs, MigChannel *c)
{
    mig_put_u8(c, MIG_REC_RAM_BLOCKS);
    mig_put_be32(c, rs->mem->nr_blocks);
    for (unsigned i = 0; i < rs->mem->nr_blocks; i++) {
        const RamBlock *b = rs->mem->blocks[i];
        size_t len = strlen(b->id);
        mig_put_u8(c, (uint8_t)len);
        mig_put_bytes(c, b->id, len);
        mig_put_be64(c, b->size);
    }
}

static uint64_t bitmap_count(const unsigned long *map, size_t words)
{
    uint64_t n = 0;

    for (size_t i = 0; i < words; i++) {
        n += (uint64_t)__builtin_popcountl(map[i]);
    }
    return n;
}

bool ram_save_sync(RamSave *rs, GError **error)
{
    GuestMemory *mem = rs->mem;

    for (unsigned i = 0; rs->logging && i < mem->nr_regions; i++) {
        const MemRegion *r = &mem->regions[i];
        uint64_t first = r->offset / GUEST_PAGE_SIZE;
        /* Regions start on 64-page boundaries inside their block (3 GiB). */
        g_assert(first % BITS_PER_WORD == 0);
        unsigned long *map = rs->bmap[block_index(mem, r->block)] + first / BITS_PER_WORD;
        if (!kvm_dirty_log_sync(rs->kvm, r, map, error)) {
            return false;
        }
    }
    rs->dirty = 0;
    for (unsigned i = 0; i < mem->nr_blocks; i++) {
        const RamBlock *b = mem->blocks[i];
        dirty_log_collect(&mem->dirty, b->ram_offset / GUEST_PAGE_SIZE, block_pages(b), rs->bmap[i]);
        rs->dirty += bitmap_count(rs->bmap[i], bitmap_words(block_pages(b)));
    }
    rs->stats.dirty_sync_count++;
    return true;
}

uint64_t ram_save_remaining(const RamSave *rs)
{
    return rs->dirty;
}

static void ram_put_page_header(RamSave *rs, MigChannel *c, const RamBlock *b, uint64_t offset,
                                uint64_t flags)
{
    if (b == rs->last_block) {
        mig_put_be64(c, offset | flags | MIG_PAGE_CONTINUE);
        rs->stats.transferred += 8;
        return;
    }
    size_t len = strlen(b->id);
    mig_put_be64(c, offset | flags);
    mig_put_u8(c, (uint8_t)len);
    mig_put_bytes(c, b->id, len);
    rs->stats.transferred += 9 + len;
    rs->last_block = b;
}

static void ram_record_end(RamSave *rs, MigChannel *c)
{
    mig_put_be64(c, MIG_PAGE_EOS);
    rs->stats.transferred += 8;
}

/* Consecutive non-zero pages go as one RUN entry: one header, and the
 * destination reads them into guest memory with no copy in between. */
typedef struct {
    const RamBlock *block;
    uint64_t offset;
    unsigned n;
} PageRun;

static void ram_flush_run(RamSave *rs, MigChannel *c, PageRun *run)
{
    if (run->n == 1) {
        ram_put_page_header(rs, c, run->block, run->offset, MIG_PAGE_PAGE);
        mig_put_bytes_ref(c, run->block->host + run->offset, GUEST_PAGE_SIZE);
    } else if (run->n > 1) {
        ram_put_page_header(rs, c, run->block, run->offset, MIG_PAGE_RUN);
        mig_put_be16(c, (uint16_t)run->n);
        mig_put_bytes_ref(c, run->block->host + run->offset, run->n * GUEST_PAGE_SIZE);
        rs->stats.transferred += 2;
    }
    rs->stats.transferred += run->n * GUEST_PAGE_SIZE;
    rs->stats.normal += run->n;
    run->n = 0;
}

uint64_t ram_save_pass(RamSave *rs, MigChannel *c, uint64_t max_pages, const gint *stop)
{
    uint64_t sent = 0;
    PageRun run = { 0 };

    mig_put_u8(c, MIG_REC_RAM);
    rs->last_block = NULL;
    for (unsigned i = 0; i < rs->mem->nr_blocks; i++) {
        const RamBlock *b = rs->mem->blocks[i];
        unsigned long *map = rs->bmap[i];
        size_t words = bitmap_words(block_pages(b));
        for (size_t w = 0; w < words; w++) {
            while (map[w]) {
                if ((max_pages && sent >= max_pages) || (stop && g_atomic_int_get(stop)) ||
                    mig_channel_error(c)) {
                    goto done;
                }
                unsigned bit = (unsigned)__builtin_ctzl(map[w]);
                map[w] &= ~(1UL << bit);
                rs->dirty--;
                sent++;
                uint64_t offset = (w * BITS_PER_WORD + bit) * GUEST_PAGE_SIZE;
                if (buffer_is_zero(b->host + offset, GUEST_PAGE_SIZE)) {
                    ram_flush_run(rs, c, &run);
                    ram_put_page_header(rs, c, b, offset, MIG_PAGE_ZERO);
                    mig_put_u8(c, 0);
                    rs->stats.transferred += 1;
                    rs->stats.duplicate++;
                    continue;
                }
                if (run.n && (run.block != b || run.offset + run.n * GUEST_PAGE_SIZE != offset ||
                              run.n == MIG_MAX_RUN)) {
                    ram_flush_run(rs, c, &run);
                }
                if (!run.n) {
                    run.block = b;
                    run.offset = offset;
                }
                run.n++;
            }
        }
        ram_flush_run(rs, c, &run);
    }
done:
    ram_flush_run(rs, c, &run);
    ram_record_end(rs, c);
    return sent;
}

void ram_send_single_page(MigChannel *c, const RamBlock *b, uint64_t offset, RamStats *stats)
{
    const uint8_t *page = b->host + offset;
    size_t len = strlen(b->id);
    bool zero = buffer_is_zero(page, GUEST_PAGE_SIZE);

    mig_put_u8(c, MIG_REC_RAM);
    mig_put_be64(c, offset | (zero ? MIG_PAGE_ZERO : MIG_PAGE_PAGE));
    mig_put_u8(c, (uint8_t)len);
    mig_put_bytes(c, b->id, len);
    if (zero) {
        mig_put_u8(c, 0);
    } else {
        mig_put_bytes(c, page, GUEST_PAGE_SIZE);
    }
    mig_put_be64(c, MIG_PAGE_EOS);
    __atomic_fetch_add(zero ? &stats->duplicate : &stats->normal, 1, __ATOMIC_RELAXED);
}

void ram_save_for_each_dirty_run(RamSave *rs, void (*fn)(void *opaque, const RamBlock *b,
                                                         uint64_t first, uint64_t n), void *opaque)
{
    for (unsigned i = 0; i < rs->mem->nr_blocks; i++) {
        const RamBlock *b = rs->mem->blocks[i];
        const unsigned long *map = rs->bmap[i];
        uint64_t pages = block_pages(b), run = 0;
        for (uint64_t p = 0; p <= pages; p++) {
            bool set = p < pages && (map[p / BITS_PER_WORD] & (1UL << (p % BITS_PER_WORD)));
            if (set) {
                run++;
            } else if (run) {
                fn(opaque, b, p - run, run);
                run = 0;
            }
        }
    }
}

/* ---- destination --------------------------------------------------------- */

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
    unsigned long *map = st ? st->maybe_data[block_index(mem, b)] : NULL;

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
    int bi = st ? (int)block_index(mem, b) : -1;

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
