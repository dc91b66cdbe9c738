//go:build ignore
/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* ctx_field: skb->tstamp (offset 152) was added to __sk_buff in 5.0; 4.19's
 * __sk_buff ends at 144 and its verifier rejects the read. The ctx pointer
 * is first moved to another register, as clang does around calls. */
#include "compat.h"

CONFIG_MAP(config);

SEC("tc")
int ctx_field(struct __sk_buff *skb)
{
	__u32 mark = config_value(&config);

	if (mark)
		return *(volatile __u64 *)((char *)skb + 152) != 0;
	return *(volatile __u32 *)((char *)skb + 8) == 1; /* skb->mark: fine */
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
