/* Unit tests of the inter-host frame decoder and the link over loopback. */
#include "config.h"

#include "frame.h"
#include "link.h"

#include <arpa/inet.h>
#include <gio/gio.h>
#include <glib.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static size_t put_frame(uint8_t *buf, uint8_t type, uint32_t epoch, const char *payload)
{
    size_t len = strlen(payload);

    frame_header_write(buf, type, epoch, (uint32_t)len);
    memcpy(buf + FRAME_HDR_LEN, payload, len);
    return FRAME_HDR_LEN + len;
}

static void test_split_and_unknown(void)
{
    FrameDecoder *d = frame_decoder_new();
    uint8_t buf[256];
    size_t len = 0;
    struct frame f;
    struct frame_stats st;
    GError *err = NULL;

    len += put_frame(buf + len, FRAME_MIRROR, 3, "first");
    len += put_frame(buf + len, 99, 3, "from a newer peer");
    len += put_frame(buf + len, FRAME_OUTPUT, 4, "second");
    /* One byte at a time: a frame appears only once complete. */
    for (size_t i = 0; i < len; i++) {
        int r;

        frame_decoder_feed(d, buf + i, 1);
        r = frame_decoder_next(d, &f, &err);
        g_assert_no_error(err);
        if (i == FRAME_HDR_LEN + 5 - 1) {
            g_assert_cmpint(r, ==, 1);
            g_assert_cmpuint(f.type, ==, FRAME_MIRROR);
            g_assert_cmpuint(f.epoch, ==, 3);
            g_assert_cmpmem(f.payload, f.len, "first", 5);
        } else if (i == len - 1) {
            g_assert_cmpint(r, ==, 1);
            g_assert_cmpuint(f.type, ==, FRAME_OUTPUT);
            g_assert_cmpuint(f.epoch, ==, 4);
            g_assert_cmpmem(f.payload, f.len, "second", 6);
        } else {
            g_assert_cmpint(r, ==, 0);
        }
    }
    g_assert_true(frame_decoder_eof(d, &err));
    frame_decoder_stats(d, &st);
    g_assert_cmpuint(st.frames, ==, 2);
    g_assert_cmpuint(st.unknown_type, ==, 1);
    frame_decoder_free(d);
}

static void test_bad_headers(void)
{
    FrameDecoder *d = frame_decoder_new();
    uint8_t buf[64];
    size_t len;
    struct frame f;
    struct frame_stats st;
    GError *err = NULL;

    len = put_frame(buf, FRAME_MIRROR, 1, "x");
    buf[0] = 'X';
    frame_decoder_feed(d, buf, len);
    g_assert_cmpint(frame_decoder_next(d, &f, &err), ==, -1);
    g_assert_error(err, FRAME_ERROR, FRAME_ERROR_MAGIC);
    g_clear_error(&err);
    frame_decoder_eof(d, NULL);

    len = put_frame(buf, FRAME_MIRROR, 1, "x");
    buf[2] = 9;
    frame_decoder_feed(d, buf, len);
    g_assert_cmpint(frame_decoder_next(d, &f, &err), ==, -1);
    g_assert_error(err, FRAME_ERROR, FRAME_ERROR_VERSION);
    g_clear_error(&err);
    frame_decoder_eof(d, NULL);

    /* A length above the limit is refused before waiting for its bytes. */
    frame_header_write(buf, FRAME_MIRROR, 1, FRAME_MAX_PAYLOAD + 1);
    frame_decoder_feed(d, buf, FRAME_HDR_LEN);
    g_assert_cmpint(frame_decoder_next(d, &f, &err), ==, -1);
    g_assert_error(err, FRAME_ERROR, FRAME_ERROR_LENGTH);
    g_clear_error(&err);
    frame_decoder_eof(d, NULL);

    /* The peer goes away mid-frame. */
    len = put_frame(buf, FRAME_OUTPUT, 1, "cut short");
    frame_decoder_feed(d, buf, len - 3);
    g_assert_cmpint(frame_decoder_next(d, &f, &err), ==, 0);
    g_assert_false(frame_decoder_eof(d, &err));
    g_assert_error(err, FRAME_ERROR, FRAME_ERROR_TRUNCATED);
    g_clear_error(&err);
    frame_decoder_stats(d, &st);
    g_assert_cmpuint(st.bad_header, ==, 3);
    g_assert_cmpuint(st.truncated, ==, 1);
    g_assert_cmpuint(st.frames, ==, 0);
    frame_decoder_free(d);
}

