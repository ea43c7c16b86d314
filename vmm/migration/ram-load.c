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

/* Pages that never held data (holes of the block's file, or anonymous
 * pages never touched) read as zero: see ram_block_data_map. */
void ram_load_state_init(RamLoadState *st, const GuestMemory *mem)
{
    for (unsigned i = 0; i < mem->nr_blocks; i++) {
        const RamBlock *b = mem->blocks[i];
        unsigned long *map = g_new0(unsigned long, bitmap_words(block_pages(b)));

        ram_block_data_map(b, map);
        g_free(st->maybe_data[i]);
        st->maybe_data[i] = map;
    }
}

static void store_free(RamStore *s);

/* A fresh block (RAM added on the source): all of it is known to be zero. */
void ram_load_state_add_block(RamLoadState *st, const GuestMemory *mem, unsigned index)
{
    g_free(st->maybe_data[index]);
    st->maybe_data[index] = g_new0(unsigned long, bitmap_words(block_pages(mem->blocks[index])));
}

void ram_load_state_clear(RamLoadState *st)
{
    for (unsigned i = 0; i < GUEST_MAX_REGIONS; i++) {
        g_free(st->maybe_data[i]);
        st->maybe_data[i] = NULL;
    }
    g_clear_pointer(&st->store, store_free);
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

    /* A file: pwrite allocates its pages without clearing them first.
     * Anonymous memory (with huge pages, one fault and clear per 2 MiB)
     * takes the copy into the mapping. */
    if (bi >= 0 && b->fd >= 0 && !g_atomic_int_get(&st->no_pwrite[bi])) {
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

static bool ram_zero_known(RamLoadState *st, const GuestMemory *mem, const RamBlock *b, uint64_t offset)
{
    uint64_t page = offset / GUEST_PAGE_SIZE;
    unsigned long *w = ram_load_word(st, mem, b, page);

    return w && !(__atomic_load_n(w, __ATOMIC_RELAXED) & (1UL << (page % BITS_PER_WORD)));
}

void ram_load_zero_page(RamLoadState *st, const GuestMemory *mem, const RamBlock *b, uint64_t offset)
{
    uint8_t *host = b->host + offset;

    if (ram_zero_known(st, mem, b, offset)) {
        return;     /* never had data: zero without touching it */
    }
    if (!buffer_is_zero(host, GUEST_PAGE_SIZE)) {
        memset(host, 0, GUEST_PAGE_SIZE);
    }
}

/* ---- the store thread ----------------------------------------------------
 * Storing a page (the kernel allocating it in the block's file, the copy in)
 * costs about three times what reading it from the socket does, so
 * ram_load hands batches of pages to a thread that stores them while it
 * reads the next. Batches pass through a ring in order: a page sent twice
 * ends with its later content, and a zero page after data clears it. */

#define STORE_BATCHES       8
#define STORE_BATCH_BYTES   ((size_t)128 * GUEST_PAGE_SIZE)    /* 512 KiB */
#define STORE_BATCH_OPS     256

enum { STORE_DATA, STORE_ZERO, STORE_FILL };

typedef struct {
    const RamBlock *block;
    uint64_t offset;
    uint32_t len;               /* STORE_DATA: bytes at buf + data */
    uint32_t data;
    uint8_t kind;
    uint8_t fill;               /* STORE_FILL: the byte */
} StoreOp;

typedef struct {
    uint8_t *buf;
    size_t used;
    unsigned nops;
    StoreOp ops[STORE_BATCH_OPS];
} StoreBatch;

struct RamStore {
    RamLoadState *st;
    const GuestMemory *mem;     /* of the current ram_load */
    GThread *thread;            /* NULL: not started, or could not be */
    bool no_thread;
    GMutex lock;
    GCond cond;
    unsigned fill;              /* the batch the loader fills */
    unsigned next;              /* the next batch the thread stores */
    unsigned queued;            /* handed over and not stored yet: next, next + 1, ... */
    bool quit;
    StoreBatch batch[STORE_BATCHES];
};

static void store_run(RamStore *s, StoreBatch *b)
{
    for (unsigned i = 0; i < b->nops; i++) {
        const StoreOp *op = &b->ops[i];
        switch (op->kind) {
        case STORE_DATA:
            ram_load_store(s->st, s->mem, op->block, op->offset, b->buf + op->data, op->len);
            break;
        case STORE_ZERO:
            ram_load_zero_page(s->st, s->mem, op->block, op->offset);
            break;
        case STORE_FILL:
            memset(op->block->host + op->offset, op->fill, GUEST_PAGE_SIZE);
            break;
        }
    }
    b->nops = 0;
    b->used = 0;
}

static gpointer store_thread(gpointer opaque)
{
    RamStore *s = opaque;

    g_mutex_lock(&s->lock);
    for (;;) {
        while (!s->queued && !s->quit) {
            g_cond_wait(&s->cond, &s->lock);
        }
        if (!s->queued) {
            break;
        }
        StoreBatch *b = &s->batch[s->next];
        g_mutex_unlock(&s->lock);
        store_run(s, b);
        g_mutex_lock(&s->lock);
        s->next = (s->next + 1) % STORE_BATCHES;
        s->queued--;
        g_cond_broadcast(&s->cond);
    }
    g_mutex_unlock(&s->lock);
    return NULL;
}

static RamStore *store_get(RamLoadState *st, const GuestMemory *mem)
{
    if (!st->store) {
        RamStore *s = g_new0(RamStore, 1);
        s->st = st;
        /* With one CPU the thread would only take turns with the loader. */
        s->no_thread = sysconf(_SC_NPROCESSORS_ONLN) < 2;
        g_mutex_init(&s->lock);
        g_cond_init(&s->cond);
        for (unsigned i = 0; i < STORE_BATCHES; i++) {
            s->batch[i].buf = g_malloc(STORE_BATCH_BYTES);
        }
        st->store = s;
    }
    st->store->mem = mem;
    return st->store;
}

static void store_free(RamStore *s)
{
    if (s->thread) {
        g_mutex_lock(&s->lock);
        s->quit = true;
        g_cond_broadcast(&s->cond);
        g_mutex_unlock(&s->lock);
        g_thread_join(s->thread);
    }
    for (unsigned i = 0; i < STORE_BATCHES; i++) {
        g_free(s->batch[i].buf);
    }
    g_cond_clear(&s->cond);
    g_mutex_clear(&s->lock);
    g_free(s);
}

/* Hand the filled batch to the thread and wait for a free one. */
static void store_submit(RamStore *s)
{
    StoreBatch *b = &s->batch[s->fill];

    if (!b->nops) {
        return;
    }
    if (!s->thread && !s->no_thread) {
        g_autoptr(GError) error = NULL;
        s->thread = g_thread_try_new("mig/store", store_thread, s, &error);
        if (!s->thread) {
            qb_log(LOG_WARNING, "migration: no store thread (%s): pages stored by the loader",
                   error->message);
            s->no_thread = true;
        }
    }
    if (!s->thread) {
        store_run(s, b);
        return;
    }
    g_mutex_lock(&s->lock);
    s->queued++;
    g_cond_broadcast(&s->cond);
    s->fill = (s->fill + 1) % STORE_BATCHES;
    while (s->queued == STORE_BATCHES) {
        g_cond_wait(&s->cond, &s->lock);
    }
    g_mutex_unlock(&s->lock);
}

/* Every page of this ram_load in place. A short record the thread has
 * nothing queued for is stored here: no hand-over for a few pages. */
static void store_finish(RamStore *s)
{
    g_mutex_lock(&s->lock);
    bool idle = !s->queued;
    g_mutex_unlock(&s->lock);
    if (idle) {
        store_run(s, &s->batch[s->fill]);
        return;
    }
    store_submit(s);
    g_mutex_lock(&s->lock);
    while (s->queued) {
        g_cond_wait(&s->cond, &s->lock);
    }
    g_mutex_unlock(&s->lock);
}

/* A batch with room for one more op of @bytes of data. */
static StoreBatch *store_room(RamStore *s, size_t bytes)
{
    StoreBatch *b = &s->batch[s->fill];

    if (b->nops == STORE_BATCH_OPS || b->used + bytes > STORE_BATCH_BYTES) {
        store_submit(s);
        b = &s->batch[s->fill];
    }
    return b;
}

/* Read @len bytes of pages for @offset of @block from @c into the batch;
 * one op with the previous if they continue it. */
static void store_read_data(RamStore *s, MigChannel *c, const RamBlock *block, uint64_t offset,
                            size_t len)
{
    StoreBatch *b = store_room(s, len);

    mig_get_bytes(c, b->buf + b->used, len);
    if (mig_channel_error(c)) {
        return;
    }
    StoreOp *prev = b->nops ? &b->ops[b->nops - 1] : NULL;
    if (prev && prev->kind == STORE_DATA && prev->block == block &&
        prev->offset + prev->len == offset && prev->data + prev->len == b->used) {
        prev->len += (uint32_t)len;
    } else {
        b->ops[b->nops++] = (StoreOp){ .block = block, .offset = offset, .len = (uint32_t)len,
                                       .data = (uint32_t)b->used, .kind = STORE_DATA };
    }
    b->used += len;
}

static void store_page_op(RamStore *s, const RamBlock *block, uint64_t offset, uint8_t kind, uint8_t fill)
{
    StoreBatch *b = store_room(s, 0);

    b->ops[b->nops++] = (StoreOp){ .block = block, .offset = offset, .kind = kind, .fill = fill };
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

/* The record's entries; pages go to @place, else to @store, else straight
 * into guest memory through @page. */
static bool ram_load_record(GuestMemory *mem, MigChannel *c, RamStats *stats, RamLoadState *st,
                            RamStore *store, RamPlaceFunc place, void *opaque, GError **error)
{
    const RamBlock *block = NULL;
    char id[MIG_MAX_ID_LEN + 1];
    g_autofree uint8_t *page = store ? NULL : g_malloc((size_t)MIG_MAX_RUN * GUEST_PAGE_SIZE);

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
        uint16_t n = 1;
        switch (flags & (MIG_PAGE_ZERO | MIG_PAGE_PAGE | MIG_PAGE_RUN)) {
        case MIG_PAGE_RUN:
            n = mig_get_be16(c);
            if (mig_channel_error(c)) {
                break;
            }
            if (n < 2 || n > MIG_MAX_RUN || (uint64_t)n * GUEST_PAGE_SIZE > block->size - offset) {
                return ram_load_fail(error, "run of %u pages at 0x%" G_GINT64_MODIFIER "x does not fit "
                                     "block '%s'", n, offset, block->id);
            }
            /* fall through */
        case MIG_PAGE_PAGE: {
            size_t len = (size_t)n * GUEST_PAGE_SIZE;
            if (place) {
                for (uint16_t i = 0; i < n; i++) {
                    mig_get_bytes(c, page, GUEST_PAGE_SIZE);
                    if (!mig_channel_error(c) && !place(opaque, block, offset + i * GUEST_PAGE_SIZE, page)) {
                        return ram_load_fail(error, "cannot place page 0x%" G_GINT64_MODIFIER "x",
                                             (guint64)(offset + i * GUEST_PAGE_SIZE));
                    }
                }
            } else if (store) {
                store_read_data(store, c, block, offset, len);
            } else {
                mig_get_bytes(c, page, len);
                if (!mig_channel_error(c)) {
                    ram_load_store(st, mem, block, offset, page, len);
                }
            }
            if (mig_channel_error(c)) {
                break;
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
                ram_load_note_data(st, mem, block, offset);
                if (store) {
                    store_page_op(store, block, offset, STORE_FILL, fill);
                } else {
                    memset(block->host + offset, fill, GUEST_PAGE_SIZE);
                }
            } else if (!ram_zero_known(st, mem, block, offset)) {
                if (store) {
                    store_page_op(store, block, offset, STORE_ZERO, 0);
                } else {
                    ram_load_zero_page(st, mem, block, offset);
                }
            }
            __atomic_fetch_add(&stats->duplicate, 1, __ATOMIC_RELAXED);
            break;
        }
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

bool ram_load(GuestMemory *mem, MigChannel *c, RamStats *stats, RamLoadState *st,
              RamPlaceFunc place, void *opaque, GError **error)
{
    if (place || !st) {
        return ram_load_record(mem, c, stats, st, NULL, place, opaque, error);
    }
    RamStore *store = store_get(st, mem);
    bool ok = ram_load_record(mem, c, stats, st, store, NULL, NULL, error);
    store_finish(store);
    return ok;
}
