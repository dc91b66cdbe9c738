// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* Local endpoints and local delivery: the routing step of a node towards a
 * pod it hosts (TTL-1, MAC rewrite) and the tail call into that endpoint's
 * policy program (to-container).
 */
#ifndef __HOPLAB_ENDPOINT_H
#define __HOPLAB_ENDPOINT_H

#include "common.h"
#include "drop.h"
#include "eth.h"
#include "ipv4.h"
#include "maps.h"

static __always_inline struct endpoint_info *lookup_ip4_endpoint(__be32 ip)
{
	struct endpoint_key key = {
		.ip = ip,
	};

	return bpf_map_lookup_elem(&hoplab_lxc, &key);
}

/* lookup_ip4_local_dest returns the local endpoint a packet to ip is for,
 * or NULL: an address outside this node's PodCIDR (hoplab_config, where
 * set; the agent keeps every endpoint inside it) is no local pod's,
 * without the hash lookup.
 */
static __always_inline struct endpoint_info *lookup_ip4_local_dest(__be32 ip)
{
	struct hoplab_config *cfg = config_get();

	if (cfg && (ip & cfg->pod_cidr_mask) != cfg->pod_cidr)
		return (struct endpoint_info *)0;
	return lookup_ip4_endpoint(ip);
}

/* lookup_source_endpoint returns the endpoint a packet from a pod comes
 * from: the one on the lxc it arrived on (skb->ifindex), if the packet
 * carries that pod's address, else NULL (a pod sending with another
 * address, Cilium's DROP_INVALID_SIP); an lxc beyond hoplab_lxc_ifindex
 * (or a test run's loopback) is looked up by source address.
 */
static __always_inline struct endpoint_info *lookup_source_endpoint(const struct __sk_buff *skb,
								    __be32 saddr)
{
	__u32 ifindex = skb->ifindex;
	struct endpoint_by_ifindex *e = bpf_map_lookup_elem(&hoplab_lxc_ifindex, &ifindex);

	if (e && e->info.ifindex == ifindex)
		return e->ip == saddr ? &e->info : (struct endpoint_info *)0;
	return lookup_ip4_endpoint(saddr);
}

/* ipv4_local_delivery routes the packet to a local endpoint: it drops at
 * TTL <= 1, decrements the TTL once, writes the pod's MAC as destination and
 * the lxc MAC as source, records the sender's identity and the CT entries
 * the packet created (CT_CREATED_*, which to-container deletes if it drops
 * the packet) in skb->cb and tail calls the endpoint's to-container. It
 * only returns on error.
 */
static __always_inline int ipv4_local_delivery(struct __sk_buff *skb, struct iphdr *ip,
					       const struct endpoint_info *ep, __u32 src_identity,
					       __u32 ct_created)
{
	int ret;

	if (ip->ttl <= 1)
		return -DROP_TTL_EXCEEDED;
	ret = ipv4_dec_ttl(skb, ip);
	if (ret < 0)
		return ret;
	ret = eth_store_addrs(skb, ep->pod_mac, ep->lxc_mac);
	if (ret < 0)
		return ret;
	skb->cb[CB_SRC_IDENTITY] = src_identity;
	skb->cb[CB_CT_CREATED] = ct_created;
	bpf_tail_call(skb, &hoplab_policy_progs, ep->ep_id);
	return -DROP_MISSED_TAIL_CALL;
}

#endif /* __HOPLAB_ENDPOINT_H */
