// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* Constants shared by every part of the datapath: security identities,
 * directions, tail-call slots and the skb->cb layout used to hand state from
 * one program to the next.
 */
#ifndef __HOPLAB_COMMON_H
#define __HOPLAB_COMMON_H

#include "bpf_api.h"

/* Reserved security identities (Cilium's numbering). */
#define IDENTITY_UNKNOWN 0
#define IDENTITY_HOST 1
#define IDENTITY_WORLD 2

/* Directions for metrics and policy (Cilium's METRIC_INGRESS/EGRESS). */
#define METRIC_INGRESS 1
#define METRIC_EGRESS 2

/* skb->cb slots carried across tail calls. */
#define CB_SRC_IDENTITY 0 /* security identity of the sender */
#define CB_BACKEND_ID 1   /* backend chosen by the service LB, 0 if none */
#define CB_REV_NAT 2      /* reverse-NAT index of the service, 0 if none */
#define CB_SRC_EP 3       /* endpoint id (low 16 bits) and flags (high 16) */
#define CB_CT_CREATED 4   /* CT entries the packet created, to delete on a drop (conntrack.h) */

/* Slots of hoplab_calls_lxc (per-program call array of bpf_lxc.c). */
#define CALL_IPV4_EGRESS_POLICY 1 /* tail_ipv4_egress_policy */

/* Identifies the source file in drop notifications (Cilium's __MAGIC_FILE__). */
#define FILE_BPF_LXC 1
#define FILE_BPF_NETDEV 2
#define FILE_BPF_OVERLAY 3

#define ETH_HLEN 14
#define ETH_ALEN 6
#define ETH_P_IP 0x0800

#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

/* Direct packet access reaches at most this far; a larger offset goes
 * through bpf_skb_load_bytes.
 */
#define PKT_DIRECT_MAX_OFF 0x3ff

/* pkt_off_opaque hides a value from the compiler, so that a bound checked
 * on it afterwards is really emitted and sits right before the use.
 */
#define pkt_off_opaque(v) asm volatile("" : "+r"(v))

/* skb_copy_bytes copies len bytes at off into to: straight from the linear
 * packet data when it is there (direct packet access, 4.7), else through
 * bpf_skb_load_bytes, which also reaches paged data. len is a constant.
 *
 * 4.19's verifier forgets the bounds of a scalar spilled to the stack, and
 * clang spills offsets such as l4_off across helper calls: a reloaded
 * offset added to skb->data fails with "math between pkt pointer and
 * register with unbounded min value is not allowed". So the offset is
 * re-bounded here, after any reload: the compare with PKT_DIRECT_MAX_OFF
 * cannot be folded away (pkt_off_opaque) and bounds the register that the
 * pointer arithmetic uses. datapath/compat's pkt-stack-offset rule checks
 * the objects for this. The direct copy is told the source is 4-byte
 * aligned, so that it loads words, not bytes: packet loads need no
 * alignment where the verifier does not enforce it (x86-64, arm64).
 */
#define skb_copy_bytes(skb, off, to, len)                                           \
	({                                                                          \
		__u64 __off = (off);                                                \
		void *__data, *__end;                                               \
		int __ret = 0;                                                      \
		pkt_off_opaque(__off);                                              \
		__data = (void *)(long)(skb)->data;                                 \
		__end = (void *)(long)(skb)->data_end;                              \
		if (__off <= PKT_DIRECT_MAX_OFF && __data + __off + (len) <= __end) \
			__builtin_memcpy((to), __builtin_assume_aligned(__data + __off, 4), (len)); \
		else                                                                \
			__ret = bpf_skb_load_bytes((skb), __off, (to), (len)) < 0 ? -1 : 0; \
		__ret;                                                              \
	})

/* ---- Map key and value layouts. The Go side gets these through bpf2go
 * -type, so a field added here shows up in the generated Go structs. Every
 * struct is explicitly padded: hash keys must not contain undefined bytes.
 */

/* Connection-tracking tuple (Cilium's ipv4_ct_tuple), addresses and ports in
 * network byte order, as they appear in the packet in the direction the
 * entry was created for.
 */
struct ct_key {
	__be32 daddr;
	__be32 saddr;
	__be16 dport;
	__be16 sport;
	__u8 nexthdr;
	__u8 flags; /* TUPLE_F_* */
	__u16 pad;
};

/* Connection-tracking entry. tx_* count packets in the direction of the
 * tuple, rx_* the replies.
 */
struct ct_entry {
	__u64 rx_packets;
	__u64 rx_bytes;
	__u64 tx_packets;
	__u64 tx_bytes;
	__u32 lifetime;     /* expiry, seconds of CLOCK_MONOTONIC */
	__u16 flags;        /* CT_F_* */
	__u16 rev_nat_index;
	__u32 backend_id;
	__u32 src_sec_id;
	__u8 tx_flags_seen; /* TCP flags seen in the tuple's direction */
	__u8 rx_flags_seen; /* TCP flags seen in the reply direction */
	__be16 proxy_port;  /* not 0: the flow goes to the L7 proxy on this port (lib/proxy.h) */
	__u32 created;      /* seconds of CLOCK_MONOTONIC */
	/* A service entry (CT_F_SERVICE): the pinned backend's address and
	 * port, a copy of backend_id's backend map entry, so that established
	 * packets need no backend lookup (the agent deletes the service
	 * entries of a backend it removes or changes). Unused elsewhere.
	 */
	__be32 backend_addr;
	__be16 backend_port;
	__u16 pad;
};

