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

/* lb4_csum_replace4 returns an IPv4 header checksum updated for a 4-byte
 * change from -> to (RFC 1624, eqn. 3); the 16-bit words are summed in the
 * byte order they were loaded in, as the kernel's csum_replace4 does.
 */
static __always_inline __sum16 lb4_csum_replace4(__sum16 check, __be32 from, __be32 to)
{
	__u32 sum = (__u16)~check;

	sum += (~from & 0xffff) + (~from >> 16) + (to & 0xffff) + (to >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__sum16)~sum;
}

/* lb4_rewrite replaces the address at addr_off and the port at port_off
 * (offset into the L4 header), with all checksums. The L4 checksum goes
 * through the kernel helpers, which know how the skb carries it
 * (CHECKSUM_PARTIAL, CHECKSUM_COMPLETE); the address, the IPv4 header
 * checksum and the port are then written straight into the packet when
 * the headers lie in its linear part, as they do for every packet a pod
 * sends, else through bpf_skb_store_bytes.
 */
static __always_inline int lb4_rewrite(struct __sk_buff *skb, __u8 proto, __u32 l4_off,
				       __u32 addr_off, __be32 old_addr, __be32 new_addr,
				       __u32 port_off, __be16 old_port, __be16 new_port)
{
	__u64 flags;
	__u32 csum_off = csum_l4_offset(proto, l4_off, &flags);
	__u64 off = l4_off + port_off;
	void *data, *data_end;
	struct iphdr *ip;
	int ret;

	ret = csum_l4_replace(skb, csum_off, old_addr, new_addr, flags, 4, 1);
	if (ret < 0)
		return ret;
	if (old_port != new_port) {
		ret = csum_l4_replace(skb, csum_off, old_port, new_port, flags, 2, 0);
		if (ret < 0)
			return ret;
	}
	/* After the helpers: they invalidate packet pointers. off is
	 * re-bounded here, after any reload (see skb_copy_bytes).
	 */
	pkt_off_opaque(off);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	ip = data + ETH_HLEN;
	if ((void *)(ip + 1) <= data_end && off <= PKT_DIRECT_MAX_OFF &&
	    data + off + sizeof(new_port) <= data_end) {
		*(__be32 *)(data + addr_off) = new_addr;
		ip->check = lb4_csum_replace4(ip->check, old_addr, new_addr);
		*(__be16 *)(data + off) = new_port;
		return 0;
	}
	ret = csum_l3_replace4(skb, old_addr, new_addr);
	if (ret < 0)
		return ret;
	if (bpf_skb_store_bytes(skb, addr_off, &new_addr, sizeof(new_addr), 0) < 0)
		return -DROP_WRITE_ERROR;
	if (old_port != new_port &&
	    bpf_skb_store_bytes(skb, l4_off + port_off, &new_port, sizeof(new_port), 0) < 0)
		return -DROP_WRITE_ERROR;
	return 0;
}

/* lb4_dnat rewrites the destination of the flow in tuple to backend and
 * updates tuple to the post-DNAT flow.
 */
static __always_inline int lb4_dnat(struct __sk_buff *skb, __u32 l4_off, struct ct_key *tuple,
				    const struct lb4_backend *backend)
{
	__be32 addr = backend->address;
	__be16 port = backend->port;
	int ret;

	ret = lb4_rewrite(skb, tuple->nexthdr, l4_off, IP_DADDR_OFF, tuple->daddr, addr, 2,
			  tuple->dport, port);
	if (ret < 0)
		return ret;
	tuple->daddr = addr;
	tuple->dport = port;
	return 0;
}

/* lb4_lookup_pinned finds the backend a flow (tuple: pre-DNAT; its flags
 * are set to TUPLE_F_SERVICE) is pinned to by its live service entry and
 * copies its address and port to *backend, the entry's backend id and
 * rev-NAT index to state; 0 for a new flow (no live entry), 1 if found.
 * The entry keeps the backend's address and port, so neither the service
 * map, nor the backend map, nor policy is consulted: an established
 * connection keeps its backend for its life, Cilium's once-per-connection
 * service lookup. The agent deletes the service entries pinned to a
 * backend it removes or changes (BackendMap.Delete, Upsert), so that such
 * a flow is load-balanced anew on its next packet.
 */
static __always_inline int lb4_lookup_pinned(struct ct_key *tuple, const struct ct_pkt *pkt,
					     struct ct_state *state, struct lb4_backend *backend,
					     __u32 now)
{
	struct ct_entry *entry = ct_lookup_service4(tuple, pkt, now);

	if (!entry || !entry->backend_addr)
		return 0;
	backend->address = entry->backend_addr;
	backend->port = entry->backend_port;
	state->backend_id = entry->backend_id;
	state->rev_nat_index = entry->rev_nat_index;
	return 1;
}

/* lb4_select selects a backend of svc for a flow that has none (new, or
 * its backend is gone), pins it in a new service entry for the pre-DNAT
 * tuple, DNATs the packet to it and updates tuple to the post-DNAT flow.
 * The backend and the service's rev-NAT index are returned in state, and
 * *created says that the service entry must go if the packet is dropped
 * (CT_CREATED_SVC_OF).
 */
static __always_inline int lb4_select(struct __sk_buff *skb, __u32 l4_off, struct ct_key *tuple,
				      const struct ct_pkt *pkt, struct lb4_key *key,
				      const struct lb4_service *svc, struct ct_state *state,
				      __u32 *created, __u32 now)
{
	struct lb4_backend *backend;
	struct ct_key skey = *tuple;
	__u32 backend_id;
	int ret;

	if (svc->count == 0)
		return -DROP_NO_SERVICE;
	backend_id = lb4_select_backend_id(key, svc);
	backend = bpf_map_lookup_elem(&hoplab_lb4_backends, &backend_id);
	if (!backend)
		return -DROP_NO_SERVICE;
	state->backend_id = backend_id;
	state->rev_nat_index = svc->rev_nat_index;
	state->backend_addr = backend->address;
	state->backend_port = backend->port;
	skey.flags = TUPLE_F_SERVICE;
	ret = ct_create4(&skey, pkt, state, CT_F_SERVICE, now);
	if (ret < 0)
		return ret;
	*created = CT_CREATED_SVC_OF(svc->rev_nat_index);
	return lb4_dnat(skb, l4_off, tuple, backend);
}

/* lb4_local load-balances a flow to the service svc: its pinned backend
 * (lb4_lookup_pinned) or a new one (lb4_select), DNAT, tuple updated to
 * the post-DNAT flow, the backend and the service's rev-NAT index in
 * state, *created as lb4_select sets it.
 */
static __always_inline int lb4_local(struct __sk_buff *skb, __u32 l4_off, struct ct_key *tuple,
				     const struct ct_pkt *pkt, struct lb4_key *key,
				     const struct lb4_service *svc, struct ct_state *state,
				     __u32 *created, __u32 now)
{
	struct lb4_backend backend;

	if (svc->count == 0)
		return -DROP_NO_SERVICE;
	if (!lb4_lookup_pinned(tuple, pkt, state, &backend, now))
		return lb4_select(skb, l4_off, tuple, pkt, key, svc, state, created, now);
	state->rev_nat_index = svc->rev_nat_index;
	return lb4_dnat(skb, l4_off, tuple, &backend);
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
