/* Device models driven through the I/O bus as a vCPU would, without KVM:
 * 16550 UART, CMOS RTC, ACPI PM, reset control. */
#include "config.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "chardev.h"
#include "devices/acpi-pm.h"
#include "devices/cmos.h"
#include "devices/reset-control.h"
#include "devices/serial.h"
#include "iobus.h"

static uint8_t inb(IoBus *bus, uint16_t port)
{
    uint8_t v = 0;

    iobus_dispatch(bus, IOBUS_PIO, port, &v, 1, false);
    return v;
}

static void outb(IoBus *bus, uint16_t port, uint8_t v)
{
    iobus_dispatch(bus, IOBUS_PIO, port, &v, 1, true);
}

static uint16_t inw(IoBus *bus, uint16_t port)
{
    uint8_t v[2] = { 0 };

    iobus_dispatch(bus, IOBUS_PIO, port, v, 2, false);
    return (uint16_t)(v[0] | v[1] << 8);
}

static void outw(IoBus *bus, uint16_t port, uint16_t v)
{
    uint8_t d[2] = { v & 0xff, v >> 8 };

    iobus_dispatch(bus, IOBUS_PIO, port, d, 2, true);
}

#define COM1 SERIAL_COM1_PORT

static void test_serial_output(void)
{
    g_autofree char *dir = g_dir_make_tmp("colo-serial-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "out", NULL);
    g_autofree char *spec = g_strconcat("file:", path, NULL);
    g_autoptr(GError) error = NULL;
    IoBus *bus = iobus_new();
    Chardev *chr = chardev_new(spec, NULL, &error);
    g_assert_no_error(error);
    Serial *s = serial_new(bus, NULL, COM1, SERIAL_COM1_IRQ, chr, &error);
    g_assert_no_error(error);

    /* Transmitter always ready, no data, no interrupt pending. */
    g_assert_cmphex(inb(bus, COM1 + 5) & 0x61, ==, 0x60);
    g_assert_cmphex(inb(bus, COM1 + 2) & 0x0f, ==, 0x01);
    for (const char *p = "hello\n"; *p; p++) {
        outb(bus, COM1, (uint8_t)*p);
    }
    /* THR-empty interrupt: raised when enabled, acknowledged by an IIR read. */
    outb(bus, COM1 + 1, 0x02);
    g_assert_cmphex(inb(bus, COM1 + 2) & 0x0f, ==, 0x02);
    g_assert_cmphex(inb(bus, COM1 + 2) & 0x0f, ==, 0x01);
    /* Divisor latch. */
    outb(bus, COM1 + 3, 0x80);
    outb(bus, COM1, 0x01);
    outb(bus, COM1 + 1, 0x00);
    g_assert_cmphex(inb(bus, COM1), ==, 0x01);
    outb(bus, COM1 + 3, 0x03);
    g_assert_cmphex(inb(bus, COM1 + 1), ==, 0x02);     /* IER again */

    serial_free(s);
    chardev_free(chr);
    iobus_free(bus);
    g_autofree char *out = NULL;
    g_assert_true(g_file_get_contents(path, &out, NULL, NULL));
    g_assert_cmpstr(out, ==, "hello\n");
    g_unlink(path);
    g_rmdir(dir);
}

static void test_serial_loopback(void)
{
    g_autoptr(GError) error = NULL;
    IoBus *bus = iobus_new();
    Chardev *chr = chardev_new("none", NULL, &error);
    Serial *s = serial_new(bus, NULL, COM1, SERIAL_COM1_IRQ, chr, &error);

    g_assert_no_error(error);
    /* Linux's 8250 probe: loopback with OUT2|OUT1|RTS|DTR reflected in MSR. */
    outb(bus, COM1 + 4, 0x1f);
    g_assert_cmphex(inb(bus, COM1 + 6) & 0xf0, ==, 0xf0);
    outb(bus, COM1 + 4, 0x10);
    g_assert_cmphex(inb(bus, COM1 + 6) & 0xf0, ==, 0x00);
    outb(bus, COM1, 'x');
    g_assert_cmphex(inb(bus, COM1 + 5) & 0x01, ==, 0x01);
    g_assert_cmpint(inb(bus, COM1), ==, 'x');
    g_assert_cmphex(inb(bus, COM1 + 5) & 0x01, ==, 0x00);
    /* Scratch register. */
    outb(bus, COM1 + 7, 0xa5);
    g_assert_cmphex(inb(bus, COM1 + 7), ==, 0xa5);
    serial_free(s);
    chardev_free(chr);
    iobus_free(bus);
}

/* Input from a unix-socket client reaches RBR with a receive interrupt. */
static void test_serial_input(void)
{
    g_autofree char *dir = g_dir_make_tmp("colo-serial-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "sock", NULL);
    g_autofree char *spec = g_strconcat("unix:", path, ",server=on,wait=off", NULL);
    g_autoptr(GError) error = NULL;
    GMainContext *ctx = g_main_context_new();
    IoBus *bus = iobus_new();
    Chardev *chr = chardev_new(spec, ctx, &error);
    g_assert_no_error(error);
    Serial *s = serial_new(bus, NULL, COM1, SERIAL_COM1_IRQ, chr, &error);
    g_assert_no_error(error);

    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    g_assert_cmpint(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    g_assert_cmpint(write(fd, "ping", 4), ==, 4);

    outb(bus, COM1 + 1, 0x01);                  /* receive interrupt on */
    gint64 deadline = g_get_monotonic_time() + 5 * G_TIME_SPAN_SECOND;
    while (!(inb(bus, COM1 + 5) & 0x01) && g_get_monotonic_time() < deadline) {
        g_main_context_iteration(ctx, TRUE);
    }
    g_assert_cmphex(inb(bus, COM1 + 2) & 0x0f, ==, 0x04);
    char got[5] = { 0 };
    for (unsigned i = 0; i < 4; i++) {
        while (!(inb(bus, COM1 + 5) & 0x01) && g_get_monotonic_time() < deadline) {
            g_main_context_iteration(ctx, TRUE);
        }
        got[i] = (char)inb(bus, COM1);
    }
    g_assert_cmpstr(got, ==, "ping");
    g_assert_cmphex(inb(bus, COM1 + 2) & 0x0f, ==, 0x01);

    /* Output goes back to the client. */
    outb(bus, COM1, '!');
    char c = 0;
    g_assert_cmpint(read(fd, &c, 1), ==, 1);
    g_assert_cmpint(c, ==, '!');
    close(fd);

    serial_free(s);
    chardev_free(chr);
    iobus_free(bus);
    g_main_context_unref(ctx);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));     /* socket removed */
    g_rmdir(dir);
}

static void test_chardev_specs(void)
{
    static const char *const bad[] = {
        "tcp:1.2.3.4:5", "unix:", "unix:/tmp/x,server=on,bogus=1", "unix:/tmp/x,server=off",
        "file:/nonexistent/dir/file", "pty",
    };

    for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_assert_null(chardev_new(bad[i], NULL, &error));
        g_assert_nonnull(error);
    }
}

