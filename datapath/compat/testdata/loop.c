//go:build ignore
/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* loop: a bounded loop (5.3); 4.19's verifier rejects every back-edge. */
#include "compat.h"

CONFIG_MAP(config);

SEC("tc")
int loop(struct __sk_buff *skb)
{
	__u32 n = config_value(&config);
	volatile __u32 acc = 0;
	__u32 i;

#pragma clang loop unroll(disable)
	for (i = 0; i < n && i < 16; i++)
		acc ^= i;
	return acc;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
