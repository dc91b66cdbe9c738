//go:build ignore
/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* jmp32: built with -mcpu=v3, clang compares 32-bit values with BPF_JMP32
 * instructions (5.1), which 4.19 does not decode. */
#include "compat.h"

CONFIG_MAP(config);

SEC("tc")
int jmp32(struct __sk_buff *skb)
{
	if (config_value(&config) > 10)
		return 2;
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
