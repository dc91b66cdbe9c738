// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* Service load balancing: service lookup, per-flow backend selection pinned
 * in a connection-tracking service entry, DNAT to the backend and reverse
 * NAT of replies back to the service address.
 */
#ifndef __HOPLAB_LB_H
#define __HOPLAB_LB_H

#include "common.h"
#include "conntrack.h"
#include "csum.h"
#include "drop.h"
#include "ipv4.h"
#include "l4.h"
#include "maps.h"

/* lb4_service.flags of a master entry (Cilium's SVC_FLAG_*). */
#define SVC_F_NODEPORT 0x01 /* a NodePort frontend: the node's address and the nodePort (lib/nodeport.h) */

/* lb4_lookup_service returns the master entry of the service at key's
 * (address, dport, proto), or NULL.
 */
static __always_inline struct lb4_service *lb4_lookup_service(struct lb4_key *key)
{
	key->backend_slot = 0;
	key->scope = 0;
	return bpf_map_lookup_elem(&hoplab_lb4_services, key);
}

/* lb4_select_backend picks a slot uniformly at random for a new flow. */
static __always_inline __u32 lb4_select_backend_id(struct lb4_key *key,
						   const struct lb4_service *svc)
{
	struct lb4_service *slot_svc;

	key->backend_slot = (bpf_get_prandom_u32() % svc->count) + 1;
	slot_svc = bpf_map_lookup_elem(&hoplab_lb4_services, key);
	return slot_svc ? slot_svc->backend_id : 0;
}

/* lb4_rewrite replaces the address at addr_off and the port at port_off
 * (offset into the L4 header), with all checksums.
 */
static __always_inline int lb4_rewrite(struct __sk_buff *skb, __u8 proto, __u32 l4_off,
				       __u32 addr_off, __be32 old_addr, __be32 new_addr,
				       __u32 port_off, __be16 old_port, __be16 new_port)
{
	__u64 flags;
	__u32 csum_off = csum_l4_offset(proto, l4_off, &flags);
	int ret;

	ret = csum_l4_replace(skb, csum_off, old_addr, new_addr, flags, 4, 1);
	if (ret < 0)
		return ret;
	ret = csum_l3_replace4(skb, old_addr, new_addr);
	if (ret < 0)
		return ret;
	if (bpf_skb_store_bytes(skb, addr_off, &new_addr, sizeof(new_addr), 0) < 0)
		return -DROP_WRITE_ERROR;
	return l4_modify_port(skb, proto, l4_off, port_off, old_port, new_port);
}

/* lb4_local selects (or finds the pinned) backend of the flow in tuple,
 * DNATs the packet to it and updates tuple to the post-DNAT flow. The
 * chosen backend and the service's rev-NAT index are returned in state.
 * When it pins the backend in a new service entry, *created says so
 * (CT_CREATED_SVC_OF): the entry must go if the packet is dropped.
 */
static __always_inline int lb4_local(struct __sk_buff *skb, __u32 l4_off, struct ct_key *tuple,
				     const struct ct_pkt *pkt, struct lb4_key *key,
				     const struct lb4_service *svc, struct ct_state *state,
				     __u32 *created, __u32 now)
{
	struct lb4_backend *backend = 0;
	struct ct_entry *entry;
	__u32 backend_id = 0;
	struct ct_key skey = *tuple;
	int ret;

	if (svc->count == 0)
		return -DROP_NO_SERVICE;

	skey.flags = TUPLE_F_SERVICE;
	entry = bpf_map_lookup_elem(&hoplab_ct4_global, &skey);
	if (entry && entry->lifetime >= now && !ct_reopens(entry, &skey, pkt)) {
		__ct_refresh(entry, skey.nexthdr, pkt, now);
		backend_id = entry->backend_id;
		backend = bpf_map_lookup_elem(&hoplab_lb4_backends, &backend_id);
	}
	if (!backend) {
		/* New flow, or its backend is gone: pick one and pin it. */
		backend_id = lb4_select_backend_id(key, svc);
		backend = bpf_map_lookup_elem(&hoplab_lb4_backends, &backend_id);
		if (!backend)
			return -DROP_NO_SERVICE;
		state->backend_id = backend_id;
		state->rev_nat_index = svc->rev_nat_index;
		ret = ct_create4(&skey, pkt, state, CT_F_SERVICE, now);
		if (ret < 0)
			return ret;
		*created = CT_CREATED_SVC_OF(svc->rev_nat_index);
	}
	state->backend_id = backend_id;
	state->rev_nat_index = svc->rev_nat_index;

	ret = lb4_rewrite(skb, tuple->nexthdr, l4_off, IP_DADDR_OFF, tuple->daddr,
			  backend->address, 2, tuple->dport, backend->port);
	if (ret < 0)
		return ret;
	tuple->daddr = backend->address;
	tuple->dport = backend->port;
	return 0;
}

/* lb4_rev_nat rewrites the source of a reply from a backend (tuple is the
 * reply's) back to the service address and port of rev-NAT index. The
 * packet is delivered right after, so the tuple is left as it was.
 */
static __always_inline int lb4_rev_nat(struct __sk_buff *skb, __u32 l4_off,
				       const struct ct_key *tuple, __u16 index)
{
	struct lb4_reverse_nat *nat = bpf_map_lookup_elem(&hoplab_lb4_reverse_nat, &index);

	if (!nat)
		return 0;
	return lb4_rewrite(skb, tuple->nexthdr, l4_off, IP_SADDR_OFF, tuple->saddr, nat->address, 0,
			   tuple->sport, nat->port);
}

#endif /* __HOPLAB_LB_H */
