//go:build ignore
/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* new_prog_type: an sk_lookup program (5.9) does not exist in 4.19. */
#include "compat.h"

SEC("sk_lookup")
int new_prog_type(struct bpf_sk_lookup *ctx)
{
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
