// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* bpf_netdev.c: the programs of the node's uplink (bond0).
 *
 *   from-netdev (tc ingress): the sender's identity from the ipcache
 *     (direct routing: by source IP, WORLD if unknown); a TCP or UDP packet
 *     for the node's address may be NodePort traffic (lib/nodeport.h: the
 *     reverse SNAT of a reply, or the DNAT of a request); a packet for a
 *     local endpoint is routed by the datapath (ipv4_local_delivery: TTL-1,
 *     MACs) and tail-called into that endpoint's to-container with the
 *     identity in skb->cb; anything else goes to the stack untouched.
 *   to-netdev (tc egress): the source identity from the endpoint map or the
 *     ipcache; NodePort connections are translated (lib/nodeport.h: SNAT of
 *     requests to remote backends, reverse DNAT of backends' replies); a
 *     trace event, and the packet leaves.
 *
 * Maps are shared with bpf_lxc.c: the loader replaces this object's maps
 * with the ones of the lxc object.
 */

#define __MAGIC_FILE__ FILE_BPF_NETDEV

#include "lib/common.h"
#include "lib/maps.h"
#include "lib/eth.h"
#include "lib/ipv4.h"
#include "lib/ipcache.h"
#include "lib/endpoint.h"
#include "lib/nodeport.h"
#include "lib/metrics.h"
#include "lib/trace.h"
#include "lib/drop.h"

static __always_inline int handle_ipv4_from_netdev(struct __sk_buff *skb, __u32 *src_id,
						   __u32 *dst_id)
{
	struct endpoint_info *ep;
	struct iphdr ip;
	__u32 l4_off;
	int ret;

	__be32 node_addr;

	ret = ipv4_load(skb, &ip, &l4_off);
	if (ret < 0)
		return ret;
	*src_id = resolve_identity4(ip.saddr);
	node_addr = nodeport_addr();
	if (node_addr && ip.daddr == node_addr &&
	    (ip.protocol == IPPROTO_TCP || ip.protocol == IPPROTO_UDP)) {
		ret = nodeport_from_netdev4(skb, &ip, l4_off, *src_id, dst_id);
		if (ret != NODEPORT_PASS)
			return ret;
	}
	send_trace_notify(skb, TRACE_FROM_NETWORK, 0, *src_id, 0, 0, skb->ifindex,
			  TRACE_REASON_UNKNOWN, 0);
	ep = lookup_ip4_endpoint(ip.daddr);
	if (!ep)
		return TC_ACT_OK;
	*dst_id = ep->sec_identity;
	return ipv4_local_delivery(skb, &ip, ep, *src_id, 0);
}

SEC("tc")
int hoplab_from_netdev(struct __sk_buff *skb)
{
	__u32 src_id = 0, dst_id = 0;
	__be16 proto;
	int ret;

	if (eth_load_proto(skb, &proto) < 0 || proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ret = handle_ipv4_from_netdev(skb, &src_id, &dst_id);
	if (ret < 0)
		return send_drop_notify(skb, src_id, dst_id, 0, ret, METRIC_INGRESS);
	return ret;
}

SEC("tc")
int hoplab_to_netdev(struct __sk_buff *skb)
{
	__u8 reason = TRACE_REASON_UNKNOWN;
	struct endpoint_info *ep;
	__u32 src_id, dst_id;
	__be32 node_addr;
	struct iphdr ip;
	__u32 l4_off;
	__be16 proto;
	int ret;

	if (eth_load_proto(skb, &proto) < 0 || proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ipv4_load(skb, &ip, &l4_off) < 0)
		return TC_ACT_OK;
	ep = lookup_ip4_endpoint(ip.saddr);
	src_id = ep ? ep->sec_identity : resolve_identity4(ip.saddr);
	dst_id = resolve_identity4(ip.daddr);
	node_addr = nodeport_addr();
	if (node_addr && ip.saddr != node_addr &&
	    (ip.protocol == IPPROTO_TCP || ip.protocol == IPPROTO_UDP)) {
		ret = nodeport_to_netdev4(skb, &ip, l4_off, ep != 0, node_addr, &reason);
		if (ret < 0)
			return send_drop_notify(skb, src_id, dst_id, 0, ret, METRIC_EGRESS);
	}
	send_trace_notify(skb, TRACE_TO_NETWORK, ep ? ep->ep_id : 0, src_id, dst_id, 0,
			  skb->ifindex, reason, 0);
	update_metrics(skb->len, METRIC_EGRESS, REASON_FORWARDED);
	return TC_ACT_OK;
}

char __license[] SEC("license") = "Dual BSD/GPL";
