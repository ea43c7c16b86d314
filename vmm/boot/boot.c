/* Boot dispatch: reads the files, recognises the kernel format and runs the
 * matching loader, then writes what every mode shares (MP table, GDT). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>

#include <qb/qblog.h>

#include "boot-internal.h"

G_DEFINE_QUARK(colo-boot-error-quark, boot_error)

bool boot_cmdline_write(GuestMemory *mem, const char *cmdline, uint64_t max_len, GError **error)
{
    const char *text = cmdline ? cmdline : "";
    size_t len = strlen(text);

    max_len = MIN(max_len, BOOT_CMDLINE_MAX - 1);
    if (len > max_len) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_NO_ROOM,
                    "command line is %zu bytes, the kernel accepts at most %" PRIu64, len, max_len);
        return false;
    }
    if (!guest_memory_write(mem, BOOT_CMDLINE_ADDR, text, len + 1)) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_NO_ROOM, "no guest RAM for the command line");
        return false;
    }
    return true;
}

bool boot_initrd_place(GuestMemory *mem, const BootImages *img, uint64_t lowest, uint64_t limit,
                       uint64_t *addr, GError **error)
{
    uint64_t size = img->initrd_size;

    limit = MIN(limit, guest_memory_low_size(mem));
    if (size > limit || ((limit - size) & ~(GUEST_PAGE_SIZE - 1)) < lowest) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_NO_ROOM,
                    "initrd (%" PRIu64 " bytes) does not fit above the kernel's end at 0x%" PRIx64
                    " and below 0x%" PRIx64 " (the end of RAM under 4 GiB or the kernel's initrd_addr_max)",
                    size, lowest, limit);
        return false;
    }
    uint64_t gpa = (limit - size) & ~(GUEST_PAGE_SIZE - 1);
    if (!guest_memory_write(mem, gpa, img->initrd, size)) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_NO_ROOM,
                    "initrd at 0x%" PRIx64 " lies outside guest RAM", gpa);
        return false;
    }
    *addr = gpa;
    return true;
}

/* Zero what the loader owns below 1 MiB: a reboot or a second load must
 * not find stale tables. */
static bool boot_scratch_clear(GuestMemory *mem)
{
    uint8_t *low = guest_memory_ptr(mem, BOOT_SCRATCH_START, BOOT_SCRATCH_END - BOOT_SCRATCH_START);
    uint8_t *bios = guest_memory_ptr(mem, BOOT_MPTABLE_ADDR, BOOT_KERNEL_MIN - BOOT_MPTABLE_ADDR);

    if (!low || !bios) {
        return false;
    }
    memset(low, 0, BOOT_SCRATCH_END - BOOT_SCRATCH_START);
    memset(bios, 0, BOOT_KERNEL_MIN - BOOT_MPTABLE_ADDR);
    return true;
}

bool boot_load_images(GuestMemory *mem, const BootImages *img, BootEntry *entry, GError **error)
{
    BootEntry e = { 0 };
    bool ok;

    if (img->ncpus < 1 || img->ncpus > BOOT_MAX_CPUS) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID,
                    "%u vCPUs requested, the MP table describes 1 to %u", img->ncpus, BOOT_MAX_CPUS);
        return false;
    }
    if (guest_memory_low_size(mem) < 2 * BOOT_KERNEL_MIN || !boot_scratch_clear(mem)) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_NO_ROOM, "guest RAM below 2 MiB cannot boot");
        return false;
    }
    if (boot_pvh_probe(img->kernel, img->kernel_size)) {
        ok = boot_pvh_load(mem, img, &e, error);
    } else if (boot_bzimage_probe(img->kernel, img->kernel_size)) {
        ok = boot_bzimage_load(mem, img, &e, error);
    } else {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_FORMAT,
                    "unknown kernel format (neither an ELF file nor a bzImage with a \"HdrS\" header)");
        return false;
    }
    if (!ok || !boot_mptable_write(mem, img->ncpus, error) || !boot_acpi_write(mem, img->ncpus, img->mem_slots, error)) {
        return false;
    }
    if (!boot_gdt_write(mem, &e) || (e.mode == BOOT_MODE_LINUX64 && !boot_page_tables_write(mem, &e))) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_NO_ROOM, "no guest RAM for the GDT or page tables");
        return false;
    }
    e.stack = BOOT_STACK_TOP;
    *entry = e;
    qb_log(LOG_INFO, "boot: %s kernel at 0x%" PRIx64 "-0x%" PRIx64 ", entry 0x%" PRIx64
           ", params 0x%" PRIx64 ", %zu bytes of initrd, %u vCPUs",
           e.mode == BOOT_MODE_PVH ? "PVH" : "Linux 64-bit", e.kernel_start, e.kernel_end,
           e.entry, e.params, img->initrd ? img->initrd_size : 0, img->ncpus);
    return true;
}

GBytes *boot_read_file(const char *path, const char *what, uint64_t max_size, GError **error)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;

    if (fd < 0 || fstat(fd, &st) < 0) {
        int err = errno;

        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(err), "cannot read %s: %s: %s",
                    what, path, g_strerror(err));
        if (fd >= 0) {
            close(fd);
        }
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID, "cannot read %s: %s is not a regular file",
                    what, path);
        close(fd);
        return NULL;
    }
    if ((uint64_t)st.st_size > max_size) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_NO_ROOM,
                    "%s %s (%" PRIu64 " bytes) is larger than the guest's RAM (%" PRIu64 " bytes)",
                    what, path, (uint64_t)st.st_size, max_size);
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size, done = 0;
    uint8_t *data = g_malloc(size ? size : 1);
    while (done < size) {
        ssize_t n = read(fd, data + done, size - done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            int err = n < 0 ? errno : EIO;

            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(err), "cannot read %s: %s: %s",
                        what, path, n < 0 ? g_strerror(err) : "the file shrank while being read");
            g_free(data);
            close(fd);
            return NULL;
        }
        done += (size_t)n;
    }
    close(fd);
    return g_bytes_new_take(data, size);
}

bool boot_load(GuestMemory *mem, const BootConfig *cfg, BootEntry *entry, GError **error)
{
    g_autoptr(GBytes) kernel = NULL;
    g_autoptr(GBytes) initrd = NULL;
    uint64_t ram = guest_memory_total_size(mem);

    if (!cfg->kernel) {
        g_set_error(error, BOOT_ERROR, BOOT_ERROR_INVALID, "no kernel given");
        return false;
    }
    if (!(kernel = boot_read_file(cfg->kernel, "the kernel", ram, error))) {
        return false;
    }
    if (cfg->initrd && !(initrd = boot_read_file(cfg->initrd, "the initrd", ram, error))) {
        return false;
    }

    BootImages img = {
        .kernel = g_bytes_get_data(kernel, &img.kernel_size),
        .initrd = initrd ? g_bytes_get_data(initrd, &img.initrd_size) : NULL,
        .cmdline = cfg->cmdline,
        .ncpus = cfg->ncpus,
        .mem_slots = cfg->mem_slots,
    };
    GError *local = NULL;
    if (!boot_load_images(mem, &img, entry, &local)) {
        g_set_error(error, local->domain, local->code, "%s: %s", cfg->kernel, local->message);
        g_error_free(local);
        return false;
    }
    return true;
}
