// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* Socket-level load balancing (Cilium's socket LB, bpf_sock.c): a socket
 * that connect()s or sendmsg()s to a Service VIP:port is pointed at a
 * backend before any packet exists, so the packets it sends are addressed
 * to the backend from the start and from-container has no DNAT to do.
 *
 *   connect4 / sendmsg4   service lookup in hoplab_lb4_services (the maps of
 *                         the tc path), a backend slot at random as
 *                         lb4_select_backend_id picks it, the destination
 *                         rewritten; every translation recorded per socket
 *                         cookie in hoplab_sock4_xlate for user space (4.19's
 *                         sock_addr programs cannot call
 *                         bpf_perf_event_output); for UDP the reverse
 *                         translation (cookie, backend) -> VIP in
 *                         hoplab_sock4_reverse
 *   recvmsg4              (5.2, 4.19.57 in stable) the source of a UDP
 *                         reply is reported as the VIP:port the socket sent to
 *
 * Without recvmsg4 the reverse translation happens on the wire instead:
 * the cgroup's egress program (cgroup_skb/egress, 4.10) sees each UDP
 * datagram with its socket and its complete tuple, and for one that
 * sendmsg4 translated records the flow in hoplab_sock4_udp_flows;
 * from-container gives a new flow found there the service's rev-NAT index
 * in its CT entry, so to-container reverse-NATs the replies as it does
 * for the tc path's own DNAT (sock4_udp_flow_rev_nat).
 *
 * The maps are defined here, not in maps.h: only bpf_sock.c and bpf_lxc.c
 * use them, and the loader shares the lxc object's with bpf_sock.c.
 */
#ifndef __HOPLAB_SOCK_H
#define __HOPLAB_SOCK_H

#include "common.h"
#include "lb.h"
#include "maps.h"

#define SOCK_MAP_SIZE 65536

/* Return values of sock_addr programs: 0 fails the system call with EPERM
 * (4.19 has no bpf_set_retval), 1 lets it proceed.
 */
#define SYS_REJECT 0
#define SYS_PROCEED 1

/* struct bpf_sock_addr in 4.19's layout (60 bytes; 5.3 appended sk). 4.19
 * allows 4-byte reads of every field, narrower reads of the address fields
 * only, and 4-byte writes of user_ip4, user_ip6, user_port and msg_src_*.
 * Ports are in network byte order in the low 16 bits.
 */
struct bpf_sock_addr {
	__u32 user_family;
	__u32 user_ip4;
	__u32 user_ip6[4];
	__u32 user_port;
	__u32 family;
	__u32 type;
	__u32 protocol;
	__u32 msg_src_ip4;
	__u32 msg_src_ip6[4];
};

/* bpf_get_socket_cookie (46): the socket's cookie, the number
 * getsockopt(SO_COOKIE) gives user space; for sock_addr programs in 4.19,
 * for cgroup skb programs since 4.12.
 */
static __u64 (*bpf_get_socket_cookie)(void *ctx) = (void *)46;

/* sock_ctx_read reads a field of struct bpf_sock_addr with a 4-byte load:
 * clang narrows a load whose value it truncates ((__be16)ctx->user_port
 * would become a 2-byte load), which 4.19 rejects for user_port,
 * protocol and type. datapath/compat's ctx-access rule checks this.
 */
#define sock_ctx_read(ctx, field) (*(volatile __u32 *)&(ctx)->field)

/* __probed marks a program the loader loads only where a probe found its
 * hook; datapath/compat then lets its attach type be newer than 4.19
 * (compat.ProbedTag). The other 4.19 rules still hold: 4.19.57 and later
 * have recvmsg4.
 */
#define __probed(feature) __attribute__((btf_decl_tag("hoplab:probed:" feature)))

/* Hooks, as recorded in struct sock4_xlate and struct sock4_reverse. */
#define SOCK_HOOK_CONNECT4 1
#define SOCK_HOOK_SENDMSG4 2

/* struct sock4_xlate flags. */
#define SOCK_XLATE_F_NO_BACKEND 1 /* the service had no backend: the call failed (EPERM) */

/* The last translation of a socket, keyed by its cookie. */
struct sock4_xlate {
	__u64 ktime;        /* bpf_ktime_get_ns at the translation */
	__be32 vip;         /* the address and port the socket asked for */
	__be32 backend;     /* where it was sent instead (0 with NO_BACKEND) */
	__be16 vport;
	__be16 backend_port;
	__u32 backend_id;
	__u16 rev_nat_index;
	__u8 proto;         /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 hook;          /* SOCK_HOOK_* */
	__u8 flags;         /* SOCK_XLATE_F_* */
	__u8 pad[3];
};