struct link_fixture {
    GPtrArray *got;     /* payload strings */
    int ups;
    int bursts;         /* burst_done calls */
};

static void on_burst(void *opaque)
{
    struct link_fixture *lf = opaque;

    lf->bursts++;
}

static void on_frame(void *opaque, const struct frame *f)
{
    struct link_fixture *lf = opaque;

    if (f->type != FRAME_HELLO) {
        g_ptr_array_add(lf->got, g_strdup_printf("%u:%u:%.*s", f->type, f->epoch, (int)f->len, f->payload));
    }
}

static void on_state(void *opaque, bool up)
{
    struct link_fixture *lf = opaque;

    lf->ups += up ? 1 : 0;
}

static void iterate_until(bool (*done)(void *), void *data)
{
    gint64 end = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

    while (!done(data) && g_get_monotonic_time() < end) {
        g_main_context_iteration(NULL, FALSE);
        g_usleep(1000);
    }
}

static bool both_up(void *data)
{
    struct link_fixture *lf = data;

    return lf[0].ups == 1 && lf[1].ups == 1;
}

static bool got_one(void *data)
{
    struct link_fixture *lf = data;

    return lf[0].got->len == 1;
}

static bool got_two(void *data)
{
    struct link_fixture *lf = data;

    return lf[0].got->len == 2;
}

static bool got_five(void *data)
{
    struct link_fixture *lf = data;

    return lf[0].got->len == 5;
}

/* A server link on loopback and a client connected to it, both up; @lf[0]
 * is the server's. */
static void link_pair_up(struct link_fixture lf[2], void (*frame)(void *, const struct frame *),
                         ProxyLink **server, ProxyLink **client)
{
    struct link_callbacks cb0 = { .frame = frame, .state = on_state, .burst_done = on_burst, .opaque = &lf[0] };
    struct link_callbacks cb1 = { .frame = frame, .state = on_state, .opaque = &lf[1] };
    GError *err = NULL;
    g_autofree char *addr = NULL;

    for (int i = 0; i < 2; i++) {
        lf[i] = (struct link_fixture){ g_ptr_array_new_with_free_func(g_free), 0, 0 };
    }
    *server = link_new("127.0.0.1:0", NULL, NULL, NULL, &cb0, &err);
    g_assert_no_error(err);
    addr = g_strdup_printf("127.0.0.1:%u", link_port(*server));
    *client = link_new(NULL, addr, NULL, NULL, &cb1, &err);
    g_assert_no_error(err);
    iterate_until(both_up, lf);
    g_assert_true(link_is_up(*client));
}

static void test_link_loopback(void)
{
    struct link_fixture lf[2];
    ProxyLink *server, *client;
    struct link_stats st;

    link_pair_up(lf, on_frame, &server, &client);
    g_assert_true(link_send(client, FRAME_OUTPUT, 7, (const uint8_t *)"abc", 3));
    g_assert_true(link_send(client, FRAME_OUTPUT, 8, (const uint8_t *)"defg", 4));
    iterate_until(got_two, lf);
    g_assert_cmpuint(lf[0].got->len, ==, 2);
    g_assert_cmpstr(lf[0].got->pdata[0], ==, "3:7:abc");
    g_assert_cmpstr(lf[0].got->pdata[1], ==, "3:8:defg");
    link_stats(server, &st);
    g_assert_cmpuint(st.rx.frames, ==, 3);   /* with the hello */
    g_assert_cmpint(lf[0].bursts, >=, 1);

    /* Queued frames stay put until the push, then go in one write. */
    link_stats(client, &st);
    g_assert_true(link_queue(client, FRAME_OUTPUT, 9, (const uint8_t *)"h", 1));
    g_assert_true(link_queue(client, FRAME_OUTPUT, 9, (const uint8_t *)"ij", 2));
    g_assert_true(link_queue(client, FRAME_MIRROR, 10, (const uint8_t *)"klm", 3));
    {
        gint64 end = g_get_monotonic_time() + 50 * 1000;

        while (g_get_monotonic_time() < end) {
            g_main_context_iteration(NULL, FALSE);
            g_usleep(1000);
        }
    }
    g_assert_cmpuint(lf[0].got->len, ==, 2);
    {
        uint64_t writes = st.writes;

        link_push(client);
        link_stats(client, &st);
        g_assert_cmpuint(st.writes, ==, writes + 1);
    }
    iterate_until(got_five, lf);
    g_assert_cmpuint(lf[0].got->len, ==, 5);
    g_assert_cmpstr(lf[0].got->pdata[2], ==, "3:9:h");
    g_assert_cmpstr(lf[0].got->pdata[3], ==, "3:9:ij");
    g_assert_cmpstr(lf[0].got->pdata[4], ==, "2:10:klm");
    link_free(client);
    link_free(server);
    g_ptr_array_unref(lf[0].got);
    g_ptr_array_unref(lf[1].got);
}

