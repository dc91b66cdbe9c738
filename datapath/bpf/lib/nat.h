// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* Source NAT to the node's address (Cilium's bpf/lib/nat.h, IPv4, for
 * NodePort connections to backends on other nodes).
 *
 * A translated connection has two entries in hoplab_snat_v4_external,
 * both keyed by a struct ct_key as the packets carry it on the wire:
 *
 *   TUPLE_F_OUT  client:cport -> backend:bport   to = node:nport  (XLATE_SRC)
 *   TUPLE_F_IN   backend:bport -> node:nport     to = client:cport (XLATE_DST)
 *
 * The egress entry rewrites the source of the connection's packets as
 * they leave (to-netdev), the ingress entry the destination of its
 * replies as they arrive (from-netdev). The port nport is allocated when
 * the first packet leaves: the client's own port when it lies in the NAT
 * range and is free, else a random one and its successors, at most
 * SNAT_COLLISION_RETRIES tries (unrolled: 4.19 has no loops). A port is
 * taken by inserting the ingress entry with BPF_NOEXIST, so two flows
 * never share one. Entries go with the LRU, as Cilium's do.
 */
#ifndef __HOPLAB_NAT_H
#define __HOPLAB_NAT_H

#include "common.h"
#include "conntrack.h"
#include "drop.h"
#include "maps.h"

/* Source ports of translated connections (Cilium's NODEPORT_PORT_MIN_NAT
 * and NODEPORT_PORT_MAX_NAT): above the nodePort range 30000-32767. The
 * range is a power of two, so a port is clamped into it with a mask.
 */
#define NAT_PORT_MIN 32768
#define NAT_PORT_MAX 65535
#define NAT_PORT_MASK (NAT_PORT_MAX - NAT_PORT_MIN)

/* Tries to find a free port (Cilium's SNAT_COLLISION_RETRIES). */
#define SNAT_COLLISION_RETRIES 16

static __always_inline struct nat_entry *snat_v4_lookup(const struct ct_key *key)
{
	return bpf_map_lookup_elem(&hoplab_snat_v4_external, key);
}

/* nat_clamp_port maps any number into the NAT port range. */
static __always_inline __u16 nat_clamp_port(__u32 v)
{
	return NAT_PORT_MIN + (v & NAT_PORT_MASK);
}

/* snat_v4_new_mapping allocates a port of addr for the connection of
 * otuple (its egress tuple, flags TUPLE_F_OUT), creates both entries and
 * returns the egress one in *ostate, or -DROP_NAT_NO_MAPPING when no free
 * port was found.
 */
static __always_inline int snat_v4_new_mapping(const struct ct_key *otuple, __be32 addr,
					       struct nat_entry *ostate, __u32 now)
{
	struct nat_entry rstate = {
		.created = now,
		.to_addr = otuple->saddr,
		.to_port = otuple->sport,
	};
	struct ct_key rtuple = {
		.daddr = addr,
		.saddr = otuple->daddr,
		.sport = otuple->dport,
		.nexthdr = otuple->nexthdr,
		.flags = TUPLE_F_IN,
	};
	__u16 port = bpf_ntohs(otuple->sport);
	int retries;

	if (port < NAT_PORT_MIN)
		port = nat_clamp_port(bpf_get_prandom_u32());
#pragma unroll
	for (retries = 0; retries < SNAT_COLLISION_RETRIES; retries++) {
		rtuple.dport = bpf_htons(port);
		if (bpf_map_update_elem(&hoplab_snat_v4_external, &rtuple, &rstate, BPF_NOEXIST) == 0)
			goto found;
		port = nat_clamp_port(retries ? (__u32)port + 1 : bpf_get_prandom_u32());
	}
	return -DROP_NAT_NO_MAPPING;
found:
	ostate->created = now;
	ostate->pad = 0;
	ostate->to_addr = addr;
	ostate->to_port = rtuple.dport;
	ostate->pad2 = 0;
	if (bpf_map_update_elem(&hoplab_snat_v4_external, otuple, ostate, BPF_ANY) < 0) {
		bpf_map_delete_elem(&hoplab_snat_v4_external, &rtuple);
		return -DROP_NAT_NO_MAPPING;
	}
	return 0;
}

#endif /* __HOPLAB_NAT_H */
