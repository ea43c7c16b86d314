#include "config.h"

#include <elf.h>
#include <string.h>
#include <unistd.h>

#include "boot-images.h"

uint8_t test_payload_byte(size_t i)
{
    return (uint8_t)(i * 7 + 3);
}

TestBzOpts test_bz_defaults(void)
{
    return (TestBzOpts){
        .version = 0x020f, .setup_sects = 4, .loadflags = 0x01, .xloadflags = 0x01,
        .boot_flag = 0xaa55, .init_size = 4 << 20, .pref_address = 16 << 20,
        .initrd_addr_max = 0x7fffffff, .cmdline_size = 2047, .kernel_alignment = 2 << 20,
        .magic = true, .payload_size = 64 << 10,
    };
}

static void put16(uint8_t *p, uint16_t v) { v = GUINT16_TO_LE(v); memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { v = GUINT32_TO_LE(v); memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { v = GUINT64_TO_LE(v); memcpy(p, &v, 8); }

GBytes *test_bz_build(const TestBzOpts *o)
{
    size_t setup = ((o->setup_sects ? o->setup_sects : 4) + 1) * 512;
    size_t len = setup + o->payload_size;
    uint8_t *f = g_malloc0(len);

    /* Documentation/arch/x86/boot.rst, "The real-mode kernel header". */
    memset(f, 0xcc, setup);                     /* setup code: must not reach the kernel area */
    memset(f + 0x1f1, 0, 0x290 - 0x1f1);
    f[0x1f1] = o->setup_sects;
    put16(f + 0x1fe, o->boot_flag);
    f[0x200] = 0xeb;                            /* jmp short */
    f[0x201] = 0x6a;                            /* header ends at 0x26c */
    if (o->magic) {
        memcpy(f + 0x202, "HdrS", 4);
    }
    put16(f + 0x206, o->version);
    put16(f + 0x20e, 0x1234);                   /* kernel_version */
    f[0x211] = o->loadflags;
    put32(f + 0x214, 0x100000);                 /* code32_start */
    put32(f + 0x22c, o->initrd_addr_max);
    put32(f + 0x230, o->kernel_alignment);
    f[0x234] = 1;                               /* relocatable_kernel */
    f[0x235] = 21;                              /* min_alignment */
    put16(f + 0x236, o->xloadflags);
    put32(f + 0x238, o->cmdline_size);
    put64(f + 0x258, o->pref_address);
    put32(f + 0x260, o->init_size);
    for (size_t i = 0; i < o->payload_size; i++) {
        f[setup + i] = test_payload_byte(i);
    }
    if (o->code64) {
        g_assert(0x200 + o->code64_len <= o->payload_size);
        memcpy(f + setup + 0x200, o->code64, o->code64_len);
    }
    return g_bytes_new_take(f, len);
}

TestElfOpts test_elf_defaults(void)
{
    return (TestElfOpts){
        .note = true, .desc_size = 8, .entry = 0x100040, .paddr = 0x100000,
        .filesz = 0x200, .memsz = 0x3000,
    };
}

/* Layout: ELF header, 3 program headers (LOAD, NOTE, GNU_STACK), the
 * notes at 0x200 (a GNU note first, then Xen's), the text at 0x1000. */
GBytes *test_elf_build(const TestElfOpts *o)
{
    uint64_t filesz = o->text ? o->text_len : o->filesz;
    size_t text_off = 0x1000, len = text_off + filesz;
    uint8_t *f = g_malloc0(len);
    uint8_t notes[64] = { 0 };
    size_t nlen = 0;

    /* A GNU build-id-like note to skip over. */
    put32(notes + 0, 4);
    put32(notes + 4, 8);
    put32(notes + 8, 3);
    memcpy(notes + 12, "GNU", 4);
    memset(notes + 16, 0x5a, 8);
    nlen = 24;
    if (o->note) {
        put32(notes + nlen, 4);
        put32(notes + nlen + 4, o->desc_size);
        put32(notes + nlen + 8, 18);            /* XEN_ELFNOTE_PHYS32_ENTRY */
        memcpy(notes + nlen + 12, "Xen", 4);
        if (o->desc_size == 8) {
            put64(notes + nlen + 16, o->entry);
        } else {
            put32(notes + nlen + 16, (uint32_t)o->entry);
        }
        nlen += 16 + ((o->desc_size + 3) & ~3U);
    }
    memcpy(f + 0x200, notes, nlen);
    for (size_t i = 0; i < filesz; i++) {
        f[text_off + i] = o->text ? o->text[i] : test_payload_byte(i);
    }

    memcpy(f, ELFMAG, SELFMAG);
    f[EI_DATA] = ELFDATA2LSB;
    f[EI_VERSION] = EV_CURRENT;
    if (!o->elf32) {
        Elf64_Ehdr eh = { 0 };
        memcpy(eh.e_ident, f, EI_NIDENT);
        eh.e_ident[EI_CLASS] = ELFCLASS64;
        eh.e_type = ET_EXEC;
        eh.e_machine = EM_X86_64;
        eh.e_version = EV_CURRENT;
        eh.e_entry = 0xffffffff81000000ULL;     /* virtual: the loader must not use it */
        eh.e_phoff = sizeof(eh);
        eh.e_ehsize = sizeof(eh);
        eh.e_phentsize = o->phentsize ? o->phentsize : sizeof(Elf64_Phdr);
        eh.e_phnum = 3;
        Elf64_Phdr ph[3] = {
            { .p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = text_off,
              .p_vaddr = 0xffffffff81000000ULL, .p_paddr = o->paddr, .p_filesz = filesz,
              .p_memsz = o->memsz, .p_align = 0x1000 },
            { .p_type = PT_NOTE, .p_flags = PF_R, .p_offset = 0x200, .p_filesz = nlen,
              .p_memsz = nlen, .p_align = 4 },
            { .p_type = PT_GNU_STACK, .p_flags = PF_R | PF_W },
        };
        memcpy(f, &eh, sizeof(eh));
        memcpy(f + sizeof(eh), ph, sizeof(ph));
    } else {
        Elf32_Ehdr eh = { 0 };
        memcpy(eh.e_ident, f, EI_NIDENT);
        eh.e_ident[EI_CLASS] = ELFCLASS32;
        eh.e_type = ET_EXEC;
        eh.e_machine = EM_386;
        eh.e_version = EV_CURRENT;
        eh.e_phoff = sizeof(eh);
        eh.e_ehsize = sizeof(eh);
        eh.e_phentsize = o->phentsize ? o->phentsize : sizeof(Elf32_Phdr);
        eh.e_phnum = 3;
        Elf32_Phdr ph[3] = {
            { .p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = (Elf32_Off)text_off,
              .p_vaddr = (Elf32_Addr)o->paddr, .p_paddr = (Elf32_Addr)o->paddr,
              .p_filesz = (Elf32_Word)filesz, .p_memsz = (Elf32_Word)o->memsz, .p_align = 0x1000 },
            { .p_type = PT_NOTE, .p_flags = PF_R, .p_offset = 0x200, .p_filesz = (Elf32_Word)nlen,
              .p_memsz = (Elf32_Word)nlen, .p_align = 4 },
            { .p_type = PT_GNU_STACK, .p_flags = PF_R | PF_W },
        };
        memcpy(f, &eh, sizeof(eh));
        memcpy(f + sizeof(eh), ph, sizeof(ph));
    }
    return g_bytes_new_take(f, len);
}

GuestMemory *test_mem_new(uint64_t mib)
{
    GuestMemoryConfig cfg = { .size = mib << 20 };
    GError *error = NULL;
    GuestMemory *mem = guest_memory_new(&cfg, &error);

    g_assert_no_error(error);
    g_assert_nonnull(mem);
    return mem;
}

char *test_tmpfile(const void *data, size_t len)
{
    GError *error = NULL;
    char *path = NULL;
    int fd = g_file_open_tmp("colo-boot-XXXXXX", &path, &error);

    g_assert_no_error(error);
    g_assert_cmpint(fd, >=, 0);
    g_assert_true(g_file_set_contents(path, data, (gssize)len, &error));
    g_assert_no_error(error);
    close(fd);
    return path;
}

void code_emit(Code *c, const void *bytes, size_t len)
{
    g_assert(c->n + len <= sizeof(c->b));
    memcpy(c->b + c->n, bytes, len);
    c->n += len;
}

void code_emit_u32(Code *c, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

    code_emit(c, b, 4);
}

void code_emit_out_str(Code *c, const char *s)
{
    for (; *s; s++) {
        uint8_t insn[3] = { 0xb0, (uint8_t)*s, 0xee };
        code_emit(c, insn, 3);
    }
}
