#include "config.h"

#include "serial.h"

#include <string.h>

/* Register offsets (DLAB clear unless noted). */
enum {
    UART_RBR_THR = 0,   /* DLL with DLAB */
    UART_IER = 1,       /* DLM with DLAB */
    UART_IIR_FCR = 2,
    UART_LCR = 3,
    UART_MCR = 4,
    UART_LSR = 5,
    UART_MSR = 6,
    UART_SCR = 7,
};

#define UART_IER_RDI   0x01
#define UART_IER_THRI  0x02
#define UART_IIR_NONE  0x01
#define UART_IIR_THRI  0x02
#define UART_IIR_RDI   0x04
#define UART_IIR_FIFO  0xc0
#define UART_FCR_FIFO  0x01
#define UART_FCR_CLRRX 0x02
#define UART_LCR_DLAB  0x80
#define UART_MCR_OUT2  0x08
#define UART_MCR_LOOP  0x10
#define UART_LSR_DR    0x01
#define UART_LSR_THRE  0x20
#define UART_LSR_TEMT  0x40
#define UART_MSR_DCD   0x80
#define UART_MSR_RI    0x40
#define UART_MSR_DSR   0x20
#define UART_MSR_CTS   0x10

/* Receive queue: the 16-byte FIFO of the chip plus room so that input that
 * arrives in a burst is not dropped before the guest reads it. */
#define SERIAL_RX_SIZE 1024

struct Serial {
    Kvm *kvm;
    Chardev *chr;
    unsigned irq;
    GMutex lock;                /* registers: vCPU threads and main thread */
    uint8_t ier, lcr, mcr, scr, fcr, msr;
    uint16_t divisor;
    bool thr_ipending;
    bool irq_level;
    uint8_t rx[SERIAL_RX_SIZE];
    unsigned rx_head, rx_count;
};

static uint8_t serial_iir(Serial *s)
{
    uint8_t fifo = (s->fcr & UART_FCR_FIFO) ? UART_IIR_FIFO : 0;

    if ((s->ier & UART_IER_RDI) && s->rx_count) {
        return UART_IIR_RDI | fifo;
    }
    if ((s->ier & UART_IER_THRI) && s->thr_ipending) {
        return UART_IIR_THRI | fifo;
    }
    return UART_IIR_NONE | fifo;
}

/* Level on the ISA line, driven through the in-kernel PIC/IOAPIC. Called with
 * the lock held so the level follows register changes in order. */
static void serial_update_irq(Serial *s)
{
    bool level = !(serial_iir(s) & UART_IIR_NONE);

    if (level != s->irq_level) {
        s->irq_level = level;
        if (s->kvm) {
            kvm_set_irq(s->kvm, s->irq, level);
        }
    }
}

static bool serial_rx_push(Serial *s, uint8_t byte)
{
    if (s->rx_count == SERIAL_RX_SIZE) {
        return false;
    }
    s->rx[(s->rx_head + s->rx_count) % SERIAL_RX_SIZE] = byte;
    s->rx_count++;
    return true;
}

static uint8_t serial_rx_pop(Serial *s)
{
    uint8_t byte = 0;

    if (s->rx_count) {
        byte = s->rx[s->rx_head];
        s->rx_head = (s->rx_head + 1) % SERIAL_RX_SIZE;
        s->rx_count--;
    }
    return byte;
}

static uint8_t serial_loopback_msr(uint8_t mcr)
{
    /* DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD */
    return (uint8_t)(((mcr & 0x01) ? UART_MSR_DSR : 0) | ((mcr & 0x02) ? UART_MSR_CTS : 0) |
                     ((mcr & 0x04) ? UART_MSR_RI : 0) | ((mcr & 0x08) ? UART_MSR_DCD : 0));
}

static void serial_write_reg(Serial *s, unsigned reg, uint8_t val, bool *drained)
{
    switch (reg) {
    case UART_RBR_THR:
        if (s->lcr & UART_LCR_DLAB) {
            s->divisor = (uint16_t)((s->divisor & 0xff00) | val);
        } else if (s->mcr & UART_MCR_LOOP) {
            serial_rx_push(s, val);
            s->thr_ipending = true;
        } else {
            /* Transmission is instant: the holding register is empty again. */
            g_mutex_unlock(&s->lock);
            chardev_write(s->chr, &val, 1);
            g_mutex_lock(&s->lock);
            s->thr_ipending = true;
        }
        break;
    case UART_IER:
        if (s->lcr & UART_LCR_DLAB) {
            s->divisor = (uint16_t)((s->divisor & 0x00ff) | (val << 8));
        } else {
            /* Enabling the THR interrupt with the register empty raises it. */
            if (!(s->ier & UART_IER_THRI) && (val & UART_IER_THRI)) {
                s->thr_ipending = true;
            }
            s->ier = val & 0x0f;
        }
        break;
    case UART_IIR_FCR:
        s->fcr = val & 0xc9;
        if (val & UART_FCR_CLRRX) {
            s->rx_head = s->rx_count = 0;
            *drained = true;
        }
        break;
    case UART_LCR:
        s->lcr = val;
        break;
    case UART_MCR:
        s->mcr = val & 0x1f;
        s->msr = (s->mcr & UART_MCR_LOOP) ? serial_loopback_msr(s->mcr)
                                           : (UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS);
        break;
    case UART_SCR:
        s->scr = val;
        break;
    default:            /* LSR and MSR are read-only */
        break;
    }
}

