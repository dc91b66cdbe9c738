// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* Ethernet header access. */
#ifndef __HOPLAB_ETH_H
#define __HOPLAB_ETH_H

#include "common.h"
#include "drop.h"

struct ethhdr {
	__u8 h_dest[ETH_ALEN];
	__u8 h_source[ETH_ALEN];
	__be16 h_proto;
} __attribute__((packed));

/* eth_load_proto reads the EtherType; frames shorter than an Ethernet
 * header return -1.
 */
static __always_inline int eth_load_proto(struct __sk_buff *skb, __be16 *proto)
{
	return skb_copy_bytes(skb, 12, proto, sizeof(*proto));
}

/* eth_store_addrs rewrites destination and source MAC. */
static __always_inline int eth_store_addrs(struct __sk_buff *skb, const __u8 *dst, const __u8 *src)
{
	__u8 addrs[2 * ETH_ALEN];

	__builtin_memcpy(&addrs[0], dst, ETH_ALEN);
	__builtin_memcpy(&addrs[ETH_ALEN], src, ETH_ALEN);
	if (bpf_skb_store_bytes(skb, 0, addrs, sizeof(addrs), 0) < 0)
		return -DROP_WRITE_ERROR;
	return 0;
}

#endif /* __HOPLAB_ETH_H */
