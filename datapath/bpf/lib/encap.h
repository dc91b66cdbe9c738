// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* VXLAN tunnel mode (Cilium's default routing mode). Each node has one
 * collect-metadata VXLAN device (UDP 8472); its ifindex in hoplab_config
 * turns tunnel mode on. A packet from a pod for a pod of another node is
 * not routed by the kernel: from-container gives it tunnel metadata (the
 * destination's node from the ipcache, the sender's security identity as
 * VNI) and redirects it to the VXLAN device, which encapsulates it. On the
 * receiving node, from-overlay (bpf_overlay.c) takes the identity from the
 * VNI.
 *
 * The inner packet is not routed on the encapsulating node: its TTL and
 * MACs go into the tunnel unchanged, and the receiving node's local
 * delivery decrements the TTL once (Cilium's behaviour). A pod on another
 * node sees TTL 63 (direct routing: 61, one less per router: the sending
 * node's kernel, the ToR, the receiving node's datapath). A packet with
 * TTL <= 1 is still dropped at from-container, as in direct routing.
 */
#ifndef __HOPLAB_ENCAP_H
#define __HOPLAB_ENCAP_H

#include "common.h"
#include "drop.h"
#include "ipcache.h"
#include "maps.h"
#include "trace.h"

/* Outer TTL of encapsulated packets (Cilium's IPDEFTTL). */
#define TUNNEL_TTL 64

/* tunnel_device returns the ifindex of the VXLAN device, 0 when tunnel
 * mode is off.
 */
static __always_inline __u32 tunnel_device(void)
{
	struct hoplab_config *cfg = config_get();

	return cfg ? cfg->tunnel_ifindex : 0;
}

/* encap_and_redirect4 sends a packet for daddr into the tunnel when tunnel
 * mode is on and the ipcache knows the node hosting daddr: tunnel key
 * (remote node, VNI = seclabel, the sender's identity), a to-overlay trace
 * and a redirect to the VXLAN device's egress. It returns TC_ACT_REDIRECT,
 * a negative drop code, or TC_ACT_OK when the packet is not for the tunnel
 * (tunnel mode off, daddr local to this node or outside the cluster); then
 * *dst_id is left alone. Otherwise *dst_id is daddr's identity.
 * UDP checksums of the outer header are left zero (BPF_F_ZERO_CSUM_TX), as
 * Cilium does.
 */
static __always_inline int encap_and_redirect4(struct __sk_buff *skb, __be32 daddr, __u32 seclabel,
					       __u32 *dst_id, __u16 ep_id, __u8 ct_reason, int report)
{
	struct remote_endpoint_info *info;
	struct bpf_tunnel_key key = {};
	__u32 ifindex = tunnel_device();

	if (!ifindex)
		return TC_ACT_OK;
	info = ipcache_lookup4(daddr);
	if (!info || !info->tunnel_endpoint)
		return TC_ACT_OK;
	*dst_id = info->sec_identity ? info->sec_identity : IDENTITY_WORLD;
	key.tunnel_id = seclabel;
	key.remote_ipv4 = bpf_ntohl(info->tunnel_endpoint);
	key.tunnel_ttl = TUNNEL_TTL;
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX) < 0)
		return -DROP_WRITE_ERROR;
	send_trace_notify(skb, TRACE_TO_OVERLAY, ep_id, seclabel, *dst_id, 0, ifindex, ct_reason,
			  report);
	return bpf_redirect(ifindex, 0);
}

#endif /* __HOPLAB_ENCAP_H */