/* Reverse translation key: a UDP socket and a backend it was sent to
 * (Cilium's ipv4_revnat_tuple).
 */
struct sock4_reverse_key {
	__u64 cookie;
	__be32 address;
	__be16 port;
	__u16 pad;
};

/* Reverse translation: the service a backend stands for, for a socket
 * (recvmsg4) or, in hoplab_sock4_udp_flows, for a flow (the 4.19
 * fallback).
 */
struct sock4_reverse {
	__be32 address;
	__be16 port;
	__u16 rev_nat_index;
	__u8 hook; /* SOCK_HOOK_* that made it */
	__u8 pad[3];
};

/* Translations by socket cookie, for user space. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u64);
	__type(value, struct sock4_xlate);
	__uint(max_entries, SOCK_MAP_SIZE);
} hoplab_sock4_xlate SEC(".maps");

/* UDP reverse translations: (cookie, backend) -> service. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sock4_reverse_key);
	__type(value, struct sock4_reverse);
	__uint(max_entries, SOCK_MAP_SIZE);
} hoplab_sock4_reverse SEC(".maps");

/* The fallback without recvmsg4: UDP flows sendmsg4 translated, keyed as
 * from-container's tuple (saddr the pod, daddr the backend, flags 0) ->
 * service.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct_key);
	__type(value, struct sock4_reverse);
	__uint(max_entries, SOCK_MAP_SIZE);
} hoplab_sock4_udp_flows SEC(".maps");

/* sock4_record stores the translation of the socket. */
static __always_inline void sock4_record(__u64 cookie, struct sock4_xlate *x)
{
	x->ktime = bpf_ktime_get_ns();
	bpf_map_update_elem(&hoplab_sock4_xlate, &cookie, x, BPF_ANY);
}

/* sock4_xlate_fwd translates a connect() or sendmsg() to a Service
 * VIP:port into one to a backend, and returns the program's verdict:
 * SYS_PROCEED, or SYS_REJECT for a service without a backend (Cilium
 * rejects these too, rather than sending packets nobody answers).
 * Anything that is not TCP or UDP to a service is left alone.
 */
static __always_inline int sock4_xlate_fwd(struct bpf_sock_addr *ctx, __u8 hook)
{
	__u32 proto = sock_ctx_read(ctx, protocol);
	struct sock4_xlate x = {};
	struct lb4_backend *backend;
	struct lb4_service *svc;
	struct lb4_key key = {};
	__u32 backend_id;
	__u64 cookie;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return SYS_PROCEED;
	key.address = sock_ctx_read(ctx, user_ip4);
	key.dport = (__be16)sock_ctx_read(ctx, user_port);
	key.proto = proto;
	svc = lb4_lookup_service(&key);
	if (!svc)
		return SYS_PROCEED;

	cookie = bpf_get_socket_cookie(ctx);
	x.vip = key.address;
	x.vport = key.dport;
	x.proto = proto;
	x.hook = hook;
	x.rev_nat_index = svc->rev_nat_index;
	if (svc->count == 0)
		goto no_backend;
	backend_id = lb4_select_backend_id(&key, svc);
	backend = bpf_map_lookup_elem(&hoplab_lb4_backends, &backend_id);
	if (!backend)
		goto no_backend;

	ctx->user_ip4 = backend->address;
	ctx->user_port = (__u32)backend->port;
	x.backend = backend->address;
	x.backend_port = backend->port;
	x.backend_id = backend_id;
	sock4_record(cookie, &x);
	if (proto == IPPROTO_UDP) {
		struct sock4_reverse_key rkey = {
			.cookie = cookie,
			.address = backend->address,
			.port = backend->port,
		};
		struct sock4_reverse rev = {
			.address = x.vip,
			.port = x.vport,
			.rev_nat_index = x.rev_nat_index,
			.hook = hook,
		};

		bpf_map_update_elem(&hoplab_sock4_reverse, &rkey, &rev, BPF_ANY);
	}
	return SYS_PROCEED;
no_backend:
	x.flags = SOCK_XLATE_F_NO_BACKEND;
	sock4_record(cookie, &x);
	return SYS_REJECT;
}

/* sock4_xlate_rev reports the source of a UDP datagram a translated
 * socket receives from a backend as the service the socket sent to.
 */