/* Frames by reference: each payload byte j of a frame of epoch e is
 * (e + j * 131) & 0xff, so a frame copied late or from memory reused
 * after the push shows. */
static uint8_t ref_byte(uint32_t epoch, size_t j)
{
    return (uint8_t)(epoch + j * 131u);
}

static void on_frame_check(void *opaque, const struct frame *f)
{
    struct link_fixture *lf = opaque;
    bool ok = true;

    if (f->type == FRAME_HELLO) {
        return;
    }
    for (size_t j = 0; j < f->len && ok; j++) {
        ok = f->payload[j] == ref_byte(f->epoch, j);
    }
    g_ptr_array_add(lf->got, g_strdup_printf("%u:%u:%u:%s", f->type, f->epoch, f->len, ok ? "ok" : "bad"));
}

#define REF_FRAMES 111

static bool got_all_ref(void *data)
{
    struct link_fixture *lf = data;

    return lf[0].got->len == REF_FRAMES;
}

static void test_link_by_reference(void)
{
    struct link_fixture lf[2];
    ProxyLink *server, *client;
    uint8_t *bufs[REF_FRAMES];
    size_t lens[REF_FRAMES];

    link_pair_up(lf, on_frame_check, &server, &client);
    /* 40 large frames (8 MiB, more than the sockets take at once: the
     * push leaves a tail for the write watch), pushed; then one frame
     * copied and 70 small ones, more than are kept by reference at once. */
    for (uint32_t i = 0; i < REF_FRAMES; i++) {
        lens[i] = i < 40 ? 200 * 1024 : 1 + i % 7;
        bufs[i] = g_malloc(lens[i]);
        for (size_t j = 0; j < lens[i]; j++) {
            bufs[i][j] = ref_byte(i, j);
        }
        if (i == 40) {
            g_assert_true(link_queue(client, FRAME_MIRROR, i, bufs[i], lens[i]));
        } else {
            g_assert_true(link_queue_ref(client, FRAME_OUTPUT, i, bufs[i], lens[i]));
        }
        if (i == 39 || i == REF_FRAMES - 1) {
            link_push(client);
        }
    }
    /* The memory is the caller's again after the push. */
    for (uint32_t i = 0; i < REF_FRAMES; i++) {
        memset(bufs[i], 0xaa, lens[i]);
        g_free(bufs[i]);
    }
    iterate_until(got_all_ref, lf);
    g_assert_cmpuint(lf[0].got->len, ==, REF_FRAMES);
    for (uint32_t i = 0; i < REF_FRAMES; i++) {
        g_autofree char *want = g_strdup_printf("%u:%u:%zu:ok", i == 40 ? FRAME_MIRROR : FRAME_OUTPUT, i, lens[i]);

        g_assert_cmpstr(lf[0].got->pdata[i], ==, want);
    }
    /* Down: frames queued by reference are dropped, never written later. */
    link_free(server);
    server = NULL;
    {
        gint64 end = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

        while (link_is_up(client) && g_get_monotonic_time() < end) {
            uint8_t b = 1;

            link_send(client, FRAME_OUTPUT, 0, &b, 1);
            g_main_context_iteration(NULL, FALSE);
            g_usleep(1000);
        }
    }
    g_assert_false(link_is_up(client));
    {
        uint8_t b = 2;

        g_assert_false(link_queue_ref(client, FRAME_OUTPUT, 1, &b, 1));
        link_push(client);
    }
    link_free(client);
    g_ptr_array_unref(lf[0].got);
    g_ptr_array_unref(lf[1].got);
}

static void spin_ms(int ms)
{
    gint64 end = g_get_monotonic_time() + ms * 1000;

    while (g_get_monotonic_time() < end) {
        g_main_context_iteration(NULL, FALSE);
        g_usleep(1000);
    }
}

/* The peer's socket is gone (its kernel answers with a RST): the next
 * write fails with EPIPE and the link goes down; SIGPIPE, which nothing
 * ignores in colo-proxy, must not end the process. */
