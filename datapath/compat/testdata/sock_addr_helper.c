//go:build ignore
/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* sock_addr_helper: bpf_perf_event_output exists in 4.19, but not for
 * cgroup sock_addr programs (sock_addr_func_proto gives them
 * get_socket_cookie and the base helpers): 4.19 fails the load with
 * "unknown func". Later kernels allow it. */
#include "compat.h"

struct {
	__uint(type, MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

SEC("cgroup/connect4")
int sock_addr_helper(struct bpf_sock_addr *ctx)
{
	__u32 v = 1;

	bpf_perf_event_output(ctx, &events, PERF_F_CURRENT_CPU, &v, sizeof(v));
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
