#include "config.h"

#include "cmos.h"

#include <string.h>

#define CMOS_PORT_INDEX 0x70
#define CMOS_SIZE       128

enum {
    RTC_SECONDS = 0x00,
    RTC_MINUTES = 0x02,
    RTC_HOURS = 0x04,
    RTC_DAY_OF_WEEK = 0x06,
    RTC_DAY_OF_MONTH = 0x07,
    RTC_MONTH = 0x08,
    RTC_YEAR = 0x09,
    RTC_REG_A = 0x0a,
    RTC_REG_B = 0x0b,
    RTC_REG_C = 0x0c,
    RTC_REG_D = 0x0d,
    RTC_CENTURY = 0x32,
};

#define RTC_B_24H    0x02
#define RTC_B_BINARY 0x04
#define RTC_B_SET    0x80
#define RTC_D_VRT    0x80

struct Cmos {
    GMutex lock;
    uint8_t index;
    uint8_t nvram[CMOS_SIZE];
    uint8_t initial[CMOS_SIZE];
    int64_t offset;             /* guest time minus host time, seconds */
};

static uint8_t cmos_encode(const Cmos *c, unsigned value)
{
    if (c->nvram[RTC_REG_B] & RTC_B_BINARY) {
        return (uint8_t)value;
    }
    return (uint8_t)(((value / 10) << 4) | (value % 10));
}

static unsigned cmos_decode(const Cmos *c, uint8_t value)
{
    if (c->nvram[RTC_REG_B] & RTC_B_BINARY) {
        return value;
    }
    return (value >> 4) * 10 + (value & 0x0f);
}

static uint8_t cmos_time_field(Cmos *c, uint8_t index, time_t now)
{
    time_t t = now + c->offset;
    struct tm tm;

    gmtime_r(&t, &tm);
    switch (index) {
    case RTC_SECONDS: return cmos_encode(c, (unsigned)tm.tm_sec);
    case RTC_MINUTES: return cmos_encode(c, (unsigned)tm.tm_min);
    case RTC_HOURS:
        if (c->nvram[RTC_REG_B] & RTC_B_24H) {
            return cmos_encode(c, (unsigned)tm.tm_hour);
        } else {
            unsigned h = tm.tm_hour % 12 ? (unsigned)tm.tm_hour % 12 : 12;
            return (uint8_t)(cmos_encode(c, h) | (tm.tm_hour >= 12 ? 0x80 : 0));
        }
    case RTC_DAY_OF_WEEK: return cmos_encode(c, (unsigned)tm.tm_wday + 1);
    case RTC_DAY_OF_MONTH: return cmos_encode(c, (unsigned)tm.tm_mday);
    case RTC_MONTH: return cmos_encode(c, (unsigned)tm.tm_mon + 1);
    case RTC_YEAR: return cmos_encode(c, (unsigned)(tm.tm_year % 100));
    default: return cmos_encode(c, (unsigned)(tm.tm_year + 1900) / 100);
    }
}

static bool cmos_is_time_field(uint8_t index)
{
    switch (index) {
    case RTC_SECONDS:
    case RTC_MINUTES:
    case RTC_HOURS:
    case RTC_DAY_OF_WEEK:
    case RTC_DAY_OF_MONTH:
    case RTC_MONTH:
    case RTC_YEAR:
    case RTC_CENTURY:
        return true;
    default:
        return false;
    }
}

uint8_t cmos_read_at(Cmos *c, uint8_t index, time_t now)
{
    index &= CMOS_SIZE - 1;
    if (cmos_is_time_field(index)) {
        return cmos_time_field(c, index, now);
    }
    if (index == RTC_REG_C) {
        return 0;       /* no interrupt sources are modelled */
    }
    return c->nvram[index];
}

/* The guest sets the clock field by field; keep the difference to host time
 * so the clock goes on ticking. */
static void cmos_set_time_field(Cmos *c, uint8_t index, uint8_t value, time_t now)
{
    time_t t = now + c->offset;
    struct tm tm;
    unsigned v = cmos_decode(c, value & (index == RTC_HOURS ? 0x7f : 0xff));

    gmtime_r(&t, &tm);
    switch (index) {
    case RTC_SECONDS: tm.tm_sec = (int)v; break;
    case RTC_MINUTES: tm.tm_min = (int)v; break;
    case RTC_HOURS:
        if (!(c->nvram[RTC_REG_B] & RTC_B_24H)) {
            v = (v % 12) + ((value & 0x80) ? 12 : 0);
        }
        tm.tm_hour = (int)v;
        break;
    case RTC_DAY_OF_MONTH: tm.tm_mday = (int)v; break;
    case RTC_MONTH: tm.tm_mon = (int)v - 1; break;
    case RTC_YEAR: tm.tm_year = (tm.tm_year / 100) * 100 + (int)v; break;
    case RTC_CENTURY: tm.tm_year = ((int)v - 19) * 100 + tm.tm_year % 100; break;
    default: return;    /* day of week follows from the date */
    }
    c->offset = (int64_t)timegm(&tm) - (int64_t)now;
}

