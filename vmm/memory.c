#include "config.h"

#include "memory.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gio.h>
#include <qb/qblog.h>

#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

#define RAM_HUGE_ALIGN (2ULL << 20)

/* Anonymous private memory, aligned to 2 MiB so that transparent huge pages
 * can back all of it (with THP "madvise", as here, only with
 * MADV_HUGEPAGE; for shmem and so a memfd THP is commonly "never"). */
static void *ram_map_anonymous(const char *id, uint64_t size)
{
    uint64_t len = size + RAM_HUGE_ALIGN;
    uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    if (p == MAP_FAILED) {
        return MAP_FAILED;
    }
    uint8_t *host = (uint8_t *)(((uintptr_t)p + RAM_HUGE_ALIGN - 1) & ~(uintptr_t)(RAM_HUGE_ALIGN - 1));
    if (host > p) {
        munmap(p, (size_t)(host - p));
    }
    if (host + size < p + len) {
        munmap(host + size, (size_t)(p + len - (host + size)));
    }
    /* Best effort all: a kernel without THP, or without VMA names, runs
     * the same with 4 KiB pages and an unnamed mapping. */
    madvise(host, size, MADV_HUGEPAGE);
    g_autofree char *name = g_strdup_printf("guest-ram:%s", id);
    for (char *c = name; *c; c++) {
        if (!g_ascii_isgraph(*c) || strchr("[]\\$`", *c)) {
            *c = '_';
        }
    }
    prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)host, (unsigned long)size, (unsigned long)name);
    return host;
}

RamBlock *ram_block_new(const char *id, uint64_t size, const char *mem_path, bool share, GError **error)
{
    int fd = -1;

    if (mem_path && g_file_test(mem_path, G_FILE_TEST_IS_DIR)) {
        /* As QEMU: a private file in the directory, gone once unmapped. */
        g_autofree char *tmpl = g_build_filename(mem_path, "colo-vmm.XXXXXX", NULL);
        fd = g_mkstemp_full(tmpl, O_RDWR | O_CLOEXEC, 0600);
        if (fd >= 0) {
            unlink(tmpl);
        }
    } else if (mem_path) {
        fd = open(mem_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    } else if (share) {
        fd = memfd_create(id, MFD_CLOEXEC);
    }
    if ((mem_path || share) && fd < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "cannot create guest RAM%s%s: %s", mem_path ? " in " : "",
                    mem_path ? mem_path : "", g_strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) < 0 || (S_ISREG(st.st_mode) && (uint64_t)st.st_size < size &&
                                           ftruncate(fd, (off_t)size) < 0))) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "cannot size guest RAM to %" PRIu64 " MiB%s%s: %s", size >> 20,
                    mem_path ? " in " : "", mem_path ? mem_path : "",
                    g_strerror(errno));
        close(fd);
        return NULL;
    }

    void *host = fd >= 0 ? mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                         : ram_map_anonymous(id, size);
    if (host == MAP_FAILED) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "cannot map %" PRIu64 " MiB of guest RAM: %s", size >> 20, g_strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return NULL;
    }
    /* Guest RAM is not worth a core dump of gigabytes; and a child (none is
     * forked once RAM exists, a library might) must not make every private
     * guest page copy-on-write under KVM. Both also mark guest RAM in
     * /proc/PID/smaps (VmFlags dd and dc), where tests look for it. */
    madvise(host, size, MADV_DONTDUMP);
    madvise(host, size, MADV_DONTFORK);

    RamBlock *block = g_new0(RamBlock, 1);
    block->id = g_strdup(id);
    block->host = host;
    block->size = size;
    block->fd = fd;
    return block;
}

void ram_block_free(RamBlock *block)
{
    if (!block) {
        return;
    }
    munmap(block->host, block->size);
    if (block->fd >= 0) {
        close(block->fd);
    }
    g_free(block->id);
    g_free(block->device_id);
    g_free(block);
}

#define MAP_WORD_BITS (8 * sizeof(unsigned long))

