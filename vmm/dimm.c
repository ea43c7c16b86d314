#include "config.h"

#include "dimm.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>

#include <gio/gio.h>
#include <qb/qblog.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

uint64_t dimms_area_base(uint64_t ram_size)
{
    uint64_t high = ram_size > GUEST_LOW_RAM_END ? ram_size - GUEST_LOW_RAM_END : 0;
    uint64_t gib = 1ULL << 30;

    return (GUEST_HIGH_RAM_BASE + high + gib - 1) & ~(gib - 1);
}

static void backend_free(gpointer p)
{
    MemoryBackend *b = p;

    ram_block_free(b->block);   /* NULL once plugged: the guest's RAM owns it */
    g_free(b->id);
    g_free(b->type);
    g_free(b->mem_path);
    g_free(b);
}

static void dimm_free(gpointer p)
{
    Dimm *dimm = p;

    g_free(dimm->id);
    g_free(dimm);
}

Dimms *dimms_new(GuestMemory *mem, Kvm *kvm, MemoryHotplug *hp, uint64_t maxmem, unsigned slots,
                 GError **error)
{
    if (slots > GUEST_MAX_DIMMS) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "-m: at most %d memory slots are supported, not %u", GUEST_MAX_DIMMS, slots);
        return NULL;
    }
    if ((slots || maxmem) && maxmem <= mem->ram_size) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "-m: maxmem (%" PRIu64 " MiB) must be larger than the RAM size (%" PRIu64 " MiB)",
                    maxmem >> 20, mem->ram_size >> 20);
        return NULL;
    }
    if (maxmem && !slots) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "-m: maxmem needs slots=N (the number of DIMMs that may be added)");
        return NULL;
    }
    Dimms *d = g_new0(Dimms, 1);
    g_mutex_init(&d->lock);
    d->mem = mem;
    d->kvm = kvm;
    d->hp = hp;
    d->slots = slots;
    d->base = dimms_area_base(mem->ram_size);
    d->area_size = slots ? maxmem - mem->ram_size : 0;
    d->backends = g_ptr_array_new_with_free_func(backend_free);
    d->dimms = g_ptr_array_new_with_free_func(dimm_free);
    return d;
}

void dimms_free(Dimms *d)
{
    if (!d) {
        return;
    }
    g_ptr_array_free(d->dimms, TRUE);
    g_ptr_array_free(d->backends, TRUE);
    g_mutex_clear(&d->lock);
    g_free(d);
}

static MemoryBackend *backend_find(Dimms *d, const char *id)
{
    for (guint i = 0; i < d->backends->len; i++) {
        MemoryBackend *b = d->backends->pdata[i];
        if (!strcmp(b->id, id)) {
            return b;
        }
    }
    return NULL;
}

static Dimm *dimm_find(Dimms *d, const char *id)
{
    for (guint i = 0; i < d->dimms->len; i++) {
        Dimm *dimm = d->dimms->pdata[i];
        if (!strcmp(dimm->id, id)) {
            return dimm;
        }
    }
    return NULL;
}

/* QEMU's rule for ids: a letter, then letters, digits, '-', '.', '_'. */
static bool id_valid(const char *id)
{
    if (!g_ascii_isalpha(id[0]) || strlen(id) > 128) {
        return false;
    }
    for (const char *p = id; *p; p++) {
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '.' && *p != '_') {
            return false;
        }
    }
    return true;
}

static bool backend_add_locked(Dimms *d, const char *type, const char *id, uint64_t size,
                               const char *mem_path, bool share, bool prealloc, GError **error)
{
    if (!id_valid(id)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "Parameter 'id' expects an identifier");
        return false;
    }
    if (backend_find(d, id)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                    "attempt to add duplicate property '%s' to object (type 'container')", id);
        return false;
    }
    if (!size) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "can't create backend with size 0");
        return false;
    }
    if (size % DIMM_ALIGN) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "backend '%s': size %" PRIu64 " is not a multiple of 2 MiB", id, size);
        return false;
    }
    if (!strcmp(type, "memory-backend-file") != (mem_path != NULL)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    mem_path ? "Property '%s.mem-path' not found" : "'%s': mem-path property not set",
                    type);
        return false;
    }
    /* As QEMU: memory-backend-ram is anonymous memory unless share=on,
     * memory-backend-memfd a memfd. */
    bool memfd = !strcmp(type, "memory-backend-memfd") || (!mem_path && share);
    RamBlock *block = ram_block_new(id, size, mem_path, memfd, error);
    if (!block) {
        return false;
    }
    if (prealloc && madvise(block->host, size, MADV_POPULATE_WRITE) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "backend '%s': cannot preallocate %" PRIu64 " MiB: %s", id, size >> 20,
                    g_strerror(errno));
        ram_block_free(block);
        return false;
    }
    MemoryBackend *b = g_new0(MemoryBackend, 1);
    b->id = g_strdup(id);
    b->type = g_strdup(type);
    b->size = size;
    b->mem_path = g_strdup(mem_path);
    b->share = share;
    b->prealloc = prealloc;
    b->block = block;
    g_ptr_array_add(d->backends, b);
    return true;
}

