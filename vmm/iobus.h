/* Port I/O and MMIO dispatch: devices register address ranges with a
 * handler; the vCPU run loop hands every I/O exit to iobus_dispatch. */
#ifndef COLO_VMM_IOBUS_H
#define COLO_VMM_IOBUS_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

/* Called on a vCPU thread. @offset is relative to the registered base;
 * @len is 1, 2, 4 or 8; @data is little-endian, @len bytes. A device that
 * shares state with other threads locks it itself. */
typedef void (*IoHandler)(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write);

typedef enum { IOBUS_PIO, IOBUS_MMIO } IoBusKind;

typedef struct IoRange {
    uint64_t base;
    uint64_t len;
    IoHandler handler;
    void *opaque;
    const char *name;
} IoRange;

typedef struct IoBus {
    GArray *ranges[2];      /* IoRange, sorted by base, per kind */
} IoBus;

IoBus *iobus_new(void);
void iobus_free(IoBus *bus);

/* Fails if the range overlaps one already registered. Registration happens
 * before vCPUs run; the bus is read-only afterwards, so dispatch takes no lock. */
bool iobus_register(IoBus *bus, IoBusKind kind, uint64_t base, uint64_t len,
                    IoHandler handler, void *opaque, const char *name, GError **error);

/* Returns false when nothing is registered there; reads then see all ones. */
bool iobus_dispatch(IoBus *bus, IoBusKind kind, uint64_t addr, uint8_t *data,
                    unsigned len, bool is_write);

#endif
