/* The messages between the two colods of a VM, over the CPG group
 * "colo-VM". Version 1, network byte order, every field checked:
 *
 *   header (22 bytes + name)
 *     u32 magic "COLD"   u16 version (1)   u16 type
 *     u32 length (the whole message)   u32 sender node id
 *     u32 target node id (0: every member)
 *     u16 name length (1..64), then the VM name (no NUL)
 *   body, by type (fixed size; reserved bits and bytes are zero)
 *     HELLO            u64 generation, u8 role, u8 state, u8 vmm, u8 flags
 *                      (bit 0 paused, bit 1 protect enabled)
 *     PROTECT_REQUEST  u64 generation (the protection's, newest + 1)
 *     PROTECT_ACK      u64 generation, u8 accepted (0/1), 3 bytes zero
 *     FAILOVER_CLAIM   u64 generation (the claimant's next), u8 flags
 *                      (bit 0 requested by an administrator, bit 1 do not
 *                      re-protect), 3 bytes zero
 *     FAILOVER_ACK     u64 generation (of the claim answered)
 *     SWITCHOVER       u64 generation (the sender's)
 *     SHUTDOWN         u8 flags (bit 0 colod restarts, its VM runs on),
 *                      3 bytes zero
 *     RELOCATE_REQUEST u64 generation (the VM's after the move, newest + 1)
 *     RELOCATE_ACK     u64 generation, u8 accepted (0/1), 3 bytes zero
 *
 * Types 8 and 9 (relocation by postcopy) came after the others in version
 * 1: a colod without them refuses them as an unknown type, so its peer's
 * relocate request times out and the VM stays where it runs. The states
 * a hello may name grew the same way (relocate-requested, relocating,
 * relocate-target): such a hello is refused by an older colod, which then
 * keeps the peer's last state.
 *
 * A message of another VM, version, type or size is refused with a
 * reason; none is ever partly used. */
#ifndef COLOD_CPG_MSG_H
#define COLOD_CPG_MSG_H

#include "colod-types.h"

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CPG_MSG_MAGIC 0x434f4c44u /* "COLD" */
#define CPG_MSG_VERSION 1
#define CPG_MSG_HEADER_LEN 22
#define CPG_MSG_NAME_MAX 64
/* Longest message: header, longest name, longest body. */
#define CPG_MSG_MAX (CPG_MSG_HEADER_LEN + CPG_MSG_NAME_MAX + 12)

#define CPG_MSG_ERROR (cpg_msg_error_quark())
GQuark cpg_msg_error_quark(void);

typedef enum {
    CPG_MSG_HELLO = 1,
    CPG_MSG_PROTECT_REQUEST,
    CPG_MSG_PROTECT_ACK,
    CPG_MSG_FAILOVER_CLAIM,
    CPG_MSG_FAILOVER_ACK,
    CPG_MSG_SWITCHOVER,
    CPG_MSG_SHUTDOWN,
    CPG_MSG_RELOCATE_REQUEST,
    CPG_MSG_RELOCATE_ACK,
    CPG_MSG__MAX
} CpgMsgType;

typedef struct {
    CpgMsgType type;
    uint32_t sender;
    uint32_t target;      /* 0: every member */
    uint64_t generation;  /* every type but SHUTDOWN */
    /* HELLO */
    ColodRole role;
    ClusterState state;
    VmmKind vmm;
    bool paused;
    bool protect_enabled;
    /* PROTECT_ACK, RELOCATE_ACK */
    bool accepted;
    /* FAILOVER_CLAIM */
    bool by_admin;
    bool unprotect;
    /* SHUTDOWN */
    bool restart;
} CpgMsg;

const char *cpg_msg_type_name(CpgMsgType type);

/* Encodes @m for VM @vm_name into @buf (at least CPG_MSG_MAX bytes).
 * Returns the length. @m and @vm_name must be valid (programming error
 * otherwise). */
size_t cpg_msg_encode(const CpgMsg *m, const char *vm_name, uint8_t *buf);

/* Decodes @len bytes delivered by CPG from node @from. Returns false and
 * sets @error unless the message is exactly a valid version-1 message of
 * VM @vm_name whose sender field is @from. */
bool cpg_msg_decode(const uint8_t *buf, size_t len, uint32_t from, const char *vm_name, CpgMsg *out,
                    GError **error);

#endif