static void map_set(unsigned long *map, uint64_t page)
{
    map[page / MAP_WORD_BITS] |= 1UL << (page % MAP_WORD_BITS);
}

static void map_set_range(unsigned long *map, uint64_t first, uint64_t end)
{
    for (uint64_t p = first; p < end; p++) {
        map_set(map, p);
    }
}

/* A file: its holes read as zero (SEEK_DATA counts swapped-out pages of
 * tmpfs as data, unlike mincore). */
static bool data_map_file(const RamBlock *b, unsigned long *map)
{
    off_t pos = 0, end = (off_t)b->size;

    while (pos < end) {
        off_t data = lseek(b->fd, pos, SEEK_DATA);
        if (data < 0) {
            return errno == ENXIO;
        }
        off_t hole = lseek(b->fd, data, SEEK_HOLE);
        if (hole < 0 || hole > end) {
            hole = end;
        }
        map_set_range(map, (uint64_t)data / GUEST_PAGE_SIZE,
                      ((uint64_t)hole + GUEST_PAGE_SIZE - 1) / GUEST_PAGE_SIZE);
        pos = hole;
    }
    return true;
}

#define PAGEMAP_PRESENT (1ULL << 63)
#define PAGEMAP_SWAPPED (1ULL << 62)

/* Anonymous memory: a page neither present nor swapped out was never
 * written (or was discarded) and reads as zero. The present and swapped
 * bits of /proc/self/pagemap need no privilege. */
static bool data_map_anonymous(const RamBlock *b, unsigned long *map)
{
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        return false;
    }
    enum { CHUNK = 4096 };
    g_autofree uint64_t *ent = g_new(uint64_t, CHUNK);
    uint64_t pages = b->size / GUEST_PAGE_SIZE, vpage = (uintptr_t)b->host / GUEST_PAGE_SIZE;
    bool ok = true;

    for (uint64_t p = 0; p < pages && ok; p += CHUNK) {
        size_t want = (size_t)MIN((uint64_t)CHUNK, pages - p) * sizeof(uint64_t);
        ssize_t n = pread(fd, ent, want, (off_t)((vpage + p) * sizeof(uint64_t)));
        if (n != (ssize_t)want) {
            ok = false;
            break;
        }
        for (size_t i = 0; i < want / sizeof(uint64_t); i++) {
            if (ent[i] & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED)) {
                map_set(map, p + i);
            }
        }
    }
    close(fd);
    return ok;
}

void ram_block_data_map(const RamBlock *b, unsigned long *map)
{
    uint64_t pages = b->size / GUEST_PAGE_SIZE;

    if (!(b->fd >= 0 ? data_map_file(b, map) : data_map_anonymous(b, map))) {
        map_set_range(map, 0, pages);       /* cannot tell: anything may hold data */
    }
}

bool ram_block_discard(const RamBlock *b, uint64_t offset, uint64_t len, GError **error)
{
    /* A file's page is shared by every mapping of it: only a hole drops it.
     * MADV_DONTNEED on a private anonymous mapping leaves zero-fill-on-
     * demand (and a userfaultfd "missing" fault) behind. */
    int r = b->fd >= 0 ? fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)len)
                       : madvise(b->host + offset, len, MADV_DONTNEED);

    if (r < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "cannot discard pages of '%s': %s",
                    b->id, g_strerror(errno));
        return false;
    }
    return true;
}

static void guest_memory_add_region(GuestMemory *mem, uint64_t gpa, uint64_t size,
                                    RamBlock *block, uint64_t offset)
{
    MemRegion *r = &mem->regions[mem->nr_regions];

    r->gpa = gpa;
    r->size = size;
    r->block = block;
    r->offset = offset;
    r->slot = mem->nr_regions;
    mem->nr_regions++;
}