/* Service map key (Cilium's lb4_key). backend_slot 0 is the master entry. */
struct lb4_key {
	__be32 address;
	__be16 dport;
	__u16 backend_slot;
	__u8 proto;
	__u8 scope;
	__u8 pad[2];
};

/* Service map value: the master entry uses count and rev_nat_index, the
 * slot entries use backend_id.
 */
struct lb4_service {
	__u32 backend_id;
	__u16 count;
	__u16 rev_nat_index;
	__u8 flags;
	__u8 pad[3];
};

/* Backend map value, keyed by a __u32 backend id. */
struct lb4_backend {
	__be32 address;
	__be16 port;
	__u8 proto;
	__u8 flags;
};

/* Reverse-NAT map value, keyed by a __u16 rev-NAT index. */
struct lb4_reverse_nat {
	__be32 address;
	__be16 port;
	__u16 pad;
};

/* ipcache key: an LPM trie key, prefixlen counts bits of ip. */
struct ipcache_key {
	__u32 prefixlen;
	__be32 ip;
};

/* ipcache value (Cilium's remote_endpoint_info). */
struct remote_endpoint_info {
	__u32 sec_identity;
	__be32 tunnel_endpoint;
	__u8 key;
	__u8 pad[3];
};

/* Endpoint map key. */
struct endpoint_key {
	__be32 ip;
};

/* Endpoint map value (Cilium's endpoint_info). */
struct endpoint_info {
	__u32 ifindex;   /* host-side veth (lxc) */
	__u16 ep_id;     /* index into hoplab_policy_progs */
	__u16 flags;     /* EP_F_* */
	__u32 sec_identity;
	__u8 lxc_mac[6]; /* MAC of the host-side veth */
	__u8 pod_mac[6]; /* MAC of the pod's eth0 */
};

/* A local endpoint by its lxc's ifindex (hoplab_lxc_ifindex): the pod's
 * address and the value hoplab_lxc holds for it. An unused slot is zero,
 * so its info.ifindex never equals its key.
 */
struct endpoint_by_ifindex {
	__be32 ip;
	__u32 pad;
	struct endpoint_info info;
};

#define EP_F_ENFORCE_INGRESS 1
#define EP_F_ENFORCE_EGRESS 2

/* Policy key. A zero sec_label, dport or protocol is a wildcard entry. */
struct policy_key {
	__u32 sec_label;
	__u16 ep_id;
	__be16 dport;
	__u8 protocol;
	__u8 egress; /* 1 for egress, 0 for ingress */
	__u8 pad[2];
};

/* Policy value, with per-entry hit counters. A non-zero proxy_port
 * (Cilium's) redirects the flows the entry admits to the node's L7 proxy
 * listening on that port (lib/proxy.h).
 */
struct policy_entry {
	__u8 deny;
	__u8 pad0;
	__be16 proxy_port;
	__u8 pad[4];
	__u64 packets;
	__u64 bytes;
};

/* Runtime configuration, the single entry of hoplab_config (no global
 * data on 4.19: configuration lives in a map).
 */
struct hoplab_config {
	__u8 monitor_aggregation; /* MONITOR_AGGREGATION_* */
	__u8 pad[3];
	__u32 tunnel_ifindex;     /* VXLAN device of tunnel mode (lib/encap.h), 0: direct routing */
	__be32 node_addr;         /* the uplink's address: NodePort frontends and SNAT (lib/nodeport.h), 0: off */
	__be32 pod_cidr;          /* this node's PodCIDR, every local endpoint's address in it */
	__be32 pod_cidr_mask;     /* its netmask; 0 (unset): any address may be a local endpoint's */
};

/* Index of a (reason, direction) counter in hoplab_metrics; reason 0 is
 * "forwarded", dir is METRIC_INGRESS or METRIC_EGRESS.
 */
#define METRICS_INDEX(reason, dir) ((((__u32)(reason)) << 2) | ((dir) & 3))

/* Metrics value, per CPU. */
struct metrics_value {
	__u64 count;
	__u64 bytes;
};

/* NAT map value (Cilium's ipv4_nat_entry), keyed by a struct ct_key
 * with TUPLE_F_OUT (the original flow: to_* is the translated source) or
 * TUPLE_F_IN (the translated reply: to_* is the original destination).
 */
struct nat_entry {
	__u32 created; /* seconds of CLOCK_MONOTONIC */
	__u32 pad;
	__be32 to_addr;
	__be16 to_port;
	__u16 pad2;
};

#endif /* __HOPLAB_COMMON_H */
