// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* IPv4 header validation and L3 forwarding (TTL). */
#ifndef __HOPLAB_IPV4_H
#define __HOPLAB_IPV4_H

#include "common.h"
#include "csum.h"
#include "drop.h"

struct iphdr {
	__u8 ihl_version; /* version in the high nibble, IHL in the low */
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__sum16 check;
	__be32 saddr;
	__be32 daddr;
};

#define IP_TTL_OFF (ETH_HLEN + 8)
#define IP_SADDR_OFF (ETH_HLEN + 12)
#define IP_DADDR_OFF (ETH_HLEN + 16)
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

/* ipv4_load reads and validates the IPv4 header behind the Ethernet header
 * and returns the L4 offset in *l4_off. Everything the datapath later reads
 * lies inside the IP total length, which lies inside the packet.
 */
static __always_inline int ipv4_load(struct __sk_buff *skb, struct iphdr *ip, __u32 *l4_off)
{
	__u32 ihl, tot_len;

	if (skb_copy_bytes(skb, ETH_HLEN, ip, sizeof(*ip)) < 0)
		return -DROP_INVALID;
	ihl = (ip->ihl_version & 0x0f) * 4;
	tot_len = bpf_ntohs(ip->tot_len);
	if ((ip->ihl_version >> 4) != 4 || ihl < sizeof(*ip) || tot_len < ihl ||
	    skb->len < ETH_HLEN + tot_len)
		return -DROP_INVALID;
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return -DROP_FRAG_NOSUPPORT;
	*l4_off = ETH_HLEN + ihl;
	return 0;
}

/* ipv4_l4_fits reports whether len bytes of L4 header are inside the
 * datagram.
 */
static __always_inline int ipv4_l4_fits(const struct iphdr *ip, __u32 l4_off, __u32 len)
{
	return l4_off + len <= ETH_HLEN + (__u32)bpf_ntohs(ip->tot_len);
}

/* ipv4_dec_ttl decrements the TTL once, fixing the header checksum. The
 * caller has checked that ttl > 1.
 */
static __always_inline int ipv4_dec_ttl(struct __sk_buff *skb, struct iphdr *ip)
{
	__u8 new_ttl = ip->ttl - 1;
	/* The 16-bit word at offset 8 is {ttl, protocol}; in a little-endian
	 * register the raw memory order is protocol << 8 | ttl.
	 */
	__u16 from = ((__u16)ip->protocol << 8) | ip->ttl;
	__u16 to = ((__u16)ip->protocol << 8) | new_ttl;

	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, from, to, 2) < 0)
		return -DROP_CSUM_L3;
	if (bpf_skb_store_bytes(skb, IP_TTL_OFF, &new_ttl, 1, 0) < 0)
		return -DROP_WRITE_ERROR;
	ip->ttl = new_ttl;
	return 0;
}

#endif /* __HOPLAB_IPV4_H */