GuestMemory *guest_memory_new(const GuestMemoryConfig *cfg, GError **error)
{
    if (cfg->size < 2 * 1024 * 1024 || cfg->size % GUEST_PAGE_SIZE) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "guest RAM must be a multiple of 4 KiB and at least 2 MiB");
        return NULL;
    }
    RamBlock *block = ram_block_new("pc.ram", cfg->size, cfg->mem_path, cfg->mem_share, error);
    if (!block) {
        return NULL;
    }

    GuestMemory *mem = g_new0(GuestMemory, 1);
    mem->ram_size = cfg->size;
    mem->ram_pages = cfg->size / GUEST_PAGE_SIZE;
    mem->blocks[mem->nr_blocks++] = block;
    g_mutex_init(&mem->layout_lock);

    uint64_t low = MIN(cfg->size, GUEST_LOW_RAM_END);
    guest_memory_add_region(mem, 0, low, block, 0);
    if (cfg->size > low) {
        guest_memory_add_region(mem, GUEST_HIGH_RAM_BASE, cfg->size - low, block, low);
    }
    dirty_log_init(&mem->dirty, cfg->size / GUEST_PAGE_SIZE);
    qb_log(LOG_DEBUG, "guest RAM: %" PRIu64 " MiB (%" PRIu64 " MiB below 4 GiB), %s%s",
           cfg->size >> 20, low >> 20, cfg->mem_path ? "backed by " : cfg->mem_share ? "a memfd" : "anonymous",
           cfg->mem_path ? cfg->mem_path : "");
    return mem;
}

void guest_memory_free(GuestMemory *mem)
{
    if (!mem) {
        return;
    }
    for (unsigned i = 0; i < mem->nr_blocks; i++) {
        ram_block_free(mem->blocks[i]);
    }
    dirty_log_destroy(&mem->dirty);
    g_mutex_clear(&mem->layout_lock);
    g_free(mem);
}

bool guest_memory_plug(GuestMemory *mem, RamBlock *block, uint64_t gpa, GuestMemoryMapFunc map,
                       void *opaque, GError **error)
{
    bool ok = false;

    g_mutex_lock(&mem->layout_lock);
    unsigned nb = mem->nr_blocks, nr = mem->nr_regions;
    if (nb >= GUEST_MAX_REGIONS || nr >= GUEST_MAX_REGIONS) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "no room for another RAM block");
        goto out;
    }
    for (unsigned i = 0; i < nr; i++) {
        const MemRegion *r = &mem->regions[i];
        if (gpa < r->gpa + r->size && r->gpa < gpa + block->size) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                        "RAM at 0x%" PRIx64 " would overlap RAM at 0x%" PRIx64, gpa, r->gpa);
            goto out;
        }
    }
    block->ram_offset = mem->ram_pages * GUEST_PAGE_SIZE;
    /* Marks of the new pages must land before anyone can reach them. */
    dirty_log_grow(&mem->dirty, mem->ram_pages + block->size / GUEST_PAGE_SIZE);
    MemRegion *r = &mem->regions[nr];
    *r = (MemRegion){ .gpa = gpa, .size = block->size, .block = block, .offset = 0, .slot = nr };
    if (map && !map(opaque, r, error)) {
        goto out;
    }
    __atomic_store_n(&mem->ram_pages, mem->ram_pages + block->size / GUEST_PAGE_SIZE, __ATOMIC_RELAXED);
    mem->blocks[nb] = block;
    __atomic_store_n(&mem->nr_blocks, nb + 1, __ATOMIC_RELEASE);
    /* The block first: whoever sees the region finds its block. */
    __atomic_store_n(&mem->nr_regions, nr + 1, __ATOMIC_RELEASE);
    ok = true;
    qb_log(LOG_INFO, "guest RAM: %s, %" PRIu64 " MiB at 0x%" PRIx64 " added", block->id,
           block->size >> 20, gpa);
out:
    g_mutex_unlock(&mem->layout_lock);
    return ok;
}

