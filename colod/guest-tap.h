/* colod's copies of the guest's tap while colo-vmm runs it as a protected
 * primary (docs/colod.md, "A primary whose colo-vmm died").
 *
 * When the last descriptor of a tap closes, the kernel takes its carrier
 * down, and the host stops routing to it: what a client sends to the
 * guest is dropped before colo-proxy's capture sees it. With a copy in
 * colod the tap stays up after colo-vmm is killed, and colo-proxy goes on
 * mirroring the client's input to the secondary, whose guest answers
 * once it has taken over. The copies are released before any colo-vmm
 * opens the tap again (a tap without IFF_MULTI_QUEUE takes one queue). */
#ifndef COLOD_GUEST_TAP_H
#define COLOD_GUEST_TAP_H

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

typedef struct GuestTap GuestTap;

GuestTap *guest_tap_new(const char *ifname);
void guest_tap_free(GuestTap *t);

/* Copies of each descriptor of process @pid attached to the tap (its
 * fdinfo names the interface), unless copies of @pid's are held already.
 * False and @error if there is none or one cannot be copied. */
bool guest_tap_keep(GuestTap *t, pid_t pid, GError **error);

/* Closes the copies (the tap goes down if nobody else holds it). */
void guest_tap_release(GuestTap *t);

/* How many copies are held. */
guint guest_tap_held(const GuestTap *t);

#endif
