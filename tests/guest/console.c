/* COM1 console. Output is polled (the VMM reports THRE always set); one
 * spinlock keeps lines of different CPUs apart. */
#include <stdbool.h>
#include <stdint.h>

#include "console.h"
#include "io.h"

#define COM1     0x3f8
#define COM_LSR  5
#define LSR_THRE 0x20

static volatile int console_lock;

void console_init(void)
{
    outb(COM1 + 1, 0x00);   /* no UART interrupts: we poll */
    outb(COM1 + 3, 0x80);   /* DLAB on: 115200 baud */
    outb(COM1 + 0, 0x01);
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03);   /* 8N1 */
    outb(COM1 + 2, 0x07);   /* FIFO on, cleared */
    outb(COM1 + 4, 0x03);   /* DTR, RTS */
}

static void console_putc(char c)
{
    /* Bounded: a UART that never reports THRE must not hang the guest. */
    for (int i = 0; i < 100000 && !(inb(COM1 + COM_LSR) & LSR_THRE); i++) {
        cpu_relax();
    }
    outb(COM1, (uint8_t)c);
}

void console_write(const char *s, size_t len)
{
    while (__atomic_exchange_n(&console_lock, 1, __ATOMIC_ACQUIRE)) {
        cpu_relax();
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\n') {
            console_putc('\r');
        }
        console_putc(s[i]);
    }
    __atomic_store_n(&console_lock, 0, __ATOMIC_RELEASE);
}

struct out {
    char *buf;
    size_t size;
    size_t len;
};

static void out_char(struct out *o, char c)
{
    if (o->len + 1 < o->size) {
        o->buf[o->len] = c;
    }
    o->len++;
}

static void out_number(struct out *o, unsigned long long v, unsigned base, bool neg, int width, char pad,
                       bool left)
{
    char tmp[24];
    int n = 0;

    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (neg) {
        if (pad == '0') {
            out_char(o, '-');
        } else {
            tmp[n++] = '-';
        }
        width--;
    }
    if (!left) {
        for (int i = n; i < width; i++) {
            out_char(o, pad);
        }
    }
    while (n) {
        out_char(o, tmp[--n]);
    }
    if (left) {
        for (int i = (int)(neg ? 1 : 0) + n; i < width; i++) {
            out_char(o, ' ');
        }
    }
}

int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct out o = { buf, size, 0 };

    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            out_char(&o, *p);
            continue;
        }
        p++;
        bool left = false;
        char pad = ' ';
        int width = 0, lng = 0;
        if (*p == '-') {
            left = true;
            p++;
        }
        if (*p == '0') {
            pad = '0';
            p++;
        }
        while (*p >= '0' && *p <= '9') {
            width = width * 10 + (*p++ - '0');
        }
        while (*p == 'l' || *p == 'z') {
            lng++;
            p++;
        }
        switch (*p) {
        case 'd': {
            long long v = lng ? va_arg(ap, long long) : va_arg(ap, int);
            unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
            out_number(&o, u, 10, v < 0, width, pad, left);
            break;
        }
        case 'u':
        case 'x': {
            unsigned long long v = lng ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned int);
            out_number(&o, v, *p == 'u' ? 10 : 16, false, width, pad, left);
            break;
        }
        case 'p':
            out_char(&o, '0');
            out_char(&o, 'x');
            out_number(&o, (uintptr_t)va_arg(ap, void *), 16, false, width, pad, left);
            break;
        case 'c':
            out_char(&o, (char)va_arg(ap, int));
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            int n = 0;
            if (!s) {
                s = "(null)";
            }
            while (s[n]) {
                n++;
            }
            for (int i = n; !left && i < width; i++) {
                out_char(&o, ' ');
            }
            for (int i = 0; i < n; i++) {
                out_char(&o, s[i]);
            }
            for (int i = n; left && i < width; i++) {
                out_char(&o, ' ');
            }
            break;
        }
        case '%':
            out_char(&o, '%');
            break;
        case '\0':
            p--;
            break;
        default:
            out_char(&o, '%');
            out_char(&o, *p);
            break;
        }
    }
    if (size) {
        buf[o.len < size ? o.len : size - 1] = '\0';
    }
    return (int)o.len;
}

int ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = kvsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

void kprintf(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = kvsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(buf)) {
        n = sizeof(buf) - 1;
    }
    console_write(buf, (size_t)n);
}