static __always_inline void sock4_xlate_rev(struct bpf_sock_addr *ctx)
{
	struct sock4_reverse_key key = {
		.cookie = bpf_get_socket_cookie(ctx),
		.address = sock_ctx_read(ctx, user_ip4),
		.port = (__be16)sock_ctx_read(ctx, user_port),
	};
	struct sock4_reverse *rev = bpf_map_lookup_elem(&hoplab_sock4_reverse, &key);

	if (!rev)
		return;
	ctx->user_ip4 = rev->address;
	ctx->user_port = (__u32)rev->port;
}

/* sock4_udp_ct_rev_nat sets the rev-NAT index of the flow's egress CT
 * entry, if it has one: the entry outlives the socket, and a later socket
 * on the same port may or may not go through the service. Entries the tc
 * path's own DNAT made (with a backend) are not touched. flow's flags are
 * CT_EGRESS (0), so it is the entry's key.
 */
static __always_inline void sock4_udp_ct_rev_nat(const struct ct_key *flow, __u16 rev_nat_index)
{
	struct ct_entry *entry = bpf_map_lookup_elem(&hoplab_ct4_global, flow);

	if (entry && !entry->backend_id && entry->rev_nat_index != rev_nat_index)
		entry->rev_nat_index = rev_nat_index;
}

/* sock4_udp_egress, at the cgroup's egress (skb->data at the IP header),
 * keeps the tc path's reverse NAT in step with the socket of each UDP
 * datagram, which only this hook knows: a flow sendmsg4 translated is
 * recorded in hoplab_sock4_udp_flows with its service (from-container
 * gives a new flow's CT entry its rev-NAT index), any other flow of the
 * same tuple (a connected socket, whose replies must keep the backend's
 * address, or a later socket on the same port) is removed; an existing CT
 * entry of the flow is set either way.
 */
static __always_inline void sock4_udp_egress(struct __sk_buff *skb)
{
	struct sock4_reverse_key rkey = {};
	struct sock4_reverse *rev;
	struct ct_key flow = {};
	struct udp_head uh;
	struct iphdr ip;
	__u32 ihl;

	if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) < 0)
		return;
	if ((ip.ihl_version >> 4) != 4 || ip.protocol != IPPROTO_UDP ||
	    (ip.frag_off & bpf_htons(IP_OFFSET)))
		return;
	ihl = (ip.ihl_version & 0x0f) * 4;
	if (ihl < sizeof(ip) || bpf_skb_load_bytes(skb, ihl, &uh, sizeof(uh)) < 0)
		return;

	flow.daddr = ip.daddr;
	flow.saddr = ip.saddr;
	flow.dport = uh.dport;
	flow.sport = uh.sport;
	flow.nexthdr = IPPROTO_UDP;
	rkey.cookie = bpf_get_socket_cookie(skb);
	rkey.address = ip.daddr;
	rkey.port = uh.dport;
	rev = bpf_map_lookup_elem(&hoplab_sock4_reverse, &rkey);
	if (rev && rev->hook == SOCK_HOOK_SENDMSG4) {
		bpf_map_update_elem(&hoplab_sock4_udp_flows, &flow, rev, BPF_ANY);
		sock4_udp_ct_rev_nat(&flow, rev->rev_nat_index);
		return;
	}
	if (bpf_map_lookup_elem(&hoplab_sock4_udp_flows, &flow))
		bpf_map_delete_elem(&hoplab_sock4_udp_flows, &flow);
	sock4_udp_ct_rev_nat(&flow, 0);
}

/* sock4_udp_flow_rev_nat returns the rev-NAT index of a new UDP flow from
 * a pod that sendmsg4 translated (the fallback without recvmsg4), else 0.
 * tuple is from-container's.
 */
static __always_inline __u16 sock4_udp_flow_rev_nat(const struct ct_key *tuple)
{
	struct ct_key flow = {
		.daddr = tuple->daddr,
		.saddr = tuple->saddr,
		.dport = tuple->dport,
		.sport = tuple->sport,
		.nexthdr = tuple->nexthdr,
	};
	struct sock4_reverse *rev;

	if (tuple->nexthdr != IPPROTO_UDP)
		return 0;
	rev = bpf_map_lookup_elem(&hoplab_sock4_udp_flows, &flow);
	return rev ? rev->rev_nat_index : 0;
}

#endif /* __HOPLAB_SOCK_H */
