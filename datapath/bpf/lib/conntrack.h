// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* Connection tracking in one LRU hash for TCP, UDP and ICMP.
 *
 * An entry is keyed by the tuple of the packet that created it, as seen on
 * the wire, with the direction in which it was created in flags
 * (TUPLE_F_OUT at from-container, TUPLE_F_IN at to-container). A packet is
 * ESTABLISHED if its own tuple with the same direction exists, REPLY if the
 * reversed tuple exists with the opposite direction, NEW otherwise. Service
 * entries (TUPLE_F_SERVICE) are keyed by the pre-DNAT tuple and pin the
 * backend of a flow: from-container looks a flow's service entry up before
 * anything else and takes backend and rev-NAT index from it, so the service
 * map is consulted once per connection (and again only when the pinned
 * backend is removed from the backend map, which the lookup of the backend
 * by its id detects). Expired entries count as missing and are overwritten.
 *
 * A dropped packet leaves no CT entry: the checks that may drop a NEW
 * connection come before its egress entry is created (egress policy, TTL),
 * and a program that drops a packet after an entry was created for it
 * (from-container after pinning a backend, the egress stage, to-container
 * on a local destination's ingress policy) deletes the entries the packet
 * created on its way, which reach it in skb->cb[CB_CT_CREATED] across tail
 * calls (ct_delete_created4).
 */
#ifndef __HOPLAB_CONNTRACK_H
#define __HOPLAB_CONNTRACK_H

#include "common.h"
#include "drop.h"
#include "ipv4.h"
#include "l4.h"
#include "maps.h"

/* Tuple flags (Cilium's TUPLE_F_*). */
#define TUPLE_F_OUT 0
#define TUPLE_F_IN 1
#define TUPLE_F_RELATED 2
#define TUPLE_F_SERVICE 4

#define CT_EGRESS TUPLE_F_OUT
#define CT_INGRESS TUPLE_F_IN

/* Lookup results; equal to the TRACE_REASON_* values. */
#define CT_NEW 0
#define CT_ESTABLISHED 1
#define CT_REPLY 2
#define CT_RELATED 3

/* The CT entries a packet created (skb->cb[CB_CT_CREATED]): CT_CREATED_*
 * in the low 16 bits and, with CT_CREATED_SVC, the service's rev-NAT index
 * in the high 16.
 */
#define CT_CREATED_OUT 1 /* the egress entry of the packet's tuple */
#define CT_CREATED_SVC 2 /* the service entry of its pre-DNAT tuple */
#define CT_CREATED_SVC_OF(rev_nat_index) (CT_CREATED_SVC | ((__u32)(rev_nat_index) << 16))

/* Entry flags. */
#define CT_F_RX_CLOSING 0x0001
#define CT_F_TX_CLOSING 0x0002
#define CT_F_SEEN_NON_SYN 0x0004
#define CT_F_SERVICE 0x0008
#define CT_F_NODEPORT 0x0010 /* a NodePort connection (lib/nodeport.h), keyed by its post-DNAT tuple */

/* Lifetimes in seconds (Cilium's defaults). */
#define CT_LIFETIME_TCP 21600
#define CT_LIFETIME_NONTCP 60
#define CT_SYN_TIMEOUT 60
#define CT_CLOSE_TIMEOUT 10

/* Per-packet facts connection tracking needs besides the tuple. */
struct ct_pkt {
	__u32 len;
	__u8 tcp_flags;
	__u8 has_related; /* ICMP error: related holds the quoted flow */
	struct ct_key related;
};

/* What a lookup found, and what a create stores. */
struct ct_state {
	__u16 rev_nat_index;
	__be16 proxy_port; /* not 0: the flow goes to the L7 proxy (lib/proxy.h) */
	__u32 backend_id;
	__u32 src_sec_id;
	__be32 backend_addr; /* a service entry's backend (ct_create4 only) */
	__be16 backend_port;
};

/* bpf_mono_now is CLOCK_MONOTONIC in seconds. The object calls
 * bpf_ktime_get_ns (4.1); the loader rewrites the call to
 * bpf_ktime_get_coarse_ns (5.11) when the kernel has it, because a precise
 * clock read is a large part of a packet's cost and seconds need no
 * precision.
 */
static __always_inline __u32 bpf_mono_now(void)
{
	return bpf_ktime_get_ns() / 1000000000ULL;
}

/* ct_extract_related4 reads the flow quoted by an ICMP error (the IPv4
 * header and first 8 bytes of the packet that caused it) into pkt->related.
 * Quoted headers with options or without ports are ignored: the error is
 * then tracked as a plain ICMP packet.
 */
static __always_inline void ct_extract_related4(struct __sk_buff *skb, const struct iphdr *ip,
						__u32 l4_off, struct ct_pkt *pkt)
{
	struct {
		struct iphdr ip;
		__be16 sport;
		__be16 dport;
	} q;

	if (!ipv4_l4_fits(ip, l4_off, ICMP_HLEN + sizeof(q)) ||
	    skb_copy_bytes(skb, l4_off + ICMP_HLEN, &q, sizeof(q)) < 0)
		return;
	if (q.ip.ihl_version != 0x45 ||
	    (q.ip.protocol != IPPROTO_TCP && q.ip.protocol != IPPROTO_UDP))
		return;
	pkt->related.daddr = q.ip.daddr;
	pkt->related.saddr = q.ip.saddr;
	pkt->related.dport = q.dport;
	pkt->related.sport = q.sport;
	pkt->related.nexthdr = q.ip.protocol;
	pkt->related.flags = 0;
	pkt->related.pad = 0;
	pkt->has_related = 1;
}

/* ct_extract_tuple4 fills the tuple from the packet. ICMP echo uses the
 * identifier as source port of requests and destination port of replies so
 * that a reply is the reversed tuple of its request.
 */
static __always_inline int ct_extract_tuple4(struct __sk_buff *skb, const struct iphdr *ip,
					     __u32 l4_off, struct ct_key *tuple, struct ct_pkt *pkt)
{
	tuple->daddr = ip->daddr;
	tuple->saddr = ip->saddr;
	tuple->nexthdr = ip->protocol;
	tuple->flags = 0;
	tuple->pad = 0;
	tuple->sport = 0;
	tuple->dport = 0;
	pkt->len = skb->len;
	pkt->tcp_flags = 0;
	pkt->has_related = 0;

	switch (ip->protocol) {
	case IPPROTO_TCP: {
		struct tcp_head th;

		if (!ipv4_l4_fits(ip, l4_off, TCP_HLEN) ||
		    skb_copy_bytes(skb, l4_off, &th, sizeof(th)) < 0 || (th.doff >> 4) < 5)
			return -DROP_CT_INVALID_HDR;
		tuple->sport = th.sport;
		tuple->dport = th.dport;
		pkt->tcp_flags = th.flags;
		return 0;
	}
	case IPPROTO_UDP: {
		struct udp_head uh;

		if (!ipv4_l4_fits(ip, l4_off, UDP_HLEN) ||
		    skb_copy_bytes(skb, l4_off, &uh, sizeof(uh)) < 0)
			return -DROP_CT_INVALID_HDR;
		tuple->sport = uh.sport;
		tuple->dport = uh.dport;
		return 0;
	}
	case IPPROTO_ICMP: {
		struct icmp_head ih;

		if (!ipv4_l4_fits(ip, l4_off, ICMP_HLEN) ||
		    skb_copy_bytes(skb, l4_off, &ih, sizeof(ih)) < 0)
			return -DROP_CT_INVALID_HDR;
		if (ih.type == ICMP_ECHO)
			tuple->sport = ih.id;
		else if (ih.type == ICMP_ECHOREPLY)
			tuple->dport = ih.id;
		else if (ih.type == ICMP_DEST_UNREACH || ih.type == ICMP_TIME_EXCEEDED ||
			 ih.type == ICMP_PARAMETERPROB)
			ct_extract_related4(skb, ip, l4_off, pkt);
		return 0;
	}
	default:
		return -DROP_CT_UNKNOWN_PROTO;
	}
}

/* ct_reopens reports whether a TCP SYN restarts a closing connection. */
static __always_inline int ct_reopens(const struct ct_entry *entry, const struct ct_key *tuple,
				      const struct ct_pkt *pkt)
{
	return tuple->nexthdr == IPPROTO_TCP &&
	       (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN &&
	       (entry->flags & (CT_F_RX_CLOSING | CT_F_TX_CLOSING));
}

/* ct_lifetime returns the lifetime an entry gets after this packet. */
static __always_inline __u32 ct_lifetime(__u8 nexthdr, __u16 flags)
{
	if (nexthdr != IPPROTO_TCP)
		return CT_LIFETIME_NONTCP;
	if (flags & (CT_F_RX_CLOSING | CT_F_TX_CLOSING))
		return CT_CLOSE_TIMEOUT;
	if (flags & CT_F_SEEN_NON_SYN)
		return CT_LIFETIME_TCP;
	return CT_SYN_TIMEOUT;
}

/* __ct_update accounts a packet to a live entry, in the tuple's direction
 * or as a reply, and moves the TCP state along.
 */
static __always_inline void __ct_update(struct ct_entry *entry, __u8 nexthdr,
					const struct ct_pkt *pkt, int reply, __u32 now)
{
	__u16 flags = entry->flags;

	__u32 lifetime;

	/* Only write what changed: the entry's cache line is shared by all
	 * CPUs handling the flow.
	 */
	if (reply) {
		__sync_fetch_and_add(&entry->rx_packets, 1);
		__sync_fetch_and_add(&entry->rx_bytes, pkt->len);
		if ((entry->rx_flags_seen | pkt->tcp_flags) != entry->rx_flags_seen)
			entry->rx_flags_seen |= pkt->tcp_flags;
	} else {
		__sync_fetch_and_add(&entry->tx_packets, 1);
		__sync_fetch_and_add(&entry->tx_bytes, pkt->len);
		if ((entry->tx_flags_seen | pkt->tcp_flags) != entry->tx_flags_seen)
			entry->tx_flags_seen |= pkt->tcp_flags;
	}
	if (nexthdr == IPPROTO_TCP) {
		if (pkt->tcp_flags & TCP_FLAG_RST)
			flags |= CT_F_RX_CLOSING | CT_F_TX_CLOSING;
		else if (pkt->tcp_flags & TCP_FLAG_FIN)
			flags |= reply ? CT_F_RX_CLOSING : CT_F_TX_CLOSING;
		if (!(pkt->tcp_flags & TCP_FLAG_SYN))
			flags |= CT_F_SEEN_NON_SYN;
		if (flags != entry->flags)
			entry->flags = flags;
	}
	lifetime = now + ct_lifetime(nexthdr, flags);
	if (lifetime != entry->lifetime)
		entry->lifetime = lifetime;
}

/* __ct_refresh extends a live service entry without counting: the packet is
 * counted once, in the connection's own entry.
 */
static __always_inline void __ct_refresh(struct ct_entry *entry, __u8 nexthdr,
					 const struct ct_pkt *pkt, __u32 now)
{
	__u16 flags = entry->flags;
	__u32 lifetime;

	if (nexthdr == IPPROTO_TCP) {
		if (pkt->tcp_flags & TCP_FLAG_RST)
			flags |= CT_F_RX_CLOSING | CT_F_TX_CLOSING;
		else if (pkt->tcp_flags & TCP_FLAG_FIN)
			flags |= CT_F_TX_CLOSING;
		if (!(pkt->tcp_flags & TCP_FLAG_SYN))
			flags |= CT_F_SEEN_NON_SYN;
		if (flags != entry->flags)
			entry->flags = flags;
	}
	lifetime = now + ct_lifetime(nexthdr, flags);
	if (lifetime != entry->lifetime)
		entry->lifetime = lifetime;
}

/* __ct_lookup finds a live entry for key and accounts the packet to it. */
static __always_inline struct ct_entry *__ct_lookup(const struct ct_key *key,
						    const struct ct_pkt *pkt, int reply, __u32 now)
{
	struct ct_entry *entry = bpf_map_lookup_elem(&hoplab_ct4_global, key);

	if (!entry || entry->lifetime < now || ct_reopens(entry, key, pkt))
		return 0;
	__ct_update(entry, key->nexthdr, pkt, reply, now);
	return entry;
}

/* ct_lookup_service4 finds the live service entry of a flow (tuple is its
 * pre-DNAT tuple; tuple->flags is set to TUPLE_F_SERVICE) and refreshes
 * it, without counting the packet (its own entry does). NULL if there is
 * none, it expired, or a SYN reopens a closing connection, which is then
 * load-balanced anew.
 */
static __always_inline struct ct_entry *ct_lookup_service4(struct ct_key *tuple,
							   const struct ct_pkt *pkt, __u32 now)
{
	struct ct_entry *entry;

	tuple->flags = TUPLE_F_SERVICE;
	entry = bpf_map_lookup_elem(&hoplab_ct4_global, tuple);
	if (!entry || entry->lifetime < now || ct_reopens(entry, tuple, pkt))
		return 0;
	__ct_refresh(entry, tuple->nexthdr, pkt, now);
	return entry;
}

static __always_inline void ct_state_fill(struct ct_state *state, const struct ct_entry *entry)
{
	state->rev_nat_index = entry->rev_nat_index;
	state->backend_id = entry->backend_id;
	state->src_sec_id = entry->src_sec_id;
	state->proxy_port = entry->proxy_port;
}

/* ct_lookup4 classifies the packet as CT_NEW, CT_ESTABLISHED, CT_REPLY or
 * CT_RELATED (an ICMP error about a tracked flow: the quoted packet went the
 * other way, so its tuple is looked up with the opposite direction) for the
 * given direction (CT_EGRESS or CT_INGRESS); tuple->flags is set to dir.
 */
static __always_inline int ct_lookup4(struct ct_key *tuple, int dir, struct ct_pkt *pkt,
				      struct ct_state *state, __u32 now)
{
	struct ct_entry *entry;
	struct ct_key rev;

	if (pkt->has_related) {
		struct ct_key *rel = &pkt->related;

		rel->flags = dir == CT_EGRESS ? CT_INGRESS : CT_EGRESS;
		entry = bpf_map_lookup_elem(&hoplab_ct4_global, rel);
		if (entry && entry->lifetime >= now) {
			ct_state_fill(state, entry);
			return CT_RELATED;
		}
	}
	tuple->flags = dir;
	entry = __ct_lookup(tuple, pkt, 0, now);
	if (entry) {
		ct_state_fill(state, entry);
		return CT_ESTABLISHED;
	}
	rev.daddr = tuple->saddr;
	rev.saddr = tuple->daddr;
	rev.dport = tuple->sport;
	rev.sport = tuple->dport;
	rev.nexthdr = tuple->nexthdr;
	rev.flags = dir == CT_EGRESS ? CT_INGRESS : CT_EGRESS;
	rev.pad = 0;
	entry = __ct_lookup(&rev, pkt, 1, now);
	if (entry) {
		ct_state_fill(state, entry);
		return CT_REPLY;
	}
	return CT_NEW;
}

/* ct_create4 creates (or replaces) the entry for tuple, counting the packet
 * that created it.
 */
static __always_inline int ct_create4(const struct ct_key *tuple, const struct ct_pkt *pkt,
				      const struct ct_state *state, __u16 flags, __u32 now)
{
	struct ct_entry entry = {
		.tx_packets = 1,
		.tx_bytes = pkt->len,
		.flags = flags,
		.rev_nat_index = state->rev_nat_index,
		.backend_id = state->backend_id,
		.src_sec_id = state->src_sec_id,
		.tx_flags_seen = pkt->tcp_flags,
		.proxy_port = state->proxy_port,
		.created = now,
		.backend_addr = state->backend_addr,
		.backend_port = state->backend_port,
	};

	if (tuple->nexthdr == IPPROTO_TCP && !(pkt->tcp_flags & TCP_FLAG_SYN))
		entry.flags |= CT_F_SEEN_NON_SYN;
	entry.lifetime = now + ct_lifetime(tuple->nexthdr, entry.flags);
	if (bpf_map_update_elem(&hoplab_ct4_global, tuple, &entry, BPF_ANY) < 0)
		return -DROP_CT_CREATE_FAILED;
	return 0;
}

/* ct_delete4 deletes the entry for tuple, if there is one. */
static __always_inline void ct_delete4(const struct ct_key *tuple)
{
	bpf_map_delete_elem(&hoplab_ct4_global, tuple);
}

/* ct_delete_created4 deletes the entries a packet that is being dropped
 * created (created as in skb->cb[CB_CT_CREATED]); tuple is the packet's,
 * before or after DNAT. A service entry is keyed by the pre-DNAT tuple,
 * whose destination is the service's frontend: the address and port the
 * rev-NAT map holds for its index.
 */
static __always_inline void ct_delete_created4(const struct ct_key *tuple, __u32 created)
{
	struct lb4_reverse_nat *nat;
	struct ct_key key = *tuple;
	__u16 rev_nat_index = created >> 16;

	if (created & CT_CREATED_OUT) {
		key.flags = TUPLE_F_OUT;
		ct_delete4(&key);
	}
	if (!(created & CT_CREATED_SVC))
		return;
	nat = bpf_map_lookup_elem(&hoplab_lb4_reverse_nat, &rev_nat_index);
	if (!nat)
		return;
	key.daddr = nat->address;
	key.dport = nat->port;
	key.flags = TUPLE_F_SERVICE;
	ct_delete4(&key);
}

#endif /* __HOPLAB_CONNTRACK_H */
