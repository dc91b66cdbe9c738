// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* bpf_lxc.c: the programs of a pod's host-side veth (lxc device).
 *
 *   from-container (tc ingress of lxc: packets the pod sends)
 *     hoplab_from_container   validate, source endpoint, service lookup,
 *                             backend selection pinned in CT, DNAT, CT
 *                             lookup; known connections are forwarded here
 *     -> tail_ipv4_egress_policy  (NEW connections only) egress policy,
 *                             TTL check, CT create, then the same
 *                             forwarding:
 *        local endpoint:  TTL-1, MAC rewrite, tail call to its to-container
 *        tunnel mode, a pod of another node: tunnel key (VNI = the
 *                         sender's identity), redirect to the VXLAN device
 *                         (to-overlay, lib/encap.h)
 *        otherwise:       TC_ACT_OK to the stack
 *
 *   to-container (tail-called through hoplab_policy_progs only; nothing is
 *   attached to lxc egress)
 *     hoplab_to_container     CT lookup, ingress policy for NEW flows,
 *                             reverse NAT of replies, redirect to the pod
 *
 * A flow whose policy entry names a proxy port (an L7 rule) goes to the
 * node's L7 proxy instead, marked, through the stack (lib/proxy.h): at
 * egress from the egress stage, at ingress from to-container; the CT entry
 * keeps the port, so the flow's established packets follow.
 *
 * A dropped packet leaves no CT entry (lib/conntrack.h): a program that
 * drops a packet deletes the service and egress entries it created on its
 * way here (skb->cb[CB_CT_CREATED]), be it from-container, the egress
 * stage or, for a local destination's ingress policy, to-container.
 *
 * Forwarding decision (the TTL rule of DESIGN.md: every routing node
 * decrements TTL exactly once). Towards another node, from-container does
 * NOT touch TTL or MACs: it returns TC_ACT_OK and the kernel's IPv4
 * forwarding routes the packet (learned BGP route or default via the ToR),
 * decrements TTL once and writes bond0's and the next hop's MACs. The only
 * thing done here on that path is dropping TTL <= 1 with DROP_TTL_EXCEEDED,
 * so that the drop the kernel would do anyway is visible as an event (no
 * ICMP time-exceeded is generated for such packets). When the destination
 * is a pod on this node the datapath is the router: ipv4_local_delivery
 * decrements TTL once, rewrites MACs and bpf_redirects to the pod's lxc,
 * so pod-to-pod on one node arrives with TTL 63.
 */

#define __MAGIC_FILE__ FILE_BPF_LXC

#include "lib/common.h"
#include "lib/maps.h"
#include "lib/eth.h"
#include "lib/ipv4.h"
#include "lib/csum.h"
#include "lib/l4.h"
#include "lib/conntrack.h"
#include "lib/lb.h"
#include "lib/sock.h"
#include "lib/policy.h"
#include "lib/ipcache.h"
#include "lib/endpoint.h"
#include "lib/encap.h"
#include "lib/metrics.h"
#include "lib/trace.h"
#include "lib/proxy.h"
#include "lib/drop.h"

/* Identities reported in a drop notification. */
struct drop_ids {
	__u32 src;
	__u32 dst;
};

/* ipv4_route_from_lxc finds where a packet from a pod goes, the local
 * endpoint it is for (*dst_ep) or the stack (NULL), and drops it where
 * routing would: TTL <= 1 towards a local pod (the datapath routes) or
 * another node (the kernel does, see the top of this file), not towards
 * this host itself, which is not forwarded.
 */
static __always_inline int ipv4_route_from_lxc(const struct iphdr *ip,
					       struct endpoint_info **dst_ep, struct drop_ids *ids)
{
	*dst_ep = lookup_ip4_local_dest(ip->daddr);
	if (*dst_ep)
		ids->dst = (*dst_ep)->sec_identity;
	if (ip->ttl <= 1 && (*dst_ep || resolve_identity4(ip->daddr) != IDENTITY_HOST))
		return -DROP_TTL_EXCEEDED;
	return 0;
}

/* ipv4_forward_from_lxc forwards a packet the egress checks and
 * ipv4_route_from_lxc let through: local delivery to dst_ep, a pod on this
 * node, with the CT entries it created (CT_CREATED_*); in tunnel mode, a
 * pod of another node through the VXLAN device (lib/encap.h); else to the
 * stack.
 */
static __always_inline int ipv4_forward_from_lxc(struct __sk_buff *skb, struct iphdr *ip,
						 const struct endpoint_info *dst_ep,
						 const struct ct_pkt *pkt, int ct, __u16 ep_id,
						 __u32 created, struct drop_ids *ids)
{
	int ret;

	if (dst_ep) {
		update_metrics(pkt->len, METRIC_EGRESS, REASON_FORWARDED);
		return ipv4_local_delivery(skb, ip, dst_ep, ids->src, created);
	}
	ret = encap_and_redirect4(skb, ip->daddr, ids->src, &ids->dst, ep_id, ct,
				  ct == CT_NEW || (pkt->tcp_flags & TCP_FLAGS_REPORT));
	if (ret != TC_ACT_OK) {
		if (ret >= 0)
			update_metrics(pkt->len, METRIC_EGRESS, REASON_FORWARDED);
		return ret;
	}
	send_trace_notify(skb, TRACE_TO_STACK, ep_id, ids->src, ids->dst, 0, skb->ifindex, ct,
			  ct == CT_NEW || (pkt->tcp_flags & TCP_FLAGS_REPORT));
	update_metrics(pkt->len, METRIC_EGRESS, REASON_FORWARDED);
	return TC_ACT_OK;
}

/* handle_ipv4_from_lxc: validate, find the source endpoint, classify by
 * CT, load-balance (DNAT). Packets of known connections are forwarded
 * right here; NEW connections continue in tail_ipv4_egress_policy.
 *
 * Cilium's order: a service flow's service entry first, which gives its
 * pinned backend and rev-NAT index; only a flow without one (NEW, or its
 * backend was removed) looks the service map up and selects a backend,
 * and only NEW connections meet policy.
 */
static __always_inline int handle_ipv4_from_lxc(struct __sk_buff *skb, struct drop_ids *ids)
{
	__u32 now = bpf_mono_now();
	struct ct_state lb_state = {};
	struct endpoint_info *dst_ep;
	struct ct_state state = {};
	struct ct_key tuple = {};
	struct ct_pkt pkt = {};
	struct endpoint_info *ep;
	__u16 ep_id, ep_flags;
	__u32 created = 0;
	struct iphdr ip;
	__u32 l4_off;
	int ct, ret;
	__u16 rev_nat;

	ret = ipv4_load(skb, &ip, &l4_off);
	if (ret < 0)
		return ret;
	ep = lookup_source_endpoint(skb, ip.saddr);
	if (!ep)
		return -DROP_INVALID_SIP;
	/* Only these scalars are kept: the endpoint comes from one of two
	 * maps, and a pointer into either would make the verifier walk the
	 * rest of the program once per map.
	 */
	ids->src = ep->sec_identity;
	ep_id = ep->ep_id;
	ep_flags = ep->flags;
	send_trace_notify(skb, TRACE_FROM_LXC, ep_id, ids->src, 0, 0, skb->ifindex,
			  TRACE_REASON_UNKNOWN, 0);

	ret = ct_extract_tuple4(skb, &ip, l4_off, &tuple, &pkt);
	if (ret < 0)
		return ret;

	/* A service flow: DNAT to the backend its service entry pins, else
	 * (a new flow, or its backend was removed) to one selected now, if
	 * the destination is a service.
	 */
	if (tuple.nexthdr == IPPROTO_TCP || tuple.nexthdr == IPPROTO_UDP) {
		struct lb4_backend backend;

		if (lb4_lookup_pinned(&tuple, &pkt, &lb_state, &backend, now)) {
			ret = lb4_dnat(skb, l4_off, &tuple, &backend);
			if (ret < 0)
				return ret;
			ip.daddr = tuple.daddr;
		} else {
			struct lb4_key key = {
				.address = tuple.daddr,
				.dport = tuple.dport,
				.proto = tuple.nexthdr,
			};
			struct lb4_service *svc = lb4_lookup_service(&key);

			if (svc) {
				ret = lb4_select(skb, l4_off, &tuple, &pkt, &key, svc, &lb_state,
						 &created, now);
				if (ret < 0)
					goto drop;
				ip.daddr = tuple.daddr;
			}
		}
	}
	ct = ct_lookup4(&tuple, CT_EGRESS, &pkt, &state, now);
	if (ct == CT_ESTABLISHED && state.proxy_port) {
		/* A flow the egress policy sent to the L7 proxy. */
		ids->dst = resolve_identity4(tuple.daddr);
		return ipv4_to_proxy(skb, bpf_ntohs(state.proxy_port), ep_id, ids->src, ids->dst,
				     ct, &pkt, METRIC_EGRESS);
	}
	if (ct != CT_NEW) {
		ret = ipv4_route_from_lxc(&ip, &dst_ep, ids);
		if (ret < 0)
			goto drop;
		ret = ipv4_forward_from_lxc(skb, &ip, dst_ep, &pkt, ct, ep_id, created, ids);
		if (ret < 0)
			goto drop;
		return ret;
	}
	/* A UDP flow sendmsg4 pointed at a backend, on a kernel without
	 * recvmsg4: its CT entry gets the service's rev-NAT index, so that
	 * to-container reverse-NATs the replies (lib/sock.h).
	 */
	rev_nat = lb_state.rev_nat_index;
	if (!rev_nat)
		rev_nat = sock4_udp_flow_rev_nat(&tuple);

	skb->cb[CB_SRC_IDENTITY] = ids->src;
	skb->cb[CB_BACKEND_ID] = lb_state.backend_id;
	skb->cb[CB_REV_NAT] = rev_nat;
	skb->cb[CB_SRC_EP] = (__u32)ep_id | ((__u32)ep_flags << 16);
	skb->cb[CB_CT_CREATED] = created;
	bpf_tail_call(skb, &hoplab_calls_lxc, CALL_IPV4_EGRESS_POLICY);
	ret = -DROP_MISSED_TAIL_CALL;
drop:
	/* The service entry lb4_select pinned goes with the packet. */
	ct_delete_created4(&tuple, created);
	return ret;
}

SEC("tc")
int hoplab_from_container(struct __sk_buff *skb)
{
	struct drop_ids ids = {};
	__be16 proto;
	int ret;

	/* Only IPv4 is handled; ARP, IPv6 and runts go to the stack as is. */
	if (eth_load_proto(skb, &proto) < 0 || proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ret = handle_ipv4_from_lxc(skb, &ids);
	if (ret < 0)
		return send_drop_notify(skb, ids.src, ids.dst, 0, ret, METRIC_EGRESS);
	return ret;
}

/* handle_ipv4_egress_policy: a NEW connection from a pod (already DNATed):
 * egress policy, TTL check, CT create, forwarding. The checks that may
 * drop come before the CT entry is created; a drop after that (a local
 * destination's, in to-container) deletes it.
 */
static __always_inline int handle_ipv4_egress_policy(struct __sk_buff *skb, struct drop_ids *ids)
{
	__u32 created = skb->cb[CB_CT_CREATED];
	__u32 src_ep = skb->cb[CB_SRC_EP];
	__u16 ep_id = src_ep & 0xffff;
	__u16 ep_flags = src_ep >> 16;
	struct endpoint_info *dst_ep;
	struct ct_state state = {};
	struct ct_key tuple = {};
	struct ct_pkt pkt = {};
	__u16 proxy_port = 0;
	struct iphdr ip;
	__u32 l4_off;
	int ret;

	ids->src = skb->cb[CB_SRC_IDENTITY];
	ret = ipv4_load(skb, &ip, &l4_off);
	if (ret < 0)
		return ret;
	ret = ct_extract_tuple4(skb, &ip, l4_off, &tuple, &pkt);
	if (ret < 0)
		return ret;

	ids->dst = resolve_identity4(tuple.daddr);
	if (ep_flags & EP_F_ENFORCE_EGRESS) {
		ret = policy_can_access(ep_id, ids->dst, tuple.dport, tuple.nexthdr, POLICY_EGRESS,
					pkt.len);
		if (ret < 0)
			goto drop;
		proxy_port = ret;
	}
	ret = ipv4_route_from_lxc(&ip, &dst_ep, ids);
	if (ret < 0)
		goto drop;
	state.rev_nat_index = skb->cb[CB_REV_NAT];
	state.backend_id = skb->cb[CB_BACKEND_ID];
	state.src_sec_id = ids->src;
	state.proxy_port = bpf_htons(proxy_port);
	tuple.flags = CT_EGRESS;
	ret = ct_create4(&tuple, &pkt, &state, 0, bpf_mono_now());
	if (ret < 0)
		goto drop;
	created |= CT_CREATED_OUT;
	if (proxy_port)
		return ipv4_to_proxy(skb, proxy_port, ep_id, ids->src, ids->dst, CT_NEW, &pkt,
				     METRIC_EGRESS);
	ret = ipv4_forward_from_lxc(skb, &ip, dst_ep, &pkt, CT_NEW, ep_id, created, ids);
	if (ret >= 0)
		return ret;
drop:
	/* The service entry from-container pinned, and the egress entry made
	 * here, go with the packet.
	 */
	ct_delete_created4(&tuple, created);
	return ret;
}

SEC("tc")
int tail_ipv4_egress_policy(struct __sk_buff *skb)
{
	struct drop_ids ids = {};
	int ret = handle_ipv4_egress_policy(skb, &ids);

	if (ret < 0)
		return send_drop_notify(skb, ids.src, ids.dst, 0, ret, METRIC_EGRESS);
	return ret;
}

/* handle_to_container delivers a packet to a local endpoint. */
static __always_inline int handle_to_container(struct __sk_buff *skb, struct drop_ids *ids,
					       __u32 *dst_ep_id)
{
	__u32 now = bpf_mono_now();
	struct ct_state state = {};
	struct endpoint_info *ep;
	struct ct_key tuple = {};
	struct ct_pkt pkt = {};
	struct iphdr ip;
	__u32 l4_off;
	__be16 proto;
	int ct, ret;

	if (eth_load_proto(skb, &proto) < 0 || proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ret = ipv4_load(skb, &ip, &l4_off);
	if (ret < 0)
		return ret;
	if (!ids->src)
		ids->src = resolve_identity4(ip.saddr);
	ep = lookup_ip4_endpoint(ip.daddr);
	if (!ep)
		return -DROP_UNKNOWN_TARGET;
	ids->dst = ep->sec_identity;
	*dst_ep_id = ep->ep_id;
	ret = ct_extract_tuple4(skb, &ip, l4_off, &tuple, &pkt);
	if (ret < 0)
		return ret;

	ct = ct_lookup4(&tuple, CT_INGRESS, &pkt, &state, now);
	if (ct == CT_NEW) {
		state.proxy_port = 0;
		if (ep->flags & EP_F_ENFORCE_INGRESS) {
			ret = policy_can_access(ep->ep_id, ids->src, tuple.dport, tuple.nexthdr,
						POLICY_INGRESS, pkt.len);
			if (ret < 0)
				goto drop;
			state.proxy_port = bpf_htons(ret);
		}
		state.rev_nat_index = 0;
		state.backend_id = 0;
		state.src_sec_id = ids->src;
		ret = ct_create4(&tuple, &pkt, &state, 0, now);
		if (ret < 0)
			goto drop;
	} else if (ct == CT_REPLY && state.rev_nat_index) {
		ret = lb4_rev_nat(skb, l4_off, &tuple, state.rev_nat_index);
		if (ret < 0)
			goto drop;
	}

	/* A flow the ingress policy sends to the L7 proxy: its first packet
	 * (the entry just created says so) and its established ones.
	 */
	if (state.proxy_port && (ct == CT_NEW || ct == CT_ESTABLISHED))
		return ipv4_to_proxy(skb, bpf_ntohs(state.proxy_port), ep->ep_id, ids->src,
				     ep->sec_identity, ct, &pkt, METRIC_INGRESS);
	send_trace_notify(skb, TRACE_TO_LXC, ep->ep_id, ids->src, ep->sec_identity, ep->ep_id,
			  ep->ifindex, ct, ct == CT_NEW || (pkt.tcp_flags & TCP_FLAGS_REPORT));
	update_metrics(pkt.len, METRIC_INGRESS, REASON_FORWARDED);
	return bpf_redirect(ep->ifindex, 0);
drop:
	/* The entries the packet created on its way from a local pod
	 * (from-container, the egress stage) go with it.
	 */
	ct_delete_created4(&tuple, skb->cb[CB_CT_CREATED]);
	return ret;
}

SEC("tc")
int hoplab_to_container(struct __sk_buff *skb)
{
	struct drop_ids ids = {
		.src = skb->cb[CB_SRC_IDENTITY],
	};
	__u32 dst_ep_id = 0;
	int ret = handle_to_container(skb, &ids, &dst_ep_id);

	if (ret < 0)
		return send_drop_notify(skb, ids.src, ids.dst, dst_ep_id, ret, METRIC_INGRESS);
	return ret;
}

char __license[] SEC("license") = "Dual BSD/GPL";
