//go:build ignore
/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* tailcall_subprog: a BPF-to-BPF call in a program that also tail-calls;
 * 4.19 refuses tail calls in programs with subprograms (mixing arrived in
 * 5.10 for x86-64). */
#include "compat.h"

CONFIG_MAP(config);

struct {
	__uint(type, MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} calls SEC(".maps");

static __noinline __u32 pick_stage(void)
{
	return config_value(&config) & 3;
}

SEC("tc")
int tailcall_subprog(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &calls, pick_stage());
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
