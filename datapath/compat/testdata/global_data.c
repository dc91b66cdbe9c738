//go:build ignore
/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* global_data: a global counter lives in .bss, which needs direct map value
 * access (5.2); 4.19 has no global data. */
#include "compat.h"

__u32 packets;

SEC("tc")
int global_data(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&packets, 1);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
