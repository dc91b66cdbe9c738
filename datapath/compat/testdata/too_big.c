//go:build ignore
/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* too_big: a straight-line body of more than 4096 instructions, over 4.19's
 * BPF_MAXINSNS. Each step on the volatile is a load, an add and a store. */
#include "compat.h"

#define STEP acc += 1;
#define S4 STEP STEP STEP STEP
#define S16 S4 S4 S4 S4
#define S64 S16 S16 S16 S16
#define S256 S64 S64 S64 S64
#define S1024 S256 S256 S256 S256

SEC("tc")
int too_big(struct __sk_buff *skb)
{
	volatile __u32 acc = 0;

	S1024 S256 S64 S64
	return acc;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
