/* libFuzzer target: the packet parser, the compare engine (a dead
 * primary's taking of the secondary's datagrams too), the rewriter and
 * the secondary's output replay on arbitrary bytes. The first byte
 * picks the path. */
#include "config.h"

#include "compare.h"
#include "packet.h"
#include "replay.h"
#include "rewrite.h"

#include <glib.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_release(void *opaque, uint64_t handle) { (*(unsigned int *)opaque)++; }
static void fuzz_checkpoint(void *opaque, enum cmp_reason reason) {}

/* Every replayed packet is one IP packet that parses, of its own length. */
static bool fuzz_replay_send(void *opaque, const uint8_t *ip, size_t len)
{
    struct pkt_info pi;

    memset(&pi, 0, sizeof(pi));
    if (pkt_parse_ip(ip, len, &pi) != PKT_OK || pi.end != len) {
        __builtin_trap();
    }
    return true;
}

/* Every datagram a dead primary's proxy takes is one whole IP packet. */
static void fuzz_take(void *opaque, const uint8_t *ip, size_t len)
{
    fuzz_replay_send(opaque, ip, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static CmpEngine *e;
    static RwTable *rw;
    static OutputReplay *replay;
    static unsigned int released;
    static uint64_t handle;
    struct pkt_info pi;
    uint8_t *copy;
    bool eth;

    if (!e) {
        struct cmp_params p;
        struct cmp_callbacks cb = { fuzz_release, fuzz_checkpoint, &released };

        cmp_params_init(&p);
        p.max_flows = 64;
        p.max_queue_size = 256;
        p.max_flow_bytes = 1 << 20;
        e = cmp_engine_new(&p, &cb);
        cmp_engine_arm(e);
        rw = rw_table_new(64);
        replay = replay_new(1 << 20);
    }
    if (size < 1) {
        return 0;
    }
    eth = data[0] & 1;
    (void)(eth ? pkt_parse_eth(data + 1, size - 1, &pi) : pkt_parse_ip(data + 1, size - 1, &pi));
    switch ((data[0] >> 1) & 7) {
    case 0:
        handle++;
        cmp_primary_add(e, handle, data + 1, size - 1, eth, handle);
        break;
    case 1:
        cmp_secondary_add(e, cmp_engine_epoch(e), data + 1, size - 1, eth, handle);
        break;
    case 2:
        cmp_input_add(e, data + 1, size - 1, eth);
        break;
    case 3:
        copy = g_memdup2(data + 1, size - 1);
        rw_output(rw, copy, size - 1, eth, data[0] & 0x80);
        g_free(copy);
        break;
    case 4:
        copy = g_memdup2(data + 1, size - 1);
        rw_input(rw, copy, size - 1, eth, data[0] & 0x80);
        g_free(copy);
        break;
    case 5:
        if (data[0] & 0x80) {
            cmp_checkpoint_commit(e, handle);
            rw_table_reset(rw);
        } else if (data[0] & 0x40) {
            unsigned int withheld;

            cmp_take_datagrams(e, fuzz_take, NULL, &withheld);
        }
        break;
    case 6:
        /* As captured: a virtio_net_hdr, then the frame (a datagram after
         * primary-lost, or a TCP segment). */
        if (data[0] & 0x80) {
            replay_keep_datagram(replay, data + 1, size - 1);
        } else {
            replay_keep(replay, data + 1, size - 1);
        }
        break;
    case 7:
        if (data[0] & 0x80) {
            replay_note_input(replay, data + 1, size - 1);
        } else if (data[0] & 0x40) {
            replay_clear(replay);
        } else {
            replay_flush(replay, fuzz_replay_send, NULL);
        }
        break;
    default:
        break;
    }
    return 0;
}
