// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* NodePort without kube-proxy, SNAT mode, externalTrafficPolicy=Cluster
 * (Cilium's bpf/lib/nodeport.h, IPv4).
 *
 * A NodePort frontend is a service entry at this node's address
 * (hoplab_config.node_addr) and the nodePort whose master entry has
 * SVC_F_NODEPORT. Every node routes both legs of a connection once: the
 * kernel forwards (TTL-1, MACs), the datapath translates on the way in
 * and out of the uplink. A packet whose source is already the node's
 * address is never handed to the stack's input path (Linux drops it as a
 * martian), so the translations that put the node's address into the
 * source happen at to-netdev, after the kernel routed the packet.
 *
 * Request, client:cport -> node:nodePort, at from-netdev
 * (nodeport_from_netdev4): backend selection pinned in a CT service entry
 * and DNAT (lb4_local), then the connection's CT entry, keyed by the
 * post-DNAT tuple with TUPLE_F_OUT and flagged CT_F_NODEPORT, holding the
 * rev-NAT index.
 *   - backend on this node: local delivery (TTL-1, MACs) and its
 *     to-container, whose ingress policy sees the client's identity.
 *   - backend elsewhere: to the stack, which forwards it to the uplink,
 *     where to-netdev (nodeport_to_netdev4) SNATs the source to
 *     node:nport (lib/nat.h).
 * Reply, backend:bport -> client:cport or -> node:nport:
 *   - from a remote backend, at from-netdev: reverse SNAT (destination
 *     back to client:cport), then to the stack, which forwards it.
 *   - at to-netdev, from a local or a remote backend: reverse DNAT, the
 *     source back to node:nodePort, from the CT entry's rev-NAT index.
 *
 * Trace events of from-netdev and to-netdev carry the packet after their
 * translation.
 */
#ifndef __HOPLAB_NODEPORT_H
#define __HOPLAB_NODEPORT_H

#include "common.h"
#include "conntrack.h"
#include "drop.h"
#include "endpoint.h"
#include "ipv4.h"
#include "lb.h"
#include "maps.h"
#include "nat.h"
#include "trace.h"

/* nodeport_from_netdev4's answer for a packet that is not NodePort
 * traffic: no tc verdict and no drop code.
 */
#define NODEPORT_PASS 0x100

/* nodeport_addr returns the node's address, 0 when NodePort is off. */
static __always_inline __be32 nodeport_addr(void)
{
	struct hoplab_config *cfg = config_get();

	return cfg ? cfg->node_addr : 0;
}

/* nodeport_from_netdev4 handles a TCP or UDP packet for the node's
 * address arriving on the uplink: the reply of a SNATed connection
 * (reverse SNAT, to the stack), or a request for a NodePort frontend
 * (DNAT, then local delivery or the stack). It returns NODEPORT_PASS for
 * anything else, left untouched. ip, the caller's copy of the header, is
 * not updated by the DNAT: after it only the TTL is read.
 */
static __always_inline int nodeport_from_netdev4(struct __sk_buff *skb, struct iphdr *ip,
						 __u32 l4_off, __u32 src_id, __u32 *dst_id)
{
	__u32 now = bpf_mono_now();
	struct ct_state state = {};
	struct ct_key tuple = {};
	struct ct_pkt pkt = {};
	struct endpoint_info *ep;
	struct lb4_service *svc;
	struct nat_entry *nat;
	struct lb4_key key = {};
	__u32 created = 0;
	int ct, ret;

	if (ct_extract_tuple4(skb, ip, l4_off, &tuple, &pkt) < 0)
		return NODEPORT_PASS;

	/* The reply of a connection SNATed at to-netdev. */
	tuple.flags = TUPLE_F_IN;
	nat = snat_v4_lookup(&tuple);
	if (nat) {
		ret = lb4_rewrite(skb, tuple.nexthdr, l4_off, IP_DADDR_OFF, tuple.daddr, nat->to_addr,
				  2, tuple.dport, nat->to_port);
		if (ret < 0)
			return ret;
		send_trace_notify(skb, TRACE_FROM_NETWORK, 0, src_id, 0, 0, skb->ifindex,
				  CT_REPLY, 0);
		return TC_ACT_OK;
	}

	key.address = tuple.daddr;
	key.dport = tuple.dport;
	key.proto = tuple.nexthdr;
	svc = lb4_lookup_service(&key);
	if (!svc || !(svc->flags & SVC_F_NODEPORT))
		return NODEPORT_PASS;
	/* The node routes the request: the drop the kernel would make,
	 * visible, before any entry is created.
	 */
	if (ip->ttl <= 1)
		return -DROP_TTL_EXCEEDED;
	tuple.flags = 0;
	ret = lb4_local(skb, l4_off, &tuple, &pkt, &key, svc, &state, &created, now);
	if (ret < 0)
		goto drop;

	ct = ct_lookup4(&tuple, CT_EGRESS, &pkt, &state, now);
	if (ct == CT_NEW) {
		state.src_sec_id = src_id;
		ret = ct_create4(&tuple, &pkt, &state, CT_F_NODEPORT, now);
		if (ret < 0)
			goto drop;
		created |= CT_CREATED_OUT;
	}
	send_trace_notify(skb, TRACE_FROM_NETWORK, 0, src_id, 0, 0, skb->ifindex, ct, 0);

	ep = lookup_ip4_endpoint(tuple.daddr);
	if (!ep)
		return TC_ACT_OK;
	*dst_id = ep->sec_identity;
	ret = ipv4_local_delivery(skb, ip, ep, src_id, created);
drop:
	ct_delete_created4(&tuple, created);
	return ret;
}

