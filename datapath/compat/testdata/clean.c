//go:build ignore
/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* clean: uses only what 4.19 has — hash/array maps, a perf event array for
 * events, a tail call, an atomic add without fetch. No violations. */
#include "compat.h"

CONFIG_MAP(config);

struct {
	__uint(type, MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

struct {
	__uint(type, MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} calls SEC(".maps");

SEC("tc")
int clean(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u32 *count = bpf_map_lookup_elem(&config, &key);
	__u64 ev;

	if (!count)
		return 0;
	__sync_fetch_and_add(count, 1);
	ev = *count;
	bpf_perf_event_output(skb, &events, PERF_F_CURRENT_CPU, &ev, sizeof(ev));
	bpf_tail_call(skb, &calls, 1);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
