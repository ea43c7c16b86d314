/* The source side of RAM migration: dirty bitmaps and the page sender. */
#include "config.h"

#include "migration/ram.h"
#include "migration/ram-priv.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <gio/gio.h>
#include <qb/qblog.h>

#include "migration/format.h"

static void ram_save_adopt(RamSave *rs, unsigned index)
{
    uint64_t pages = block_pages(rs->mem->blocks[index]);

    rs->bmap[index] = bitmap_new_full(pages);
    rs->dirty += pages;
}

/* Take in blocks added since; their device-log bits are covered by "every
 * page dirty". Returns false if there were none. */
static bool ram_save_adopt_new(RamSave *rs)
{
    unsigned n = guest_memory_nr_blocks(rs->mem), first = rs->nr_blocks;

    for (; rs->nr_blocks < n; rs->nr_blocks++) {
        ram_save_adopt(rs, rs->nr_blocks);
    }
    for (unsigned i = first; i < n; i++) {
        const RamBlock *b = rs->mem->blocks[i];
        g_autofree unsigned long *scratch = g_new0(unsigned long, bitmap_words(block_pages(b)));
        dirty_log_collect(&rs->mem->dirty, b->ram_offset / GUEST_PAGE_SIZE, block_pages(b), scratch);
        if (first) {
            qb_log(LOG_INFO, "migration: RAM block %s (%" G_GUINT64_FORMAT " MiB) added, sending it too",
                   b->id, b->size >> 20);
        }
    }
    return n > first;
}

