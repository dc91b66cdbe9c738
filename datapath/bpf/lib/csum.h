// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* Incremental checksum updates (RFC 1624) through the kernel helpers, which
 * also keep skb->csum right for CHECKSUM_COMPLETE and respect
 * CHECKSUM_PARTIAL (BPF_F_PSEUDO_HDR).
 */
#ifndef __HOPLAB_CSUM_H
#define __HOPLAB_CSUM_H

#include "common.h"
#include "drop.h"

#define IP_CSUM_OFF (ETH_HLEN + 10)
#define TCP_CSUM_OFF 16
#define UDP_CSUM_OFF 6

/* csum_l4_offset returns the offset of the L4 checksum and the helper flags
 * for proto; a UDP checksum of zero means "none" and stays zero.
 */
static __always_inline __u32 csum_l4_offset(__u8 proto, __u32 l4_off, __u64 *flags)
{
	if (proto == IPPROTO_UDP) {
		*flags = BPF_F_MARK_MANGLED_0;
		return l4_off + UDP_CSUM_OFF;
	}
	*flags = 0;
	return l4_off + TCP_CSUM_OFF;
}

/* csum_l3_replace4 updates the IPv4 header checksum for a 4-byte change. */
static __always_inline int csum_l3_replace4(struct __sk_buff *skb, __be32 from, __be32 to)
{
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, from, to, 4) < 0)
		return -DROP_CSUM_L3;
	return 0;
}

/* csum_l4_replace updates an L4 checksum; size is 2 or 4, pseudo marks a
 * change of a pseudo-header field (an IP address).
 */
static __always_inline int csum_l4_replace(struct __sk_buff *skb, __u32 off, __u64 from, __u64 to,
					   __u64 flags, __u64 size, int pseudo)
{
	if (pseudo)
		flags |= BPF_F_PSEUDO_HDR;
	if (bpf_l4_csum_replace(skb, off, from, to, flags | size) < 0)
		return -DROP_CSUM_L4;
	return 0;
}

#endif /* __HOPLAB_CSUM_H */
