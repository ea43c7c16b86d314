/* 16550A UART (COM1) connected to a character device back-end. */
#ifndef COLO_VMM_DEVICES_SERIAL_H
#define COLO_VMM_DEVICES_SERIAL_H

#include <stdbool.h>
#include <glib.h>

#include "chardev.h"
#include "iobus.h"
#include "kvm.h"
#include "migration/vmstate.h"

#define SERIAL_COM1_PORT 0x3f8
#define SERIAL_COM1_IRQ  4

typedef struct Serial Serial;

Serial *serial_new(IoBus *bus, Kvm *kvm, uint16_t port, unsigned irq, Chardev *chr, GError **error);
void serial_free(Serial *s);
void serial_reset(Serial *s);

extern const VmStateOps serial_state_ops;     /* opaque: Serial * */

#endif
