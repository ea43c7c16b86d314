/* The firewall rules colo-proxy needs, installed at start and removed at
 * exit, so that nobody writes them by hand. Uses iptables and ip6tables
 * (iptables-nft on Debian 12: this kernel has no "nft queue"). Every rule
 * carries a comment naming its owner so it can be found again. */
#ifndef COLO_NETFILTER_RULES_H
#define COLO_NETFILTER_RULES_H

#include <glib.h>
#include <stdbool.h>

typedef struct proxy_rules ProxyRules;

/* @tag goes into each rule's comment (e.g. "colo-proxy-q0"). */
ProxyRules *rules_new(const char *tag);

/* This object's rules in FORWARD become @specs (@n of them, each a
 * NULL-terminated argument list such as "-i", IFACE, "-j", "DROP";
 * @specs[0] first in the chain), for IPv4 and IPv6, replacing those it
 * had: one iptables-restore transaction per family, so the chain never
 * holds neither the old rules nor the new ones. */
bool rules_set_forward(ProxyRules *r, const char *const *const *specs, size_t n, GError **error);

/* Remove every rule this object installed (in reverse order). */
void rules_remove_all(ProxyRules *r);

void rules_free(ProxyRules *r);

/* Remove every FORWARD rule (IPv4 and IPv6) whose comment is @tag, such as
 * those a colo-proxy killed with SIGKILL left; *@removed counts them. */
bool rules_cleanup(const char *tag, unsigned int *removed, GError **error);

/* The tag of the rules of a proxy of @role ("primary" or "secondary") on
 * @guest_iface. */
char *rules_tag(const char *role, const char *guest_iface);

#endif
