/* The migration channel's drain (vmm/migration/channel.c): it returns only
 * once the peer has taken every byte, and a shutdown ends the wait. The
 * commit of a protect waits so (outgoing.c): a source killed after it
 * must leave no more than the end record unsent. No KVM needed. */
#include "config.h"

#include <glib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration/channel.h"

#define BYTES (512 * 1024)
#define READER_DELAY_US 100000

typedef struct {
    int fd;
    size_t got;
} Reader;

static gpointer reader_run(gpointer data)
{
    Reader *r = data;
    g_autofree uint8_t *buf = g_malloc(65536);
    ssize_t n;

    g_usleep(READER_DELAY_US);
    while ((n = read(r->fd, buf, 65536)) > 0) {
        r->got += (size_t)n;
    }
    return NULL;
}

static void test_drain_waits_for_the_peer(void)
{
    g_autofree uint8_t *data = g_malloc0(BYTES);
    Reader r = { 0 };
    int sv[2];
    MigChannel *c;
    GThread *t;
    gint64 start;

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
    r.fd = sv[1];
    c = mig_channel_new(sv[0]);
    /* Before the reader starts its delay: taken after, on a loaded host,
     * part of the delay could already be gone. */
    start = g_get_monotonic_time();
    t = g_thread_new("reader", reader_run, &r);
    mig_put_bytes(c, data, BYTES);
    g_assert_cmpint(mig_drain(c), ==, 0);
    /* Not before the reader began, which was after its delay. */
    g_assert_cmpint(g_get_monotonic_time() - start, >=, READER_DELAY_US);
    g_assert_cmpuint(mig_bytes_written(c), ==, BYTES);
    mig_channel_free(c);                /* the reader sees the end */
    g_thread_join(t);
    g_assert_cmpuint(r.got, ==, BYTES);
}

static gpointer shut_later(gpointer data)
{
    g_usleep(50000);
    mig_channel_shutdown(data, ECANCELED);
    return NULL;
}

static void test_shutdown_ends_the_wait(void)
{
    uint8_t data[4096] = { 0 };
    int sv[2];
    MigChannel *c;
    GThread *t;

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
    c = mig_channel_new(sv[0]);
    mig_put_bytes(c, data, sizeof(data));
    t = g_thread_new("shut", shut_later, c);
    /* Nobody reads: only the shutdown ends it. */
    g_assert_cmpint(mig_drain(c), ==, -ECANCELED);
    g_thread_join(t);
    mig_channel_free(c);
    close(sv[1]);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/migration/channel/drain-waits-for-the-peer", test_drain_waits_for_the_peer);
    g_test_add_func("/migration/channel/shutdown-ends-the-wait", test_shutdown_ends_the_wait);
    return g_test_run();
}
