#include "config.h"

#include "migration/state-buf.h"

#include <string.h>

#include "migration/vmstate.h"

void state_put_bytes(StateWriter *w, const void *data, size_t len)
{
    g_byte_array_append(w->buf, data, (guint)len);
}

void state_put_u8(StateWriter *w, uint8_t v)
{
    state_put_bytes(w, &v, 1);
}

void state_put_u16(StateWriter *w, uint16_t v)
{
    v = GUINT16_TO_LE(v);
    state_put_bytes(w, &v, 2);
}

void state_put_u32(StateWriter *w, uint32_t v)
{
    v = GUINT32_TO_LE(v);
    state_put_bytes(w, &v, 4);
}

void state_put_u64(StateWriter *w, uint64_t v)
{
    v = GUINT64_TO_LE(v);
    state_put_bytes(w, &v, 8);
}

void state_put_blob(StateWriter *w, const void *data, size_t len)
{
    state_put_u32(w, (uint32_t)len);
    state_put_bytes(w, data, len);
}

void state_reader_init(StateReader *r, const uint8_t *data, size_t len)
{
    r->data = data;
    r->len = len;
    r->pos = 0;
    r->error = false;
}

void state_get_bytes(StateReader *r, void *out, size_t len)
{
    if (r->error || len > r->len - r->pos) {
        r->error = true;
        memset(out, 0, len);
        return;
    }
    memcpy(out, r->data + r->pos, len);
    r->pos += len;
}

uint8_t state_get_u8(StateReader *r)
{
    uint8_t v;

    state_get_bytes(r, &v, 1);
    return v;
}

uint16_t state_get_u16(StateReader *r)
{
    uint16_t v;

    state_get_bytes(r, &v, 2);
    return GUINT16_FROM_LE(v);
}

uint32_t state_get_u32(StateReader *r)
{
    uint32_t v;

    state_get_bytes(r, &v, 4);
    return GUINT32_FROM_LE(v);
}

uint64_t state_get_u64(StateReader *r)
{
    uint64_t v;

    state_get_bytes(r, &v, 8);
    return GUINT64_FROM_LE(v);
}

void state_get_blob(StateReader *r, void *out, size_t len)
{
    uint32_t got = state_get_u32(r);

    if (got != len) {
        r->error = true;
        memset(out, 0, len);
        return;
    }
    state_get_bytes(r, out, len);
}

bool state_reader_finish(StateReader *r, const char *what, GError **error)
{
    if (r->error) {
        g_set_error(error, VMSTATE_ERROR, VMSTATE_ERROR_INVALID,
                    "%s state is truncated or has a field of the wrong size", what);
        return false;
    }
    if (r->pos != r->len) {
        g_set_error(error, VMSTATE_ERROR, VMSTATE_ERROR_INVALID,
                    "%s state has %zu unexpected trailing bytes", what, r->len - r->pos);
        return false;
    }
    return true;
}
