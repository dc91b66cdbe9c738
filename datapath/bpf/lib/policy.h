// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* Policy enforcement for one endpoint and direction. Lookup order, first
 * match wins (Cilium's): L3L4 {identity, port, proto}, L4-only {0, port,
 * proto}, L3-only {identity, 0, 0}, allow-all {0, 0, 0}. No match: drop
 * "Policy denied". An entry with deny set drops with "Policy deny"; an
 * entry with a proxy port sends the flow to the L7 proxy (lib/proxy.h).
 * Only NEW connections are checked: replies and established packets pass
 * through connection tracking, which keeps the proxy port of a flow.
 */
#ifndef __HOPLAB_POLICY_H
#define __HOPLAB_POLICY_H

#include "common.h"
#include "drop.h"
#include "maps.h"

#define POLICY_INGRESS 0
#define POLICY_EGRESS 1

static __always_inline int __policy_verdict(struct policy_entry *entry, __u32 len)
{
	__sync_fetch_and_add(&entry->packets, 1);
	__sync_fetch_and_add(&entry->bytes, len);
	return entry->deny ? -DROP_POLICY_DENY : bpf_ntohs(entry->proxy_port);
}

/* policy_can_access returns 0 if the endpoint may talk to remote_id on
 * (dport, proto) in the direction egress, the proxy port (> 0, host
 * order) if it may but the flow goes to the L7 proxy, and a negative drop
 * code otherwise. ICMP matches with dport 0.
 */
static __always_inline int policy_can_access(__u16 ep_id, __u32 remote_id, __be16 dport,
					     __u8 proto, __u8 egress, __u32 len)
{
	struct policy_entry *entry;
	struct policy_key key = {
		.sec_label = remote_id,
		.ep_id = ep_id,
		.dport = proto == IPPROTO_ICMP ? 0 : dport,
		.protocol = proto,
		.egress = egress,
	};

	/* L3L4 */
	entry = bpf_map_lookup_elem(&hoplab_policy, &key);
	if (entry)
		return __policy_verdict(entry, len);
	/* L4-only */
	key.sec_label = 0;
	entry = bpf_map_lookup_elem(&hoplab_policy, &key);
	if (entry)
		return __policy_verdict(entry, len);
	/* L3-only */
	key.sec_label = remote_id;
	key.dport = 0;
	key.protocol = 0;
	entry = bpf_map_lookup_elem(&hoplab_policy, &key);
	if (entry)
		return __policy_verdict(entry, len);
	/* allow-all */
	key.sec_label = 0;
	entry = bpf_map_lookup_elem(&hoplab_policy, &key);
	if (entry)
		return __policy_verdict(entry, len);
	return -DROP_POLICY;
}

#endif /* __HOPLAB_POLICY_H */
