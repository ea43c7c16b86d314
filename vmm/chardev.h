/* Character device back-ends for the serial port, with QEMU's -serial
 * spellings: stdio, file:PATH, unix:PATH,server=on,wait=off, null, none. */
#ifndef COLO_VMM_CHARDEV_H
#define COLO_VMM_CHARDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

typedef struct Chardev Chardev;

/* Input handler, called on the main thread. Returns how many bytes it
 * took; when it takes fewer than offered, the chardev stops reading until
 * chardev_input_ready() is called. */
typedef size_t (*ChardevInputFunc)(void *opaque, const uint8_t *buf, size_t len);

/* NULL with @error on a malformed spec or a back-end that cannot open.
 * "none" returns a chardev that drops everything. */
Chardev *chardev_new(const char *spec, GMainContext *ctx, GError **error);
void chardev_free(Chardev *chr);

bool chardev_is_stdio(const Chardev *chr);

/* From any thread; never blocks the caller for long: a socket back-end with
 * no client, or one not reading, drops output as a real line would. */
void chardev_write(Chardev *chr, const void *buf, size_t len);

void chardev_set_input(Chardev *chr, ChardevInputFunc fn, void *opaque);

/* From any thread: the receiver has room again. */
void chardev_input_ready(Chardev *chr);

#endif