bool ram_save_setup(RamSave *rs, GuestMemory *mem, Kvm *kvm, GError **error)
{
    memset(rs, 0, sizeof(*rs));
    rs->mem = mem;
    rs->kvm = kvm;
    if (kvm && !kvm_dirty_log_start(kvm, mem, error)) {
        ram_save_cleanup(rs);
        return false;
    }
    rs->logging = kvm != NULL;
    /* After logging starts: every block seen now is sent whole. */
    ram_save_adopt_new(rs);
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

static void ram_put_id(MigChannel *c, const char *id)
{
    size_t len = strlen(id);

    mig_put_u8(c, (uint8_t)len);
    mig_put_bytes(c, id, len);
}

unsigned ram_save_announce(RamSave *rs, MigChannel *c)
{
    unsigned n = 0;

    for (; rs->announced < rs->nr_blocks; rs->announced++) {
        const RamBlock *b = rs->mem->blocks[rs->announced];
        if (!b->device_id) {
            continue;
        }
        mig_put_u8(c, MIG_REC_MEMORY_DEVICE);
        ram_put_id(c, b->device_id);
        ram_put_id(c, b->id);
        mig_put_be32(c, b->slot);
        mig_put_be64(c, b->addr);
        mig_put_be64(c, b->size);
        n++;
    }
    return n;
}

void ram_save_blocks(RamSave *rs, MigChannel *c)
{
    ram_save_announce(rs, c);
    mig_put_u8(c, MIG_REC_RAM_BLOCKS);
    mig_put_be32(c, rs->nr_blocks);
    for (unsigned i = 0; i < rs->nr_blocks; i++) {
        const RamBlock *b = rs->mem->blocks[i];
        ram_put_id(c, b->id);
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
    /* Regions are published after their blocks: read their count first. */
    unsigned nr = guest_memory_nr_regions(mem);

    ram_save_adopt_new(rs);
    for (unsigned i = 0; rs->logging && i < nr; i++) {
        const MemRegion *r = &mem->regions[i];
        uint64_t first = r->offset / GUEST_PAGE_SIZE;
        /* Regions start on 64-page boundaries inside their block (3 GiB). */
        g_assert(first % BITS_PER_WORD == 0);
        unsigned long *map = rs->bmap[ram_block_index(mem, r->block)] + first / BITS_PER_WORD;
        if (!kvm_dirty_log_sync(rs->kvm, r, map, error)) {
            return false;
        }
    }
    rs->dirty = 0;
    for (unsigned i = 0; i < rs->nr_blocks; i++) {
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

void ram_save_clear(RamSave *rs)
{
    for (unsigned i = 0; i < rs->nr_blocks; i++) {
        memset(rs->bmap[i], 0, bitmap_words(block_pages(rs->mem->blocks[i])) * sizeof(unsigned long));
    }
    rs->dirty = 0;
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

uint64_t ram_save_capture(RamSave *rs, RamCapture *cap)
{
    uint64_t left = 0;

    cap->n = 0;
    if (rs->dirty > cap->capacity) {
        cap->capacity = rs->dirty;
        cap->data = g_realloc(cap->data, cap->capacity * GUEST_PAGE_SIZE);
        cap->where = g_renew(struct RamCapturedPage, cap->where, cap->capacity);
    }
    for (unsigned i = 0; i < rs->nr_blocks; i++) {
        const RamBlock *b = rs->mem->blocks[i];
        unsigned long *map = rs->bmap[i];
        size_t words = bitmap_words(block_pages(b));
        for (size_t w = 0; w < words; w++) {
            unsigned long bits = map[w];
            while (bits && cap->n < cap->capacity) {
                uint64_t offset = (w * BITS_PER_WORD + (unsigned)__builtin_ctzl(bits)) * GUEST_PAGE_SIZE;
                bits &= bits - 1;
                memcpy(cap->data + cap->n * GUEST_PAGE_SIZE, b->host + offset, GUEST_PAGE_SIZE);
                cap->where[cap->n++] = (struct RamCapturedPage) { b, offset };
            }
            map[w] = bits;      /* none, unless rs->dirty undercounted */
            left += (uint64_t)__builtin_popcountl(bits);
        }
    }
    rs->dirty = left;
    return cap->n;
}

void ram_capture_send(RamSave *rs, const RamCapture *cap, MigChannel *c)
{
    mig_put_u8(c, MIG_REC_RAM);
    rs->last_block = NULL;
    for (uint64_t i = 0; i < cap->n;) {
        const struct RamCapturedPage *p = &cap->where[i];
        const uint8_t *data = cap->data + i * GUEST_PAGE_SIZE;
        if (buffer_is_zero(data, GUEST_PAGE_SIZE)) {
            ram_put_page_header(rs, c, p->block, p->offset, MIG_PAGE_ZERO);
            mig_put_u8(c, 0);
            rs->stats.transferred += 1;
            rs->stats.duplicate++;
            i++;
            continue;
        }
        /* Neighbours in the block are neighbours in the copy too. */
        uint64_t n = 1;
        while (i + n < cap->n && n < MIG_MAX_RUN && cap->where[i + n].block == p->block &&
               cap->where[i + n].offset == p->offset + n * GUEST_PAGE_SIZE &&
               !buffer_is_zero(data + n * GUEST_PAGE_SIZE, GUEST_PAGE_SIZE)) {
            n++;
        }
        if (n == 1) {
            ram_put_page_header(rs, c, p->block, p->offset, MIG_PAGE_PAGE);
        } else {
            ram_put_page_header(rs, c, p->block, p->offset, MIG_PAGE_RUN);
            mig_put_be16(c, (uint16_t)n);
            rs->stats.transferred += 2;
        }
        mig_put_bytes_ref(c, data, n * GUEST_PAGE_SIZE);
        rs->stats.transferred += n * GUEST_PAGE_SIZE;
        rs->stats.normal += n;
        i += n;
    }
    ram_record_end(rs, c);
}

void ram_capture_free(RamCapture *cap)
{
    g_free(cap->data);
    g_free(cap->where);
    memset(cap, 0, sizeof(*cap));
}

uint64_t ram_save_pass(RamSave *rs, MigChannel *c, uint64_t max_pages, const gint *stop)
{
    uint64_t sent = 0;
    PageRun run = { 0 };

    mig_put_u8(c, MIG_REC_RAM);
    rs->last_block = NULL;
    for (unsigned i = 0; i < rs->nr_blocks; i++) {
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
    bool zero = buffer_is_zero(page, GUEST_PAGE_SIZE);

    mig_put_u8(c, MIG_REC_RAM);
    mig_put_be64(c, offset | (zero ? MIG_PAGE_ZERO : MIG_PAGE_PAGE));
    ram_put_id(c, b->id);
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
    for (unsigned i = 0; i < rs->nr_blocks; i++) {
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