static void cmos_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
    Cmos *c = opaque;

    g_mutex_lock(&c->lock);
    if (offset == 0) {
        if (is_write) {
            c->index = data[0] & (CMOS_SIZE - 1);   /* bit 7 masks NMI: ignored */
        } else {
            data[0] = 0xff;
        }
    } else if (is_write) {
        if (cmos_is_time_field(c->index)) {
            cmos_set_time_field(c, c->index, data[0], time(NULL));
        } else if (c->index != RTC_REG_C && c->index != RTC_REG_D) {
            c->nvram[c->index] = data[0];
        }
    } else {
        data[0] = cmos_read_at(c, c->index, time(NULL));
    }
    if (!is_write && len > 1) {
        memset(data + 1, 0xff, len - 1);
    }
    g_mutex_unlock(&c->lock);
}

static void cmos_set_word(uint8_t *nvram, unsigned index, uint64_t value)
{
    value = MIN(value, 0xffff);
    nvram[index] = value & 0xff;
    nvram[index + 1] = (value >> 8) & 0xff;
}

/* Memory sizes where PC firmware looks for them (as QEMU fills them). */
static void cmos_fill_memory(Cmos *c, const GuestMemory *mem, unsigned ncpus)
{
    uint64_t low = guest_memory_low_size(mem);
    uint64_t above_1m = low > (1 << 20) ? low - (1 << 20) : 0;
    uint64_t above_16m = low > (16 << 20) ? low - (16 << 20) : 0;
    uint64_t high = guest_memory_high_size(mem);

    cmos_set_word(c->initial, 0x15, 640);               /* base memory, KiB */
    cmos_set_word(c->initial, 0x17, above_1m >> 10);    /* extended, KiB */
    cmos_set_word(c->initial, 0x30, above_1m >> 10);
    cmos_set_word(c->initial, 0x34, above_16m >> 16);   /* above 16 MiB, 64 KiB units */
    c->initial[0x5b] = (high >> 16) & 0xff;            /* above 4 GiB, 64 KiB units */
    c->initial[0x5c] = (high >> 24) & 0xff;
    c->initial[0x5d] = (high >> 32) & 0xff;
    c->initial[0x5f] = (uint8_t)(ncpus - 1);
}

void cmos_reset(Cmos *c)
{
    g_mutex_lock(&c->lock);
    memcpy(c->nvram, c->initial, sizeof(c->nvram));
    c->index = 0;
    g_mutex_unlock(&c->lock);
}

Cmos *cmos_new(IoBus *bus, const GuestMemory *mem, unsigned ncpus, GError **error)
{
    Cmos *c = g_new0(Cmos, 1);

    g_mutex_init(&c->lock);
    c->initial[RTC_REG_A] = 0x26;                       /* 32.768 kHz, 1024 Hz rate */
    c->initial[RTC_REG_B] = RTC_B_24H;                  /* BCD, 24-hour */
    c->initial[RTC_REG_D] = RTC_D_VRT;                  /* battery good */
    cmos_fill_memory(c, mem, ncpus);
    cmos_reset(c);
    if (!iobus_register(bus, IOBUS_PIO, CMOS_PORT_INDEX, 2, cmos_io, c, "cmos", error)) {
        cmos_free(c);
        return NULL;
    }
    return c;
}

void cmos_free(Cmos *c)
{
    if (c) {
        g_mutex_clear(&c->lock);
        g_free(c);
    }
}

/* The clock travels as its offset from UTC, so the guest's time goes on
 * across hosts whose clocks agree. */
static bool cmos_state_save(void *opaque, StateWriter *w, GError **error)
{
    Cmos *c = opaque;

    g_mutex_lock(&c->lock);
    state_put_u8(w, c->index);
    state_put_bytes(w, c->nvram, CMOS_SIZE);
    state_put_u64(w, (uint64_t)c->offset);
    g_mutex_unlock(&c->lock);
    return true;
}

static bool cmos_state_load(void *opaque, StateReader *r, uint32_t version, GError **error)
{
    Cmos *c = opaque;
    uint8_t index = state_get_u8(r);
    uint8_t nvram[CMOS_SIZE];

    state_get_bytes(r, nvram, CMOS_SIZE);
    int64_t offset = (int64_t)state_get_u64(r);
    if (!state_reader_finish(r, "cmos", error)) {
        return false;
    }
    g_mutex_lock(&c->lock);
    c->index = index & (CMOS_SIZE - 1);
    memcpy(c->nvram, nvram, CMOS_SIZE);
    c->offset = offset;
    g_mutex_unlock(&c->lock);
    return true;
}

const VmStateOps cmos_state_ops = {
    .id = "cmos",
    .version = 1,
    .min_version = 1,
    .save = cmos_state_save,
    .load = cmos_state_load,
};