static uint8_t serial_read_reg(Serial *s, unsigned reg, bool *drained)
{
    uint8_t iir;

    switch (reg) {
    case UART_RBR_THR:
        if (s->lcr & UART_LCR_DLAB) {
            return s->divisor & 0xff;
        }
        *drained = true;
        return serial_rx_pop(s);
    case UART_IER:
        return (s->lcr & UART_LCR_DLAB) ? s->divisor >> 8 : s->ier;
    case UART_IIR_FCR:
        iir = serial_iir(s);
        /* Reading IIR acknowledges a THR-empty interrupt. */
        if ((iir & 0x0f) == UART_IIR_THRI) {
            s->thr_ipending = false;
        }
        return iir;
    case UART_LCR:
        return s->lcr;
    case UART_MCR:
        return s->mcr;
    case UART_LSR:
        return UART_LSR_THRE | UART_LSR_TEMT | (s->rx_count ? UART_LSR_DR : 0);
    case UART_MSR:
        return s->msr;
    case UART_SCR:
        return s->scr;
    default:
        return 0xff;
    }
}

static void serial_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
    Serial *s = opaque;
    bool drained = false;

    g_mutex_lock(&s->lock);
    if (is_write) {
        serial_write_reg(s, (unsigned)offset, data[0], &drained);
    } else {
        data[0] = serial_read_reg(s, (unsigned)offset, &drained);
        memset(data + 1, 0, len - 1);
    }
    serial_update_irq(s);
    g_mutex_unlock(&s->lock);
    if (drained) {
        chardev_input_ready(s->chr);
    }
}

static size_t serial_receive(void *opaque, const uint8_t *buf, size_t len)
{
    Serial *s = opaque;
    size_t taken = 0;

    g_mutex_lock(&s->lock);
    /* In loopback mode the line is disconnected from the outside. */
    if (s->mcr & UART_MCR_LOOP) {
        taken = len;
    } else {
        while (taken < len && serial_rx_push(s, buf[taken])) {
            taken++;
        }
    }
    serial_update_irq(s);
    g_mutex_unlock(&s->lock);
    return taken;
}

void serial_reset(Serial *s)
{
    g_mutex_lock(&s->lock);
    s->ier = s->lcr = s->scr = s->fcr = 0;
    s->mcr = UART_MCR_OUT2;
    s->msr = UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
    s->divisor = 12;    /* 9600 baud */
    s->thr_ipending = false;
    s->rx_head = s->rx_count = 0;
    serial_update_irq(s);
    g_mutex_unlock(&s->lock);
}

Serial *serial_new(IoBus *bus, Kvm *kvm, uint16_t port, unsigned irq, Chardev *chr, GError **error)
{
    Serial *s = g_new0(Serial, 1);

    g_mutex_init(&s->lock);
    s->kvm = kvm;
    s->chr = chr;
    s->irq = irq;
    serial_reset(s);
    if (!iobus_register(bus, IOBUS_PIO, port, 8, serial_io, s, "serial", error)) {
        serial_free(s);
        return NULL;
    }
    chardev_set_input(chr, serial_receive, s);
    return s;
}

void serial_free(Serial *s)
{
    if (!s) {
        return;
    }
    if (s->chr) {
        chardev_set_input(s->chr, NULL, NULL);
    }
    g_mutex_clear(&s->lock);
    g_free(s);
}

static bool serial_state_save(void *opaque, StateWriter *w, GError **error)
{
    Serial *s = opaque;

    g_mutex_lock(&s->lock);
    state_put_u8(w, s->ier);
    state_put_u8(w, s->lcr);
    state_put_u8(w, s->mcr);
    state_put_u8(w, s->scr);
    state_put_u8(w, s->fcr);
    state_put_u8(w, s->msr);
    state_put_u16(w, s->divisor);
    state_put_u8(w, s->thr_ipending);
    state_put_u32(w, s->rx_count);
    for (unsigned i = 0; i < s->rx_count; i++) {
        state_put_u8(w, s->rx[(s->rx_head + i) % SERIAL_RX_SIZE]);
    }
    g_mutex_unlock(&s->lock);
    return true;
}

static bool serial_state_load(void *opaque, StateReader *r, uint32_t version, GError **error)
{
    Serial *s = opaque;
    uint8_t ier = state_get_u8(r), lcr = state_get_u8(r), mcr = state_get_u8(r);
    uint8_t scr = state_get_u8(r), fcr = state_get_u8(r), msr = state_get_u8(r);
    uint16_t divisor = state_get_u16(r);
    bool thr_ipending = state_get_u8(r) != 0;
    uint32_t rx_count = state_get_u32(r);

    if (!r->error && rx_count > SERIAL_RX_SIZE) {
        g_set_error(error, VMSTATE_ERROR, VMSTATE_ERROR_INVALID,
                    "serial state holds %u received bytes (at most %d)", rx_count, SERIAL_RX_SIZE);
        return false;
    }
    uint8_t rx[SERIAL_RX_SIZE];
    state_get_bytes(r, rx, r->error ? 0 : rx_count);
    if (!state_reader_finish(r, "serial", error)) {
        return false;
    }
    g_mutex_lock(&s->lock);
    s->ier = ier & 0x0f;
    s->lcr = lcr;
    s->mcr = mcr & 0x1f;
    s->scr = scr;
    s->fcr = fcr;
    s->msr = msr;
    s->divisor = divisor;
    s->thr_ipending = thr_ipending;
    memcpy(s->rx, rx, rx_count);
    s->rx_head = 0;
    s->rx_count = rx_count;
    s->irq_level = false;       /* the irqchip section carries the line's level */
    serial_update_irq(s);
    g_mutex_unlock(&s->lock);
    return true;
}

const VmStateOps serial_state_ops = {
    .id = "serial",
    .version = 1,
    .min_version = 1,
    .save = serial_state_save,
    .load = serial_state_load,
};
