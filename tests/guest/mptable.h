/* Finds the Intel MP table (MultiProcessor Specification 1.4) and lists
 * the enabled processors. Pure code: guest and host unit tests. */
#ifndef TESTGUEST_MPTABLE_H
#define TESTGUEST_MPTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MP_MAX_CPUS 32

struct mp_info {
    uint64_t fps_gpa;             /* where the floating pointer was found */
    uint64_t table_gpa;           /* the configuration table */
    uint32_t lapic_addr;
    uint32_t ioapic_addr;         /* first IOAPIC entry, 0 if none */
    unsigned ncpus;               /* enabled processors kept in apic_id[] */
    unsigned ncpus_listed;        /* enabled processors in the table (may exceed MP_MAX_CPUS) */
    int bsp;                      /* index in apic_id[] of the one flagged BSP, -1 if none */
    uint8_t apic_id[MP_MAX_CPUS];
    const char *error;            /* why mptable_find() failed */
};

/* Returns a pointer to @len readable bytes of guest-physical memory at
 * @gpa, or NULL if that range may not be read. */
typedef const uint8_t *(*mp_map_fn)(void *opaque, uint64_t gpa, size_t len);

/* Searches the places the spec names (first KiB of the EBDA, last KiB of
 * base memory, 0xF0000-0xFFFFF), validates signatures, lengths and
 * checksums of floating pointer and configuration table, and walks the
 * entries. False with @out->error set when there is no usable table. */
bool mptable_find(mp_map_fn map, void *opaque, struct mp_info *out);

/* The same from a known floating pointer address. */
bool mptable_parse_at(mp_map_fn map, void *opaque, uint64_t fps_gpa, struct mp_info *out);

#endif
