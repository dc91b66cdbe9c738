//go:build ignore
/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* new_attach_type: cgroup_sock_addr exists in 4.19, but the getpeername4
 * hook (5.8) does not, and the program declares it at load time. */
#include "compat.h"

SEC("cgroup/getpeername4")
int new_attach_type(struct bpf_sock_addr *ctx)
{
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
