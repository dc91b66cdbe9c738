// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* Redirection to the node's L7 proxy, the way Cilium 1.8 did it on 4.19
 * kernels, without TPROXY and without bpf_sk_assign (5.7): the program
 * marks the packet with MARK_MAGIC_TO_PROXY and the proxy port (upper 16
 * bits) and passes it to the stack (TC_ACT_OK). The agent's ip rule
 * "fwmark 0x200/0xf00 lookup 2004" finds "local 0.0.0.0/0 dev lo" in
 * table 2004, so the packet is delivered locally although its destination
 * is a pod's address, and the proxy's IP_TRANSPARENT socket on the
 * destination port takes it (vmtest/agent/proxy).
 *
 * A policy entry with a proxy port redirects the NEW flow it admits
 * (to-container at ingress, the egress stage at egress); the flow's CT
 * entry keeps the port, so its ESTABLISHED packets are redirected too.
 */
#ifndef __HOPLAB_PROXY_H
#define __HOPLAB_PROXY_H

#include "common.h"
#include "conntrack.h"
#include "metrics.h"
#include "trace.h"

#define MARK_MAGIC_TO_PROXY 0x0200 /* skb->mark magic: for the L7 proxy */
#define MARK_MAGIC_MASK 0x0F00     /* the bits of skb->mark the magic occupies */

/* ipv4_to_proxy hands a packet of a flow redirected to the proxy on
 * proxy_port (host order) to the stack, marked, with a to-proxy trace
 * whose dst_id is the proxy port (as Cilium's).
 */
static __always_inline int ipv4_to_proxy(struct __sk_buff *skb, __u16 proxy_port, __u16 ep_id,
					 __u32 src_id, __u32 dst_id, int ct,
					 const struct ct_pkt *pkt, __u8 dir)
{
	skb->mark = MARK_MAGIC_TO_PROXY | ((__u32)proxy_port << 16);
	send_trace_notify(skb, TRACE_TO_PROXY, ep_id, src_id, dst_id, proxy_port, skb->ifindex, ct,
			  ct == CT_NEW || (pkt->tcp_flags & TCP_FLAGS_REPORT));
	update_metrics(pkt->len, dir, REASON_FORWARDED);
	return TC_ACT_OK;
}

#endif /* __HOPLAB_PROXY_H */
