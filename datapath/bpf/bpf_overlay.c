// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* bpf_overlay.c: the program of the node's VXLAN device in tunnel mode
 * (lib/encap.h).
 *
 *   from-overlay (tc ingress of the VXLAN device: packets another node
 *     encapsulated, already decapsulated by the device)
 *     hoplab_from_overlay   the tunnel key; the sender's security identity
 *                           is its VNI (no ipcache lookup for it); a packet
 *                           for a local endpoint is routed by the datapath
 *                           (ipv4_local_delivery: TTL-1, MACs) and
 *                           tail-called into that endpoint's to-container
 *                           with the identity in skb->cb, where CT and
 *                           ingress policy work as in direct routing;
 *                           anything else goes to the stack.
 *
 * Maps are shared with bpf_lxc.c: the loader replaces this object's maps
 * with the ones of the lxc object.
 */

#define __MAGIC_FILE__ FILE_BPF_OVERLAY

#include "lib/common.h"
#include "lib/maps.h"
#include "lib/eth.h"
#include "lib/ipv4.h"
#include "lib/endpoint.h"
#include "lib/metrics.h"
#include "lib/trace.h"
#include "lib/drop.h"

static __always_inline int handle_ipv4_from_overlay(struct __sk_buff *skb, __u32 *src_id,
						    __u32 *dst_id)
{
	struct bpf_tunnel_key key = {};
	struct endpoint_info *ep;
	struct iphdr ip;
	__u32 l4_off;
	int ret;

	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) < 0)
		return -DROP_NO_TUNNEL_KEY;
	*src_id = key.tunnel_id;
	ret = ipv4_load(skb, &ip, &l4_off);
	if (ret < 0)
		return ret;
	send_trace_notify(skb, TRACE_FROM_OVERLAY, 0, *src_id, 0, 0, skb->ifindex,
			  TRACE_REASON_UNKNOWN, 0);
	/* Nodes encapsulate pods' packets only: no identity, or the host's,
	 * is not something a node sends (Cilium drops HOST_ID from the tunnel).
	 */
	if (*src_id == IDENTITY_UNKNOWN || *src_id == IDENTITY_HOST)
		return -DROP_INVALID_IDENTITY;
	ep = lookup_ip4_endpoint(ip.daddr);
	if (!ep) {
		/* The inner destination MAC is not the device's: without this
		 * the stack would take the packet for another host's.
		 */
		bpf_skb_change_type(skb, PACKET_HOST);
		return TC_ACT_OK;
	}
	*dst_id = ep->sec_identity;
	return ipv4_local_delivery(skb, &ip, ep, *src_id, 0);
}

SEC("tc")
int hoplab_from_overlay(struct __sk_buff *skb)
{
	__u32 src_id = 0, dst_id = 0;
	__be16 proto;
	int ret;

	if (eth_load_proto(skb, &proto) < 0 || proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ret = handle_ipv4_from_overlay(skb, &src_id, &dst_id);
	if (ret < 0)
		return send_drop_notify(skb, src_id, dst_id, 0, ret, METRIC_INGRESS);
	return ret;
}

char __license[] SEC("license") = "Dual BSD/GPL";
