/* A primary's input during the initial sync (docs/colo-proxy.md, "Input
 * during the initial sync").
 *
 * Before the first checkpoint-begin the proxy mirrors nothing: the
 * secondary's guest does not run yet, and the sync's copy carries what
 * the primary's guest took. But input that reached the guest's tap after
 * the sync's stop is not in the copy: the guest takes it when it runs
 * again. colo-vmm can connect and say checkpoint-begin only once its
 * guest has stopped, so input read in between went to the primary's guest
 * alone. Its answer then waited for a twin the secondary could not send,
 * until the client's retransmission (200 ms at least) brought the input
 * again: the rare 200 ms stall at a re-protect.
 *
 * So while a secondary is linked and nothing is compared yet, the proxy
 * keeps the input of the last moment, and the sync's checkpoint-begin
 * mirrors what it read since the stop began (`input-since-ns`). Input the
 * guest took just before the stop may go too: the secondary's guest takes
 * it twice, which costs nothing worse than an answer that finds no twin;
 * missing it costs the client a retransmission. */
#include "config.h"

#include "proxy.h"

#include <qb/qblog.h>
#include <string.h>

/* What is kept: a stop takes milliseconds, a loaded host's scheduling
 * some more. */
#define SYNC_INPUT_KEEP_NS (1000u * 1000u * 1000u)
#define SYNC_INPUT_KEEP_BYTES (4u << 20)

struct sync_input {
    uint64_t at_ns;
    size_t len;
    uint8_t data[];
};

static void sync_input_drop_head(Proxy *p)
{
    struct sync_input *k = g_queue_pop_head(&p->sync_input);

    p->sync_input_bytes -= k->len;
    g_free(k);
}

void proxy_sync_input_keep(Proxy *p, const uint8_t *buf, size_t len)
{
    uint64_t now = proxy_now_ns();
    struct sync_input *k;

    /* No secondary yet: no sync can be under way. */
    if (!p->link || !link_is_up(p->link) || len > SYNC_INPUT_KEEP_BYTES) {
        proxy_sync_input_clear(p);
        return;
    }
    while (p->sync_input.head) {
        const struct sync_input *old = g_queue_peek_head(&p->sync_input);

        if (now - old->at_ns <= SYNC_INPUT_KEEP_NS && p->sync_input_bytes + len <= SYNC_INPUT_KEEP_BYTES) {
            break;
        }
        sync_input_drop_head(p);
    }
    k = g_malloc(sizeof(*k) + len);
    k->at_ns = now;
    k->len = len;
    memcpy(k->data, buf, len);
    g_queue_push_tail(&p->sync_input, k);
    p->sync_input_bytes += len;
}

unsigned int proxy_sync_input_mirror(Proxy *p, uint64_t since_ns)
{
    unsigned int n = 0;

    while (p->sync_input.head) {
        const struct sync_input *k = g_queue_peek_head(&p->sync_input);

        if (k->at_ns >= since_ns && k->len > CAPTURE_VNET_LEN) {
            link_queue(p->link, FRAME_MIRROR, proxy_mirror_epoch(p), k->data, k->len);
            cmp_input_add(p->engine, k->data + CAPTURE_VNET_LEN, k->len - CAPTURE_VNET_LEN, true);
            n++;
        }
        sync_input_drop_head(p);
    }
    if (n) {
        link_push(p->link);
        p->sync_input_mirrored += n;
        qb_log(LOG_INFO, "the sync's checkpoint-begin: %u frame%s of input since the stop mirrored", n,
               n == 1 ? "" : "s");
    }
    return n;
}

void proxy_sync_input_clear(Proxy *p)
{
    while (p->sync_input.head) {
        sync_input_drop_head(p);
    }
}
