/* Little-endian, bounds-checked serialisation of device state. Writers
 * append to a GByteArray; readers keep a sticky error, so a load function
 * reads every field and checks once at the end. */
#ifndef COLO_VMM_MIGRATION_STATE_BUF_H
#define COLO_VMM_MIGRATION_STATE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

typedef struct StateWriter {
    GByteArray *buf;
} StateWriter;

typedef struct StateReader {
    const uint8_t *data;
    size_t len;
    size_t pos;
    bool error;                 /* read past the end */
} StateReader;

void state_put_u8(StateWriter *w, uint8_t v);
void state_put_u16(StateWriter *w, uint16_t v);
void state_put_u32(StateWriter *w, uint32_t v);
void state_put_u64(StateWriter *w, uint64_t v);
void state_put_bytes(StateWriter *w, const void *data, size_t len);
/* A length-prefixed (u32) blob. */
void state_put_blob(StateWriter *w, const void *data, size_t len);

void state_reader_init(StateReader *r, const uint8_t *data, size_t len);
uint8_t state_get_u8(StateReader *r);
uint16_t state_get_u16(StateReader *r);
uint32_t state_get_u32(StateReader *r);
uint64_t state_get_u64(StateReader *r);
/* Copies exactly @len bytes, or zeroes @out and sets the error. */
void state_get_bytes(StateReader *r, void *out, size_t len);
/* A blob written by state_put_blob whose length must be exactly @len. */
void state_get_blob(StateReader *r, void *out, size_t len);

/* True if everything was read without error and nothing is left over;
 * otherwise sets @error naming @what. */
bool state_reader_finish(StateReader *r, const char *what, GError **error);

#endif
