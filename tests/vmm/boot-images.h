/* Synthetic kernels for the boot tests: bzImages with a chosen setup
 * header and ELF files with or without the PVH note, built field by field
 * from the specifications (not by our loader's code). */
#ifndef COLO_TESTS_BOOT_IMAGES_H
#define COLO_TESTS_BOOT_IMAGES_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "memory.h"

typedef struct TestBzOpts {
    uint16_t version;        /* 0x020f */
    uint8_t setup_sects;     /* 4 */
    uint8_t loadflags;       /* LOADED_HIGH */
    uint16_t xloadflags;     /* XLF_KERNEL_64 */
    uint16_t boot_flag;      /* 0xaa55 */
    uint32_t init_size;      /* 4 MiB */
    uint64_t pref_address;   /* 16 MiB */
    uint32_t initrd_addr_max;/* 0x7fffffff */
    uint32_t cmdline_size;   /* 2047 */
    uint32_t kernel_alignment; /* 2 MiB */
    bool magic;              /* "HdrS" present */
    size_t payload_size;     /* 64 KiB */
    const uint8_t *code64;   /* if set: copied to payload offset 0x200 (the 64-bit entry) */
    size_t code64_len;
} TestBzOpts;

/* Defaults of a modern x86-64 kernel. */
TestBzOpts test_bz_defaults(void);
/* The whole file; the payload byte i is (i * 7 + 3) & 0xff. */
GBytes *test_bz_build(const TestBzOpts *o);
uint8_t test_payload_byte(size_t i);

typedef struct TestElfOpts {
    bool elf32;
    bool note;               /* carry the Xen PVH note */
    unsigned desc_size;      /* 4 or 8 (ELF64 default 8) */
    uint64_t entry;          /* PVH entry, default 0x100040 */
    uint64_t paddr;          /* text segment, default 0x100000 */
    uint64_t filesz;         /* default 0x200 */
    uint64_t memsz;          /* default 0x3000 (bss) */
    uint16_t phentsize;      /* 0: the right one */
    const uint8_t *text;     /* if set: the segment's file bytes (filesz is then ignored) */
    size_t text_len;
} TestElfOpts;

TestElfOpts test_elf_defaults(void);
GBytes *test_elf_build(const TestElfOpts *o);

/* Guest RAM of @mib MiB; aborts the test on failure. */
GuestMemory *test_mem_new(uint64_t mib);

/* Writes @data to a new temporary file; returns its path (g_free, unlink). */
char *test_tmpfile(const void *data, size_t len);

/* A few bytes of x86 machine code, assembled by hand, for tests that run
 * a tiny guest on /dev/kvm. */
typedef struct Code {
    uint8_t b[256];
    size_t n;
} Code;

void code_emit(Code *c, const void *bytes, size_t len);
#define EMIT(c, ...) do { static const uint8_t b_[] = { __VA_ARGS__ }; code_emit((c), b_, sizeof(b_)); } while (0)
void code_emit_u32(Code *c, uint32_t v);
/* mov al, imm8; out dx, al for each character: dx must hold the port. */
void code_emit_out_str(Code *c, const char *s);

#endif