bool dimms_add_backend(Dimms *d, const char *type, const char *id, uint64_t size, const char *mem_path,
                       bool share, bool prealloc, GError **error)
{
    g_mutex_lock(&d->lock);
    bool ok = backend_add_locked(d, type, id, size, mem_path, share, prealloc, error);
    g_mutex_unlock(&d->lock);
    return ok;
}

bool dimms_del_backend(Dimms *d, const char *id, GError **error)
{
    bool ok = false;

    g_mutex_lock(&d->lock);
    MemoryBackend *b = backend_find(d, id);
    if (!b) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "object '%s' not found", id);
    } else if (b->dimm) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY, "object '%s' is in use, can not be deleted", id);
    } else {
        g_ptr_array_remove(d->backends, b);
        ok = true;
    }
    g_mutex_unlock(&d->lock);
    return ok;
}

/* First 2 MiB-aligned gap of @size in the area, or UINT64_MAX. */
static uint64_t dimms_find_gap(Dimms *d, uint64_t size)
{
    uint64_t at = d->base;

    for (bool moved = true; moved;) {
        moved = false;
        for (guint i = 0; i < d->dimms->len; i++) {
            const Dimm *x = d->dimms->pdata[i];
            if (at < x->addr + x->backend->size && x->addr < at + size) {
                at = x->addr + x->backend->size;
                moved = true;
            }
        }
    }
    return at + size <= d->base + d->area_size ? at : UINT64_MAX;
}

static bool dimms_check_place(Dimms *d, uint64_t addr, uint64_t size, GError **error)
{
    if (addr % DIMM_ALIGN || addr < d->base || size > d->area_size ||
        addr - d->base > d->area_size - size) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "address 0x%" PRIx64 " is not 2 MiB aligned inside the device memory area "
                    "[0x%" PRIx64 ", 0x%" PRIx64 ")", addr, d->base, d->base + d->area_size);
        return false;
    }
    for (guint i = 0; i < d->dimms->len; i++) {
        const Dimm *x = d->dimms->pdata[i];
        if (addr < x->addr + x->backend->size && x->addr < addr + size) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                        "address range conflicts with memory device id='%s'", x->id);
            return false;
        }
    }
    return true;
}

