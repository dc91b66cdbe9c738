//go:build ignore
/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* pkt_stack_offset: a packet offset, bounded, spilled to the stack and
 * reloaded, then added to skb->data. Kernels since 5.10 remember the
 * spilled bounds and load it; 4.19 reloads an unknown scalar and rejects
 * the addition ("math between pkt pointer and register with unbounded min
 * value is not allowed"), as it did with hoplab_to_container's l4_off.
 * pkt_stack_offset_rebound does the same but bounds the offset again after
 * the reload, which 4.19 accepts: it must not be reported. */
#include "compat.h"

struct __sk_buff_head {
	__u32 len, pkt_type, mark, queue_mapping, protocol, vlan_present, vlan_tci, vlan_proto,
		priority, ingress_ifindex, ifindex, tc_index, cb[5], hash, tc_classid;
	__u32 data, data_end;
};

static inline int read_at(struct __sk_buff_head *skb, __u64 off)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u8 *p = data + off;

	if ((void *)(p + 1) > end)
		return 0;
	return *p;
}

SEC("tc")
int pkt_stack_offset(struct __sk_buff_head *skb)
{
	volatile __u64 off = skb->len & 0x3f; /* spilled as a bounded 8-byte scalar */

	return read_at(skb, off); /* reloaded: unbounded on 4.19 */
}

SEC("tc")
int pkt_stack_offset_rebound(struct __sk_buff_head *skb)
{
	volatile __u64 off = skb->len & 0x3f;
	__u64 o = off;

	if (o > 0x3f) /* the bound, checked again after the reload */
		return 0;
	return read_at(skb, o);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