static const MemRegion *guest_memory_find(const GuestMemory *mem, uint64_t gpa)
{
    unsigned n = guest_memory_nr_regions(mem);

    for (unsigned i = 0; i < n; i++) {
        const MemRegion *r = &mem->regions[i];
        if (gpa >= r->gpa && gpa - r->gpa < r->size) {
            return r;
        }
    }
    return NULL;
}

void *guest_memory_ptr(const GuestMemory *mem, uint64_t gpa, uint64_t len)
{
    const MemRegion *r = guest_memory_find(mem, gpa);

    if (!r || len > r->size - (gpa - r->gpa)) {
        return NULL;
    }
    return r->block->host + r->offset + (gpa - r->gpa);
}

static void guest_memory_mark_region(const GuestMemory *mem, const MemRegion *r, uint64_t gpa,
                                     uint64_t len)
{
    uint64_t start = r->block->ram_offset + r->offset + (gpa - r->gpa);
    uint64_t first = start / GUEST_PAGE_SIZE;
    uint64_t last = (start + len - 1) / GUEST_PAGE_SIZE;

    /* The log is atomic inside; marking does not change the layout. */
    dirty_log_mark((DirtyLog *)&mem->dirty, first, last - first + 1);
}

void guest_memory_mark_dirty(GuestMemory *mem, uint64_t gpa, uint64_t len)
{
    while (len) {
        const MemRegion *r = guest_memory_find(mem, gpa);
        if (!r) {
            return;
        }
        uint64_t chunk = MIN(len, r->size - (gpa - r->gpa));
        guest_memory_mark_region(mem, r, gpa, chunk);
        gpa += chunk;
        len -= chunk;
    }
}

/* Walks [gpa, gpa+len) region by region; false on the first unbacked byte. */
static bool guest_memory_copy(const GuestMemory *mem, uint64_t gpa, void *buf, size_t len,
                              bool to_guest)
{
    uint8_t *p = buf;

    while (len) {
        const MemRegion *r = guest_memory_find(mem, gpa);
        if (!r) {
            return false;
        }
        uint64_t chunk = MIN(len, r->size - (gpa - r->gpa));
        uint8_t *host = r->block->host + r->offset + (gpa - r->gpa);
        if (to_guest) {
            memcpy(host, p, chunk);
            guest_memory_mark_region(mem, r, gpa, chunk);
        } else {
            memcpy(p, host, chunk);
        }
        p += chunk;
        gpa += chunk;
        len -= chunk;
    }
    return true;
}

bool guest_memory_read(const GuestMemory *mem, uint64_t gpa, void *buf, size_t len)
{
    return guest_memory_copy(mem, gpa, buf, len, false);
}

bool guest_memory_write(GuestMemory *mem, uint64_t gpa, const void *buf, size_t len)
{
    return guest_memory_copy(mem, gpa, (void *)buf, len, true);
}

uint64_t guest_memory_low_size(const GuestMemory *mem)
{
    return MIN(mem->ram_size, GUEST_LOW_RAM_END);
}

uint64_t guest_memory_high_size(const GuestMemory *mem)
{
    return mem->ram_size - guest_memory_low_size(mem);
}

bool guest_memory_parse_size(const char *text, uint64_t *bytes, GError **error)
{
    char *end = NULL;
    guint64 value;

    errno = 0;
    if (!text || !g_ascii_isdigit(text[0])) {
        goto bad;
    }
    value = g_ascii_strtoull(text, &end, 10);
    if (errno || end == text) {
        goto bad;
    }
    unsigned shift;
    switch (g_ascii_toupper(*end)) {
    case '\0':
    case 'M': shift = 20; break;
    case 'K': shift = 10; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    case 'B': shift = 0; break;
    default: goto bad;
    }
    if (*end && end[1] != '\0' && !(g_ascii_toupper(end[1]) == 'B' && end[2] == '\0')) {
        goto bad;
    }
    if (value > (UINT64_MAX >> shift)) {
        goto bad;
    }
    *bytes = value << shift;
    return true;

bad:
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                "invalid size '%s' (examples: 64M, 1G, 512)", text ? text : "");
    return false;
}