static void test_link_peer_reset(gconstpointer data)
{
    bool by_ref = GPOINTER_TO_INT(data);
    struct link_fixture lf[2];
    ProxyLink *server, *client;
    uint8_t b = 7;

    link_pair_up(lf, on_frame, &server, &client);
    spin_ms(50);   /* the server read the hello: its close is a FIN, not a RST */
    link_free(server);
    /* The first write draws the RST; no main loop in between, so the
     * client has not seen the close yet. */
    g_assert_true(link_send(client, FRAME_OUTPUT, 1, &b, 1));
    g_usleep(100 * 1000);
    if (by_ref) {
        g_assert_true(link_queue_ref(client, FRAME_OUTPUT, 2, &b, 1));
        link_push(client);
    } else {
        g_assert_false(link_send(client, FRAME_OUTPUT, 2, &b, 1));
    }
    g_assert_false(link_is_up(client));
    link_free(client);
    g_ptr_array_unref(lf[0].got);
    g_ptr_array_unref(lf[1].got);
}

static bool refused_one(void *data)
{
    struct link_stats st;

    link_stats(data, &st);
    return st.refused == 1;
}

/* With a peer set, a client from another address (127.0.0.2 here; the
 * netns test does the same across a veth) is refused: its forged OUTPUT
 * frame reaches nobody and the real peer's link stays up. */
static void test_link_peer_only(void)
{
    struct link_fixture lf[2] = { { g_ptr_array_new_with_free_func(g_free), 0, 0 },
                                  { g_ptr_array_new_with_free_func(g_free), 0, 0 } };
    struct link_callbacks cb0 = { .frame = on_frame, .state = on_state, .opaque = &lf[0] };
    struct link_callbacks cb1 = { .frame = on_frame, .state = on_state, .opaque = &lf[1] };
    GError *err = NULL;
    ProxyLink *server = link_new("0.0.0.0:0", NULL, "127.0.0.1", NULL, &cb0, &err);
    ProxyLink *client;
    g_autofree char *addr = NULL;
    struct sockaddr_in sa = { .sin_family = AF_INET };
    uint8_t forged[FRAME_HDR_LEN + 3];
    struct link_stats st;
    int stranger;

    g_assert_no_error(err);
    addr = g_strdup_printf("127.0.0.1:%u", link_port(server));
    client = link_new(NULL, addr, NULL, NULL, &cb1, &err);
    g_assert_no_error(err);
    iterate_until(both_up, lf);
    g_assert_true(link_is_up(server));

    stranger = socket(AF_INET, SOCK_STREAM, 0);
    inet_pton(AF_INET, "127.0.0.2", &sa.sin_addr);
    g_assert_cmpint(bind(stranger, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    sa.sin_port = htons(link_port(server));
    g_assert_cmpint(connect(stranger, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    frame_header_write(forged, FRAME_OUTPUT, 1, 3);
    memcpy(forged + FRAME_HDR_LEN, "bad", 3);
    (void)!write(stranger, forged, sizeof(forged));
    iterate_until(refused_one, server);
    spin_ms(100);
    link_stats(server, &st);
    g_assert_cmpuint(st.refused, ==, 1);
    g_assert_cmpuint(st.connects, ==, 1);
    g_assert_cmpuint(lf[0].got->len, ==, 0);
    g_assert_true(link_is_up(server));
    g_assert_true(link_is_up(client));
    g_assert_cmpint(lf[0].ups, ==, 1);
    g_assert_cmpint(lf[1].ups, ==, 1);
    close(stranger);

    /* The real peer's frames still arrive. */
    g_assert_true(link_send(client, FRAME_OUTPUT, 7, (const uint8_t *)"abc", 3));
    iterate_until(got_one, lf);
    g_assert_cmpuint(lf[0].got->len, ==, 1);
    g_assert_cmpstr(lf[0].got->pdata[0], ==, "3:7:abc");
    link_free(client);
    link_free(server);

    g_assert_null(link_new("127.0.0.1:0", NULL, "peer.example", NULL, &cb0, &err));
    g_assert_error(err, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_clear_error(&err);
    g_ptr_array_unref(lf[0].got);
    g_ptr_array_unref(lf[1].got);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/frame/split-and-unknown", test_split_and_unknown);
    g_test_add_func("/frame/bad-headers", test_bad_headers);
    g_test_add_func("/frame/link-loopback", test_link_loopback);
    g_test_add_func("/frame/link-by-reference", test_link_by_reference);
    g_test_add_data_func("/frame/link-peer-reset/copied", GINT_TO_POINTER(0), test_link_peer_reset);
    g_test_add_data_func("/frame/link-peer-reset/by-reference", GINT_TO_POINTER(1), test_link_peer_reset);
    g_test_add_func("/frame/link-peer-only", test_link_peer_only);
    return g_test_run();
}
