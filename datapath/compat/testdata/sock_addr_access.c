//go:build ignore
/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* sock_addr_access: a 2-byte load of bpf_sock_addr.user_port (offset 24),
 * the port in network byte order. 4.19 takes only 4-byte loads of it
 * (narrow loads of user_port came later); the 4-byte load of user_ip4 and
 * the 2-byte load of msg_src_ip4 (an address field) are fine. */
#include "compat.h"

SEC("cgroup/sendmsg4")
int sock_addr_access(struct bpf_sock_addr *ctx)
{
	if (*(volatile __u32 *)((char *)ctx + 4) == 0) /* user_ip4 */
		return 1;
	if (*(volatile __u16 *)((char *)ctx + 40) == 0) /* msg_src_ip4 */
		return 1;
	return *(volatile __u16 *)((char *)ctx + 24) != 0x5000; /* user_port: 2 bytes */
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