/* nodeport_to_netdev4 translates a TCP or UDP packet leaving through the
 * uplink that belongs to a NodePort connection: a request forwarded to a
 * remote backend (SNAT to node_addr, allocating the port on its first
 * packet) or a backend's reply (reverse DNAT). from_ep says the source
 * is a local endpoint, which only sends replies. *reason is set to the
 * packet's CT verdict when it was translated. It returns 0 or a drop
 * code.
 */
static __always_inline int nodeport_to_netdev4(struct __sk_buff *skb, const struct iphdr *ip,
					       __u32 l4_off, int from_ep, __be32 node_addr,
					       __u8 *reason)
{
	__u32 now = bpf_mono_now();
	struct nat_entry ostate = {};
	struct ct_entry *entry;
	struct ct_key tuple = {};
	struct ct_pkt pkt = {};
	struct nat_entry *nat;
	struct ct_key rev;
	int ret;

	if (ct_extract_tuple4(skb, ip, l4_off, &tuple, &pkt) < 0)
		return 0;

	/* An established connection to a remote backend. */
	if (!from_ep) {
		tuple.flags = TUPLE_F_OUT;
		nat = snat_v4_lookup(&tuple);
		if (nat) {
			*reason = CT_ESTABLISHED;
			return lb4_rewrite(skb, tuple.nexthdr, l4_off, IP_SADDR_OFF, tuple.saddr,
					   nat->to_addr, 0, tuple.sport, nat->to_port);
		}
	}

	/* A backend's reply: its connection's entry is keyed by the request. */
	rev.daddr = tuple.saddr;
	rev.saddr = tuple.daddr;
	rev.dport = tuple.sport;
	rev.sport = tuple.dport;
	rev.nexthdr = tuple.nexthdr;
	rev.flags = TUPLE_F_OUT;
	rev.pad = 0;
	entry = bpf_map_lookup_elem(&hoplab_ct4_global, &rev);
	if (entry && (entry->flags & CT_F_NODEPORT) && entry->lifetime >= now) {
		__ct_update(entry, tuple.nexthdr, &pkt, 1, now);
		*reason = CT_REPLY;
		return lb4_rev_nat(skb, l4_off, &tuple, entry->rev_nat_index);
	}
	if (from_ep)
		return 0;

	/* The first packet of a connection to a remote backend. */
	tuple.flags = TUPLE_F_OUT;
	entry = bpf_map_lookup_elem(&hoplab_ct4_global, &tuple);
	if (!entry || !(entry->flags & CT_F_NODEPORT) || entry->lifetime < now)
		return 0;
	ret = snat_v4_new_mapping(&tuple, node_addr, &ostate, now);
	if (ret < 0)
		return ret;
	*reason = CT_NEW;
	return lb4_rewrite(skb, tuple.nexthdr, l4_off, IP_SADDR_OFF, tuple.saddr, node_addr, 0,
			   tuple.sport, ostate.to_port);
}

#endif /* __HOPLAB_NODEPORT_H */