static bool dimms_plug_locked(Dimms *d, const char *id, const char *memdev, int slot, uint64_t addr,
                              bool notify, GError **error)
{
    if (!d->slots) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "no slots where allocated, please specify the 'slots' option");
        return false;
    }
    if (!id || !id_valid(id)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "pc-dimm needs an 'id' (a letter, then letters, digits, '-', '.', '_')");
        return false;
    }
    if (dimm_find(d, id)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS, "Duplicate device ID '%s'", id);
        return false;
    }
    MemoryBackend *b = memdev ? backend_find(d, memdev) : NULL;
    if (!b) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    memdev ? "Device '%s' not found" : "'memdev' property is not set", memdev);
        return false;
    }
    if (b->dimm) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY, "can't use already busy memdev: %s", memdev);
        return false;
    }
    bool used[GUEST_MAX_DIMMS] = { false };
    uint64_t plugged = 0;
    for (guint i = 0; i < d->dimms->len; i++) {
        const Dimm *x = d->dimms->pdata[i];
        used[x->slot] = true;
        plugged += x->backend->size;
    }
    if (slot < 0) {
        for (slot = 0; slot < (int)d->slots && used[slot]; slot++) {
        }
        if (slot == (int)d->slots) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "no free slots left");
            return false;
        }
    } else if ((unsigned)slot >= d->slots) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "invalid slot number %d, valid range is [0-%u]", slot, d->slots - 1);
        return false;
    } else if (used[slot]) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS, "slot %d is busy", slot);
        return false;
    }
    if (plugged + b->size > d->area_size) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                    "not enough space, currently 0x%" PRIx64 " in use of total space for memory "
                    "devices 0x%" PRIx64, plugged, d->area_size);
        return false;
    }
    if (addr == UINT64_MAX) {
        addr = dimms_find_gap(d, b->size);
        if (addr == UINT64_MAX) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                        "could not find position in guest address space for memory device - "
                        "memory fragmented due to alignments");
            return false;
        }
    } else if (!dimms_check_place(d, addr, b->size, error)) {
        return false;
    }

    RamBlock *block = b->block;
    block->device_id = g_strdup(id);
    block->slot = (unsigned)slot;
    block->addr = addr;
    if (!guest_memory_plug(d->mem, block, addr, d->kvm ? kvm_map_region : NULL, d->kvm, error)) {
        g_clear_pointer(&block->device_id, g_free);
        return false;
    }
    b->block = NULL;            /* the guest's RAM now */
    Dimm *dimm = g_new0(Dimm, 1);
    dimm->id = g_strdup(id);
    dimm->backend = b;
    dimm->slot = (unsigned)slot;
    dimm->addr = addr;
    dimm->hotplugged = notify;
    b->dimm = dimm;
    g_ptr_array_add(d->dimms, dimm);
    if (d->hp) {
        memory_hotplug_plug(d->hp, (unsigned)slot, addr, b->size, notify);
    }
    qb_log(LOG_NOTICE, "pc-dimm %s: %" PRIu64 " MiB of %s in slot %d at 0x%" PRIx64 "%s", id,
           b->size >> 20, memdev, slot, addr, notify ? ", the guest is told" : "");
    return true;
}

bool dimms_plug(Dimms *d, const char *id, const char *memdev, int slot, uint64_t addr, bool notify,
                GError **error)
{
    g_mutex_lock(&d->lock);
    bool ok = dimms_plug_locked(d, id, memdev, slot, addr, notify, error);
    g_mutex_unlock(&d->lock);
    return ok;
}

bool dimms_plug_incoming(Dimms *d, const char *id, const char *memdev, unsigned slot, uint64_t addr,
                         uint64_t size, GError **error)
{
    bool ok = false;

    g_mutex_lock(&d->lock);
    Dimm *have = dimm_find(d, id);
    if (have) {
        ok = !strcmp(have->backend->id, memdev) && have->slot == slot && have->addr == addr &&
             have->backend->size == size;
        if (!ok) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        "pc-dimm %s differs from the source's (memdev %s, slot %u, 0x%" PRIx64
                        ", %" PRIu64 " MiB there)", id, memdev, slot, addr, size >> 20);
        }
        goto out;
    }
    if (!d->slots) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "no slots where allocated, please specify the 'slots' option (-m SIZE,slots=N,maxmem=MAX)");
        goto out;
    }
    if (slot >= GUEST_MAX_DIMMS || size > d->area_size) {
        /* Before allocating anything for what cannot fit anyway. */
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "pc-dimm %s: slot %u or %" PRIu64 " MiB does not fit -m slots=%u,maxmem= here",
                    id, slot, size >> 20, d->slots);
        goto out;
    }
    MemoryBackend *b = backend_find(d, memdev);
    if (b && b->size != size) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "memdev %s has %" PRIu64 " MiB here, %" PRIu64 " MiB on the source", memdev,
                    b->size >> 20, size >> 20);
        goto out;
    }
    if (!b && !backend_add_locked(d, "memory-backend-ram", memdev, size, NULL, false, false, error)) {
        goto out;
    }
    ok = dimms_plug_locked(d, id, memdev, (int)slot, addr, false, error);
    if (!ok && !b) {
        g_ptr_array_remove(d->backends, backend_find(d, memdev));
    }
out:
    g_mutex_unlock(&d->lock);
    if (ok) {
        qb_log(LOG_INFO, "migration: pc-dimm %s (%s, slot %u) as on the source", id, memdev, slot);
    }
    return ok;
}

uint64_t dimms_plugged_size(Dimms *d)
{
    uint64_t n = 0;

    g_mutex_lock(&d->lock);
    for (guint i = 0; i < d->dimms->len; i++) {
        n += ((Dimm *)d->dimms->pdata[i])->backend->size;
    }
    g_mutex_unlock(&d->lock);
    return n;
}
