// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* Every map of the datapath, all named hoplab_*.
 *
 * Maps are BTF-style definitions in ".maps". cilium/ebpf parses them in user
 * space, so the kernel needs no BTF to understand the definition itself; it
 * first creates each map with BTF key/value types and, when the kernel
 * rejects that (4.19 rejects BTF on prog/perf arrays and LPM tries, kernels
 * without CONFIG_DEBUG_INFO_BTF reject all of it), it retries without BTF.
 * The BTF in the object also gives bpf2go the key/value layouts for Go.
 * Only map types that exist in 4.19 are used, and there is no global data:
 * configuration lives in maps.
 */
#ifndef __HOPLAB_MAPS_H
#define __HOPLAB_MAPS_H

#include "common.h"

#define CT_MAP_SIZE 262144
#define LB_MAP_SIZE 65536
#define POLICY_MAP_SIZE 65536
#define ENDPOINTS_MAP_SIZE 65536
#define LXC_IFINDEX_MAP_SIZE 16384
#define IPCACHE_MAP_SIZE 512000
#define POLICY_PROG_MAP_SIZE 65536
#define CALLS_MAP_SIZE 8
#define METRICS_MAP_SIZE 1024 /* 256 reasons x 4 directions */
#define NAT_MAP_SIZE 131072

/* Service entries: (VIP, port, proto, slot) -> master or backend slot. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct lb4_key);
	__type(value, struct lb4_service);
	__uint(max_entries, LB_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} hoplab_lb4_services SEC(".maps");

/* Backends: backend id -> address and port. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct lb4_backend);
	__uint(max_entries, LB_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} hoplab_lb4_backends SEC(".maps");

/* Reverse NAT: rev-NAT index -> VIP and port. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u16);
	__type(value, struct lb4_reverse_nat);
	__uint(max_entries, LB_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} hoplab_lb4_reverse_nat SEC(".maps");

/* Connection tracking, TCP and non-TCP in one LRU table. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
	__uint(max_entries, CT_MAP_SIZE);
} hoplab_ct4_global SEC(".maps");

/* ipcache: prefix -> security identity and tunnel endpoint. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct ipcache_key);
	__type(value, struct remote_endpoint_info);
	__uint(max_entries, IPCACHE_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} hoplab_ipcache SEC(".maps");

/* Local endpoints: pod IP -> interface, endpoint id, MACs, identity. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_info);
	__uint(max_entries, ENDPOINTS_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} hoplab_lxc SEC(".maps");

/* Local endpoints by the ifindex of their lxc, for from-container's source
 * endpoint: an array lookup, which the verifier inlines, instead of a hash
 * lookup per packet, and the check that a pod sends with its own address.
 * Endpoints on an ifindex beyond the array are found in hoplab_lxc alone.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct endpoint_by_ifindex);
	__uint(max_entries, LXC_IFINDEX_MAP_SIZE);
} hoplab_lxc_ifindex SEC(".maps");

/* Policy: (endpoint, remote identity, port, proto, direction) -> verdict. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct policy_key);
	__type(value, struct policy_entry);
	__uint(max_entries, POLICY_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} hoplab_policy SEC(".maps");

/* Global policy program array: endpoint id -> that endpoint's to-container. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, POLICY_PROG_MAP_SIZE);
} hoplab_policy_progs SEC(".maps");

/* Per-program call array of bpf_lxc.c: CALL_* -> tail_* stage. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, CALLS_MAP_SIZE);
} hoplab_calls_lxc SEC(".maps");

/* Trace and drop notifications, each followed by packet bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} hoplab_events SEC(".maps");

/* Per-CPU flag at index 0: set when a notification found no reader on
 * this CPU (-ENOENT from the perf helper). Notifications are then skipped,
 * so a datapath nobody observes pays nothing for them, until the Go event
 * reader clears the flag when it opens.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} hoplab_events_muted SEC(".maps");

/* Runtime configuration: one struct hoplab_config at index 0. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct hoplab_config);
	__uint(max_entries, 1);
} hoplab_config SEC(".maps");

/* config_get returns the runtime configuration (an array's only entry:
 * never NULL in practice, but the verifier wants the check).
 */
static __always_inline struct hoplab_config *config_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&hoplab_config, &zero);
}

/* Per-CPU counters: (reason, direction) -> packets, bytes, indexed by
 * METRICS_INDEX(reason, dir). An array rather than Cilium's hash: the
 * lookup is inlined by the verifier and never fails.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct metrics_value);
	__uint(max_entries, METRICS_MAP_SIZE);
} hoplab_metrics SEC(".maps");

/* SNAT of NodePort connections to backends on other nodes (Cilium's
 * cilium_snat_v4_external): per connection an egress entry (original
 * tuple, TUPLE_F_OUT) -> translated source, and an ingress entry (the
 * translated reply's tuple, TUPLE_F_IN) -> original destination
 * (lib/nat.h).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct_key);
	__type(value, struct nat_entry);
	__uint(max_entries, NAT_MAP_SIZE);
} hoplab_snat_v4_external SEC(".maps");

#endif /* __HOPLAB_MAPS_H */
