//go:build ignore
/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* new_map_type: a queue map (4.20) cannot be created on 4.19. */
#include "compat.h"

struct {
	__uint(type, MAP_TYPE_QUEUE);
	__uint(max_entries, 16);
	__type(value, __u32);
} pending SEC(".maps");

SEC("tc")
int new_map_type(struct __sk_buff *skb)
{
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