static GuestMemory *small_ram(void)
{
    GuestMemoryConfig cfg = { .size = 64 << 20 };

    return guest_memory_new(&cfg, NULL);
}

static void test_cmos_clock(void)
{
    IoBus *bus = iobus_new();
    GuestMemory *mem = small_ram();
    g_autoptr(GError) error = NULL;
    Cmos *c = cmos_new(bus, mem, 2, &error);
    /* 2026-11-22 03:04:05 UTC, a Sunday. */
    g_autoptr(GDateTime) dt = g_date_time_new_utc(2026, 11, 22, 3, 4, 5);
    time_t t = (time_t)g_date_time_to_unix(dt);

    g_assert_no_error(error);
    g_assert_cmphex(cmos_read_at(c, 0x00, t), ==, 0x05);
    g_assert_cmphex(cmos_read_at(c, 0x02, t), ==, 0x04);
    g_assert_cmphex(cmos_read_at(c, 0x04, t), ==, 0x03);
    g_assert_cmphex(cmos_read_at(c, 0x06, t), ==, 0x01);
    g_assert_cmphex(cmos_read_at(c, 0x07, t), ==, 0x22);
    g_assert_cmphex(cmos_read_at(c, 0x08, t), ==, 0x11);
    g_assert_cmphex(cmos_read_at(c, 0x09, t), ==, 0x26);
    g_assert_cmphex(cmos_read_at(c, 0x32, t), ==, 0x20);
    g_assert_cmphex(cmos_read_at(c, 0x0d, t), ==, 0x80);
    /* 64 MiB: 63 MiB above 1 MiB in KiB, 48 MiB above 16 MiB in 64 KiB units. */
    g_assert_cmpuint(cmos_read_at(c, 0x30, t) | cmos_read_at(c, 0x31, t) << 8, ==, 63 * 1024);
    g_assert_cmpuint(cmos_read_at(c, 0x34, t) | cmos_read_at(c, 0x35, t) << 8, ==, 48 * 16);

    /* Binary mode through the ports. */
    outb(bus, 0x70, 0x0b);
    outb(bus, 0x71, 0x06);
    g_assert_cmphex(cmos_read_at(c, 0x07, t), ==, 22);
    /* Setting the year moves the clock and it keeps the new value. */
    outb(bus, 0x70, 0x09);
    outb(bus, 0x71, 30);
    outb(bus, 0x70, 0x09);
    g_assert_cmpuint(inb(bus, 0x71), ==, 30);
    /* NVRAM keeps what is written; reset restores it. */
    outb(bus, 0x70, 0x40 | 0x80);
    outb(bus, 0x71, 0xab);
    outb(bus, 0x70, 0x40);
    g_assert_cmphex(inb(bus, 0x71), ==, 0xab);
    cmos_reset(c);
    outb(bus, 0x70, 0x40);
    g_assert_cmphex(inb(bus, 0x71), ==, 0x00);

    cmos_free(c);
    guest_memory_free(mem);
    iobus_free(bus);
}

