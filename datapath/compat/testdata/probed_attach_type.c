//go:build ignore
/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* probed_attach_type: the attach type of new_attach_type.c, but the
 * program carries hoplab's probed tag: its loader only loads it where a
 * probe found the hook, so the check lets the attach type pass. */
#include "compat.h"

__attribute__((btf_decl_tag("hoplab:probed:cgroup/getpeername4")))
SEC("cgroup/getpeername4")
int probed_attach_type(struct bpf_sock_addr *ctx)
{
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
