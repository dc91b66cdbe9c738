//go:build ignore
/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* new_helper: bpf_redirect_peer arrived in 5.10; 4.19 rejects the call. */
#include "compat.h"

CONFIG_MAP(config);

SEC("tc")
int new_helper(struct __sk_buff *skb)
{
	__u32 ifindex = config_value(&config);

	if (!ifindex)
		return 0;
	return bpf_redirect_peer(ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