static void count_call(void *opaque)
{
    (*(unsigned *)opaque)++;
}

static void test_acpi_pm(void)
{
    IoBus *bus = iobus_new();
    unsigned power_offs = 0;
    g_autoptr(GError) error = NULL;
    AcpiPm *pm = acpi_pm_new(bus, NULL, count_call, &power_offs, &error);

    g_assert_no_error(error);
    g_assert_cmphex(inw(bus, 0x600), ==, 0);
    acpi_pm_press_power_button(pm);
    g_assert_cmphex(inw(bus, 0x600), ==, ACPI_PM1_PWRBTN);
    outw(bus, 0x602, ACPI_PM1_PWRBTN);
    g_assert_cmphex(inw(bus, 0x602), ==, ACPI_PM1_PWRBTN);
    /* GBL_EN and RTC_EN stick (an OS reads them back as it installs its
     * fixed-event handlers); bits without a source (the timer, the sleep
     * button) do not. */
    outw(bus, 0x602, 0xffff);
    g_assert_cmphex(inw(bus, 0x602), ==, ACPI_PM1_PWRBTN | ACPI_PM1_GBL | ACPI_PM1_RTC);
    outb(bus, 0x602, 0);
    g_assert_cmphex(inw(bus, 0x602), ==, ACPI_PM1_PWRBTN | ACPI_PM1_RTC);
    outb(bus, 0x603, ACPI_PM1_PWRBTN >> 8);
    g_assert_cmphex(inw(bus, 0x602), ==, ACPI_PM1_PWRBTN);
    /* Write 1 to clear, byte-wise on the high byte. */
    outb(bus, 0x601, 0x01);
    g_assert_cmphex(inw(bus, 0x600), ==, 0);

    /* Another sleep type is refused; S5 (type 0) powers off. */
    outw(bus, 0x604, ACPI_PM1_SLP_EN | (5 << 10));
    g_assert_cmpuint(power_offs, ==, 0);
    outw(bus, 0x604, ACPI_PM1_SLP_EN);
    g_assert_cmpuint(power_offs, ==, 1);

    /* The PM timer advances. */
    uint8_t a[4], b[4];
    iobus_dispatch(bus, IOBUS_PIO, 0x608, a, 4, false);
    g_usleep(2000);
    iobus_dispatch(bus, IOBUS_PIO, 0x608, b, 4, false);
    g_assert_true(memcmp(a, b, 4) != 0);

    acpi_pm_reset(pm);
    g_assert_cmphex(inw(bus, 0x602), ==, 0);
    acpi_pm_free(pm);
    iobus_free(bus);
}

static void test_reset_control(void)
{
    IoBus *bus = iobus_new();
    unsigned resets = 0;
    ResetControl *rc = reset_control_new(bus, count_call, &resets, NULL);

    outb(bus, RESET_CONTROL_PORT, 0x02);
    g_assert_cmpuint(resets, ==, 0);
    g_assert_cmphex(inb(bus, RESET_CONTROL_PORT), ==, 0x02);
    outb(bus, RESET_CONTROL_PORT, 0x06);
    g_assert_cmpuint(resets, ==, 1);
    reset_control_free(rc);
    iobus_free(bus);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/serial/output", test_serial_output);
    g_test_add_func("/serial/loopback", test_serial_loopback);
    g_test_add_func("/serial/input", test_serial_input);
    g_test_add_func("/chardev/bad-specs", test_chardev_specs);
    g_test_add_func("/cmos/clock", test_cmos_clock);
    g_test_add_func("/acpi-pm/power", test_acpi_pm);
    g_test_add_func("/reset-control/cf9", test_reset_control);
    return g_test_run();
}
